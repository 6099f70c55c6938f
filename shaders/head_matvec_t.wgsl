// y[t, h, c] = sum_r W_h[r, c] * x[t, h, r] for every head h: the transposed product,
// for the key half of a legacy attn_kv_b (stored [nope rows x latent cols] per head,
// while absorbing it into the queries needs latent outputs). One invocation per group
// of 8 output columns, walking the head's rows. Bindings: head_common.wgsl.

// WG (invocations per workgroup, one output each): written by the composer from runtime/gpu/kernels/head_matvec.rs.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = gid.x;
    let h = gid.y;
    let t = gid.z;
    if (g >= P.n_cols / 8u) {
        return;
    }
    let x0 = t * P.x_stride + h * P.x_head + P.x_off;
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let w = dq8(head_row(h, r), g);
        let xr = X[x0 + r];
        a = a + w[0] * xr;
        b = b + w[1] * xr;
    }
    let y0 = t * P.y_stride + h * P.y_head + P.y_off + 8u * g;
    for (var i = 0u; i < 4u; i = i + 1u) {
        Y[y0 + i] = a[i];
        Y[y0 + 4u + i] = b[i];
    }
}
