// Integer-dot reader (interface: common.wgsl).
// Q2_K: 84-byte super-blocks (word aligned) of 256: u8 scales[16] (low nibble scale,
// high nibble min, per 16 weights), qs[64], f16 d, f16 dmin; x = (d * sc) * q - dmin * m.
// Block b is run j = b % 4 of half n = (b % 8) / 4: bits 2j of the half's 32 qs bytes,
// scales 2k and 2k + 1 (k = b % 8). The mins differ between the two 16-weight halves,
// so they go through m2 (Q8W_HALF_MINS): dmin * m times the half's activation sum.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 84u);
    let k = b % 8u;
    let n = k / 4u;
    let j = k % 4u;
    let q = run8(base + 16u + 32u * n);
    let sh = vec4<u32>(2u * j);
    let three = vec4<u32>(0x03030303u);
    let sc = w4_u16(base + 2u * k);
    let dd = unpack2x16float(w4_u16(base + 80u) | (w4_u16(base + 82u) << 16u));
    let a = vec2<f32>(dd.x * f32(sc & 0xfu), dd.x * f32((sc >> 8u) & 0xfu));
    let m2 = vec2<f32>(-dd.y * f32((sc >> 4u) & 0xfu), -dd.y * f32(sc >> 12u));
    return Q8W((q.lo >> sh) & three, (q.hi >> sh) & three, a, 0.0, m2);
}
