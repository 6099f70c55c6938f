// Params and bindings shared by attention.wgsl and attention_rows.wgsl (composed
// before them). The composer defines kv_t.

struct AttnParams {
    head_dim: u32,    // key (and query) width of a head
    head_dim_v: u32,  // value (and output) width of a head
    n_heads: u32,
    n_kv_heads: u32,
    q_stride: u32,    // floats per token in Q
    k_stride: u32,    // elements per position in K
    v_stride: u32,    // elements per position in V
    o_stride: u32,    // floats per token in O
    scale: f32,       // multiplier of q·k
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: AttnParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> Q: array<f32>;          // [n_tokens, q_stride]
// Bindings 3 and 4, K [ctx, k_stride] and V [ctx, v_stride], are declared by each
// kernel: as kv_t elements (attention_rows.wgsl) or as vec4s of them (attention.wgsl).
@group(0) @binding(5) var<storage, read_write> O: array<f32>;    // [n_tokens, o_stride]

const NEG_BIG: f32 = -1.0e30;  // not -inf: exp(NEG_BIG - m) is 0 without inf - inf = NaN
