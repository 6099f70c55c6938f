// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// F16: IEEE half floats, unpacked with the core unpack2x16float (no SHADER_F16 needed).

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let o = row + g * 16u;
    let a = vec4<f32>(unpack2x16float(w_word(o)), unpack2x16float(w_word(o + 4u)));
    let b = vec4<f32>(unpack2x16float(w_word(o + 8u)), unpack2x16float(w_word(o + 12u)));
    return mat2x4<f32>(a, b);
}
