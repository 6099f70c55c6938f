// Integer-dot reader (interface: common.wgsl).
// Q5_0: x = (q - 16) * d, q = nibble | (bit j of qh) << 4, so the block is
// d * dx * sum(q * qx) - 16 * d * s. 22-byte blocks (2-byte aligned): f16 d, u32 qh (bit j
// is weight j's fifth bit), 16 bytes of nibbles (low: weights 0..15, high: 16..31).
// 5 loads: d, qh (two halves) and the 16 nibble bytes.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 22u;
    let d = w4_f16(base);
    let qh = w4_u32(base + 2u);
    let r = run4(base + 6u);
    let lo = (r & vec4<u32>(NIB)) | fifth_bits(qh);
    let hi = ((r >> vec4<u32>(4u)) & vec4<u32>(NIB)) | fifth_bits(qh >> 16u);
    return Q8W(lo, hi, vec2<f32>(d, d), -16.0 * d, NO_HALF_MINS);
}
