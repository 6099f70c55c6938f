// Integer-dot reader (interface: common.wgsl).
// Q4_0: x = (q - 8) * d, so the block is d * dx * sum(q * qx) - 8 * d * s. 18-byte
// blocks: f16 d, then 16 bytes of nibbles at an even offset.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 18u;
    let r = run4(base + 2u);
    let d = w4_f16(base);
    return Q8W(r & vec4<u32>(NIB), (r >> vec4<u32>(4u)) & vec4<u32>(NIB), vec2<f32>(d, d), -8.0 * d);
}
