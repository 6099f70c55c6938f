// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, with x as 8-bit blocks.
//
// For CPU-backed devices (lavapipe): each invocation owns one row and walks it a
// 32-weight block at a time with dot4I8Packed against the activations that
// quantize_q8.wgsl wrote. Every invocation reads the same activation words (uniform
// loads, done once per SIMD group) and no barriers are needed. Measured on lavapipe
// (SmolLM2's 49152 x 576 Q4_1 output matrix): about 2x the weight bandwidth of the
// f32 subgroup matvec. The format's q8dot/*.wgsl supplies qdot32.
// Bindings and params: mat_common.wgsl, with the quantized x at binding 3.
// Grid: ceil(n_rows / 64).

@group(0) @binding(3) var<storage, read> XQ: array<u32>;

// The block's (d, s) pair: after the n_cols / 4 words of quants.
fn x_scale(b: u32) -> vec2<f32> {
    let i = P.n_cols / 4u + 2u * b;
    return vec2<f32>(bitcast<f32>(XQ[i]), bitcast<f32>(XQ[i + 1u]));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r_local = wid.x * 64u + li;
    // Rows past the end recompute the last row and are not stored (no divergent exit).
    let row = min(r_local, P.n_rows - 1u) * P.row_bytes;
    var acc = 0.0;
    for (var b = 0u; b < P.n_cols / 32u; b = b + 1u) {
        acc = acc + qdot32(row, b, 8u * b, x_scale(b));
    }
    if (r_local < P.n_rows) {
        let r = P.out_row0 + r_local;
        Y[r] = finish(r, r, acc);
    }
}
