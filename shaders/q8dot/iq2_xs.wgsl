// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ2_XS: 74-byte super-blocks (2-byte aligned) of 256: f16 d, u16 qs[32] (per 8 weights
// a 9-bit IQ2XS_GRID index and a 7-bit sign index), scales[8] (per 32 weights two 4-bit
// scales s, one per 16); x = (d * (0.5 + s) * 0.25) * grid * sign. Block b (ib = b % 8)
// is qs[4ib..4ib+3]: the signed grid values are its int8 quants, a.x and a.y its scales.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 74u);
    let ib = b % 8u;
    let r = run4(base + 2u + 8u * ib);
    let g0 = signed8(grid8(r.x & 511u), ksigns((r.x >> 9u) & 0x7fu));
    let g1 = signed8(grid8((r.x >> 16u) & 511u), ksigns(r.x >> 25u));
    let g2 = signed8(grid8(r.y & 511u), ksigns((r.y >> 9u) & 0x7fu));
    let g3 = signed8(grid8((r.y >> 16u) & 511u), ksigns(r.y >> 25u));
    let s = w4_u8(base + 66u + ib);
    let d = w4_f16(base);
    let a = vec2<f32>(d * (0.5 + f32(s & 0xfu)) * 0.25, d * (0.5 + f32(s >> 4u)) * 0.25);
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), a, 0.0, NO_HALF_MINS);
}
