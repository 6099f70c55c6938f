// RMSNorm of each row (rmsnorm_common.wgsl). Grid: one workgroup per row.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let base = wid.x * P.n_cols;
    let scale = row_scale(base, li);
    for (var i = li; i < P.n_cols; i = i + 64u) {
        out[base + i] = normed(base, i, scale);
    }
}
