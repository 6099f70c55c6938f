// Integer-dot reader (interface: common.wgsl).
// Q5_0: x = (q - 16) * d, q = nibble | (bit j of qh) << 4, so the block is
// d * dx * sum(q * qx) - 16 * d * s. 22-byte blocks (2-byte aligned): f16 d, u32 qh (bit j
// is weight j's fifth bit), 16 bytes of nibbles (low: weights 0..15, high: 16..31).
// 3 loads: the vec4s that cover the block (a block starting at byte 10 or later of its
// first vec4 reaches into the third), everything taken from them.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b, 22u);
    let v = base >> 4u;
    let rel = base & 15u;
    let a = w4(v);
    let n = w4(v + 1u);
    // The third vec4 is only used when the block reaches into it (rel >= 10), and then it
    // is in the buffer; otherwise the index is kept in range and the value unused.
    let c = w4(min(v + 2u, w4_count() - 1u));
    let d = unpack2x16float(vec4_u16(a, rel)).x;
    let qh = words_at(a, n, rel + 2u).x;
    return q5_block(words_at3(a, n, c, rel + 6u), qh, d, -16.0 * d);
}
