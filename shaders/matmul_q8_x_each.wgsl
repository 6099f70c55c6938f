// How matmul_q8.wgsl's lanes get their 8 tokens' activation blocks without subgroup
// shuffles (MatMulQ8, MatMulQ8Tex: not a CPU-backed device, no subgroups, or fewer than
// 8 lanes; DeviceProfile::matmul_shuffle): every lane loads all 8.

// Nothing: each lane loads every token's block itself (token_x).
fn lane_x(x: u32, b: u32) -> XBlock {
    return XBlock();
}

// Token t of the tile's block b, whose vec4s start at xq(x).
fn token_x(mine: XBlock, t: u32, x: u32, b: u32) -> XBlock {
    return x_block(x, b);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    tile(wid, li, li);
}
