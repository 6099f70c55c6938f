// out[t, :] = token_embd[tokens[t], :], dequantized. One dispatch per part of a split
// embedding table; each part writes only the tokens whose row it holds.
// Grid: (ceil(n_cols / 512), n_tokens); each invocation writes 8 values.

struct EmbedParams {
    n_cols: u32,
    row_bytes: u32,
    row0: u32,      // first vocabulary row held by this part
    n_rows: u32,    // rows in this part
}

@group(0) @binding(0) var<uniform> P: EmbedParams;
@group(0) @binding(1) var<uniform> S: Step;
// binding 2: the weights W (weights.wgsl).
@group(0) @binding(3) var<storage, read> tokens: array<u32>;            // [n_tokens]
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;   // [n_tokens, n_cols]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wid.y;
    let g = wid.x * 64u + li;
    if (t >= S.n_tokens || g >= P.n_cols / 8u) {
        return;
    }
    let id = tokens[t];
    if (id < P.row0 || id >= P.row0 + P.n_rows) {
        return;
    }
    let w = dq8((id - P.row0) * P.row_bytes, g);
    let o = (t * P.n_cols) / 4u + 2u * g;
    out[o] = w[0];
    out[o + 1u] = w[1];
}
