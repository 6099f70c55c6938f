// SwiGLU in place (silu_mul_common.wgsl), one value per invocation.
// Grid: (ceil(n/256), n_tokens).

// WG (invocations per workgroup, one value each): written by the composer from runtime/gpu/kernels/silu_mul.rs.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= P.n || gid.y >= S.n_tokens) {
        return;
    }
    let i = gid.y * P.n + gid.x;
    gate[i] = silu_mul_at(i);
}
