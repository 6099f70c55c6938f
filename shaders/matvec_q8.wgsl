// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, with x as 8-bit blocks.
//
// For CPU-backed devices (lavapipe): each invocation owns 4 rows and walks them a
// 32-weight block at a time, unpacking each row's block (the format's q8w) and taking
// its integer dot product with the activations quantize_q8.wgsl wrote. Every
// invocation reads the same activation words and no barriers are needed. Loads set
// the speed on lavapipe (matmul_q8.wgsl), and 4 rows share each activation load:
// kbench (8960 x 1536 and 1536 x 8960 Q4_1) 1.3-1.6x one row per invocation. 8 rows
// per invocation tied on the tall matrix and lost on the wide one (fewer workgroups
// for 2 cores). Lane li of workgroup g owns rows 64g + 16k + li (k = 0..3).
// Bindings and params: mat_common.wgsl, with the quantized x of q8_input.wgsl and the
// format's q8w / q8w_dot (q8dot/).
// Grid: ceil(n_rows / 64).

fn store(r_local: u32, acc: f32) {
    if (r_local < P.n_rows) {
        let r = P.out_row0 + r_local;
        Y[r] = finish(r, r, acc);
    }
}

@compute @workgroup_size(16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r0 = wid.x * 64u + li;
    // Rows past the end recompute the last row and are not stored (no divergent exit).
    let row0 = min(r0, P.n_rows - 1u) * P.row_bytes;
    let row1 = min(r0 + 16u, P.n_rows - 1u) * P.row_bytes;
    let row2 = min(r0 + 32u, P.n_rows - 1u) * P.row_bytes;
    let row3 = min(r0 + 48u, P.n_rows - 1u) * P.row_bytes;
    var acc = vec4<f32>();
    for (var b = 0u; b < P.n_cols / 32u; b = b + 1u) {
        let x0 = XQ[2u * b];
        let x1 = XQ[2u * b + 1u];
        let xs = x_scale(0u, b);
        acc = acc + vec4<f32>(
            q8w_dot(q8w(row0, b), x0, x1, xs),
            q8w_dot(q8w(row1, b), x0, x1, xs),
            q8w_dot(q8w(row2, b), x0, x1, xs),
            q8w_dot(q8w(row3, b), x0, x1, xs));
    }
    store(r0, acc.x);
    store(r0 + 16u, acc.y);
    store(r0 + 32u, acc.z);
    store(r0 + 48u, acc.w);
}
