// acc += w[k] * y: adds one routed expert's output, weighted by the router, to the
// token's MoE sum (k is fixed per bind group; experts are added in routing order).
// Grid: (ceil(n / 256), 1, 1).

struct AxpyParams {
    n: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: AxpyParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;   // [n]
@group(0) @binding(3) var<storage, read> y: array<f32>;           // [n]
@group(0) @binding(4) var<storage, read> w: array<f32>;           // [k + 1..]

// WG (invocations per workgroup, one value each): written by the composer from runtime/gpu/kernels/axpy.rs.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= P.n) {
        return;
    }
    acc[gid.x] = acc[gid.x] + w[P.k] * y[gid.x];
}
