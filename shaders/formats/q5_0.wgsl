// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q5_0: 22-byte blocks of 32 weights: f16 d, u32 qh, u8 qs[16]. Weight i takes its
// low 4 bits as in Q4_0 and its fifth bit from bit i of qh; x = (q - 16) * d.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let j = g % 4u;
    let base = row + (g / 4u) * BLOCK_BYTES;
    let d = w_f16(base);
    let qh = w_u32(base + 2u);
    let q = base + 6u + 8u * (j & 1u);
    let sh = (j >> 1u) * 4u;
    let a = nib4(w_u32(q), sh) + 16.0 * bits4(qh, 8u * j);
    let b = nib4(w_u32(q + 4u), sh) + 16.0 * bits4(qh, 8u * j + 4u);
    return mat2x4<f32>((a - 16.0) * d, (b - 16.0) * d);
}
