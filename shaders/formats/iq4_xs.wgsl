// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ4_XS: 136-byte super-blocks of 256 (word aligned): f16 d, u16 scales_h, u8
// scales_l[4], u8 qs[128]. Sub-block ib (32 weights) has the 6-bit scale
// (nibble ib % 2 of scales_l[ib / 2]) | (bits 2ib of scales_h) << 4 and 16 qs bytes,
// low nibbles first; each nibble indexes KVALUES_IQ4NL; x = (d * (ls - 32)) * kvalues[q].

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let e0 = 8u * (g % 32u);
    let ib = e0 / 32u;
    let l = e0 % 32u;
    let head = w_word(base);
    let lo = (w_u8(base + 4u + ib / 2u) >> (4u * (ib % 2u))) & 0xfu;
    let hi = (head >> (16u + 2u * ib)) & 3u;
    let dl = unpack2x16float(head).x * f32(i32(lo | (hi << 4u)) - 32);
    let q = base + 8u + 16u * ib + l % 16u;
    let sh = 4u * (l / 16u);
    return mat2x4<f32>(dl * iq4_levels(nib4(w_word(q), sh)), dl * iq4_levels(nib4(w_word(q + 4u), sh)));
}
