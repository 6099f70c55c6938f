// Integer-dot reader (interface: common.wgsl).
// IQ4_XS: 136-byte super-blocks (word aligned, so 0 or 8 bytes into a vec4): f16 d, u16
// scales_h, u8 scales_l[4], qs[128]. Block b is sub-block ib = b % 8: 16 qs bytes (low
// nibbles weights 0..15, high 16..31) whose nibbles index KVALUES_IQ4NL, and the 6-bit
// scale (nibble ib % 2 of scales_l[ib / 2]) | (bits 2ib of scales_h) << 4;
// x = (d * (ls - 32)) * kvalues[q]. 3 loads: the head vec4 and the 16 qs bytes.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b / 8u, 136u);
    let ib = b % 8u;
    let head = w4(base >> 4u);
    let o = (base >> 2u) & 3u;  // 0 or 2
    let w0 = head[o];
    let w1 = head[o + 1u];
    let lo_bits = (w1 >> (8u * (ib / 2u) + 4u * (ib % 2u))) & 0xfu;
    let hi_bits = (w0 >> (16u + 2u * ib)) & 3u;
    let dl = unpack2x16float(w0).x * f32(i32(lo_bits | (hi_bits << 4u)) - 32);
    let r = run4(base + 8u + 16u * ib);
    let lo = iq4_words(r & vec4<u32>(NIB));
    let hi = iq4_words((r >> vec4<u32>(4u)) & vec4<u32>(NIB));
    return Q8W(lo, hi, vec2<f32>(dl, dl), 0.0, NO_HALF_MINS);
}
