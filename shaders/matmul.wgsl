// Y[t, r] = W[r, :] . X[t, :] (+ bias[r]) (+ Y[t, r]): many tokens, prefill path.
//
// v1: a workgroup computes a tile of 32 rows x 16 tokens. Per step of 32 columns it
// dequantizes the 32x32 weight tile once into workgroup memory (each weight is read
// once per 16 tokens) and loads the 16x32 activation tile; each of the 64 invocations
// then owns one row and 8 tokens. 6 KiB of workgroup memory: fits downlevel devices.
// Bindings and params: mat_common.wgsl.

@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;    // [n_tokens, x_stride]

// TILE_ROWS, TILE_TOKENS (the workgroup's tile): written by the composer from runtime/gpu/kernels/mat.rs.

var<workgroup> w_tile: array<vec4<f32>, 256>;  // [32 rows][8 vec4] = 32 columns
var<workgroup> x_tile: array<vec4<f32>, 128>;  // [16 tokens][8 vec4]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = wid.x * TILE_ROWS;
    let tok0 = wid.y * TILE_TOKENS;
    let my_row = li % 32u;
    let my_tok0 = (li / 32u) * 8u;
    var acc = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);

    for (var k0 = 0u; k0 < P.n_cols; k0 = k0 + 32u) {
        // Weights: 32 rows x 4 groups of 8; invocation li loads groups li/32 and li/32 + 2.
        for (var i = 0u; i < 2u; i = i + 1u) {
            let g = li / 32u + 2u * i;
            var w = mat2x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0));
            if (row0 + my_row < P.n_rows) {
                w = dq8((row0 + my_row) * P.row_bytes, k0 / 8u + g);
            }
            w_tile[my_row * 8u + 2u * g] = w[0];
            w_tile[my_row * 8u + 2u * g + 1u] = w[1];
        }
        // Activations: 16 tokens x 8 vec4.
        for (var i = 0u; i < 2u; i = i + 1u) {
            let idx = li + 64u * i;
            let t = tok0 + idx / 8u;
            var x = vec4<f32>(0.0);
            if (t < S.n_tokens) {
                x = X[(t * P.x_stride + k0) / 4u + idx % 8u];
            }
            x_tile[idx] = x;
        }
        workgroupBarrier();
        for (var v = 0u; v < 8u; v = v + 1u) {
            let w = w_tile[my_row * 8u + v];
            for (var j = 0u; j < 8u; j = j + 1u) {
                acc[j] = acc[j] + dot(w, x_tile[(my_tok0 + j) * 8u + v]);
            }
        }
        workgroupBarrier();
    }

    let r_local = row0 + my_row;
    if (r_local >= P.n_rows) {
        return;
    }
    let r = P.out_row0 + r_local;
    for (var j = 0u; j < 8u; j = j + 1u) {
        let t = tok0 + my_tok0 + j;
        if (t < S.n_tokens) {
            let yi = t * P.y_stride + r;
            Y[yi] = finish(r, yi, acc[j]);
        }
    }
}
