// Integer-dot reader (interface: common.wgsl).
// Q5_K: as Q4_K with a fifth bit per weight: sub-block j takes bit j of byte l of qh.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + (b / 8u) * 176u;
    let j = b % 8u;
    let sh = vec4<u32>(4u * (j % 2u));
    let qs = (base + 48u + 32u * (j / 2u)) >> 2u;
    let qh = (base + 16u) >> 2u;
    let l0 = vec4<u32>(W[qs], W[qs + 1u], W[qs + 2u], W[qs + 3u]);
    let l1 = vec4<u32>(W[qs + 4u], W[qs + 5u], W[qs + 6u], W[qs + 7u]);
    let h0 = vec4<u32>(W[qh], W[qh + 1u], W[qh + 2u], W[qh + 3u]);
    let h1 = vec4<u32>(W[qh + 4u], W[qh + 5u], W[qh + 6u], W[qh + 7u]);
    let hb = vec4<u32>(j);
    let one = vec4<u32>(0x01010101u);
    let q0 = ((l0 >> sh) & vec4<u32>(NIB)) | (((h0 >> hb) & one) << vec4<u32>(4u));
    let q1 = ((l1 >> sh) & vec4<u32>(NIB)) | (((h1 >> hb) & one) << vec4<u32>(4u));
    let dd = unpack2x16float(W[base >> 2u]);
    let sm = scale_min_k4(base + 4u, j);
    let a = dd.x * sm.x;
    return Q8W(q0, q1, vec2<f32>(a, a), -dd.y * sm.y);
}
