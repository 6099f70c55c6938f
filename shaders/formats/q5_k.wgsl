// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q5_K: 176-byte super-blocks of 256 weights: f16 d, f16 dmin, 12 bytes of scales
// and mins (as Q4_K), u8 qh[32], u8 qs[128]. Low 4 bits as Q4_K; the fifth bit of
// weight 64j + 32h + l is bit 2j + h of qh[l]; x = (d * scale) * q - dmin * min.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let e0 = 8u * (g % 32u);
    let j = e0 / 64u;
    let h = (e0 % 64u) / 32u;
    let l = e0 % 32u;
    let sm = scale_min_k4(base + 4u, 2u * j + h);
    // Word-aligned blocks: d and dmin share the first word.
    let dd = unpack2x16float(w_word(base));
    let d1 = dd.x * sm.x;
    let m1 = dd.y * sm.y;
    let q = base + 48u + 32u * j + l;
    let qh = base + 16u + l;
    let hb = 2u * j + h;
    let a = nib4(w_word(q), 4u * h) + 16.0 * u8x4((w_word(qh) >> hb) & 0x01010101u);
    let b = nib4(w_word(q + 4u), 4u * h) + 16.0 * u8x4((w_word(qh + 4u) >> hb) & 0x01010101u);
    return mat2x4<f32>(d1 * a - m1, d1 * b - m1);
}
