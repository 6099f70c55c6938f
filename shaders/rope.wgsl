// Rotary position embedding of one head row per workgroup, optionally preceded by an
// RMSNorm of the row's first `norm_n` dims (qwen3's per-head q_norm / k_norm: all of
// them; deepseek2's kv_a_norm: the latent before the rope part), written either to a
// plain f32 buffer (queries) or straight into the KV cache at the token's position
// (keys; values go through with n_rot = 0, which makes this a copy into the cache).
//
// A row is `head_dim` values read at src[t * src_stride + h * src_head + src_off ..]
// and written at dst[(t or pos) * dst_stride + h * dst_head + dst_off ..]; the rotated
// dims are rot0 .. rot0 + n_rot of the row (deepseek2 ropes only the tail of its heads).
//
// Pairs follow llama.cpp: adjacent (x[2i], x[2i+1]) for llama and deepseek2, NEOX
// halves (x[i], x[i + n_rot/2]) for qwen2 and qwen3. The angle of pair i at position p
// is p * inv_freq[i]; inv_freq (freq_base^(-2i/n_rot), divided by llama3's rope_freqs,
// scaled linearly or blended by YaRN) is computed once on the CPU in f64, and cos and
// sin are multiplied by `mscale` (YaRN's magnitude factor; 1 otherwise), as ggml does.
// Grid: n_tokens * n_heads workgroups. The composer defines `dst_t` (f32 or kv_t) and
// adds reduce.wgsl.

struct RopeParams {
    head_dim: u32,     // values per row
    n_heads: u32,
    src_stride: u32,   // floats per token in src
    n_rot: u32,        // rotated dims; 0: no rotation
    dst_stride: u32,   // elements per token (or per position) in dst
    flags: u32,        // FLAG_NEOX | FLAG_NORM | FLAG_DST_AT_POS
    eps: f32,
    mscale: f32,
    src_head: u32,     // floats between heads in src
    src_off: u32,
    dst_head: u32,     // elements between heads in dst
    dst_off: u32,
    rot0: u32,         // first rotated dim of the row
    norm_n: u32,       // dims normalised (from 0) with FLAG_NORM
    _pad0: u32,
    _pad1: u32,
}

// FLAG_NEOX, FLAG_NORM, FLAG_DST_AT_POS and MAX_ROW (the longest row: deepseek's cached
// latent, 512, plus its rope key, 64): written by the composer from
// runtime/gpu/kernels/rope.rs.

@group(0) @binding(0) var<uniform> P: RopeParams;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> src: array<f32>;            // [n_tokens, src_stride]
@group(0) @binding(3) var<storage, read_write> dst: array<dst_t>;    // [tokens or ctx, dst_stride]
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;         // [norm_n] (or a dummy)
@group(0) @binding(5) var<storage, read> inv_freq: array<f32>;       // [n_rot / 2] (or a dummy)

var<workgroup> row: array<f32, MAX_ROW>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wid.x / P.n_heads;
    let h = wid.x % P.n_heads;
    let hd = P.head_dim;
    let s0 = t * P.src_stride + h * P.src_head + P.src_off;
    for (var i = li; i < hd; i = i + 64u) {
        row[i] = src[s0 + i];
    }
    if ((P.flags & FLAG_NORM) != 0u) {
        var ss = 0.0;
        for (var i = li; i < P.norm_n; i = i + 64u) {
            ss = ss + row[i] * row[i];
        }
        let scale = 1.0 / sqrt(workgroup_sum(li, ss) / f32(P.norm_n) + P.eps);
        for (var i = li; i < P.norm_n; i = i + 64u) {
            row[i] = (row[i] * scale) * norm_w[i];
        }
    }
    workgroupBarrier();

    let pos = S.pos0 + t;
    var d0 = t * P.dst_stride + h * P.dst_head + P.dst_off;
    if ((P.flags & FLAG_DST_AT_POS) != 0u) {
        d0 = pos * P.dst_stride + h * P.dst_head + P.dst_off;
    }
    let half_rot = P.n_rot / 2u;
    for (var i = li; i < hd; i = i + 64u) {
        var v = row[i];
        if (i >= P.rot0 && i < P.rot0 + P.n_rot) {
            // Pair index j and the partner of element i, relative to rot0.
            let r = i - P.rot0;
            var j: u32;
            var partner: u32;
            var first: bool;
            if ((P.flags & FLAG_NEOX) != 0u) {
                j = r % half_rot;
                first = r < half_rot;
                partner = select(i - half_rot, i + half_rot, first);
            } else {
                j = r / 2u;
                first = (r % 2u) == 0u;
                partner = select(i - 1u, i + 1u, first);
            }
            let theta = f32(pos) * inv_freq[j];
            let c = cos(theta) * P.mscale;
            let s = sin(theta) * P.mscale;
            let other = row[partner];
            // first: x0 * cos - x1 * sin; second: x0 * sin + x1 * cos (x0 = first of pair)
            v = select(other * s + v * c, v * c - other * s, first);
        }
        dst[d0 + i] = dst_t(v);
    }
}
