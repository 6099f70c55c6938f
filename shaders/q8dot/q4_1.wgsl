// Integer-dot reader (interface: common.wgsl).
// Q4_1: x = q * d + m, so the block is d * dx * sum(q * qx) + m * s. 20-byte blocks:
// f16 d and m, then 16 bytes of nibbles. A block starts at a multiple of 4, so it
// always lies within the 2 vec4s from the one holding its first byte: 2 loads.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b, 20u);
    let v = base >> 4u;
    let a = w4(v);
    let n = w4(v + 1u);
    let dm = unpack2x16float(a[(base >> 2u) & 3u]);
    let r = words_at(a, n, (base & 15u) + 4u);
    return Q8W(r & vec4<u32>(NIB), (r >> vec4<u32>(4u)) & vec4<u32>(NIB), vec2<f32>(dm.x, dm.x), dm.y, NO_HALF_MINS);
}
