// Integer-dot reader (interface: common.wgsl).
// Q8_0: x = q * d with signed q, so the block is d * dx * sum(q * qx). 34-byte blocks:
// f16 d, then 32 signed bytes. A block starts at an even offset, so it always lies
// within the 3 vec4s from the one holding its first byte: d and the quants take 3
// loads together (the quants alone at base + 2 would take 3, d a fourth).
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 34u;
    let v = base >> 4u;
    let a = W4[v];
    let n = W4[v + 1u];
    let c = W4[v + 2u];
    let d = unpack2x16float(a[(base >> 2u) & 3u] >> ((base & 2u) * 8u)).x;
    let s = base + 2u;
    let o = (s >> 2u) & 3u;
    let h = s & 2u;
    // base % 16 == 14: the quants are exactly the next two vec4s.
    let wrap = (s & 15u) == 0u;
    let lo = select(half_shift(words4(a, n, o), n[o], h), n, wrap);
    let hi = select(half_shift(words4(n, c, o), c[o], h), c, wrap);
    return Q8W(lo, hi, vec2<f32>(d, d), 0.0);
}
