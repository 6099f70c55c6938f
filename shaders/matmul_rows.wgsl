// Y[t, r] = W[r, :] . X[t, :] (+ bias[r]) (+ Y[t, r]): many tokens, prefill path,
// without workgroup memory.
//
// v2, for CPU-backed devices (lavapipe): each invocation owns one row and 8 tokens and
// walks the row in groups of 8 weights, dequantizing each group once for the 8 tokens.
// No barriers: on lavapipe a barrier suspends and resumes every SIMD group of the
// workgroup, and matmul.wgsl's two barriers per 32 columns made prefill only ~2x faster
// per token than decode (bench --profile, SmolLM2). On a real GPU the rows are read
// uncoalesced; matmul.wgsl stays the choice there.
// Bindings and params: mat_common.wgsl. Grid: (ceil(n_rows / 64), ceil(n_tokens / 8)).

@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;    // [n_tokens, x_stride]

// ROWS (one per invocation), TOKENS (per workgroup): written by the composer from runtime/gpu/kernels/mat.rs.

@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r_local = wid.x * ROWS + li;
    let tok0 = wid.y * TOKENS;
    if (r_local >= P.n_rows) {
        return;
    }
    let n_tok = min(TOKENS, S.n_tokens - tok0);
    let row = r_local * P.row_bytes;
    let xs = P.x_stride / 4u;
    var acc = array<f32, 16>();
    for (var g = 0u; g < P.n_cols / 8u; g = g + 1u) {
        let w = dq8(row, g);
        let x0 = tok0 * xs + 2u * g;
        for (var j = 0u; j < n_tok; j = j + 1u) {
            let xi = x0 + j * xs;
            acc[j] = acc[j] + dot(w[0], X[xi]) + dot(w[1], X[xi + 1u]);
        }
    }
    let r = P.out_row0 + r_local;
    for (var j = 0u; j < n_tok; j = j + 1u) {
        let yi = (tok0 + j) * P.y_stride + r;
        Y[yi] = finish(r, yi, acc[j]);
    }
}
