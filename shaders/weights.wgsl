// Byte access to raw GGUF weights, for kernels that read a weight matrix.
//
// Weights are the file's bytes, unchanged, viewed as u32 words (`W`, binding 2 of
// every kernel that composes this file). GGUF blocks are not word aligned (a Q4_0
// block is 18 bytes), so reads go through w_u32, which stitches two words together.
// Weight buffers carry padding (buffers.rs WEIGHT_PAD) so the second word of the last
// read is always inside the buffer.

@group(0) @binding(2) var<storage, read> W: array<u32>;  // raw GGUF blocks

fn w_u32(byte_off: u32) -> u32 {
    let i = byte_off >> 2u;
    let s = (byte_off & 3u) * 8u;
    if (s == 0u) {
        return W[i];
    }
    return (W[i] >> s) | (W[i + 1u] << (32u - s));
}

// A 32-bit word at a byte offset known to be a multiple of 4: one load, no stitching.
// Formats whose blocks are a whole number of words (F32, F16, BF16, Q4_1, Q5_1, Q4_K,
// Q5_K) use it for every field; rows start word-aligned because row_bytes is then a
// multiple of 4 too.
fn w_word(byte_off: u32) -> u32 {
    return W[byte_off >> 2u];
}

// Word k of a run that starts at an even byte offset `start` (blocks of 18, 34 and 210
// bytes: Q4_0, Q8_0, Q6_K), given lo = W[(start >> 2) + k] and hi = the word after it.
// Half the runs are word aligned (lo is the word); the others take the upper half of
// lo and the lower half of hi. Callers load each W word once and pass it twice, so a
// run of n words costs n + 1 loads instead of w_u32's 2n.
fn w_run_word(start: u32, lo: u32, hi: u32) -> u32 {
    return select((lo >> 16u) | (hi << 16u), lo, (start & 2u) == 0u);
}

fn w_u8(byte_off: u32) -> u32 {
    return (W[byte_off >> 2u] >> ((byte_off & 3u) * 8u)) & 0xffu;
}

fn w_f16(byte_off: u32) -> f32 {
    return unpack2x16float(w_u32(byte_off) & 0xffffu).x;
}

// K-quant 6-bit scale and min of sub-block `j` (0..7) from the 12 packed bytes at
// `sb`, as llama.cpp's get_scale_min_k4 unpacks them. Returns (scale, min).
fn scale_min_k4(sb: u32, j: u32) -> vec2<f32> {
    let i = j % 4u;
    let a = w_u8(sb + i);
    let b = w_u8(sb + i + 4u);
    if (j < 4u) {
        return scale_min_k4_bytes(j, a, b, 0u); // the third byte only matters for j >= 4
    }
    return scale_min_k4_bytes(j, a, b, w_u8(sb + i + 8u));
}
