// Bindings shared by head_matvec.wgsl and head_matvec_t.wgsl: one weight matrix per
// attention head (a 3-D GGUF tensor, or a run of rows of one), each head multiplying
// its own slice of the input. MLA uses them to absorb attn_k_b into the queries and to
// expand the attention output through attn_v_b (or the two halves of a legacy
// attn_kv_b). Grid: (x, n_heads, n_tokens).

struct HeadParams {
    rows: u32,       // rows of one head's matrix that take part
    n_cols: u32,     // weights per row
    row_bytes: u32,
    head_rows: u32,  // rows from one head's first row to the next's
    row_off: u32,    // first row used within each head
    x_stride: u32,   // input floats per token
    x_head: u32,     // input floats between heads
    x_off: u32,
    y_stride: u32,   // output floats per token
    y_head: u32,     // output floats between heads
    y_off: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> P: HeadParams;
@group(0) @binding(1) var<uniform> S: Step;
// binding 2: the weights W (weights.wgsl).
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

fn head_row(h: u32, r: u32) -> u32 {
    return (h * P.head_rows + P.row_off + r) * P.row_bytes;
}
