// Integer-dot reader (interface: common.wgsl).
// Q5_1: x = q * d + m, q = nibble | (bit j of qh) << 4, so the block is
// d * dx * sum(q * qx) + m * s. 24-byte blocks (4-byte aligned): f16 d and m, u32 qh (bit
// j is weight j's fifth bit), 16 bytes of nibbles (low: weights 0..15, high: 16..31).
// 3 loads: the vec4s that cover the block (one starting at byte 8 or later of its first
// vec4 reaches into the third), everything taken from them.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b, 24u);
    let v = base >> 4u;
    let rel = base & 15u;
    let a = w4(v);
    let n = w4(v + 1u);
    // The third vec4 is only used when the block reaches into it (rel >= 8), and then it
    // is in the buffer; otherwise the index is kept in range and the value unused.
    let c = w4(min(v + 2u, w4_count() - 1u));
    let head = words_at(a, n, rel);
    let dm = unpack2x16float(head.x);
    let qh = head.y;
    return q5_block(words_at3(a, n, c, rel + 8u), qh, dm.x, dm.y);
}
