// y[r] = W[r, :] . x (+ bias[r]) (+ y[r]): one token, with x as 8-bit blocks.
//
// For CPU-backed devices (lavapipe): each invocation owns 4 rows and walks them a
// 32-weight block at a time, or four at a time where the format's q8w4 shares loads
// between neighbouring blocks (Q4_K, Q6_K; for the others four blocks of four rows
// held unpacked only cost registers: Q8_0 decode 1.2x block by block), taking their
// integer dot products with the activations quantize_q8.wgsl wrote. Every invocation reads the same
// activation words and no barriers are needed. Loads set the speed on lavapipe
// (matmul_q8.wgsl): 4 rows share each activation load (1.2x decode over one row, 1.5B
// Q4_K_M, interleaved runs); 8 rows were no faster (fewer workgroups for 2 cores).
// Lane li of workgroup g owns rows 64g + 16k + li (k = 0..3).
// Bindings and params: mat_common.wgsl, with the quantized x of q8_input.wgsl (read
// through xq(): a uniform buffer, or a storage one in the StorageX twins) and the
// format's reader (q8dot/).
// Grid: ceil(n_rows / 64).

fn store(r_local: u32, acc: f32) {
    if (r_local < P.n_rows) {
        let r = P.out_row0 + r_local;
        Y[r] = finish(r, r, acc);
    }
}

// Blocks b..b+3 of one row (w) against the activations: quants q0..q7 (two vec4 per
// block) and the (d, d * sum q) pairs of blocks b, b + 1 (s01) and b + 2, b + 3 (s23).
fn dot4blocks(w: Q8W4, q0: vec4<u32>, q1: vec4<u32>, q2: vec4<u32>, q3: vec4<u32>,
              q4: vec4<u32>, q5: vec4<u32>, q6: vec4<u32>, q7: vec4<u32>,
              s01: vec4<f32>, s23: vec4<f32>) -> f32 {
    return q8w_dot(w.w0, q0, q1, s01.xy) + q8w_dot(w.w1, q2, q3, s01.zw)
        + q8w_dot(w.w2, q4, q5, s23.xy) + q8w_dot(w.w3, q6, q7, s23.zw);
}

// ROWS (rows per workgroup; 4 per invocation): written by the composer from runtime/gpu/kernels/mat_q8.rs.
const LANES: u32 = ROWS / 4u;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r0 = wid.x * ROWS + li;
    // Rows past the end recompute the last row and are not stored (no divergent exit).
    let row0 = row_start(min(r0, P.n_rows - 1u));
    let row1 = row_start(min(r0 + LANES, P.n_rows - 1u));
    let row2 = row_start(min(r0 + 2u * LANES, P.n_rows - 1u));
    let row3 = row_start(min(r0 + 3u * LANES, P.n_rows - 1u));
    let nb = P.n_cols / 32u;
    let scales = P.n_cols / 16u; // first vec4 of the (d, d * sum q) pairs
    var acc = vec4<f32>();
    // Four blocks at a time where the format's q8w4 shares loads between them.
    let nb4 = select(0u, nb & ~3u, Q8W4_SHARES_LOADS);
    for (var b = 0u; b < nb4; b = b + 4u) {
        let q0 = xq(2u * b);
        let q1 = xq(2u * b + 1u);
        let q2 = xq(2u * b + 2u);
        let q3 = xq(2u * b + 3u);
        let q4 = xq(2u * b + 4u);
        let q5 = xq(2u * b + 5u);
        let q6 = xq(2u * b + 6u);
        let q7 = xq(2u * b + 7u);
        let s01 = bitcast<vec4<f32>>(xq(scales + b / 2u));
        let s23 = bitcast<vec4<f32>>(xq(scales + b / 2u + 1u));
        acc = acc + vec4<f32>(
            dot4blocks(q8w4(row0, b), q0, q1, q2, q3, q4, q5, q6, q7, s01, s23),
            dot4blocks(q8w4(row1, b), q0, q1, q2, q3, q4, q5, q6, q7, s01, s23),
            dot4blocks(q8w4(row2, b), q0, q1, q2, q3, q4, q5, q6, q7, s01, s23),
            dot4blocks(q8w4(row3, b), q0, q1, q2, q3, q4, q5, q6, q7, s01, s23));
    }
    // The rest one by one: the last nb % 4 blocks, or all of them.
    for (var b = nb4; b < nb; b = b + 1u) {
        let x0 = xq(2u * b);
        let x1 = xq(2u * b + 1u);
        let xs = x_scale(0u, b);
        acc = acc + vec4<f32>(
            qdot32(row0, b, x0, x1, xs),
            qdot32(row1, b, x0, x1, xs),
            qdot32(row2, b, x0, x1, xs),
            qdot32(row3, b, x0, x1, xs));
    }
    store(r0, acc.x);
    store(r0 + LANES, acc.y);
    store(r0 + 2u * LANES, acc.z);
    store(r0 + 3u * LANES, acc.w);
}
