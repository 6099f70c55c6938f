// Causal attention for n_tokens queries against the KV cache, one workgroup per
// (query token, head). Keys are visited in tiles of 64 with an online softmax (running
// max and sum), so no score buffer is needed and the cache is read once per query.
// GQA: head h reads KV head h / (n_heads / n_kv_heads). The composer defines kv_t.
// Grid: n_tokens * n_heads workgroups. Composed after reduce.wgsl.

struct AttnParams {
    head_dim: u32,
    n_heads: u32,
    n_kv_heads: u32,
    q_stride: u32,    // floats per token in Q and O
    kv_stride: u32,   // elements per position in the caches (n_kv_heads * head_dim)
    scale: f32,       // 1 / sqrt(head_dim)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: AttnParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> Q: array<f32>;          // [n_tokens, n_heads * head_dim]
@group(0) @binding(3) var<storage, read> K: array<kv_t>;         // [ctx, n_kv_heads * head_dim]
@group(0) @binding(4) var<storage, read> V: array<kv_t>;         // [ctx, n_kv_heads * head_dim]
@group(0) @binding(5) var<storage, read_write> O: array<f32>;    // [n_tokens, n_heads * head_dim]

const TILE: u32 = 64u;
const NEG_BIG: f32 = -1.0e30;  // not -inf: exp(NEG_BIG - m) is 0 without inf - inf = NaN

var<workgroup> q: array<f32, 256>;
var<workgroup> p: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wid.x / P.n_heads;
    let h = wid.x % P.n_heads;
    let hd = P.head_dim;
    let kv_off = (h / (P.n_heads / P.n_kv_heads)) * hd;
    for (var d = li; d < hd; d = d + 64u) {
        q[d] = Q[t * P.q_stride + h * hd + d];
    }
    workgroupBarrier();

    let n_keys = S.pos0 + t + 1u;   // causal: positions 0 ..= pos0 + t
    var m = NEG_BIG;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);   // this invocation's dims li + 64 k
    for (var base = 0u; base < n_keys; base = base + TILE) {
        let j = base + li;
        var s = NEG_BIG;
        if (j < n_keys) {
            var dot_qk = 0.0;
            let k0 = j * P.kv_stride + kv_off;
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
        for (var k = 0u; k < 4u; k = k + 1u) {
            let d = li + 64u * k;
            if (d < hd) {
                var a = acc[k] * c;
                for (var jj = 0u; jj < n_tile; jj = jj + 1u) {
                    a = a + p[jj] * f32(V[(base + jj) * P.kv_stride + kv_off + d]);
                }
                acc[k] = a;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    for (var k = 0u; k < 4u; k = k + 1u) {
        let d = li + 64u * k;
        if (d < hd) {
            O[t * P.q_stride + h * hd + d] = acc[k] / l;
        }
    }
}
