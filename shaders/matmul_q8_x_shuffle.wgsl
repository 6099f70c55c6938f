// How matmul_q8.wgsl's lanes get their 8 tokens' activation blocks with subgroup
// shuffles (MatMulQ8Shuffle, MatMulQ8TexShuffle): lane i loads token i's block, and every
// lane takes token t's from lane t. On lavapipe a shuffle from a constant lane is a
// register extract, where each of the 24 loads per lane it replaces is a per-lane loop.
// Assumes the workgroup of 8 is one subgroup holding lanes 0..7, as on lavapipe (8-lane
// subgroups, one per SIMD group); Vulkan does not promise it, so the runtime picks this
// only on CPU-backed devices with subgroups of 8 or more (DeviceProfile::matmul_shuffle)
// and the kernel tests check it on the test adapter. Lanes beyond 8 in a larger
// subgroup are never read.

// This lane's own token's block b (its vec4s start at xq(x)).
fn lane_x(x: u32, b: u32) -> XBlock {
    return x_block(x, b);
}

// Token t of the tile's block b: from lane t (x, the token's first vec4, unused).
fn token_x(mine: XBlock, t: u32, x: u32, b: u32) -> XBlock {
    return XBlock(subgroupShuffle(mine.q0, t), subgroupShuffle(mine.q1, t),
                  subgroupShuffle(mine.s, t));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    tile(wid, li, lane);
}
