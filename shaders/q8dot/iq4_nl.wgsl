// Integer-dot reader (interface: common.wgsl).
// IQ4_NL: Q4_0's 18-byte blocks (f16 d, 16 bytes of nibbles, 2 loads), each nibble an
// index into KVALUES_IQ4NL (declared by the composer from quant.rs, with the helpers of
// shaders/iq4_levels.wgsl); x = d * kvalues[q].
// The levels are int8 already, so each nibble becomes its level's byte and the block
// is d * dx * sum(level * qx), with no offset term.
fn q8w(row: u32, b: u32) -> Q8W {
    let base = blk(row, b, 18u);
    let v = base >> 4u;
    let a = w4(v);
    let n = w4(v + 1u);
    let d = unpack2x16float(vec4_u16(a, base)).x;
    let r = words_at(a, n, (base & 15u) + 2u);
    let lo = iq4_words(r & vec4<u32>(NIB));
    let hi = iq4_words((r >> vec4<u32>(4u)) & vec4<u32>(NIB));
    return Q8W(lo, hi, vec2<f32>(d, d), 0.0, NO_HALF_MINS);
}
