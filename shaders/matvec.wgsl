// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, decode path.
//
// v1: 64 invocations per workgroup = 4 rows x 16 lanes. Each lane walks the row in
// groups of 8 weights (one dq8 call), lanes are reduced through workgroup memory.
// Composed after common.wgsl, one formats/*.wgsl file and mat_common.wgsl.

@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;    // [n_tokens, x_stride]

// ROWS (rows per workgroup): written by the composer from runtime/gpu/kernels/mat.rs.
const LANES: u32 = 64u / ROWS;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r_local = wid.x * ROWS + li / LANES;
    let lane = li % LANES;
    var acc = 0.0;
    if (r_local < P.n_rows) {
        let row = r_local * P.row_bytes;
        for (var g = lane; g < P.n_cols / 8u; g = g + LANES) {
            let w = dq8(row, g);
            acc = acc + dot(w[0], X[2u * g]) + dot(w[1], X[2u * g + 1u]);
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            partial[li] = partial[li] + partial[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && r_local < P.n_rows) {
        let r = P.out_row0 + r_local;
        Y[r] = finish(r, r, partial[li]);
    }
}
