// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q6_K: 210-byte super-blocks of 256 weights: u8 ql[128] (low 4 bits), u8 qh[64]
// (high 2 bits), i8 scales[16] (one per 16 weights), f16 d last. Each half of 128
// weights uses 64 ql bytes and 32 qh bytes: quarter k of the half takes nibble k/2
// of ql[32(k%2) + l] and bits 2k..2k+1 of qh[l]; x = (d * scale) * (q - 32).

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let e0 = 8u * (g % 32u);
    let n = e0 / 128u;
    let k = (e0 % 128u) / 32u;
    let l = e0 % 32u;
    let ql = base + 64u * n + 32u * (k % 2u) + l;
    let qh = base + 128u + 32u * n + l;
    let sc = f32((bitcast<i32>(w_u8(base + 192u + 8u * n + l / 16u + 2u * k) << 24u)) >> 24u);
    let ds = w_f16(base + 208u) * sc;
    let a = nib4(w_u32(ql), 4u * (k / 2u)) + 16.0 * u8x4((w_u32(qh) >> (2u * k)) & 0x03030303u);
    let b = nib4(w_u32(ql + 4u), 4u * (k / 2u)) + 16.0 * u8x4((w_u32(qh + 4u) >> (2u * k)) & 0x03030303u);
    return mat2x4<f32>(ds * (a - 32.0), ds * (b - 32.0));
}
