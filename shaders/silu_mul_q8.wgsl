// SwiGLU in place (silu_mul_common.wgsl) that also writes the result as 8-bit blocks
// (q8_block.wgsl) for the 8-bit mat op that reads it (ffn_down), bit for bit what
// QuantizeQ8 would make of `gate`. One 32-value block per invocation.
// Grid: (ceil(n / 32 / BLOCKS), n_tokens).

@group(0) @binding(4) var<storage, read_write> XQ: array<u32>;

// Reads back what this invocation wrote (its own block).
fn q8_value(t: u32, i: u32) -> f32 {
    return gate[t * P.n + i];
}

// BLOCKS (blocks per workgroup, one per invocation): written by the composer from runtime/gpu/kernels/silu_mul.rs.
@compute @workgroup_size(BLOCKS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let b = wid.x * BLOCKS + li;
    if (b >= P.n / 32u || wid.y >= S.n_tokens) {
        return;
    }
    let row = wid.y * P.n;
    for (var i = 32u * b; i < 32u * b + 32u; i = i + 1u) {
        gate[row + i] = silu_mul_at(row + i);
    }
    quantize_block(wid.y, P.n, b);
}
