// gate = silu(gate) * up, elementwise (the SwiGLU of the FFN): the params, bindings and
// arithmetic of silu_mul.wgsl and silu_mul_q8.wgsl.

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

// Value i (of all tokens' rows) of the result.
fn silu_mul_at(i: u32) -> f32 {
    let g = gate[i];
    return g / (1.0 + exp(-g)) * up[i];
}
