// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ3_XXS: 98-byte super-blocks of 256: f16 d, qs[64] (8-bit indices into IQ3XXS_GRID,
// 4 values each, two per 8 weights), then per 32 weights a u32 of four 7-bit sign
// indices (ksigns) and the scale s in its top 4 bits; x = (d * (0.5 + s) * 0.5) * grid * sign.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let aux = w_u32(base + 66u + 4u * (k / 4u));
    let db = w_f16(base) * (0.5 + f32(aux >> 28u)) * 0.5;
    let pair = w_u32(base + 2u + 2u * k);
    let e = vec2<u32>(grid4(pair & 0xffu), grid4((pair >> 8u) & 0xffu));
    let v = signed8(e, ksigns(aux >> (7u * (k % 4u))));
    return mat2x4<f32>(db * i8x4(v.x), db * i8x4(v.y));
}
