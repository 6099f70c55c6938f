// The IQ4 levels as the IQ4_NL and IQ4_XS readers use them (composed after the composer's
// KVALUES_IQ4NL, whose one source is quant.rs): as f32 values for the dequantizing
// readers (shaders/formats/), as packed int8 bytes for the integer-dot ones
// (shaders/q8dot/).

// The levels of four nibbles (as nib4 returns them).
fn iq4_levels(n: vec4<f32>) -> vec4<f32> {
    let i = vec4<u32>(n);
    return vec4<f32>(KVALUES_IQ4NL[i.x], KVALUES_IQ4NL[i.y], KVALUES_IQ4NL[i.z], KVALUES_IQ4NL[i.w]);
}

// The level of nibble `n` as an int8 byte.
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
