// Integer-dot interface: see q4_0.wgsl.
// Q4_1: x = q * d + m, so the block is d * dx * sum(q * qx) + m * s. 20-byte blocks
// are word aligned.
fn qdot32(row: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    let base = (row + b * 20u) >> 2u;
    var q = 0;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let w = W[base + 1u + k];
        q = q + dot4I8Packed(w & 0x0f0f0f0fu, x0[k]) + dot4I8Packed((w >> 4u) & 0x0f0f0f0fu, x1[k]);
    }
    let dm = unpack2x16float(W[base]);
    return dm.x * xs.x * f32(q) + dm.y * xs.y;
}
