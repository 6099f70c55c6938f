// Bindings and epilogue shared by matvec.wgsl and matmul.wgsl (composed before them).
//
// y = W . x (+ bias) (+ y): the optional residual add makes "x += W_o . attn" one
// dispatch instead of two.

struct MatParams {
    n_rows: u32,    // rows of W in this part (a matrix over the binding limit is split)
    n_cols: u32,    // weights per row, a multiple of 32
    row_bytes: u32,
    out_row0: u32,  // output index of this part's first row
    y_stride: u32,  // output floats per token (all rows of the matrix)
    x_stride: u32,  // input floats per token
    flags: u32,     // FLAG_BIAS | FLAG_ACCUMULATE; 8-bit kernels: rows in groups (q8dot/common.wgsl)
    w_shift: u32,   // weights in a texture: log2 of its row width (q8dot/w4_texture.wgsl)
}

// FLAG_BIAS, FLAG_ACCUMULATE: written by the composer from runtime/gpu/kernels/mat.rs.

@group(0) @binding(0) var<uniform> P: MatParams;
@group(0) @binding(1) var<uniform> S: Step;
// binding 2, the weights, is declared by weights.wgsl (W) or q8dot/w4_*.wgsl (W4, W4T).
// binding 3, the input, is declared by each kernel: f32 rows (X) or 8-bit blocks read
// through xq() (q8_x_storage.wgsl XQ, q8_x_uniform.wgsl XQU).
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;    // [n_tokens, y_stride]
@group(0) @binding(5) var<storage, read> B: array<f32>;          // [y_stride] bias (or a dummy)

// Output value for row r (global index) with the bias and residual applied.
fn finish(r: u32, y_index: u32, dot_value: f32) -> f32 {
    var y = dot_value;
    if ((P.flags & FLAG_BIAS) != 0u) {
        y = y + B[r];
    }
    if ((P.flags & FLAG_ACCUMULATE) != 0u) {
        y = Y[y_index] + y;
    }
    return y;
}

