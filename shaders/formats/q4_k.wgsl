// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q4_K: 144-byte super-blocks of 256 weights: f16 d, f16 dmin, 12 bytes of packed
// 6-bit scales and mins (8 sub-blocks of 32), u8 qs[128]. Each 64 weights share 32
// bytes: the first 32 are low nibbles, the next 32 high nibbles;
// x = (d * scale) * q - dmin * min.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let e0 = 8u * (g % 32u);
    let j = e0 / 64u;
    let h = (e0 % 64u) / 32u;
    let sm = scale_min_k4(base + 4u, 2u * j + h);
    // Word-aligned blocks: d and dmin share the first word.
    let dd = unpack2x16float(w_word(base));
    let d1 = dd.x * sm.x;
    let m1 = dd.y * sm.y;
    let q = base + 16u + 32u * j + e0 % 32u;
    return mat2x4<f32>(d1 * nib4(w_word(q), 4u * h) - m1, d1 * nib4(w_word(q + 4u), 4u * h) - m1);
}
