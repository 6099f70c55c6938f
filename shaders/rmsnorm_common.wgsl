// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight, one workgroup per row,
// as llama.cpp's rms_norm followed by the multiply with the norm weight: the params,
// bindings and arithmetic of rmsnorm.wgsl and rmsnorm_q8.wgsl. Composed after
// reduce.wgsl.

struct NormParams {
    n_cols: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: NormParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> x: array<f32>;             // [rows, n_cols]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;     // [rows, n_cols]
@group(0) @binding(4) var<storage, read> weight: array<f32>;        // [n_cols]

// 1 / sqrt(mean(x^2) + eps) of the row that starts at x[base]; every invocation of the
// workgroup (64) calls it and gets it.
fn row_scale(base: u32, li: u32) -> f32 {
    var ss = 0.0;
    for (var i = li; i < P.n_cols; i = i + 64u) {
        let v = x[base + i];
        ss = ss + v * v;
    }
    return 1.0 / sqrt(workgroup_sum(li, ss) / f32(P.n_cols) + P.eps);
}

// Output value i of the row that starts at x[base].
fn normed(base: u32, i: u32, scale: f32) -> f32 {
    return (x[base + i] * scale) * weight[i];
}
