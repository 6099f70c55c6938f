// Causal attention for prefill on CPU-backed devices: one invocation per (query, head),
// no workgroup memory, no barriers.
//
// attention.wgsl spends a workgroup of 64 on one query and reduces with barriers: on
// lavapipe each barrier suspends and resumes every SIMD group of the workgroup, and
// prefill attention took a quarter of SmolLM2's prefill at ~0.15 GMAC/s. Here the
// invocations of a workgroup are consecutive queries of one head, so for key j they
// all read the same K and V row (uniform loads, once per SIMD group); each keeps its
// query and output row in private arrays and runs an online softmax over the keys one
// at a time. Every invocation walks the keys of the workgroup's last query (a uniform
// trip count) and skips the ones after its own position.
// Params and bindings: attn_common.wgsl; the composer defines kv_t and HD_MAX.
// Grid: (n_heads, ceil(n_tokens / 16)).

// QUERIES (per workgroup, one per invocation): written by the composer from runtime/gpu/kernels/attention.rs.

@group(0) @binding(3) var<storage, read> K: array<kv_t>;         // [ctx, k_stride]
@group(0) @binding(4) var<storage, read> V: array<kv_t>;         // [ctx, v_stride]

@compute @workgroup_size(QUERIES)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.x;
    let t_first = wid.y * QUERIES;
    let t_own = t_first + li;
    let t = min(t_own, S.n_tokens - 1u);
    let hd = P.head_dim;
    let hdv = P.head_dim_v;
    let kvh = h / (P.n_heads / P.n_kv_heads);
    let k_off = kvh * hd;
    let v_off = kvh * hdv;

    var q: array<f32, HD_MAX>;
    for (var d = 0u; d < hd; d = d + 1u) {
        q[d] = Q[t * P.q_stride + h * hd + d] * P.scale;
    }
    var acc: array<f32, HD_MAX>;
    let n_keys = S.pos0 + t + 1u;   // causal: positions 0 ..= pos0 + t
    let n_walk = S.pos0 + min(t_first + QUERIES, S.n_tokens);
    var m = NEG_BIG;
    var l = 0.0;
    for (var j = 0u; j < n_walk; j = j + 1u) {
        let k0 = j * P.k_stride + k_off;
        var s = 0.0;
        for (var d = 0u; d < hd; d = d + 1u) {
            s = s + q[d] * f32(K[k0 + d]);
        }
        s = select(NEG_BIG, s, j < n_keys);
        let m_new = max(m, s);
        let c = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * c + p;
        let v0 = j * P.v_stride + v_off;
        for (var d = 0u; d < hdv; d = d + 1u) {
            acc[d] = acc[d] * c + p * f32(V[v0 + d]);
        }
        m = m_new;
    }
    if (t_own < S.n_tokens) {
        for (var d = 0u; d < hdv; d = d + 1u) {
            O[t * P.o_stride + h * hdv + d] = acc[d] / l;
        }
    }
}
