// Integer-dot reader (interface: common.wgsl).
// Q4_1: x = q * d + m, so the block is d * dx * sum(q * qx) + m * s. 20-byte blocks:
// f16 d and m, then 16 bytes of nibbles.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 20u;
    let r = run4(base + 4u);
    let dm = unpack2x16float(W4[base >> 4u][(base >> 2u) & 3u]);
    return Q8W(r & vec4<u32>(NIB), (r >> vec4<u32>(4u)) & vec4<u32>(NIB), vec2<f32>(dm.x, dm.x), dm.y);
}
