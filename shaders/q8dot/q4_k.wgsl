// Integer-dot reader (interface: common.wgsl).
// Q4_K: block b is sub-block j = b % 8 of 144-byte super-block b / 8 (16-byte aligned:
// f16 d, f16 dmin, 12 scale bytes, then 128 bytes of nibbles), x = (d * sc) * q -
// dmin * m; sub-blocks 2i and 2i + 1 are the low and high nibbles of the same 32 bytes.
fn q8w(row: u32, b: u32) -> Q8W {
    let v = (row + (b / 8u) * 144u) >> 4u;
    let j = b % 8u;
    let sh = vec4<u32>(4u * (j % 2u));
    let head = W4[v];
    let r0 = W4[v + 1u + 2u * (j / 2u)];
    let r1 = W4[v + 2u + 2u * (j / 2u)];
    let dd = unpack2x16float(head.x);
    let sm = scale_min_k4v(head, j);
    let a = dd.x * sm.x;
    return Q8W((r0 >> sh) & vec4<u32>(NIB), (r1 >> sh) & vec4<u32>(NIB), vec2<f32>(a, a), -dd.y * sm.y);
}
