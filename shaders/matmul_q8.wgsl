// Y[t, r] = W[r, :] . X[t, :] (+ bias[r]) (+ Y[t, r]): many tokens, with X as 8-bit
// blocks (quantize_q8.wgsl, one token after another). Prefill's twin of matvec_q8.wgsl.
//
// For CPU-backed devices (lavapipe): each invocation owns 8 rows and 8 tokens (a
// register tile), with no barriers. Per 32-weight block it unpacks each row's weights
// once (the format's q8w) and gets each token's activation block once, then takes the
// 64 integer dot products. Loads, not the integer dots, set the speed on lavapipe (Mesa
// 22.3 issues a per-lane load even at a uniform address; kbench, 2026-11: without the
// activation loads 5x faster, with a plain multiply for dot4I8Packed no faster; with
// the weights in textures, 2026-12-08: 1.8x), so
// the tile is sized to amortise them: on 1536 x 1536 Q4_1, 64 tokens, kbench measured
// (rows x tokens per invocation) 1 x 8: 5.6-7.3 GMAC/s, 4 x 8: 12.4-13.8, 8 x 8:
// 16.3-16.7, 16 x 8 and 8 x 16: 14-19.6 (register spills make it erratic). Staging the
// activations in workgroup memory instead was slower than no tile at all (3.4 vs 6.1).
//
// The 8 tokens' blocks come through lane_x / token_x, from one of two headers, which
// also hold the entry point that calls tile() below: with subgroup shuffles
// (matmul_q8_x_shuffle.wgsl) lane i loads token i's block and every lane takes token
// t's from lane t, 3 loads per lane and block step where every lane loading all 8
// (matmul_q8_x_each.wgsl: not a CPU-backed device, no subgroups, or fewer than 8
// lanes) takes 24 (kernel_bench,
// 17920 x 1536, 64 tokens: 1.2-1.4x by format; docs/performance.md). The shuffles need
// as many lanes as tokens: 8.
//
// Lane li of workgroup g owns rows 64g + 8k + li (k = 0..7): 8 lanes, one SIMD group
// on lavapipe, so a workgroup covers 64 rows and every matrix of the models we run has
// a multiple of 64 rows. Rows and tokens past the end repeat the last one and are not
// stored, so no lane leaves the loop early.
// Bindings and params: mat_common.wgsl, with the quantized X of q8_input.wgsl and the
// format's q8w / q8w_dot (q8dot/).
// Grid: (ceil(n_rows / 64), ceil(n_tokens / 8)).

// One token's activation block x dotted with 8 rows' unpacked weights: column 0 holds
// rows 0..3, column 1 rows 4..7.
fn rows8(w0: Q8W, w1: Q8W, w2: Q8W, w3: Q8W, w4: Q8W, w5: Q8W, w6: Q8W, w7: Q8W,
         x: XBlock) -> mat2x4<f32> {
    return mat2x4<f32>(
        vec4<f32>(q8w_dot(w0, x.q0, x.q1, x.s), q8w_dot(w1, x.q0, x.q1, x.s),
                  q8w_dot(w2, x.q0, x.q1, x.s), q8w_dot(w3, x.q0, x.q1, x.s)),
        vec4<f32>(q8w_dot(w4, x.q0, x.q1, x.s), q8w_dot(w5, x.q0, x.q1, x.s),
                  q8w_dot(w6, x.q0, x.q1, x.s), q8w_dot(w7, x.q0, x.q1, x.s)));
}

// Token t's results for this lane's 8 rows, rows 64g + 8k + li.
fn store8(t: u32, r0: u32, acc: mat2x4<f32>) {
    if (t >= S.n_tokens) {
        return;
    }
    for (var k = 0u; k < 8u; k = k + 1u) {
        let r_local = r0 + 8u * k;
        if (r_local < P.n_rows) {
            let r = P.out_row0 + r_local;
            let yi = t * P.y_stride + r;
            Y[yi] = finish(r, yi, acc[k / 4u][k % 4u]);
        }
    }
}

// Byte offset of row r0 + 8k, clamped to the last row.
fn row_at(r0: u32, k: u32) -> u32 {
    return row_start(min(r0 + 8u * k, P.n_rows - 1u));
}

// ROWS (64: 8 lanes x 8 rows), TOKENS (8): written by the composer from runtime/gpu/kernels/mat_q8.rs.
// The tile below is written out for exactly those sizes (mat_q8.rs asserts them).
// Called by the header's entry point (workgroup size 8): li is the invocation's index in
// the workgroup, lane its index in the subgroup (li again without subgroups).
fn tile(wid: vec3<u32>, li: u32, lane: u32) {
    let r0 = wid.x * ROWS + li;
    let row0 = row_at(r0, 0u);
    let row1 = row_at(r0, 1u);
    let row2 = row_at(r0, 2u);
    let row3 = row_at(r0, 3u);
    let row4 = row_at(r0, 4u);
    let row5 = row_at(r0, 5u);
    let row6 = row_at(r0, 6u);
    let row7 = row_at(r0, 7u);
    let tok0 = wid.y * TOKENS;
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
    // The token whose blocks this lane loads for the others (matmul_q8_x_shuffle.wgsl).
    let xl = min(tok0 + lane, last) * tw;
    // One accumulator per token, written out: an array indexed in a loop stayed in
    // memory on lavapipe and ran 1.5x slower.
    var a0 = mat2x4<f32>();
    var a1 = mat2x4<f32>();
    var a2 = mat2x4<f32>();
    var a3 = mat2x4<f32>();
    var a4 = mat2x4<f32>();
    var a5 = mat2x4<f32>();
    var a6 = mat2x4<f32>();
    var a7 = mat2x4<f32>();
    for (var b = 0u; b < P.n_cols / 32u; b = b + 1u) {
        let mine = lane_x(xl, b);
        let w0 = q8w(row0, b);
        let w1 = q8w(row1, b);
        let w2 = q8w(row2, b);
        let w3 = q8w(row3, b);
        let w4 = q8w(row4, b);
        let w5 = q8w(row5, b);
        let w6 = q8w(row6, b);
        let w7 = q8w(row7, b);
        a0 = a0 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 0u, x0, b));
        a1 = a1 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 1u, x1, b));
        a2 = a2 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 2u, x2, b));
        a3 = a3 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 3u, x3, b));
        a4 = a4 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 4u, x4, b));
        a5 = a5 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 5u, x5, b));
        a6 = a6 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 6u, x6, b));
        a7 = a7 + rows8(w0, w1, w2, w3, w4, w5, w6, w7, token_x(mine, 7u, x7, b));
    }
    store8(tok0 + 0u, r0, a0);
    store8(tok0 + 1u, r0, a1);
    store8(tok0 + 2u, r0, a2);
    store8(tok0 + 3u, r0, a3);
    store8(tok0 + 4u, r0, a4);
    store8(tok0 + 5u, r0, a5);
    store8(tok0 + 6u, r0, a6);
    store8(tok0 + 7u, r0, a7);
}
