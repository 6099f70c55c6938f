// Integer-dot reader (interface: common.wgsl).
// Q4_0: x = (q - 8) * d, so the block is d * dx * sum(q * qx) - 8 * d * s. 18-byte
// blocks: f16 d, then 16 bytes of nibbles. A block starts at an even offset, so it
// always lies within the 2 vec4s from the one holding its first byte: 2 loads.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 18u;
    let v = base >> 4u;
    let a = W4[v];
    let n = W4[v + 1u];
    let d = unpack2x16float(a[(base >> 2u) & 3u] >> ((base & 2u) * 8u)).x;
    let s = base + 2u;
    let o = (s >> 2u) & 3u;
    // base % 16 == 14: the nibbles are exactly the next vec4.
    let r = select(half_shift(words4(a, n, o), n[o], s & 2u), n, (s & 15u) == 0u);
    return Q8W(r & vec4<u32>(NIB), (r >> vec4<u32>(4u)) & vec4<u32>(NIB), vec2<f32>(d, d), -8.0 * d);
}
