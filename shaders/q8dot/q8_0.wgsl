// Integer-dot interface: see q4_0.wgsl.
// Q8_0: x = q * d with signed q, so the block is d * dx * sum(q * qx). Blocks are 34
// bytes: the quants start at an even offset, read as a run (w_run_word).
fn qdot32(row: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    let base = row + b * 34u;
    let start = base + 2u;
    let a = start >> 2u;
    var lo = W[a];
    var q = 0;
    for (var k = 0u; k < 8u; k = k + 1u) {
        let hi = W[a + 1u + k];
        q = q + dot4I8Packed(w_run_word(start, lo, hi), xq_word(x0, x1, k));
        lo = hi;
    }
    return w_f16(base) * xs.x * f32(q);
}
