// Y[t, r] = W[r, :] . X[t, :] (+ bias[r]) (+ Y[t, r]): many tokens, with X as 8-bit
// blocks (quantize_q8.wgsl, one token after another). Prefill's twin of matvec_q8.wgsl.
//
// For CPU-backed devices (lavapipe): each invocation owns one row and 8 tokens, and
// takes each 32-weight block's integer dot product with the 8 tokens' blocks
// (the format's qdot32), with no barriers. The activation loads, not the integer dots,
// set the speed on lavapipe (kbench: without them 5x faster), hence vec4 loads. On
// lavapipe this was 1.6-1.8x matmul_rows.wgsl on SmolLM2's FFN shapes with scalar
// loads, and vec4 loads gave another 1.7-1.9x (GMAC/s, 64 tokens).
//
// The 8 accumulators are written out one by one on purpose: an array indexed in a
// constant-bound loop stayed in memory and ran 1.5x slower on lavapipe. Tokens past the
// end repeat the last one and are not stored, so no lane leaves the loop early.
// Bindings and params: mat_common.wgsl, with the quantized X of q8_input.wgsl.
// Grid: (ceil(n_rows / 64), ceil(n_tokens / 8)).

fn store(t: u32, r_local: u32, acc: f32) {
    if (t < S.n_tokens && r_local < P.n_rows) {
        let r = P.out_row0 + r_local;
        let yi = t * P.y_stride + r;
        Y[yi] = finish(r, yi, acc);
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r_local = wid.x * 64u + li;
    let row = min(r_local, P.n_rows - 1u) * P.row_bytes;
    let tok0 = wid.y * 8u;
    let last = S.n_tokens - 1u;
    // vec4s per token: n_cols / 16 of quants, then a (d, s) pair per 32 values, padded
    // to whole vec4s (quantize_q8.wgsl).
    let tw = (P.n_cols / 4u + P.n_cols / 16u + 3u) / 4u;
    let x0 = min(tok0 + 0u, last) * tw;
    let x1 = min(tok0 + 1u, last) * tw;
    let x2 = min(tok0 + 2u, last) * tw;
    let x3 = min(tok0 + 3u, last) * tw;
    let x4 = min(tok0 + 4u, last) * tw;
    let x5 = min(tok0 + 5u, last) * tw;
    let x6 = min(tok0 + 6u, last) * tw;
    let x7 = min(tok0 + 7u, last) * tw;
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    var a4 = 0.0;
    var a5 = 0.0;
    var a6 = 0.0;
    var a7 = 0.0;
    for (var b = 0u; b < P.n_cols / 32u; b = b + 1u) {
        a0 = a0 + qdot32(row, b, XQ[x0 + 2u * b], XQ[x0 + 2u * b + 1u], x_scale(x0, b));
        a1 = a1 + qdot32(row, b, XQ[x1 + 2u * b], XQ[x1 + 2u * b + 1u], x_scale(x1, b));
        a2 = a2 + qdot32(row, b, XQ[x2 + 2u * b], XQ[x2 + 2u * b + 1u], x_scale(x2, b));
        a3 = a3 + qdot32(row, b, XQ[x3 + 2u * b], XQ[x3 + 2u * b + 1u], x_scale(x3, b));
        a4 = a4 + qdot32(row, b, XQ[x4 + 2u * b], XQ[x4 + 2u * b + 1u], x_scale(x4, b));
        a5 = a5 + qdot32(row, b, XQ[x5 + 2u * b], XQ[x5 + 2u * b + 1u], x_scale(x5, b));
        a6 = a6 + qdot32(row, b, XQ[x6 + 2u * b], XQ[x6 + 2u * b + 1u], x_scale(x6, b));
        a7 = a7 + qdot32(row, b, XQ[x7 + 2u * b], XQ[x7 + 2u * b + 1u], x_scale(x7, b));
    }
    store(tok0 + 0u, r_local, a0);
    store(tok0 + 1u, r_local, a1);
    store(tok0 + 2u, r_local, a2);
    store(tok0 + 3u, r_local, a3);
    store(tok0 + 4u, r_local, a4);
    store(tok0 + 5u, r_local, a5);
    store(tok0 + 6u, r_local, a6);
    store(tok0 + 7u, r_local, a7);
}
