// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ2_XXS: 66-byte super-blocks of 256: f16 d, then per 32 weights two u32: four 8-bit
// indices into IQ2XXS_GRID (8 values each), and four 7-bit sign indices (ksigns) with
// the scale s in the top 4 bits; x = (d * (0.5 + s) * 0.25) * grid * sign.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let l = k % 4u;
    let q = base + 2u + 8u * (k / 4u);
    let aux = w_u32(q + 4u);
    let db = w_f16(base) * (0.5 + f32(aux >> 28u)) * 0.25;
    let v = signed8(grid8((w_u32(q) >> (8u * l)) & 0xffu), ksigns(aux >> (7u * l)));
    return mat2x4<f32>(db * i8x4(v.x), db * i8x4(v.y));
}
