// Causal attention for n_tokens queries against the KV cache, one workgroup per
// (query token, head). Keys are visited in tiles of 64 with an online softmax (running
// max and sum), so no score buffer is needed and the cache is read once per query.
// GQA: head h reads KV head h / (n_heads / n_kv_heads). MLA (deepseek2) is MQA over
// the cached latent: one KV head whose key is the latent plus the rope key and whose
// value is the latent alone (V binds the same buffer as K, head_dim_v < head_dim).
//
// K and V are read 4 elements at a time (head widths and strides are multiples of 4,
// checked by the host): lavapipe pays per load instruction, whatever its width. Lane
// li scores key li of a tile; for the values, lane li owns vec4 column c = li % L of
// the output (L: the power of two >= head_dim_v / 4, at most 64) for the keys
// jj = li / L (mod 64 / L) of the tile, so every lane loads values even when a head is
// 64 wide (16 columns x 4 key groups); the key groups are summed at the end. Decode
// attention took 1.5x (SmolLM2) to 2x (1.5B) less time than one element per load.
//
// The loop bounds carry `z`, a zero read from Q that the driver cannot prove zero.
// Lavapipe (Mesa 22.3) inlines uniform values that decide a loop's trip count and
// re-optimizes the shader at every dispatch whose uniforms changed; with short loops
// (head_dim / 4 iterations) that unrolls them and costs ~10 ms per dispatch in the
// driver: without `z` this kernel took ~300 ms per SmolLM2 token instead of ~11.
// The composer defines kv_t, HD_MAX (longest key) and V_PER_LANE (HD_MAX / 256 rounded
// up: vec4 columns per lane). Grid: n_tokens * n_heads workgroups. Composed after
// reduce.wgsl and attn_common.wgsl (params, bindings).

const TILE: u32 = 64u;

@group(0) @binding(3) var<storage, read> K4: array<vec4<kv_t>>;  // [ctx, k_stride / 4]
@group(0) @binding(4) var<storage, read> V4: array<vec4<kv_t>>;  // [ctx, v_stride / 4]

var<workgroup> q: array<vec4<f32>, HD_MAX / 4u>;
var<workgroup> p: array<f32, 64>;
var<workgroup> part: array<vec4<f32>, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wid.x / P.n_heads;
    let h = wid.x % P.n_heads;
    // Zero unless the query overflowed (then the output is not finite anyway), and not
    // a uniform: see the header.
    let z = u32(Q[0] > 3.0e38);
    let hd4 = P.head_dim / 4u + z;
    let hdv4 = P.head_dim_v / 4u + z;
    let kvh = h / (P.n_heads / P.n_kv_heads);
    let k_off4 = kvh * hd4;
    let v_off4 = kvh * hdv4;
    let k_stride4 = P.k_stride / 4u;
    let v_stride4 = P.v_stride / 4u;
    let q0 = t * P.q_stride + h * P.head_dim;
    for (var d = li; d < hd4; d = d + 64u) {
        let i = q0 + 4u * d;
        q[d] = vec4<f32>(Q[i], Q[i + 1u], Q[i + 2u], Q[i + 3u]);
    }
    // Value columns per key group and the number of key groups (both powers of two).
    var cols = 64u;
    while (cols / 2u >= hdv4 && cols > 1u) {
        cols = cols / 2u;
    }
    let groups = 64u / cols;
    let c = li % cols;
    let g = li / cols;
    workgroupBarrier();

    let n_keys = S.pos0 + t + 1u + z;   // causal: positions 0 ..= pos0 + t
    var m = NEG_BIG;
    var l = 0.0;
    var acc = array<vec4<f32>, V_PER_LANE>();   // columns c + cols * k, this key group
    for (var base = 0u; base < n_keys; base = base + TILE) {
        let j = base + li;
        var s = NEG_BIG;
        if (j < n_keys) {
            var dot_qk = 0.0;
            let k0 = j * k_stride4 + k_off4;
            for (var d = 0u; d < hd4; d = d + 1u) {
                dot_qk = dot_qk + dot(q[d], vec4<f32>(K4[k0 + d]));
            }
            s = dot_qk * P.scale;
        }
        let m_new = max(m, workgroup_max(li, s));
        let pj = select(0.0, exp(s - m_new), j < n_keys);
        p[li] = pj;
        let rescale = exp(m - m_new);
        l = l * rescale + workgroup_sum(li, pj);   // the barriers in workgroup_sum also publish p
        let n_tile = min(TILE, n_keys - base);
        for (var k = 0u; k < V_PER_LANE; k = k + 1u) {
            let d = c + cols * k;
            if (d < hdv4) {
                var a = acc[k] * rescale;
                for (var jj = g; jj < n_tile; jj = jj + groups) {
                    a = a + p[jj] * vec4<f32>(V4[(base + jj) * v_stride4 + v_off4 + d]);
                }
                acc[k] = a;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    let o0 = t * P.o_stride + h * P.head_dim_v;
    for (var k = 0u; k < V_PER_LANE; k = k + 1u) {
        part[li] = acc[k];
        workgroupBarrier();
        let d = c + cols * k;
        if (g == 0u && d < hdv4) {
            var sum = part[c];
            for (var gg = 1u; gg < groups; gg = gg + 1u) {
                sum = sum + part[c + cols * gg];
            }
            let o = o0 + 4u * d;
            let r = sum / l;
            O[o] = r.x;
            O[o + 1u] = r.y;
            O[o + 2u] = r.z;
            O[o + 3u] = r.w;
        }
        workgroupBarrier();
    }
}
