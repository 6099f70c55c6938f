// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// BF16: the high 16 bits of an f32.

fn bf16x2(v: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(v << 16u), bitcast<f32>(v & 0xffff0000u));
}

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let o = row + g * 16u;
    let a = vec4<f32>(bf16x2(w_word(o)), bf16x2(w_word(o + 4u)));
    let b = vec4<f32>(bf16x2(w_word(o + 8u)), bf16x2(w_word(o + 12u)));
    return mat2x4<f32>(a, b);
}
