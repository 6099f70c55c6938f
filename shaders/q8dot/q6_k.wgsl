// Integer-dot reader (interface: common.wgsl).
// Q6_K: 210-byte super-blocks (not word aligned) of 256: ql[128], qh[64], int8
// scales[16], f16 d; x = d * scale * (q - 32), one scale per 16 weights. Block b is
// quarter k = b % 4 of half n = (b % 8) / 4: low 4 bits from ql (nibble k / 2), high
// 2 bits from qh (bits 2k). q - 32 is made a signed byte by flipping bit 5 and
// sign-extending from it, so dot4I8Packed takes it directly.
fn q6_signed(q: vec4<u32>) -> vec4<u32> {
    let u = q ^ vec4<u32>(0x20202020u);
    let s = u & vec4<u32>(0x20202020u);
    return u | (s << vec4<u32>(1u)) | (s << vec4<u32>(2u));
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 210u);
    let n = (b % 8u) / 4u;
    let k = b % 4u;
    // ql and qh are 32-byte runs at even offsets.
    let ql = run8(base + 64u * n + 32u * (k % 2u));
    let qh = run8(base + 128u + 32u * n);
    return q6k_w(ql, qh, k, w4_u16(base + 192u + 8u * n + 2u * k), w4_f16(base + 208u));
}

// Blocks b..b+3 (b % 4 == 0): the four quarters of one half, which share the qh run and
// pairwise the ql runs (quarters 0 and 2 are the two nibbles of one): 10 loads for 4
// blocks where q8w takes 8 each. The half's 64 ql bytes are one run (5 loads), qh 3,
// and its 8 scale bytes and the super-block's d lie within 2 vec4s (bytes 192..209 of
// the super-block, 2-byte aligned).

fn q8w4(row: u32, b: u32) -> Q8W4 {
    let base = blk(row, b / 8u, 210u);
    let n = (b % 8u) / 4u;
    let l = run16(base + 64u * n);
    let l02 = Run8(l[0], l[1]);
    let l13 = Run8(l[2], l[3]);
    let qh = run8(base + 128u + 32u * n);
    let tail = (base + 192u) >> 4u;
    let ta = w4(tail);
    let tb = w4(tail + 1u);
    let rel = base & 15u; // the same offset as base + 192 (12 vec4s on)
    let sc0 = u32_at(ta, tb, rel + 8u * n); // scales of quarters 0, 1
    let sc1 = u32_at(ta, tb, rel + 8u * n + 4u); // 2, 3
    let d = unpack2x16float(u32_at(ta, tb, rel + 16u) & 0xffffu).x;
    return Q8W4(
        q6k_w(l02, qh, 0u, sc0, d),
        q6k_w(l13, qh, 1u, sc0 >> 16u, d),
        q6k_w(l02, qh, 2u, sc1, d),
        q6k_w(l13, qh, 3u, sc1 >> 16u, d));
}

// Quarter k from its ql run l, the half's qh run h and its two scale bytes (low 16
// bits of `scales`).
fn q6k_w(l: Run8, h: Run8, k: u32, scales: u32, d: f32) -> Q8W {
    let shl = vec4<u32>(4u * (k / 2u));
    let shh = vec4<u32>(2u * k);
    let three = vec4<u32>(0x03030303u);
    let q0 = ((l.lo >> shl) & vec4<u32>(NIB)) | (((h.lo >> shh) & three) << vec4<u32>(4u));
    let q1 = ((l.hi >> shl) & vec4<u32>(NIB)) | (((h.hi >> shh) & three) << vec4<u32>(4u));
    let s0 = f32((bitcast<i32>(scales << 24u)) >> 24u);
    let s1 = f32((bitcast<i32>(scales << 16u)) >> 24u);
    return Q8W(q6_signed(q0), q6_signed(q1), vec2<f32>(d * s0, d * s1), 0.0, NO_HALF_MINS);
}
