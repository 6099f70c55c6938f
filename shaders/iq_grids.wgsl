// Helpers of the grid i-quants' readers (IQ1_*, IQ2_*, IQ3_*), composed after the
// format's grid and IQ1S_DELTA, which the composer declares from their one source
// (runtime/file/iq_grids.rs, iq.rs): a grid entry (grid8(i) or grid4(i)) is two words
// (vec2<u32>, 8 values) or one (u32, 4 values) of int8 bytes, byte j value j.

// ggml's ksigns_iq2xs[s & 127]: 7 stored sign bits and, as the 8th, their parity.
fn ksigns(s: u32) -> u32 {
    let i = s & 0x7fu;
    return i | ((countOneBits(i) & 1u) << 7u);
}

// 0xff in byte j of the result where bit first + j of `signs` is set (j = 0..3).
fn sign_bytes(signs: u32, first: u32) -> u32 {
    let b = (signs >> first) & 0xfu;
    return ((b & 1u) * 0xffu) | ((b & 2u) * 0x7f80u) | ((b & 4u) * 0x3fc000u) | ((b & 8u) * 0x1fe00000u);
}

// The int8 bytes of `v` negated where `m` (from sign_bytes) is 0xff: ~v + 1 per byte.
// No carry crosses a byte: the IQ2 and IQ3 grids hold no zero.
fn neg_bytes(v: u32, m: u32) -> u32 {
    return (v ^ m) + (m & 0x01010101u);
}

// An 8-value grid entry with the signs of bits 0..7 of `signs`, as int8 bytes.
fn signed8(e: vec2<u32>, signs: u32) -> vec2<u32> {
    return vec2<u32>(neg_bytes(e.x, sign_bytes(signs, 0u)), neg_bytes(e.y, sign_bytes(signs, 4u)));
}

// IQ1: 8 * g + 1 (delta > 0) or 8 * g - 1 (delta < 0) per byte of an IQ1S grid word
// (g = -1, 0, 1): the values (g + delta) * 8 as int8 bytes, exact because IQ1S_DELTA is
// 1/8, so the integer dot product carries the delta and the block scale is dl / 8. The subtraction is done per
// byte (bit 7 set before subtracting, then restored), so no borrow crosses a byte.
fn iq1_bytes(w: u32, negative_delta: bool) -> u32 {
    let t = (w << 3u) & 0xf8f8f8f8u;
    let h = 0x80808080u;
    let minus = ((t | h) - 0x01010101u) ^ ((t ^ 0xfefefefeu) & h);
    return select(t | 0x01010101u, minus, negative_delta);
}
