// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, with x as 8-bit blocks.
//
// For CPU-backed devices (lavapipe): each invocation owns one row and walks it a
// 32-weight block at a time with dot4I8Packed against the activations that
// quantize_q8.wgsl wrote. Every invocation reads the same activation words, and no
// barriers are needed. Measured on lavapipe
// (SmolLM2's 49152 x 576 Q4_1 output matrix): about 2x the weight bandwidth of the
// f32 subgroup matvec. The format's q8dot/*.wgsl supplies qdot32.
// Bindings and params: mat_common.wgsl, with the quantized x of q8_input.wgsl.
// Grid: ceil(n_rows / 64).

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r_local = wid.x * 64u + li;
    // Rows past the end recompute the last row and are not stored (no divergent exit).
    let row = min(r_local, P.n_rows - 1u) * P.row_bytes;
    var acc = 0.0;
    for (var b = 0u; b < P.n_cols / 32u; b = b + 1u) {
        acc = acc + qdot32(row, b, XQ[2u * b], XQ[2u * b + 1u], x_scale(0u, b));
    }
    if (r_local < P.n_rows) {
        let r = P.out_row0 + r_local;
        Y[r] = finish(r, r, acc);
    }
}
