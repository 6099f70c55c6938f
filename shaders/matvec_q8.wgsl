// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, with x as 8-bit blocks.
//
// For CPU-backed devices (lavapipe): each invocation owns one row and walks it a
// 32-weight block at a time with dot4I8Packed against the activations that
// quantize_q8.wgsl wrote. Every invocation reads the same activation words, and no
// barriers are needed. Measured on lavapipe
// (SmolLM2's 49152 x 576 Q4_1 output matrix): about 2x the weight bandwidth of the
// f32 subgroup matvec. The format's q8dot/*.wgsl supplies qdot32.
// Bindings and params: mat_common.wgsl, with the quantized x at binding 3.
// Grid: ceil(n_rows / 64).

// Read as vec4: lavapipe (Mesa 22.3) turns every storage load into a per-lane load even
// at a uniform address, and a vec4 load costs about what a scalar one does: the vec4
// form made the 8-bit matmul 1.7-1.9x faster (kbench, 1536 x 1536 Q4_1).
@group(0) @binding(3) var<storage, read> XQ: array<vec4<u32>>;

// The (d, d * sum q) pair of block b of the token whose vec4s start at XQ[x]: after
// the n_cols / 16 vec4s of quants, two blocks per vec4.
fn x_scale(x: u32, b: u32) -> vec2<f32> {
    let v = bitcast<vec4<f32>>(XQ[x + P.n_cols / 16u + b / 2u]);
    return select(v.zw, v.xy, b % 2u == 0u);
}

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
