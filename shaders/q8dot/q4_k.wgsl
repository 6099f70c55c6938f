// Integer-dot reader (interface: common.wgsl).
// Q4_K: block b is sub-block b % 8 of super-block b / 8, x = (d * sc) * q - dmin * m;
// sub-blocks 2j and 2j + 1 are the low and high nibbles of the same 32 bytes.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + (b / 8u) * 144u;
    let j = b % 8u;
    let sh = vec4<u32>(4u * (j % 2u));
    let qs = (base + 16u + 32u * (j / 2u)) >> 2u;
    let r0 = vec4<u32>(W[qs], W[qs + 1u], W[qs + 2u], W[qs + 3u]);
    let r1 = vec4<u32>(W[qs + 4u], W[qs + 5u], W[qs + 6u], W[qs + 7u]);
    let dd = unpack2x16float(W[base >> 2u]);
    let sm = scale_min_k4(base + 4u, j);
    let a = dd.x * sm.x;
    return Q8W((r0 >> sh) & vec4<u32>(NIB), (r1 >> sh) & vec4<u32>(NIB), vec2<f32>(a, a), -dd.y * sm.y);
}
