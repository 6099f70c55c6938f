// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ3_S: 110-byte super-blocks of 256: f16 d, qs[64] (low 8 bits of the 9-bit indices
// into IQ3S_GRID, 4 values each, two per 8 weights), qh[8] (per 32 weights the 9th bits,
// bit j for qs byte j), signs[32] (8 sign bits per 8 weights), scales[4] (a 4-bit s per
// 32 weights); x = (d * (1 + 2s)) * grid * sign.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let ib = k / 4u;
    let l = k % 4u;
    let qh = w_u8(base + 66u + ib);
    let pair = w_u32(base + 2u + 2u * k);
    let q1 = (pair & 0xffu) | ((qh << (8u - 2u * l)) & 256u);
    let q2 = ((pair >> 8u) & 0xffu) | ((qh << (7u - 2u * l)) & 256u);
    let s = (w_u8(base + 106u + ib / 2u) >> (4u * (ib % 2u))) & 0xfu;
    let db = w_f16(base) * f32(1u + 2u * s);
    let v = signed8(vec2<u32>(grid4(q1), grid4(q2)), w_u8(base + 74u + k));
    return mat2x4<f32>(db * i8x4(v.x), db * i8x4(v.y));
}
