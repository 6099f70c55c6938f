// Integer-dot interface, shared by every format in shaders/q8dot/ (composed before it):
//   q8w(row, b): weights 32b..32b+31 of the row whose bytes start at byte `row`, as
//   int8 words (q0: weights 0..15, q1: 16..31) with the factors that turn integer dot
//   products into values: a.x for q0, a.y for q1 (two scales: Q6_K's 16-weight
//   sub-blocks), and m, the coefficient of the activation block's d * sum(q) (formats
//   with an offset). Follows llama.cpp's ggml_vec_dot_<format>_q8.
//   qdot32(row, b, x0, x1, xs): that block dotted with the activation block whose 8
//   packed int8 words are x0, x1 (words 0..3, 4..7, loaded as two vec4: see
//   q8_input.wgsl) and whose (d, d * sum q) is xs.
//   q8w4(row, b), b a multiple of 4: blocks b..b+3 at once, for formats whose
//   neighbouring blocks share loads (Q4_K's pairs of nibbles, Q6_K's shared high
//   bits); the others compose q8dot/group.wgsl, four q8w.
// A matmul unpacks each weight block once (q8w) for all its tokens (q8w_dot); a
// matvec takes four blocks at a time (q8w4) where Q8W4_SHARES_LOADS says that saves
// loads, and one at a time otherwise (four unpacked blocks per row only cost registers).
//
// The weights are read 16 bytes at a time (w4(i): vec4 i of the part's GGUF blocks, in
// the order row_start and blk below describe, from a storage buffer or a texture,
// q8dot/w4_storage.wgsl or w4_texture.wgsl). On lavapipe (Mesa 22.3) loads count: a
// storage load is a per-lane loop of bounds-checked scalar loads, a vec4 costing about
// what a word does (a texel fetch is straight-line code, faster: docs/performance.md). A block
// is 2 to 8 loads this way (Q4_0 and Q4_1 2, Q4_K and
// Q8_0 3, Q6_K 8) where word reads took 5 to 24. Blocks are not 16-byte aligned in most
// formats: the readers load the vec4s that cover a block (or a run of it: run8, run4)
// and shift it into place (ALU work, cheap here), taking the scales from the same vec4s
// where the block fits in as few as its quants alone need. Weight parts carry 16 bytes
// of padding past the last row (buffers.rs WEIGHT_PAD) so the last vec4 of a run is
// inside the part.

// Where a row's blocks are: in groups of 2^s rows whose blocks are interleaved (block
// k of the group's row i at (2^s * k + i) block sizes from the group's start:
// runtime/gpu/buffers.rs RowLayout::Groups), the file's order being groups of one row.
// MatParams.flags holds the block bytes from bit GROUP_BLOCK_SHIFT (8 bits) and s from
// GROUP_ROWS_SHIFT (mat_q8.rs layout_flags); both are 0 in the file's order. Readers
// take block k of a row at blk(row, k, block bytes).

fn group_shift() -> u32 {
    return P.flags >> GROUP_ROWS_SHIFT;
}

// Byte offset of row r's first block.
fn row_start(r: u32) -> u32 {
    let s = group_shift();
    let block = (P.flags >> GROUP_BLOCK_SHIFT) & 0xffu;
    return (r >> s) * (P.row_bytes << s) + (r & ((1u << s) - 1u)) * block;
}

// Byte offset of block k (of `bytes` bytes) of the row whose first block is at `row`.
fn blk(row: u32, k: u32, bytes: u32) -> u32 {
    return row + k * (bytes << group_shift());
}

struct Q8W {
    q0: vec4<u32>,
    q1: vec4<u32>,
    a: vec2<f32>,
    m: f32,
    // Formats with a min per 16 weights (Q2_K): the coefficients of dx * sum(qx) over
    // each half of the activation block. Read only where the composer declares
    // Q8W_HALF_MINS; the other readers pass NO_HALF_MINS.
    m2: vec2<f32>,
}

const NO_HALF_MINS: vec2<f32> = vec2<f32>(0.0, 0.0);

fn q8w_dot(w: Q8W, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    let s0 = dot4I8Packed(w.q0.x, x0.x) + dot4I8Packed(w.q0.y, x0.y)
        + dot4I8Packed(w.q0.z, x0.z) + dot4I8Packed(w.q0.w, x0.w);
    let s1 = dot4I8Packed(w.q1.x, x1.x) + dot4I8Packed(w.q1.y, x1.y)
        + dot4I8Packed(w.q1.z, x1.z) + dot4I8Packed(w.q1.w, x1.w);
    let r = xs.x * (w.a.x * f32(s0) + w.a.y * f32(s1)) + w.m * xs.y;
    if (!Q8W_HALF_MINS) {
        return r;
    }
    let one = 0x01010101u;
    let h0 = dot4I8Packed(one, x0.x) + dot4I8Packed(one, x0.y)
        + dot4I8Packed(one, x0.z) + dot4I8Packed(one, x0.w);
    let h1 = dot4I8Packed(one, x1.x) + dot4I8Packed(one, x1.y)
        + dot4I8Packed(one, x1.z) + dot4I8Packed(one, x1.w);
    return r + xs.x * (w.m2.x * f32(h0) + w.m2.y * f32(h1));
}

struct Q8W4 {
    w0: Q8W,
    w1: Q8W,
    w2: Q8W,
    w3: Q8W,
}

fn qdot32(row: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, xs: vec2<f32>) -> f32 {
    return q8w_dot(q8w(row, b), x0, x1, xs);
}

// Words o..o+3 of the 8 words p, q (o = 0..3).
fn words4(p: vec4<u32>, q: vec4<u32>, o: u32) -> vec4<u32> {
    let s1 = vec4<u32>(p.yzw, q.x);
    let s2 = vec4<u32>(p.zw, q.xy);
    let s3 = vec4<u32>(p.w, q.xyz);
    return select(select(p, s1, o == 1u), select(s2, s3, o == 3u), o >= 2u);
}

// The run of words w (4 words) and the word after it, n, moved down by h bits (0 or
// 16): the 4 words that start half a word into w when h is 16.
fn half_shift(w: vec4<u32>, n: u32, h: u32) -> vec4<u32> {
    let next = vec4<u32>(w.yzw, n);
    return select((w >> vec4<u32>(16u)) | (next << vec4<u32>(16u)), w, h == 0u);
}

// 16 bytes at an even byte offset `start`: two loads.
fn run4(start: u32) -> vec4<u32> {
    let v = start >> 4u;
    let a = w4(v);
    let b = w4(v + 1u);
    let o = (start >> 2u) & 3u;
    return half_shift(words4(a, b, o), b[o], start & 2u);
}

struct Run8 {
    lo: vec4<u32>,
    hi: vec4<u32>,
}

// 32 bytes at an even byte offset `start`: three loads.
fn run8(start: u32) -> Run8 {
    let v = start >> 4u;
    let a = w4(v);
    let b = w4(v + 1u);
    let c = w4(v + 2u);
    let o = (start >> 2u) & 3u;
    let h = start & 2u;
    return Run8(half_shift(words4(a, b, o), b[o], h), half_shift(words4(b, c, o), c[o], h));
}

// 64 bytes at an even byte offset `start`: five loads.
fn run16(start: u32) -> array<vec4<u32>, 4> {
    let v = start >> 4u;
    let a = w4(v);
    let b = w4(v + 1u);
    let c = w4(v + 2u);
    let d = w4(v + 3u);
    let e = w4(v + 4u);
    let o = (start >> 2u) & 3u;
    let h = start & 2u;
    return array<vec4<u32>, 4>(
        half_shift(words4(a, b, o), b[o], h), half_shift(words4(b, c, o), c[o], h),
        half_shift(words4(c, d, o), d[o], h), half_shift(words4(d, e, o), e[o], h));
}

// The 32-bit value at an even byte offset `off` (0..30) of the 32 bytes a, b; past byte
// 31 its high half is not defined (a 16-bit value at offset 30 masks it off).
fn u32_at(a: vec4<u32>, b: vec4<u32>, off: u32) -> u32 {
    let i = off >> 2u;
    let j = i + 1u;
    let w0 = select(b[i & 3u], a[i & 3u], i < 4u);
    let w1 = select(b[j & 3u], a[j & 3u], j < 4u);
    return select((w0 >> 16u) | (w1 << 16u), w0, (off & 2u) == 0u);
}

// The 16-bit value at an even byte offset of the vec4 w that holds it.
fn vec4_u16(w: vec4<u32>, byte_off: u32) -> u32 {
    return (w[(byte_off >> 2u) & 3u] >> ((byte_off & 2u) * 8u)) & 0xffffu;
}

// The 16-bit value at an even byte offset: one load.
fn w4_u16(byte_off: u32) -> u32 {
    return vec4_u16(w4(byte_off >> 4u), byte_off);
}

// The 4 words that start at byte `rel` (even, 0..16) of the 32 bytes a, n: how the
// readers take a block's quants from the vec4s they loaded for the whole block.
fn words_at(a: vec4<u32>, n: vec4<u32>, rel: u32) -> vec4<u32> {
    let o = (rel >> 2u) & 3u;
    return select(half_shift(words4(a, n, o), n[o], rel & 2u), n, rel == 16u);
}

// The 32-bit value at an even byte offset: two loads (two w4_u16).
fn w4_u32(byte_off: u32) -> u32 {
    return w4_u16(byte_off) | (w4_u16(byte_off + 2u) << 16u);
}

// The byte at any offset: one load.
fn w4_u8(byte_off: u32) -> u32 {
    return (w4(byte_off >> 4u)[(byte_off >> 2u) & 3u] >> ((byte_off & 3u) * 8u)) & 0xffu;
}

fn w4_f16(byte_off: u32) -> f32 {
    return unpack2x16float(w4_u16(byte_off)).x;
}

// K-quant 6-bit scale and min of sub-block j (0..7), as llama.cpp's get_scale_min_k4
// unpacks them, from a super-block's first 16 bytes (f16 d and dmin, then the 12
// scale bytes q[0..11], so q[i] is byte 4 + i). Returns (scale, min).
fn scale_min_k4v(h: vec4<u32>, j: u32) -> vec2<f32> {
    let s = 8u * (j % 4u);
    return scale_min_k4_bytes(j, (h.y >> s) & 0xffu, (h.z >> s) & 0xffu, (h.w >> s) & 0xffu);
}

const NIB: u32 = 0x0f0f0f0fu;

// The 4 words at byte `rel` (even, 0..31) of the 48 bytes a, n, c: a block's quants when
// the block may reach into the third of the vec4s that cover it.
fn words_at3(a: vec4<u32>, n: vec4<u32>, c: vec4<u32>, rel: u32) -> vec4<u32> {
    let past = rel >= 16u;
    return words_at(select(a, n, past), select(n, c, past), rel & 15u);
}

// Q5_0 / Q5_1: bits 0..15 of `qh` (bit j: weight j's fifth bit) as 0x10 in byte j % 4 of
// word j / 4, to OR onto 16 weights' nibbles. One multiply spreads a word's 4 bits into
// its 4 bytes: h * 0x02040810 is h << 4 + h << 11 + h << 18 + h << 25, four copies of
// the 4 bits that do not overlap (no carries), and bits 4, 12, 20, 28 of it are h's
// bits 0..3. (Four ops per word where masking and shifting each bit took eleven.)
fn fifth_bits(qh: u32) -> vec4<u32> {
    let h = (vec4<u32>(qh) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(0xfu);
    return (h * vec4<u32>(0x02040810u)) & vec4<u32>(0x10101010u);
}

// A Q5_0 / Q5_1 block from its 16 nibble bytes `r`, its fifth bits `qh`, scale d and
// offset coefficient m.
fn q5_block(r: vec4<u32>, qh: u32, d: f32, m: f32) -> Q8W {
    let lo = (r & vec4<u32>(NIB)) | fifth_bits(qh);
    let hi = ((r >> vec4<u32>(4u)) & vec4<u32>(NIB)) | fifth_bits(qh >> 16u);
    return Q8W(lo, hi, vec2<f32>(d, d), m, NO_HALF_MINS);
}
