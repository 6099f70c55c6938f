// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ2_S: 82-byte super-blocks of 256: f16 d, qs[32] (low 8 bits of the 10-bit indices
// into IQ2S_GRID, one per 8 weights), signs[32] (8 sign bits per 8 weights), qh[8] (per
// 32 weights the four indices' top 2 bits), scales[8] (two 4-bit scales s per 32);
// x = (d * (0.5 + s) * 0.25) * grid * sign.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let ib = k / 4u;
    let l = k % 4u;
    let index = w_u8(base + 2u + k) | ((w_u8(base + 66u + ib) << (8u - 2u * l)) & 0x300u);
    let s = (w_u8(base + 74u + ib) >> (4u * (l / 2u))) & 0xfu;
    let db = w_f16(base) * (0.5 + f32(s)) * 0.25;
    let v = signed8(grid8(index), w_u8(base + 34u + k));
    return mat2x4<f32>(db * i8x4(v.x), db * i8x4(v.y));
}
