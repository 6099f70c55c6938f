// Integer-dot reader (interface: common.wgsl).
// Q4_K: block b is sub-block j = b % 8 of 144-byte super-block b / 8 (16-byte aligned:
// f16 d, f16 dmin, 12 scale bytes, then 128 bytes of nibbles), x = (d * sc) * q -
// dmin * m; sub-blocks 2i and 2i + 1 are the low and high nibbles of the same 32 bytes.
fn q8w(row: u32, b: u32) -> Q8W {
    let v = blk(row, b / 8u, 144u) >> 4u;
    let j = b % 8u;
    let sh = vec4<u32>(4u * (j % 2u));
    let head = w4(v);
    let r0 = w4(v + 1u + 2u * (j / 2u));
    let r1 = w4(v + 2u + 2u * (j / 2u));
    let nib = vec4<u32>(NIB);
    return q4k_w((r0 >> sh) & nib, (r1 >> sh) & nib, unpack2x16float(head.x), scale_min_k4v(head, j));
}

// Blocks b..b+3 (b % 4 == 0): sub-blocks j0..j0+3 of one super-block, two pairs of
// nibbles: 5 loads for 4 blocks where q8w takes 3 each.

fn q8w4(row: u32, b: u32) -> Q8W4 {
    let v = blk(row, b / 8u, 144u) >> 4u;
    let j0 = b % 8u;
    let head = w4(v);
    let r0 = w4(v + 1u + j0);
    let r1 = w4(v + 2u + j0);
    let r2 = w4(v + 3u + j0);
    let r3 = w4(v + 4u + j0);
    let dd = unpack2x16float(head.x);
    let nib = vec4<u32>(NIB);
    let four = vec4<u32>(4u);
    return Q8W4(
        q4k_w(r0 & nib, r1 & nib, dd, scale_min_k4v(head, j0)),
        q4k_w((r0 >> four) & nib, (r1 >> four) & nib, dd, scale_min_k4v(head, j0 + 1u)),
        q4k_w(r2 & nib, r3 & nib, dd, scale_min_k4v(head, j0 + 2u)),
        q4k_w((r2 >> four) & nib, (r3 >> four) & nib, dd, scale_min_k4v(head, j0 + 3u)));
}

fn q4k_w(q0: vec4<u32>, q1: vec4<u32>, dd: vec2<f32>, sm: vec2<f32>) -> Q8W {
    let a = dd.x * sm.x;
    return Q8W(q0, q1, vec2<f32>(a, a), -dd.y * sm.y, NO_HALF_MINS);
}
