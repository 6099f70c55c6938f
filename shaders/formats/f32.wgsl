// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// F32: plain little-endian floats.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let o = row + g * 32u;
    let a = vec4<f32>(bitcast<f32>(w_word(o)), bitcast<f32>(w_word(o + 4u)), bitcast<f32>(w_word(o + 8u)), bitcast<f32>(w_word(o + 12u)));
    let b = vec4<f32>(bitcast<f32>(w_word(o + 16u)), bitcast<f32>(w_word(o + 20u)), bitcast<f32>(w_word(o + 24u)), bitcast<f32>(w_word(o + 28u)));
    return mat2x4<f32>(a, b);
}
