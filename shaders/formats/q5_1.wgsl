// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q5_1: 24-byte blocks of 32 weights: f16 d, f16 m, u32 qh, u8 qs[16] (bits as Q5_0);
// x = q * d + m.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let j = g % 4u;
    let base = row + (g / 4u) * BLOCK_BYTES;
    // 24-byte blocks are word aligned: d and m share the first word.
    let dm = unpack2x16float(w_word(base));
    let qh = w_word(base + 4u);
    let q = base + 8u + 8u * (j & 1u);
    let sh = (j >> 1u) * 4u;
    let a = nib4(w_word(q), sh) + 16.0 * bits4(qh, 8u * j);
    let b = nib4(w_word(q + 4u), sh) + 16.0 * bits4(qh, 8u * j + 4u);
    return mat2x4<f32>(a * dm.x + dm.y, b * dm.x + dm.y);
}
