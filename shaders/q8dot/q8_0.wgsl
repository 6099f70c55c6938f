// Integer-dot reader (interface: common.wgsl).
// Q8_0: x = q * d with signed q, so the block is d * dx * sum(q * qx). 34-byte blocks:
// f16 d, then 32 signed bytes. A block starts at an even offset, so it always lies
// within the 3 vec4s from the one holding its first byte: d and the quants take 3
// loads together (the quants alone at base + 2 would take 3, d a fourth).
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b, 34u);
    let v = base >> 4u;
    let a = w4(v);
    let n = w4(v + 1u);
    let c = w4(v + 2u);
    let d = unpack2x16float(vec4_u16(a, base)).x;
    let rel = (base & 15u) + 2u;
    return Q8W(words_at(a, n, rel), words_at(n, c, rel), vec2<f32>(d, d), 0.0, NO_HALF_MINS);
}
