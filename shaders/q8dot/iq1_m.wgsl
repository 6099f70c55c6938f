// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ1_M: 56-byte super-blocks of 256: qs[32] (low 8 bits of the 11-bit IQ1S_GRID
// indices), qh[16] (a nibble per 8 weights: the index's top 3 bits, then the sign of
// delta), four u16 scales (3-bit s per 16 weights; the f16 d in the four top nibbles);
// x = (d * (2s + 1)) * (grid + delta). The int8 quants are 8 * (grid + delta)
// (iq1_bytes), the two scales (one per 16 weights) dl / 8.
fn iq1m8(q: u32, nibble: u32) -> vec2<u32> {
    let e = grid8(q | ((nibble & 7u) << 8u));
    let negative = (nibble & 8u) != 0u;
    return vec2<u32>(iq1_bytes(e.x, negative), iq1_bytes(e.y, negative));
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 56u);
    let ib = b % 8u;
    let idx = w4_u32(base + 4u * ib);
    let qh = w4_u16(base + 32u + 2u * ib);
    let g0 = iq1m8(idx & 0xffu, qh);
    let g1 = iq1m8((idx >> 8u) & 0xffu, qh >> 4u);
    let g2 = iq1m8((idx >> 16u) & 0xffu, qh >> 8u);
    let g3 = iq1m8(idx >> 24u, qh >> 12u);
    let a = w4_u32(base + 48u);
    let c = w4_u32(base + 52u);
    let bits = ((a >> 12u) & 0xfu) | ((a >> 24u) & 0xf0u) | ((c >> 4u) & 0xf00u) | ((c >> 16u) & 0xf000u);
    let d = unpack2x16float(bits).x * 0.125;
    let sc = select(a, c, ib >= 4u) >> (16u * ((ib / 2u) % 2u));
    let sh = 6u * (ib % 2u);
    let s = vec2<u32>((sc >> sh) & 7u, (sc >> (sh + 3u)) & 7u);
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), d * vec2<f32>(2u * s + 1u), 0.0, NO_HALF_MINS);
}
