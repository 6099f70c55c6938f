// The 8-bit activation input of MatVecQ8 and MatMulQ8 (composed before the q8dot
// reader and the kernel): blocks of 32 as quantize_q8.wgsl writes them, per token n/16
// vec4s of packed int8 then a (d, d * sum q) pair per block, padded to whole vec4s.
//
// Read as vec4 through xq(i), from a storage buffer (q8_x_storage.wgsl) or, for one
// token that fits, a uniform buffer (q8_x_uniform.wgsl): lavapipe (Mesa 22.3) turns
// every storage load into a per-lane loop of scalar loads even at a uniform address,
// and a vec4 load costs about what a scalar one does (the vec4 form made the 8-bit
// matmul 1.7-1.9x faster, kbench, 1536 x 1536 Q4_1).

// The (d, d * sum q) pair of block b of the token whose vec4s start at xq(x): after
// the n_cols / 16 vec4s of quants, two blocks per vec4.
fn x_scale(x: u32, b: u32) -> vec2<f32> {
    let v = bitcast<vec4<f32>>(xq(x + P.n_cols / 16u + b / 2u));
    return select(v.zw, v.xy, b % 2u == 0u);
}

// One token's activation block: its 32 quants as 8 packed int8 words (two vec4) and
// its (d, d * sum q) pair.
struct XBlock {
    q0: vec4<u32>,
    q1: vec4<u32>,
    s: vec2<f32>,
}

// Block b of the token whose vec4s start at xq(x).
fn x_block(x: u32, b: u32) -> XBlock {
    return XBlock(xq(x + 2u * b), xq(x + 2u * b + 1u), x_scale(x, b));
}
