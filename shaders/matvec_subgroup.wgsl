// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, decode path, with subgroups.
//
// v2 (where the device has subgroups): each subgroup owns whole rows; its lanes walk
// a row in consecutive groups of 8 weights (neighbouring lanes read neighbouring
// blocks) and subgroupAdd reduces them. No workgroup memory and no barriers, which
// matters on lavapipe where each barrier splits the shader. A workgroup of 64
// invocations covers 16 rows whatever the subgroup size (4 to 128).
// Bindings and params: mat_common.wgsl.

@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;    // [n_tokens, x_stride]

// ROWS (rows per workgroup): written by the composer from runtime/gpu/kernels/mat.rs.

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let lanes = min(sg_size, 64u);
    let n_sg = 64u / lanes;
    let sg = li / lanes;
    let rows_per_sg = ROWS / n_sg;
    let n_groups = P.n_cols / 8u;
    for (var i = 0u; i < rows_per_sg; i = i + 1u) {
        let r_local = wid.x * ROWS + sg * rows_per_sg + i;
        // Rows past the end repeat the last row so every lane reaches subgroupAdd.
        let row = min(r_local, P.n_rows - 1u) * P.row_bytes;
        var acc = 0.0;
        for (var g = lane; g < n_groups; g = g + lanes) {
            let w = dq8(row, g);
            acc = acc + dot(w[0], X[2u * g]) + dot(w[1], X[2u * g + 1u]);
        }
        let total = subgroupAdd(acc);
        if (lane == 0u && r_local < P.n_rows) {
            let r = P.out_row0 + r_local;
            Y[r] = finish(r, r, total);
        }
    }
}
