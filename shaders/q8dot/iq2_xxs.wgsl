// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ2_XXS: 66-byte super-blocks (2-byte aligned) of 256: f16 d, then per 32 weights (block
// b, ib = b % 8) two u32: four 8-bit IQ2XXS_GRID indices, and four 7-bit sign indices with
// the scale s in the top 4 bits; x = (d * (0.5 + s) * 0.25) * grid * sign. The signed
// grid values (at most 43) are the int8 quants.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 66u);
    let r = run4(base + 2u + 8u * (b % 8u));
    let idx = r.x;
    let aux = r.y;
    let db = w4_f16(base) * (0.5 + f32(aux >> 28u)) * 0.25;
    let g0 = signed8(grid8(idx & 0xffu), ksigns(aux));
    let g1 = signed8(grid8((idx >> 8u) & 0xffu), ksigns(aux >> 7u));
    let g2 = signed8(grid8((idx >> 16u) & 0xffu), ksigns(aux >> 14u));
    let g3 = signed8(grid8(idx >> 24u), ksigns(aux >> 21u));
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), vec2<f32>(db, db), 0.0, NO_HALF_MINS);
}
