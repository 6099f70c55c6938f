// Integer-dot interface: see q4_0.wgsl.
// Q4_K: block b is sub-block b % 8 of super-block b / 8, x = (d * sc) * q - dmin * m;
// sub-blocks 2j and 2j + 1 are the low and high nibbles of the same 32 bytes.
fn qdot32(row: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    let base = row + (b / 8u) * 144u;
    let j = b % 8u;
    let sh = 4u * (j % 2u);
    let qs = (base + 16u + 32u * (j / 2u)) >> 2u;
    var q = 0;
    for (var k = 0u; k < 8u; k = k + 1u) {
        q = q + dot4I8Packed((W[qs + k] >> sh) & 0x0f0f0f0fu, xq_word(x0, x1, k));
    }
    let dd = unpack2x16float(W[base >> 2u]);
    let sm = scale_min_k4(base + 4u, j);
    return dd.x * sm.x * xs.x * f32(q) - dd.y * sm.y * xs.y;
}
