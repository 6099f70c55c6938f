// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ4_NL: Q4_0's 18-byte blocks of 32 (f16 d, u8 qs[16], nibble order as Q4_0), each
// nibble an index into KVALUES_IQ4NL (16 non-uniform levels, declared by the composer
// from quant.rs); x = d * kvalues[q].

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let j = g % 4u;
    let base = row + (g / 4u) * BLOCK_BYTES;
    let d = w_f16(base);
    let q = base + 2u + 8u * (j & 1u);
    let sh = (j >> 1u) * 4u;
    return mat2x4<f32>(d * iq4_levels(nib4(w_u32(q), sh)), d * iq4_levels(nib4(w_u32(q + 4u), sh)));
}
