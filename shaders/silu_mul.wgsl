// gate = silu(gate) * up, elementwise (the SwiGLU of the FFN). Grid: (ceil(n/256), n_tokens).

struct GluParams {
    n: u32,          // values per token
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: GluParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;   // [n_tokens, n]
@group(0) @binding(3) var<storage, read> up: array<f32>;           // [n_tokens, n]

// WG (invocations per workgroup, one value each): written by the composer from runtime/gpu/kernels/silu_mul.rs.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= P.n || gid.y >= S.n_tokens) {
        return;
    }
    let i = gid.y * P.n + gid.x;
    let g = gate[i];
    gate[i] = g / (1.0 + exp(-g)) * up[i];
}
