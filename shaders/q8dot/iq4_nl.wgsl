// Integer-dot reader (interface: common.wgsl).
// IQ4_NL: Q4_0's 18-byte blocks (f16 d, 16 bytes of nibbles, 2 loads), each nibble an
// index into KVALUES_IQ4NL (declared by the composer from quant.rs); x = d * kvalues[q].
// The levels are int8 already, so each nibble becomes its level's byte and the block
// is d * dx * sum(level * qx), with no offset term.
fn iq4_byte(n: u32) -> u32 {
    return u32(i32(KVALUES_IQ4NL[n])) & 0xffu;
}

// The levels of the four nibbles at bits 0, 8, 16 and 24 of `w` (already masked), packed.
fn iq4_word(w: u32) -> u32 {
    return iq4_byte(w & 0xfu) | (iq4_byte((w >> 8u) & 0xfu) << 8u)
        | (iq4_byte((w >> 16u) & 0xfu) << 16u) | (iq4_byte(w >> 24u) << 24u);
}

fn iq4_words(n: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(iq4_word(n.x), iq4_word(n.y), iq4_word(n.z), iq4_word(n.w));
}

fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 18u;
    let v = base >> 4u;
    let a = W4[v];
    let n = W4[v + 1u];
    let d = unpack2x16float(vec4_u16(a, base)).x;
    let r = words_at(a, n, (base & 15u) + 2u);
    let lo = iq4_words(r & vec4<u32>(NIB));
    let hi = iq4_words((r >> vec4<u32>(4u)) & vec4<u32>(NIB));
    return Q8W(lo, hi, vec2<f32>(d, d), 0.0, NO_HALF_MINS);
}
