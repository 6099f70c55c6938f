// One block of 32 values to the 8-bit activations the integer-dot kernels read
// (q8_input.wgsl), for the kernels that write them: QuantizeQ8, and the ops whose output
// feeds 8-bit mat ops (RmsNormQ8, SiluMulQ8), which write them beside their f32 output
// (other readers take that) and spare the step a quantize dispatch. The kernel
// declares XQ (array<u32>, read_write) and q8_value(t, i), value i of token t.
//
// The 32 values q become round(x * 127 / amax) with a scale d = amax / 127, as
// llama.cpp's quantize_row_q8_1 does on AVX2 (round to nearest even), plus
// s = d * sum(q), which formats with an offset (Q4_1, Q4_K, ...) need. Layout per token
// of n values: n/4 words of packed q, then n/32 pairs (d, s) as f32 bits, padded to a
// multiple of 4 words (the readers load vec4s); tokens one after another.

// Block b (values 32b..32b+31) of token t, whose rows are n values long.
fn quantize_block(t: u32, n: u32, b: u32) {
    let q0 = t * ((n / 4u + n / 16u + 3u) & ~3u);
    let v0 = 32u * b;
    var amax = 0.0;
    for (var i = 0u; i < 32u; i = i + 1u) {
        amax = max(amax, abs(q8_value(t, v0 + i)));
    }
    let d = amax / 127.0;
    let id = select(0.0, 127.0 / amax, amax > 0.0);
    var sum = 0;
    for (var w = 0u; w < 8u; w = w + 1u) {
        let i = v0 + 4u * w;
        let x = vec4<f32>(q8_value(t, i), q8_value(t, i + 1u), q8_value(t, i + 2u),
                          q8_value(t, i + 3u));
        let q = vec4<i32>(round(x * id));
        sum = sum + q.x + q.y + q.z + q.w;
        XQ[q0 + 8u * b + w] = pack4xI8(q);
    }
    let sd = q0 + n / 4u + 2u * b;
    XQ[sd] = bitcast<u32>(d);
    XQ[sd + 1u] = bitcast<u32>(d * f32(sum));
}
