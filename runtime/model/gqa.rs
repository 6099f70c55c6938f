//! Grouped-query attention (llama, qwen2, qwen3): q, k, v projections (qwen2: with
//! biases), per-head q/k RMSNorm (qwen3), rope, keys and values written straight into
//! this layer's cache, causal attention over it. MLA (deepseek2) is [`super::mla`].

use crate::error::Result;
use crate::gpu::buffers::WeightMatrix;
use crate::gpu::graph::Graph;
use crate::gpu::kernels::{AttnOp, MatOp, OpBuilder, RopeOp, RowLayout};
use crate::gpu::Buffer;
use crate::model::config::Config;
use crate::model::loader::Loader;
use crate::model::names::{self, LayerTensor as T};
use crate::model::scratch::BlockCtx;

/// Weights and cache of one block. Vectors are f32.
pub(crate) struct GqaLayer {
    wq: WeightMatrix,              // [q_dim, n_embd]
    wk: WeightMatrix,              // [kv_dim, n_embd]
    wv: WeightMatrix,              // [kv_dim, n_embd]
    bias_qkv: Option<[Buffer; 3]>, // qwen2: [q_dim], [kv_dim], [kv_dim]
    qk_norm: Option<[Buffer; 2]>,  // qwen3: [head_dim] each
    k_cache: Buffer,               // [n_ctx, kv_dim] kv_t
    v_cache: Buffer,               // [n_ctx, kv_dim] kv_t
}

impl GqaLayer {
    pub fn load(
        ld: &mut Loader<'_, '_>,
        cfg: &Config,
        i: u32,
        [k_cache, v_cache]: [Buffer; 2],
    ) -> Result<GqaLayer> {
        let n = |t| names::layer(i, t);
        let (n_embd, q_dim, kv_dim) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
        let bias_qkv = if cfg.arch.qkv_bias() {
            Some([
                ld.vector(&n(T::AttnQBias), q_dim)?,
                ld.vector(&n(T::AttnKBias), kv_dim)?,
                ld.vector(&n(T::AttnVBias), kv_dim)?,
            ])
        } else {
            None
        };
        let qk_norm = if cfg.arch.qk_norm() {
            Some([
                ld.vector(&n(T::AttnQNorm), cfg.head_dim)?,
                ld.vector(&n(T::AttnKNorm), cfg.head_dim)?,
            ])
        } else {
            None
        };
        Ok(GqaLayer {
            wq: ld.matrix(&n(T::AttnQ), q_dim, n_embd)?,
            wk: ld.matrix(&n(T::AttnK), kv_dim, n_embd)?,
            wv: ld.matrix(&n(T::AttnV), kv_dim, n_embd)?,
            bias_qkv,
            qk_norm,
            k_cache,
            v_cache,
        })
    }

    /// Records attention from `s.xn` to the per-head output in `s.attn` ([B, q_dim]):
    /// q, k, v projections, rope (k and v straight into the cache), attention.
    pub fn record(
        &self,
        g: &mut Graph,
        ob: &mut OpBuilder<'_>,
        b: &BlockCtx<'_>,
        i: usize,
    ) -> Result<()> {
        let (cfg, s) = (b.cfg, b.s);
        let name = |what: &str| format!("blk.{i}.{what}");
        let (n_embd, q_dim, kv_dim) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
        let bias = |j: usize| self.bias_qkv.as_ref().map(|b| &b[j]);
        let proj = [
            (&self.wq, &s.q_raw, "q"),
            (&self.wk, &s.k_raw, "k"),
            (&self.wv, &s.v_raw, "v"),
        ];
        for (j, (w, y, what)) in proj.into_iter().enumerate() {
            let m = MatOp {
                w,
                x: &s.xn,
                x_stride: n_embd,
                y,
                bias: bias(j),
                accumulate: false,
            };
            g.ops(ob.mat(&name(what), &m, b.batched)?);
        }
        let eps = cfg.rms_eps;
        let norm = |j: usize| self.qk_norm.as_ref().map(|n| (&n[j], eps, cfg.head_dim));
        let rope = |src, stride, dst, to_cache, n_heads, n_rot, norm| RopeOp {
            src,
            src_stride: stride,
            dst,
            dst_stride: stride,
            to_cache,
            n_heads,
            head_dim: cfg.head_dim,
            n_rot,
            neox: cfg.arch.rope_neox(),
            inv_freq: Some(b.inv_freq),
            mscale: cfg.rope.magnitude(),
            norm,
            layout: RowLayout::packed(cfg.head_dim),
        };
        let kv = Some(b.kv);
        let (n_head, n_head_kv, n_rot) = (cfg.n_head, cfg.n_head_kv, cfg.n_rot);
        let q = rope(&s.q_raw, q_dim, &s.q, None, n_head, n_rot, norm(0));
        g.op(ob.rope(&name("rope_q"), &q)?);
        let k = rope(
            &s.k_raw,
            kv_dim,
            &self.k_cache,
            kv,
            n_head_kv,
            n_rot,
            norm(1),
        );
        g.op(ob.rope(&name("rope_k"), &k)?);
        // Values go into the cache unrotated (n_rot 0).
        let v = rope(&s.v_raw, kv_dim, &self.v_cache, kv, n_head_kv, 0, None);
        g.op(ob.rope(&name("store_v"), &v)?);
        let attn = AttnOp {
            q: &s.q,
            k: &self.k_cache,
            v: &self.v_cache,
            out: &s.attn,
            kv: b.kv,
            n_heads: n_head,
            n_kv_heads: n_head_kv,
            head_dim: cfg.head_dim,
            head_dim_v: cfg.head_dim,
            k_stride: kv_dim,
            v_stride: kv_dim,
            scale: cfg.attn_scale,
        };
        g.op(ob.attention(&name("attn"), &attn)?);
        Ok(())
    }
}
