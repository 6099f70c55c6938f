// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q3_K: 110-byte super-blocks of 256 weights: u8 hmask[32] (high bits), u8 qs[64] (low
// 2 bits, laid out as Q2_K's), 12 bytes of 16 packed 6-bit scales, f16 d last. Run j
// of half n takes bit 4n + j of hmask[l]; x = (d * (sc - 32)) * (q - (high ? 0 : 4)).

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let e0 = 8u * (g % 32u);
    let n = e0 / 128u;
    let j = (e0 % 128u) / 32u;
    let l = e0 % 32u;
    let is = e0 / 16u;
    // The scale: low 4 bits from byte is % 8 (high nibble for is >= 8), high 2 bits from
    // byte 8 + is % 4 (bits 2 * (is / 4)), as ggml's kmask shuffle unpacks them.
    let lo = (w_u8(base + 96u + is % 8u) >> (4u * (is / 8u))) & 0xfu;
    let hi = (w_u8(base + 104u + is % 4u) >> (2u * (is / 4u))) & 3u;
    let dl = w_f16(base + 108u) * f32(i32(lo | (hi << 4u)) - 32);
    let q = base + 32u + 32u * n + l;
    let h = base + l;
    let sh = 4u * n + j;
    let a = u8x4((w_u32(q) >> (2u * j)) & 0x03030303u) - 4.0 + 4.0 * u8x4((w_u32(h) >> sh) & 0x01010101u);
    let b = u8x4((w_u32(q + 4u) >> (2u * j)) & 0x03030303u) - 4.0 + 4.0 * u8x4((w_u32(h + 4u) >> sh) & 0x01010101u);
    return mat2x4<f32>(dl * a, dl * b);
}
