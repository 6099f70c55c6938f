// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ2_S: 82-byte super-blocks (2-byte aligned) of 256: f16 d, qs[32] (low 8 bits of the
// 10-bit IQ2S_GRID indices, one per 8 weights), signs[32] (8 bits per 8 weights), qh[8]
// (per 32 weights the four indices' top 2 bits), scales[8] (two 4-bit scales s per 32);
// x = (d * (0.5 + s) * 0.25) * grid * sign. Block b (ib = b % 8): 4 index bytes, 4 sign
// bytes, qh[ib] and scales[ib].
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 82u);
    let ib = b % 8u;
    let idx = w4_u32(base + 2u + 4u * ib);
    let signs = w4_u32(base + 34u + 4u * ib);
    let qh = w4_u8(base + 66u + ib);
    let g0 = signed8(grid8((idx & 0xffu) | ((qh << 8u) & 0x300u)), signs);
    let g1 = signed8(grid8(((idx >> 8u) & 0xffu) | ((qh << 6u) & 0x300u)), signs >> 8u);
    let g2 = signed8(grid8(((idx >> 16u) & 0xffu) | ((qh << 4u) & 0x300u)), signs >> 16u);
    let g3 = signed8(grid8((idx >> 24u) | ((qh << 2u) & 0x300u)), signs >> 24u);
    let s = w4_u8(base + 74u + ib);
    let d = w4_f16(base);
    let a = vec2<f32>(d * (0.5 + f32(s & 0xfu)) * 0.25, d * (0.5 + f32(s >> 4u)) * 0.25);
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), a, 0.0, NO_HALF_MINS);
}
