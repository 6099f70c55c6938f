// Integer-dot reader (interface: common.wgsl).
// Q5_1: x = q * d + m, q = nibble | (bit j of qh) << 4, so the block is
// d * dx * sum(q * qx) + m * s. 24-byte blocks: f16 d and m, u32 qh (bit j is weight j's
// fifth bit), 16 bytes of nibbles (low: weights 0..15, high: 16..31). 5 loads.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 24u;
    let dm = unpack2x16float(w4_u32(base));
    let qh = w4_u32(base + 4u);
    let r = run4(base + 8u);
    let lo = (r & vec4<u32>(NIB)) | fifth_bits(qh);
    let hi = ((r >> vec4<u32>(4u)) & vec4<u32>(NIB)) | fifth_bits(qh >> 16u);
    return Q8W(lo, hi, vec2<f32>(dm.x, dm.x), dm.y, NO_HALF_MINS);
}
