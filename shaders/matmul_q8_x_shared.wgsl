// How matmul_q8.wgsl's lanes get their 8 tokens' activation blocks, with subgroups
// (a workgroup of 8 is one subgroup where the device's subgroups have at least 8
// lanes: DeviceProfile::shared_x): lane i loads token i's block, and every lane takes
// token t's from lane t. On lavapipe a shuffle from a constant lane is a register
// extract, where each of the 24 loads it replaces is a per-lane loop.

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
