// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q8_0: 34-byte blocks of 32 weights: f16 d, i8 qs[32]; x = qs * d.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 4u) * BLOCK_BYTES;
    let d = w_f16(base);
    let q = base + 2u + 8u * (g % 4u);
    return mat2x4<f32>(i8x4(w_u32(q)) * d, i8x4(w_u32(q + 4u)) * d);
}
