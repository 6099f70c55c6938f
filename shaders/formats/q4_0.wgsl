// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q4_0: 18-byte blocks of 32 weights: f16 d, u8 qs[16]. Weight i < 16 is the low
// nibble of qs[i], weight i + 16 the high nibble; x = (q - 8) * d.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let j = g % 4u;
    let base = row + (g / 4u) * BLOCK_BYTES;
    let d = w_f16(base);
    let q = base + 2u + 8u * (j & 1u);
    let sh = (j >> 1u) * 4u;
    return mat2x4<f32>((nib4(w_u32(q), sh) - 8.0) * d, (nib4(w_u32(q + 4u), sh) - 8.0) * d);
}
