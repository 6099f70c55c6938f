// Integer-dot interface, shared by every format in shaders/q8dot/ (composed before it):
//   q8w(row, b): weights 32b..32b+31 of the row whose bytes start at byte `row`, as
//   int8 words (q0: weights 0..15, q1: 16..31) with the factors that turn integer dot
//   products into values: a.x for q0, a.y for q1 (two scales: Q6_K's 16-weight
//   sub-blocks), and m, the coefficient of the activation block's d * sum(q) (formats
//   with an offset). Follows llama.cpp's ggml_vec_dot_<format>_q8.
//   qdot32(row, b, xq, xs): that block dotted with the activation block whose packed
//   int8 words start at XQ[xq] and whose (d, d * sum q) is xs.
// A matmul unpacks each weight block once (q8w) for all its tokens (q8w_dot).

struct Q8W {
    q0: vec4<u32>,
    q1: vec4<u32>,
    a: vec2<f32>,
    m: f32,
}

fn q8w_dot(w: Q8W, xq: u32, xs: vec2<f32>) -> f32 {
    let s0 = dot4I8Packed(w.q0.x, XQ[xq]) + dot4I8Packed(w.q0.y, XQ[xq + 1u])
        + dot4I8Packed(w.q0.z, XQ[xq + 2u]) + dot4I8Packed(w.q0.w, XQ[xq + 3u]);
    let s1 = dot4I8Packed(w.q1.x, XQ[xq + 4u]) + dot4I8Packed(w.q1.y, XQ[xq + 5u])
        + dot4I8Packed(w.q1.z, XQ[xq + 6u]) + dot4I8Packed(w.q1.w, XQ[xq + 7u]);
    return xs.x * (w.a.x * f32(s0) + w.a.y * f32(s1)) + w.m * xs.y;
}

fn qdot32(row: u32, b: u32, xq: u32, xs: vec2<f32>) -> f32 {
    return q8w_dot(q8w(row, b), xq, xs);
}

// Words k .. k+3 of a byte run at `start` (even offset) whose first word index is `a`.
fn run4(start: u32, a: u32) -> vec4<u32> {
    let w0 = W[a];
    let w1 = W[a + 1u];
    let w2 = W[a + 2u];
    let w3 = W[a + 3u];
    let w4 = W[a + 4u];
    return vec4<u32>(
        w_run_word(start, w0, w1),
        w_run_word(start, w1, w2),
        w_run_word(start, w2, w3),
        w_run_word(start, w3, w4),
    );
}

const NIB: u32 = 0x0f0f0f0fu;
