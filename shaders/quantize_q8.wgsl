// Activations to 8-bit blocks for the integer-dot matvec (matvec_q8.wgsl).
//
// Each run of 32 values becomes 32 int8 q = round(x * 127 / amax) and a scale
// d = amax / 127, as llama.cpp's quantize_row_q8_1 does on AVX2 (round to nearest
// even), plus s = d * sum(q), which formats with an offset (Q4_1, Q4_K, ...) need.
// Layout per token: n/4 words of packed q, then n/32 pairs (d, s) as f32 bits, padded
// to a multiple of 4 words (the readers load vec4s); tokens one after another. One
// invocation per block.
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

// BLOCKS (blocks per workgroup, one per invocation): written by the composer from runtime/gpu/kernels/mat_q8.rs.
@compute @workgroup_size(BLOCKS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let b = wid.x * BLOCKS + li;
    if (b >= P.n / 32u) {
        return;
    }
    let t = wid.y;
    let x0 = t * P.x_stride + 32u * b;
    let q0 = t * ((P.n / 4u + P.n / 16u + 3u) & ~3u);
    var amax = 0.0;
    for (var i = 0u; i < 32u; i = i + 1u) {
        amax = max(amax, abs(X[x0 + i]));
    }
    let d = amax / 127.0;
    let id = select(0.0, 127.0 / amax, amax > 0.0);
    var sum = 0;
    for (var w = 0u; w < 8u; w = w + 1u) {
        let q = vec4<i32>(round(vec4<f32>(X[x0 + 4u * w], X[x0 + 4u * w + 1u], X[x0 + 4u * w + 2u], X[x0 + 4u * w + 3u]) * id));
        sum = sum + q.x + q.y + q.z + q.w;
        XQ[q0 + 8u * b + w] = pack4xI8(q);
    }
    let sd = q0 + P.n / 4u + 2u * b;
    XQ[sd] = bitcast<u32>(d);
    XQ[sd + 1u] = bitcast<u32>(d * f32(sum));
}
