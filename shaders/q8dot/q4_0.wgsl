// Integer-dot interface (every file in shaders/q8dot/ has the same function):
//   qdot32(row, b, x0, x1, xs): weights 32b..32b+31 of the row whose bytes start at
//   byte `row`, dotted with the activation block whose 8 packed int8 words are x0, x1
//   (words 0..3, 4..7; the kernel loads them as two vec4: see matvec_q8.wgsl) and
//   whose (d, d * sum q) is xs. Follows llama.cpp's ggml_vec_dot_<format>_q8.
// Q4_0: x = (q - 8) * d, so the block is d * (dx * sum(q * qx)) - 8 * d * s. 18-byte
// blocks: the quants are a run at an even offset (w_run_word).
fn qdot32(row: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    let base = row + b * 18u;
    let start = base + 2u;
    let a = start >> 2u;
    var lo = W[a];
    var q = 0;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let hi = W[a + 1u + k];
        let w = w_run_word(start, lo, hi);
        q = q + dot4I8Packed(w & 0x0f0f0f0fu, x0[k]) + dot4I8Packed((w >> 4u) & 0x0f0f0f0fu, x1[k]);
        lo = hi;
    }
    let d = w_f16(base);
    return d * (xs.x * f32(q) - 8.0 * xs.y);
}
