// Integer-dot reader (interface: common.wgsl).
// Q8_0: x = q * d with signed q, so the block is d * dx * sum(q * qx). 34-byte blocks:
// f16 d, then 32 signed bytes at an even offset.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 34u;
    let r = run8(base + 2u);
    let d = w4_f16(base);
    return Q8W(r.lo, r.hi, vec2<f32>(d, d), 0.0);
}
