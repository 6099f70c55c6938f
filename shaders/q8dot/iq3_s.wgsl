// Integer-dot reader (interface: common.wgsl; grid helpers: iq_grids.wgsl).
// IQ3_S: 110-byte super-blocks (2-byte aligned) of 256: f16 d, qs[64] (low 8 bits of the
// 9-bit IQ3S_GRID indices, 4 values each), qh[8] (per 32 weights the 9th bits, bit j for
// qs byte j), signs[32] (8 bits per 8 weights), scales[4] (a 4-bit s per 32 weights);
// x = (d * (1 + 2s)) * grid * sign. Block b (ib = b % 8): 8 index bytes, qh[ib], 4 sign
// bytes, its scale nibble.
fn iq3s8(pair: u32, qh: u32, signs: u32) -> vec2<u32> {
    let q1 = (pair & 0xffu) | ((qh << 8u) & 256u);
    let q2 = ((pair >> 8u) & 0xffu) | ((qh << 7u) & 256u);
    return signed8(vec2<u32>(grid4(q1), grid4(q2)), signs);
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 110u);
    let ib = b % 8u;
    let r = run4(base + 2u + 8u * ib);
    let qh = w4_u8(base + 66u + ib);
    let signs = w4_u32(base + 74u + 4u * ib);
    let g0 = iq3s8(r.x, qh, signs);
    let g1 = iq3s8(r.x >> 16u, qh >> 2u, signs >> 8u);
    let g2 = iq3s8(r.y, qh >> 4u, signs >> 16u);
    let g3 = iq3s8(r.y >> 16u, qh >> 6u, signs >> 24u);
    let s = (w4_u8(base + 106u + ib / 2u) >> (4u * (ib % 2u))) & 0xfu;
    let db = w4_f16(base) * f32(1u + 2u * s);
    return Q8W(vec4<u32>(g0, g1), vec4<u32>(g2, g3), vec2<f32>(db, db), 0.0, NO_HALF_MINS);
}
