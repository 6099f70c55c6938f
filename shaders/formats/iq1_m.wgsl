// Weight format interface (every file in shaders/formats/ defines one function; the
// composer declares BLOCK_ELEMS and BLOCK_BYTES, the GGUF block geometry, from WeightFormat):
//   dq8(row, g): weights 8g..8g+7 of the row whose bytes start at byte `row`, as two
//   vec4 (columns of the matrix). Math and order follow llama.cpp dequantize_row_*.
// IQ1_M: 56-byte super-blocks of 256: qs[32] (low 8 bits of the 11-bit indices into
// IQ1S_GRID, one per 8 weights), qh[16] (a nibble per 8 weights: the index's top 3 bits
// and the sign of delta), scales as four u16 (3-bit scales s, one per 16 weights, 12
// bits a u16; the f16 d is the four top nibbles); x = (d * (2s + 1)) * (grid + delta).

// The f16 d of an IQ1_M block whose scales start at byte `sc`.
fn iq1m_d(sc: u32) -> f32 {
    let a = w_u32(sc);
    let b = w_u32(sc + 4u);
    let bits = ((a >> 12u) & 0xfu) | ((a >> 24u) & 0xf0u) | ((b >> 4u) & 0xf00u) | ((b >> 16u) & 0xf000u);
    return unpack2x16float(bits).x;
}

fn dq8(row: u32, g: u32) -> mat2x4<f32> {
    let base = row + (g / 32u) * BLOCK_BYTES;
    let k = g % 32u;
    let ib = k / 4u;
    let l = k % 4u;
    let nibble = (w_u8(base + 32u + 2u * ib + l / 2u) >> (4u * (l % 2u))) & 0xfu;
    let index = w_u8(base + k) | ((nibble & 7u) << 8u);
    let sc = w_u32(base + 48u + 2u * (ib / 2u)) & 0xffffu;
    let s = (sc >> (6u * (ib % 2u) + 3u * (l / 2u))) & 7u;
    let dl = iq1m_d(base + 48u) * f32(2u * s + 1u);
    let delta = select(IQ1S_DELTA, -IQ1S_DELTA, (nibble & 8u) != 0u);
    let e = grid8(index);
    return mat2x4<f32>(dl * (i8x4(e.x) + delta), dl * (i8x4(e.y) + delta));
}
