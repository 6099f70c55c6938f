// The IQ4 levels as the IQ4_NL and IQ4_XS readers use them (composed after the composer's
// KVALUES_IQ4NL, whose one source is quant.rs): as f32 values for the dequantizing
// readers (shaders/formats/), as packed int8 bytes for the integer-dot ones
// (shaders/q8dot/).

// The levels of four nibbles (as nib4 returns them).
fn iq4_levels(n: vec4<f32>) -> vec4<f32> {
    let i = vec4<u32>(n);
    return vec4<f32>(KVALUES_IQ4NL[i.x], KVALUES_IQ4NL[i.y], KVALUES_IQ4NL[i.z], KVALUES_IQ4NL[i.w]);
}

// The levels of the four nibbles at bits 0, 8, 16 and 24 of `w` (already masked), packed
// as int8 bytes: each nibble picks its level's word with selects and its byte with a
// shift (lookups in a private array cost a memory gather per weight on lavapipe).
fn iq4_word(w: u32) -> u32 {
    let n = (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xfu);
    let low = select(vec4<u32>(KVALUES_IQ4NL_W0), vec4<u32>(KVALUES_IQ4NL_W1), n >= vec4<u32>(4u));
    let high = select(vec4<u32>(KVALUES_IQ4NL_W2), vec4<u32>(KVALUES_IQ4NL_W3), n >= vec4<u32>(12u));
    let t = select(low, high, n >= vec4<u32>(8u));
    let b = (t >> ((n & vec4<u32>(3u)) * vec4<u32>(8u))) & vec4<u32>(0xffu);
    return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}

fn iq4_words(n: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(iq4_word(n.x), iq4_word(n.y), iq4_word(n.z), iq4_word(n.w));
}
