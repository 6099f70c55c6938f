// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ1_S: 50-byte super-blocks of 256: f16 d, qs[32] (low 8 bits of the 11-bit indices
// into IQ1S_GRID, values -1, 0, 1, one per 8 weights), u16 qh[8]: per 32 weights the
// four indices' top 3 bits (bits 3l..3l+2), the scale s (bits 12..14) and the sign of
// delta (bit 15); x = (d * (2s + 1)) * (grid + delta), delta = +-0.125.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let l = k % 4u;
    let qh = w_u32(base + 34u + 2u * (k / 4u)) & 0xffffu;
    let index = w_u8(base + 2u + k) | (((qh >> (3u * l)) & 7u) << 8u);
    let dl = w_f16(base) * f32(2u * ((qh >> 12u) & 7u) + 1u);
    let delta = select(IQ1S_DELTA, -IQ1S_DELTA, (qh & 0x8000u) != 0u);
    let e = grid8(index);
    return mat2x4<f32>(dl * (i8x4(e.x) + delta), dl * (i8x4(e.y) + delta));
}
