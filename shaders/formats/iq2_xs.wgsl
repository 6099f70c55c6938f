// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ2_XS: 74-byte super-blocks of 256: f16 d, u16 qs[32] (per 8 weights a 9-bit index
// into IQ2XS_GRID and a 7-bit sign index, ksigns), scales[8] (per 32 weights two 4-bit
// scales s, one per 16); x = (d * (0.5 + s) * 0.25) * grid * sign.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let q = w_u32(base + 2u + 2u * k) & 0xffffu;
    let s = (w_u8(base + 66u + k / 4u) >> (4u * ((k % 4u) / 2u))) & 0xfu;
    let db = w_f16(base) * (0.5 + f32(s)) * 0.25;
    let v = signed8(grid8(q & 511u), ksigns(q >> 9u));
    return mat2x4<f32>(db * i8x4(v.x), db * i8x4(v.y));
}
