// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// Q2_K: 84-byte super-blocks of 256 weights: u8 scales[16] (low nibble scale, high
// nibble min, one per 16 weights), u8 qs[64], f16 d, f16 dmin. Each half of 128 weights
// uses 32 qs bytes; run j (32 weights) of the half takes bits 2j..2j+1 of them;
// x = (d * sc) * q - dmin * m. Blocks are word aligned: every field read is one load.

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let e0 = 8u * (g % 32u);
    let n = e0 / 128u;
    let j = (e0 % 128u) / 32u;
    let l = e0 % 32u;
    let sc = w_u8(base + e0 / 16u);
    let dd = unpack2x16float(w_word(base + 80u));
    let dl = dd.x * f32(sc & 0xfu);
    let ml = dd.y * f32(sc >> 4u);
    let q = base + 16u + 32u * n + l;
    let a = u8x4((w_word(q) >> (2u * j)) & 0x03030303u);
    let b = u8x4((w_word(q + 4u) >> (2u * j)) & 0x03030303u);
    return mat2x4<f32>(dl * a - ml, dl * b - ml);
}
