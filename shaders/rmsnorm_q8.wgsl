// RMSNorm of each row (rmsnorm_common.wgsl) that also writes its output as 8-bit blocks
// (q8_block.wgsl) for the 8-bit mat ops that read it, bit for bit what QuantizeQ8 would
// make of `out`. Grid: one workgroup per row (token).

@group(0) @binding(5) var<storage, read_write> XQ: array<u32>;

// The row's scale, for q8_value (set before the blocks are quantized).
var<private> scale_of_row: f32;

fn q8_value(t: u32, i: u32) -> f32 {
    return normed(t * P.n_cols, i, scale_of_row);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let base = wid.x * P.n_cols;
    scale_of_row = row_scale(base, li);
    for (var i = li; i < P.n_cols; i = i + 64u) {
        out[base + i] = normed(base, i, scale_of_row);
    }
    for (var b = li; b < P.n_cols / 32u; b = b + 64u) {
        quantize_block(wid.x, P.n_cols, b);
    }
}
