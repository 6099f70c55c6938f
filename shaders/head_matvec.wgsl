// y[t, h, o] = W_h[o, :] . x[t, h, :] for every head h: one invocation per output row,
// walking the row in groups of 8 weights. Bindings: head_common.wgsl.

// WG (invocations per workgroup, one output each): written by the composer from runtime/gpu/kernels/head_matvec.rs.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    let h = gid.y;
    let t = gid.z;
    if (o >= P.rows) {
        return;
    }
    let row = head_row(h, o);
    let x0 = t * P.x_stride + h * P.x_head + P.x_off;
    var acc = 0.0;
    for (var g = 0u; g < P.n_cols / 8u; g = g + 1u) {
        let w = dq8(row, g);
        let xi = x0 + 8u * g;
        let xa = vec4<f32>(X[xi], X[xi + 1u], X[xi + 2u], X[xi + 3u]);
        let xb = vec4<f32>(X[xi + 4u], X[xi + 5u], X[xi + 6u], X[xi + 7u]);
        acc = acc + dot(w[0], xa) + dot(w[1], xb);
    }
    Y[t * P.y_stride + h * P.y_head + P.y_off + o] = acc;
}
