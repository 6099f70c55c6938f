// Integer-dot reader (interface: common.wgsl).
// Q4_0: x = (q - 8) * d, so the block is d * dx * sum(q * qx) - 8 * d * s. 18-byte
// blocks: f16 d, then 16 bytes of nibbles. A block starts at an even offset, so it
// always lies within the 2 vec4s from the one holding its first byte: 2 loads.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b, 18u);
    let v = base >> 4u;
    let a = w4(v);
    let n = w4(v + 1u);
    let d = unpack2x16float(vec4_u16(a, base)).x;
    let r = words_at(a, n, (base & 15u) + 2u);
    return Q8W(r & vec4<u32>(NIB), (r >> vec4<u32>(4u)) & vec4<u32>(NIB), vec2<f32>(d, d), -8.0 * d, NO_HALF_MINS);
}
