// Activations to 8-bit blocks for the integer-dot matvec and matmul (matvec_q8.wgsl,
// matmul_q8.wgsl), in the layout q8_block.wgsl describes. One invocation per block.
// Composed after q8_block.wgsl.
// Grid: (ceil(n / 32 / 64), tokens): n_tokens for a matmul, 1 for a matvec.

struct QuantParams {
    n: u32,        // values per token, a multiple of 32
    x_stride: u32, // input floats per token
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: QuantParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> XQ: array<u32>;

fn q8_value(t: u32, i: u32) -> f32 {
    return X[t * P.x_stride + i];
}

// BLOCKS (blocks per workgroup, one per invocation): written by the composer from runtime/gpu/kernels/mat_q8.rs.
@compute @workgroup_size(BLOCKS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let b = wid.x * BLOCKS + li;
    if (b >= P.n / 32u) {
        return;
    }
    quantize_block(wid.y, P.n, b);
}
