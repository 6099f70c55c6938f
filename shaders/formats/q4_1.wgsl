// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q4_1: 20-byte blocks of 32 weights: f16 d, f16 m, u8 qs[16] (nibbles as Q4_0);
// x = q * d + m.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let j = g % 4u;
    let base = row + (g / 4u) * BLOCK_BYTES;
    // 20-byte blocks are word aligned: d and m share the first word.
    let dm = unpack2x16float(w_word(base));
    let q = base + 4u + 8u * (j & 1u);
    let sh = (j >> 1u) * 4u;
    return mat2x4<f32>(nib4(w_word(q), sh) * dm.x + dm.y, nib4(w_word(q + 4u), sh) * dm.x + dm.y);
}
