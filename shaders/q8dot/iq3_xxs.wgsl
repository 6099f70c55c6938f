// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ3_XXS: 98-byte super-blocks (2-byte aligned) of 256: f16 d, qs[64] (8-bit IQ3XXS_GRID
// indices, 4 values each), then per 32 weights a u32 of four 7-bit sign indices and the
// scale s in its top 4 bits; x = (d * (0.5 + s) * 0.5) * grid * sign. Block b (ib = b % 8):
// 8 index bytes and its u32; the signed grid values (at most 62) are the int8 quants.
fn iq3xxs8(pair: u32, signs: u32) -> vec2<u32> {
    return signed8(vec2<u32>(grid4(pair & 0xffu), grid4((pair >> 8u) & 0xffu)), signs);
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 98u);
    let ib = b % 8u;
    let r = run4(base + 2u + 8u * ib);
    let aux = w4_u32(base + 66u + 4u * ib);
    let db = w4_f16(base) * (0.5 + f32(aux >> 28u)) * 0.5;
    let g0 = iq3xxs8(r.x, ksigns(aux));
    let g1 = iq3xxs8(r.x >> 16u, ksigns(aux >> 7u));
    let g2 = iq3xxs8(r.y, ksigns(aux >> 14u));
    let g3 = iq3xxs8(r.y >> 16u, ksigns(aux >> 21u));
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), vec2<f32>(db, db), 0.0, NO_HALF_MINS);
}
