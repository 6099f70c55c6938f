//! Causal attention over the KV cache: a workgroup per query and head that reduces
//! across its 64 lanes (decode; attention.wgsl, also in a wide variant for MLA's latent
//! rows), or one query per invocation without barriers (prefill on CPU-backed devices;
//! attention_rows.wgsl). Params and bindings: shaders/attn_common.wgsl.

use bytemuck::{Pod, Zeroable};

use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::{Error, Result};
use crate::gpu::pipelines::{KvType, PipelineKey, REDUCE};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AttnParams {
    head_dim: u32,
    head_dim_v: u32,
    n_heads: u32,
    n_kv_heads: u32,
    q_stride: u32,
    k_stride: u32,
    v_stride: u32,
    o_stride: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Largest head the rope and attention kernels hold in workgroup memory.
pub const MAX_HEAD_DIM: u32 = 256;
/// Largest MLA cache row (latent 512 + rope key 64) of rope.wgsl and the wide attention.
pub const MAX_LATENT_DIM: u32 = 576;
/// Queries per workgroup of attention_rows.wgsl (one per invocation).
const ATTENTION_ROWS_QUERIES: u32 = 16;

const ATTN_COMMON: &str = include_str!("../../../shaders/attn_common.wgsl");
const BINDINGS: &[Binding] = {
    use Binding::{Read, ReadWrite, Uniform};
    // params, step, q, k, v, out
    &[Uniform, Uniform, Read, Read, Read, ReadWrite]
};

pub(super) const ATTENTION: KernelSpec = KernelSpec {
    bindings: BINDINGS,
    weights: WeightReader::None,
    kv: true,
    subgroups: false,
    prelude: "",
    // HD_MAX: the longest key; V_PER_LANE: vec4 value columns per lane (HD_MAX / 256
    // rounded up).
    consts: &[("HD_MAX", MAX_HEAD_DIM), ("V_PER_LANE", 1)],
    headers: &[REDUCE, ATTN_COMMON],
    body: include_str!("../../../shaders/attention.wgsl"),
};
pub(super) const ATTENTION_WIDE: KernelSpec = KernelSpec {
    consts: &[("HD_MAX", MAX_LATENT_DIM), ("V_PER_LANE", 3)],
    ..ATTENTION
};
const _: () = assert!(MAX_LATENT_DIM.div_ceil(256) == 3 && MAX_HEAD_DIM.div_ceil(256) == 1);
pub(super) const ATTENTION_ROWS: KernelSpec = KernelSpec {
    consts: &[
        ("HD_MAX", MAX_HEAD_DIM),
        ("QUERIES", ATTENTION_ROWS_QUERIES),
    ],
    headers: &[ATTN_COMMON],
    body: include_str!("../../../shaders/attention_rows.wgsl"),
    ..ATTENTION
};

pub struct AttnOp<'b> {
    pub q: &'b wgpu::Buffer,   // [n_tokens, n_heads * head_dim]
    pub k: &'b wgpu::Buffer,   // [ctx, k_stride] kv
    pub v: &'b wgpu::Buffer,   // [ctx, v_stride] kv (MLA: the same buffer as k)
    pub out: &'b wgpu::Buffer, // [n_tokens, n_heads * head_dim_v]
    pub kv: KvType,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub head_dim_v: u32,
    /// Elements per position in the caches.
    pub k_stride: u32,
    pub v_stride: u32,
    pub scale: f32,
}

impl OpBuilder<'_> {
    pub fn attention(&mut self, name: &str, a: &AttnOp<'_>) -> Result<Op> {
        let wide = a.head_dim > MAX_HEAD_DIM || a.head_dim_v > MAX_HEAD_DIM;
        if a.head_dim > MAX_LATENT_DIM
            || a.head_dim_v > MAX_LATENT_DIM
            || a.n_kv_heads == 0
            || a.n_heads % a.n_kv_heads != 0
        {
            return Err(Error::Invalid(format!(
                "{name}: {} heads over {} KV heads of {}/{} dims",
                a.n_heads, a.n_kv_heads, a.head_dim, a.head_dim_v
            )));
        }
        // attention.wgsl reads keys and values as vec4s.
        if [a.head_dim, a.head_dim_v, a.k_stride, a.v_stride]
            .iter()
            .any(|n| n % 4 != 0)
        {
            return Err(Error::Invalid(format!(
                "{name}: head widths {}/{} and KV strides {}/{} must be multiples of 4",
                a.head_dim, a.head_dim_v, a.k_stride, a.v_stride
            )));
        }
        let params = AttnParams {
            head_dim: a.head_dim,
            head_dim_v: a.head_dim_v,
            n_heads: a.n_heads,
            n_kv_heads: a.n_kv_heads,
            q_stride: a.n_heads * a.head_dim,
            k_stride: a.k_stride,
            v_stride: a.v_stride,
            o_stride: a.n_heads * a.head_dim_v,
            scale: a.scale,
            _pad: [0; 3],
        };
        // Prefill graphs on CPU-backed devices take the barrier-free kernel (one query
        // per invocation); decode keeps a workgroup per query, whose 64 lanes share
        // the keys: one query per invocation leaves the other lanes idle, and SmolLM2's
        // decode attention took 12 ms per token that way against 6 ms (lavapipe).
        let rows = !wide && self.ctx.profile.cpu_device && self.max_tokens > 1;
        let (kernel, grid) = match (wide, rows) {
            (true, _) => (
                Kernel::AttentionWide,
                Grid::TokenRows {
                    per_token: a.n_heads,
                },
            ),
            (false, true) => (
                Kernel::AttentionRows,
                Grid::TokenTiles {
                    x: a.n_heads,
                    tokens_per_y: ATTENTION_ROWS_QUERIES,
                },
            ),
            (false, false) => (
                Kernel::Attention,
                Grid::TokenRows {
                    per_token: a.n_heads,
                },
            ),
        };
        let key = PipelineKey::with_kv(kernel, a.kv);
        self.op(
            name.to_string(),
            key,
            &params,
            &[a.q, a.k, a.v, a.out],
            grid,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, kv_types, Harness, Rng};
    use super::*;
    use crate::gpu::buffers;

    /// Reference causal attention for tokens at pos0.. over caches of pos0 + tokens rows.
    /// `[tokens, pos0, heads, kv_heads, head_dim]` of a reference attention call.
    type AttnShape = [usize; 5];

    fn ref_attention(q: &[f32], k: &[f32], v: &[f32], shape: AttnShape) -> Vec<f32> {
        let [tokens, pos0, heads, kv_heads, hd] = shape;
        let dims = [hd, hd, kv_heads * hd, kv_heads * hd];
        ref_attention_dims(
            q,
            k,
            v,
            [tokens, pos0, heads, kv_heads],
            dims,
            1.0 / (hd as f64).sqrt(),
        )
    }

    /// As [`ref_attention`] with key width `hd`, value width `hdv`, cache strides `ks`, `vs`
    /// (values of KV head kh start at kh * hdv in their row) and a q·k `scale`.
    fn ref_attention_dims(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        [tokens, pos0, heads, kv_heads]: [usize; 4],
        [hd, hdv, ks, vs]: [usize; 4],
        scale: f64,
    ) -> Vec<f32> {
        let mut out = vec![0.0; tokens * heads * hdv];
        for t in 0..tokens {
            for h in 0..heads {
                let kh = h / (heads / kv_heads);
                let qrow = &q[(t * heads + h) * hd..(t * heads + h + 1) * hd];
                let n = pos0 + t + 1;
                let scores: Vec<f64> = (0..n)
                    .map(|j| {
                        let krow = &k[j * ks + kh * hd..j * ks + (kh + 1) * hd];
                        qrow.iter()
                            .zip(krow)
                            .map(|(a, b)| f64::from(*a) * f64::from(*b))
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in 0..hdv {
                    let acc: f64 = (0..n)
                        .map(|j| e[j] * f64::from(v[j * vs + kh * hdv + d]))
                        .sum();
                    out[(t * heads + h) * hdv + d] = (acc / sum) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_reference_causal_gqa_across_tiles() {
        // 70 + 5 keys: more than one 64-key tile; 6 heads over 2 KV heads. On a CPU-backed
        // device (lavapipe) this takes the barrier-free prefill kernel; the other cases
        // check both kernels whatever the adapter.
        let mut h = Harness::new();
        let cpu_device = h.ctx.profile.cpu_device;
        check_attention(&mut h, 5, 70);
        // 37 queries: two full 16-query workgroups of AttentionRows and a partial one,
        // with causal limits inside each; and one query (decode).
        for rows in [false, true] {
            h.ctx.profile.cpu_device = rows;
            check_attention(&mut h, 37, 3);
            check_attention(&mut h, 1, 100);
        }
        h.ctx.profile.cpu_device = cpu_device;
    }

    fn check_attention(h: &mut Harness, tokens: usize, pos0: usize) {
        let (heads, kv_heads, hd) = (6usize, 2usize, 80usize);
        let n_keys = pos0 + tokens;
        let mut rng = Rng(23);
        let q: Vec<f32> = rng
            .vec(tokens * heads * hd)
            .iter()
            .map(|v| v * 3.0)
            .collect();
        let k = rng.vec(n_keys * kv_heads * hd);
        let v = rng.vec(n_keys * kv_heads * hd);
        let kv_types = kv_types(h);
        for &kv in kv_types {
            // The cache holds what the kernel reads: f16-rounded values for an f16 cache.
            let round = |x: &[f32]| -> Vec<f32> {
                match kv {
                    KvType::F32 => x.to_vec(),
                    KvType::F16 => x.iter().map(|&a| half::f16::from_f32(a).to_f32()).collect(),
                }
            };
            let (kr, vr) = (round(&k), round(&v));
            let upload = |x: &[f32]| match kv {
                KvType::F32 => h.f32s(x),
                KvType::F16 => {
                    let hv: Vec<half::f16> = x.iter().map(|&a| half::f16::from_f32(a)).collect();
                    buffers::upload_bytes(&h.ctx, "cache", bytemuck::cast_slice(&hv), 0)
                }
            };
            let (qb, kb, vb) = (h.f32s(&q), upload(&kr), upload(&vr));
            let out = buffers::storage(&h.ctx, "out", (tokens * heads * hd * 4) as u64);
            let mut kernel = Kernel::Attention;
            let got = h.run(
                tokens as u32,
                pos0 as u32,
                &out,
                tokens * heads * hd,
                |ob, g| {
                    let a = AttnOp {
                        q: &qb,
                        k: &kb,
                        v: &vb,
                        out: &out,
                        kv,
                        n_heads: heads as u32,
                        n_kv_heads: kv_heads as u32,
                        head_dim: hd as u32,
                        head_dim_v: hd as u32,
                        k_stride: (kv_heads * hd) as u32,
                        v_stride: (kv_heads * hd) as u32,
                        scale: 1.0 / (hd as f32).sqrt(),
                    };
                    let op = ob.attention("attn", &a).unwrap();
                    kernel = op.key.kernel;
                    g.op(op);
                },
            );
            let rows = h.ctx.profile.cpu_device && tokens > 1;
            let expected = if rows {
                Kernel::AttentionRows
            } else {
                Kernel::Attention
            };
            assert_eq!(kernel, expected, "{tokens} queries");
            let want = ref_attention(&q, &kr, &vr, [tokens, pos0, heads, kv_heads, hd]);
            // Online softmax in f32 over up to 101 keys: 1e-5 absolute on outputs of
            // magnitude < 1.
            let scale = vec![1.0; want.len()];
            let what = format!("{expected:?} {kv:?} {tokens} queries at {pos0}");
            assert_close(&what, &got, &want, 0.0, 1e-5, &scale);
        }
    }

    #[test]
    fn wide_attention_matches_reference_for_mla_latent_heads() {
        let mut h = Harness::new();
        // MQA over rows of [latent 288 | rope 40]: keys 328 wide (> 256: the wide kernel),
        // values the first 288 of the same rows; 70 + 4 keys span two tiles.
        let (tokens, pos0, heads, lat, rot) = (4usize, 70usize, 3usize, 288usize, 40usize);
        let row = lat + rot;
        let n_keys = pos0 + tokens;
        let mut rng = Rng(41);
        let q: Vec<f32> = rng
            .vec(tokens * heads * row)
            .iter()
            .map(|v| v * 0.3)
            .collect();
        let cache = rng.vec(n_keys * row);
        let scale = 0.11f32;
        let (qb, cb) = (h.f32s(&q), h.f32s(&cache));
        let out = buffers::storage(&h.ctx, "out", (tokens * heads * lat * 4) as u64);
        let got = h.run(
            tokens as u32,
            pos0 as u32,
            &out,
            tokens * heads * lat,
            |ob, g| {
                let a = AttnOp {
                    q: &qb,
                    k: &cb,
                    v: &cb,
                    out: &out,
                    kv: KvType::F32,
                    n_heads: heads as u32,
                    n_kv_heads: 1,
                    head_dim: row as u32,
                    head_dim_v: lat as u32,
                    k_stride: row as u32,
                    v_stride: row as u32,
                    scale,
                };
                let op = ob.attention("attn", &a).unwrap();
                assert_eq!(op.key.kernel, Kernel::AttentionWide);
                g.op(op);
            },
        );
        let want = ref_attention_dims(
            &q,
            &cache,
            &cache,
            [tokens, pos0, heads, 1],
            [row, lat, row, row],
            f64::from(scale),
        );
        let ones = vec![1.0; want.len()];
        assert_close("wide attention", &got, &want, 0.0, 1e-5, &ones);
    }
}
