// Integer-dot reader (interface: common.wgsl).
// Q3_K: 110-byte super-blocks (2-byte aligned) of 256: hmask[32], qs[64], 12 bytes of
// 6-bit scales, f16 d; x = d * (sc - 32) * (q - 4 * !h), one scale per 16 weights.
// Block b is run j = b % 4 of half n = (b % 8) / 4: 2 bits from the half's 32-byte qs
// run (bits 2j), the high bit from hmask (bit 4n + j). q - 4 * !h is the 3-bit value
// (q | h << 2) - 4, made a signed byte by flipping bit 2 and sign-extending from it.
fn q3_signed(v: vec4<u32>) -> vec4<u32> {
    let u = v ^ vec4<u32>(0x04040404u);
    // Bytes of s are 0 or 4, and 4 * 62 = 0xf8 fits a byte: bits 3..7 set, no carry.
    let s = u & vec4<u32>(0x04040404u);
    return u | (s * vec4<u32>(62u));
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 110u);
    let k = b % 8u;
    let n = k / 4u;
    let j = k % 4u;
    let q = run8(base + 32u + 32u * n);
    let h = run8(base);
    let sq = vec4<u32>(2u * j);
    let sh = vec4<u32>(4u * n + j);
    let three = vec4<u32>(0x03030303u);
    let one = vec4<u32>(0x01010101u);
    let q0 = q3_signed(((q.lo >> sq) & three) | (((h.lo >> sh) & one) << vec4<u32>(2u)));
    let q1 = q3_signed(((q.hi >> sq) & three) | (((h.hi >> sh) & one) << vec4<u32>(2u)));
    // Scales 2k and 2k + 1: their low nibbles are in neighbouring bytes (96 + is % 8, the
    // high nibbles for is >= 8), their top 2 bits in neighbouring bytes 104 + is % 4.
    let is = 2u * k;
    let lo = w4_u16(base + 96u + is % 8u);
    let hi = w4_u16(base + 104u + is % 4u);
    let nib = 4u * (is / 8u);
    let crumb = 2u * (is / 4u);
    let s0 = ((lo >> nib) & 0xfu) | (((hi >> crumb) & 3u) << 4u);
    let s1 = ((lo >> (8u + nib)) & 0xfu) | (((hi >> (8u + crumb)) & 3u) << 4u);
    let d = w4_f16(base + 108u);
    return Q8W(q0, q1, vec2<f32>(d * f32(i32(s0) - 32), d * f32(i32(s1) - 32)), 0.0, NO_HALF_MINS);
}
