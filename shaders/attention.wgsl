// Causal attention for n_tokens queries against the KV cache, one workgroup per
// (query token, head). Keys are visited in tiles of 64 with an online softmax (running
// max and sum), so no score buffer is needed and the cache is read once per query.
// GQA: head h reads KV head h / (n_heads / n_kv_heads). MLA (deepseek2) is MQA over
// the cached latent: one KV head whose key is the latent plus the rope key and whose
// value is the latent alone (V binds the same buffer as K, head_dim_v < head_dim).
// The composer defines kv_t, HD_MAX (longest key) and V_PER_LANE (HD_MAX / 64 rounded
// up). Grid: n_tokens * n_heads workgroups. Composed after reduce.wgsl and
// attn_common.wgsl (params, bindings).
// The key loop is left as it is on purpose: on lavapipe, taking 4 elements per
// iteration (as a vec4 load or as four scalar loads, the same sum) made SmolLM2's
// decode attention 15-20x slower (about 300 against 15-20 ms per token), and so did
// running the unchanged loop over half or a quarter of the dims (for that one, perf put
// 66% of the samples in libvulkan_lvp itself, not in shader code). Not understood yet
// (issue note of 2026-11-29).

const TILE: u32 = 64u;

var<workgroup> q: array<f32, HD_MAX>;
var<workgroup> p: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wid.x / P.n_heads;
    let h = wid.x % P.n_heads;
    let hd = P.head_dim;
    let hdv = P.head_dim_v;
    let kvh = h / (P.n_heads / P.n_kv_heads);
    let k_off = kvh * hd;
    let v_off = kvh * hdv;
    for (var d = li; d < hd; d = d + 64u) {
        q[d] = Q[t * P.q_stride + h * hd + d];
    }
    workgroupBarrier();

    let n_keys = S.pos0 + t + 1u;   // causal: positions 0 ..= pos0 + t
    var m = NEG_BIG;
    var l = 0.0;
    var acc = array<f32, V_PER_LANE>();   // this invocation's dims li + 64 k
    for (var base = 0u; base < n_keys; base = base + TILE) {
        let j = base + li;
        var s = NEG_BIG;
        if (j < n_keys) {
            var dot_qk = 0.0;
            let k0 = j * P.k_stride + k_off;
            for (var d = 0u; d < hd; d = d + 1u) {
                dot_qk = dot_qk + q[d] * f32(K[k0 + d]);
            }
            s = dot_qk * P.scale;
        }
        let m_new = max(m, workgroup_max(li, s));
        let pj = select(0.0, exp(s - m_new), j < n_keys);
        p[li] = pj;
        let c = exp(m - m_new);
        l = l * c + workgroup_sum(li, pj);   // the barriers in workgroup_sum also publish p
        let n_tile = min(TILE, n_keys - base);
        for (var k = 0u; k < V_PER_LANE; k = k + 1u) {
            let d = li + 64u * k;
            if (d < hdv) {
                var a = acc[k] * c;
                for (var jj = 0u; jj < n_tile; jj = jj + 1u) {
                    a = a + p[jj] * f32(V[(base + jj) * P.v_stride + v_off + d]);
                }
                acc[k] = a;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    for (var k = 0u; k < V_PER_LANE; k = k + 1u) {
        let d = li + 64u * k;
        if (d < hdv) {
            O[t * P.o_stride + h * hdv + d] = acc[k] / l;
        }
    }
}
