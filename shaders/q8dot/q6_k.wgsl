// Integer-dot interface: see q4_0.wgsl.
// Q6_K: 210-byte super-blocks (not word aligned) of 256: ql[128], qh[64], int8
// scales[16], f16 d; x = d * scale * (q - 32), one scale per 16 weights. Block b is
// quarter k = b % 4 of half n = (b % 8) / 4: low 4 bits from ql (nibble k / 2), high
// 2 bits from qh (bits 2k). q - 32 is made a signed byte by flipping bit 5 and
// sign-extending from it, so dot4I8Packed takes it directly.
fn q6_signed(q: u32) -> u32 {
    let u = q ^ 0x20202020u;
    let s = u & 0x20202020u;
    return u | (s << 1u) | (s << 2u);
}

fn qdot32(row: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    let base = row + (b / 8u) * 210u;
    let n = (b % 8u) / 4u;
    let k = b % 4u;
    let ql = base + 64u * n + 32u * (k % 2u);
    let qh = base + 128u + 32u * n;
    let shl = 4u * (k / 2u);
    let shh = 2u * k;
    // ql and qh are runs at even offsets (w_run_word): one load per word.
    let al = ql >> 2u;
    let ah = qh >> 2u;
    var l0 = W[al];
    var h0 = W[ah];
    var q0 = 0; // weights 0..15 (first scale)
    var q1 = 0; // weights 16..31
    for (var m = 0u; m < 8u; m = m + 1u) {
        let l1 = W[al + 1u + m];
        let h1 = W[ah + 1u + m];
        let lo = (w_run_word(ql, l0, l1) >> shl) & 0x0f0f0f0fu;
        let hi = ((w_run_word(qh, h0, h1) >> shh) & 0x03030303u) << 4u;
        let p = dot4I8Packed(q6_signed(lo | hi), xq_word(x0, x1, m));
        q0 = q0 + select(0, p, m < 4u);
        q1 = q1 + select(p, 0, m < 4u);
        l0 = l1;
        h0 = h1;
    }
    let sc = base + 192u + 8u * n + 2u * k;
    let s0 = f32((bitcast<i32>(w_u8(sc) << 24u)) >> 24u);
    let s1 = f32((bitcast<i32>(w_u8(sc + 1u) << 24u)) >> 24u);
    return w_f16(base + 208u) * xs.x * (s0 * f32(q0) + s1 * f32(q1));
}
