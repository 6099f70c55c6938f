// Integer-dot reader (interface: common.wgsl).
// Q5_K: as Q4_K with a fifth bit per weight: 176-byte super-blocks (16-byte aligned:
// f16 d, f16 dmin, 12 scale bytes, qh[32], qs[128]); sub-block j takes bit j of
// byte l of qh.
fn q8w(row: u32, b: u32) -> Q8W {
    let v = blk(row, b / 8u, 176u) >> 4u;
    let j = b % 8u;
    let sh = vec4<u32>(4u * (j % 2u));
    let head = w4(v);
    let h0 = w4(v + 1u);
    let h1 = w4(v + 2u);
    let l0 = w4(v + 3u + 2u * (j / 2u));
    let l1 = w4(v + 4u + 2u * (j / 2u));
    let hb = vec4<u32>(j);
    let one = vec4<u32>(0x01010101u);
    let q0 = ((l0 >> sh) & vec4<u32>(NIB)) | (((h0 >> hb) & one) << vec4<u32>(4u));
    let q1 = ((l1 >> sh) & vec4<u32>(NIB)) | (((h1 >> hb) & one) << vec4<u32>(4u));
    let dd = unpack2x16float(head.x);
    let sm = scale_min_k4v(head, j);
    let a = dd.x * sm.x;
    return Q8W(q0, q1, vec2<f32>(a, a), -dd.y * sm.y, NO_HALF_MINS);
}
