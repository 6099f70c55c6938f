// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ1_S: 50-byte super-blocks (2-byte aligned) of 256: f16 d, qs[32] (low 8 bits of the
// 11-bit IQ1S_GRID indices, values -1, 0, 1), u16 qh[8]: per 32 weights the four indices'
// top 3 bits, the scale s (bits 12..14) and the sign of delta (bit 15);
// x = (d * (2s + 1)) * (grid + delta), delta = +-1/8. The int8 quants are
// 8 * (grid + delta) (iq1_bytes) and the scale dl / 8, both exact.
fn iq1s8(index: u32, negative: bool) -> vec2<u32> {
    let e = grid8(index);
    return vec2<u32>(iq1_bytes(e.x, negative), iq1_bytes(e.y, negative));
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 50u);
    let ib = b % 8u;
    let idx = w4_u32(base + 2u + 4u * ib);
    let qh = w4_u16(base + 34u + 2u * ib);
    let neg = (qh & 0x8000u) != 0u;
    let g0 = iq1s8((idx & 0xffu) | ((qh << 8u) & 0x700u), neg);
    let g1 = iq1s8(((idx >> 8u) & 0xffu) | ((qh << 5u) & 0x700u), neg);
    let g2 = iq1s8(((idx >> 16u) & 0xffu) | ((qh << 2u) & 0x700u), neg);
    let g3 = iq1s8((idx >> 24u) | ((qh >> 1u) & 0x700u), neg);
    let dl = w4_f16(base) * f32(2u * ((qh >> 12u) & 7u) + 1u) * 0.125;
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), vec2<f32>(dl, dl), 0.0, NO_HALF_MINS);
}
