// Shared by every kernel: the per-step uniform and small unpacking helpers.

// Written once per forward step (prefill chunk or decode token).
struct Step {
    n_tokens: u32,   // tokens in this step
    pos0: u32,       // position of the first of them in the sequence
    _pad0: u32,
    _pad1: u32,
}

// The four bytes of `v` as signed integers, low byte first.
fn i8x4(v: u32) -> vec4<f32> {
    let s = bitcast<i32>(v);
    return vec4<f32>(vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u));
}

// The four bytes of `v` as unsigned integers, low byte first.
fn u8x4(v: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(v & 0xffu, (v >> 8u) & 0xffu, (v >> 16u) & 0xffu, v >> 24u));
}

// Nibbles of the four bytes of `v`, shifted by `sh` (0: low nibbles, 4: high nibbles).
fn nib4(v: u32, sh: u32) -> vec4<f32> {
    let n = (v >> sh) & 0x0f0f0f0fu;
    return u8x4(n);
}

// Bit `b` of each byte's position i..i+3 in a 32-bit mask `m` starting at bit `b0`.
fn bits4(m: u32, b0: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>((m >> b0) & 1u, (m >> (b0 + 1u)) & 1u, (m >> (b0 + 2u)) & 1u, (m >> (b0 + 3u)) & 1u));
}

// K-quant 6-bit scale and min of sub-block j (0..7), as llama.cpp's get_scale_min_k4
// unpacks them from the 12 packed scale bytes q[0..11], given a = q[j % 4],
// b = q[j % 4 + 4] and c = q[j % 4 + 8] (c is only read for j >= 4). Returns
// (scale, min). Used by the dequantizing reader (weights.wgsl) and the q8dot one.
fn scale_min_k4_bytes(j: u32, a: u32, b: u32, c: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(a & 63u), f32(b & 63u));
    }
    return vec2<f32>(f32((c & 0xfu) | ((a >> 6u) << 4u)), f32((c >> 4u) | ((b >> 6u) << 4u)));
}
