//! Multi-head latent attention (deepseek2), as llama.cpp runs it with the absorption
//! optimisation: the cache holds one row per token, the RMS-normed KV latent followed
//! by the roped shared key (kv_lora_rank + rope dims), never expanded heads.
//!
//! Per token: q = Wq·x (or Wq_b·norm(Wq_a·x)); each head's non-rope part is absorbed
//! through k_b into the latent space, its rope part is roped; attention is MQA over the
//! cached rows (value = the latent); each head's latent output is expanded through v_b
//! before the output projection. Files with the legacy unsplit `attn_kv_b` use its key
//! half transposed and its value half as is.

use crate::error::{Error, Result};
use crate::gpu::buffers::WeightMatrix;
use crate::gpu::graph::Graph;
use crate::gpu::kernels::{AttnOp, HeadOp, MatOp, OpBuilder, RopeOp, RowLayout};
use crate::gpu::Buffer;
use crate::model::config::{Config, Mla};
use crate::model::loader::Loader;
use crate::model::names::{self, LayerTensor as T};
use crate::model::scratch::BlockCtx;

enum QProj {
    /// attn_q [n_head * (nope + rope), n_embd]
    Plain(WeightMatrix),
    /// attn_q_a [q_lora, n_embd], attn_q_a_norm [q_lora], attn_q_b [n_head * (nope + rope), q_lora]
    LowRank {
        a: WeightMatrix,
        norm: Buffer,
        b: WeightMatrix,
    },
}

enum KvB {
    /// attn_k_b [n_head][kv_lora rows x nope cols], attn_v_b [n_head][v_head x kv_lora]
    Split {
        k_b: WeightMatrix,
        v_b: WeightMatrix,
    },
    /// attn_kv_b [n_head * (nope + v_head), kv_lora]: per head, nope key rows then
    /// v_head value rows.
    Legacy(WeightMatrix),
}

pub(crate) struct MlaLayer {
    q: QProj,
    kv_a: WeightMatrix, // [kv_lora + rope, n_embd]
    kv_a_norm: Buffer,  // [kv_lora]
    kv_b: KvB,
    cache: Buffer, // [n_ctx, kv_lora + rope] kv_t
}

impl MlaLayer {
    pub(crate) fn load(
        ld: &mut Loader<'_, '_>,
        cfg: &Config,
        m: &Mla,
        i: u32,
        cache: Buffer,
    ) -> Result<MlaLayer> {
        let n = |t| names::layer(i, t);
        let n_embd = cfg.n_embd;
        let q_dim = cfg.q_dim();
        let q = if m.q_lora_rank > 0 {
            QProj::LowRank {
                a: ld.matrix(&n(T::AttnQA), m.q_lora_rank, n_embd)?,
                norm: ld.vector(&n(T::AttnQANorm), m.q_lora_rank)?,
                b: ld.matrix(&n(T::AttnQB), q_dim, m.q_lora_rank)?,
            }
        } else {
            QProj::Plain(ld.matrix(&n(T::AttnQ), q_dim, n_embd)?)
        };
        let kv_b = if m.split_kv_b {
            KvB::Split {
                k_b: ld.matrix3(&n(T::AttnKB), cfg.n_head, m.kv_lora_rank, m.qk_nope)?,
                v_b: ld.matrix3(&n(T::AttnVB), cfg.n_head, m.v_head, m.kv_lora_rank)?,
            }
        } else {
            let rows = cfg.n_head * (m.qk_nope + m.v_head);
            KvB::Legacy(ld.head_matrix(&n(T::AttnKvB), rows, m.kv_lora_rank)?)
        };
        Ok(MlaLayer {
            q,
            kv_a: ld.matrix(&n(T::AttnKvAMqa), m.cache_dim(), n_embd)?,
            kv_a_norm: ld.vector(&n(T::AttnKvANorm), m.kv_lora_rank)?,
            kv_b,
            cache,
        })
    }

    /// Records attention from `s.xn` to the expanded per-head output in `s.attn_v`
    /// ([B, n_head * v_head]).
    pub(crate) fn record(
        &self,
        g: &mut Graph,
        ob: &mut OpBuilder<'_>,
        b: &BlockCtx<'_>,
        i: usize,
    ) -> Result<()> {
        let (cfg, s, inv_freq, kv, batched) = (b.cfg, b.s, b.inv_freq, b.kv, b.batched);
        let m = cfg
            .mla
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("MLA layer {i} without an MLA config")))?;
        let name = |what: &str| format!("blk.{i}.{what}");
        let (n_embd, n_head, q_dim) = (cfg.n_embd, cfg.n_head, cfg.q_dim());
        let q_head = m.qk_nope + m.qk_rope;
        let row = m.cache_dim();
        let mat = |w, x, x_stride, y| MatOp {
            w,
            x,
            x_stride,
            y,
            bias: None,
            accumulate: false,
        };
        match &self.q {
            QProj::Plain(wq) => {
                g.ops(ob.mat(&name("q"), &mat(wq, &s.xn, n_embd, &s.q_raw), batched)?)
            }
            QProj::LowRank { a, norm, b } => {
                g.ops(ob.mat(&name("q_a"), &mat(a, &s.xn, n_embd, &s.lora), batched)?);
                let lora = m.q_lora_rank;
                g.op(ob.rms_norm(
                    &name("q_a_norm"),
                    &s.lora,
                    &s.lora_n,
                    norm,
                    lora,
                    cfg.rms_eps,
                )?);
                g.ops(ob.mat(&name("q_b"), &mat(b, &s.lora_n, lora, &s.q_raw), batched)?);
            }
        }
        g.ops(ob.mat(
            &name("kv_a_mqa"),
            &mat(&self.kv_a, &s.xn, n_embd, &s.k_raw),
            batched,
        )?);

        // Cache row at the token's position: norm(latent) then the roped key.
        let store = RopeOp {
            src: &s.k_raw,
            src_stride: row,
            dst: &self.cache,
            dst_stride: row,
            to_cache: Some(kv),
            n_heads: 1,
            head_dim: row,
            n_rot: m.qk_rope,
            neox: false,
            inv_freq: Some(inv_freq),
            mscale: cfg.rope.magnitude(),
            norm: Some((&self.kv_a_norm, cfg.rms_eps, m.kv_lora_rank)),
            layout: RowLayout {
                rot0: m.kv_lora_rank,
                ..RowLayout::packed(row)
            },
        };
        g.op(ob.rope(&name("kv_store"), &store)?);

        // Query rows [absorbed latent | roped rope part], one per head.
        let q_rope = RopeOp {
            src: &s.q_raw,
            src_stride: q_dim,
            dst: &s.q,
            dst_stride: n_head * row,
            to_cache: None,
            n_heads: n_head,
            head_dim: m.qk_rope,
            n_rot: m.qk_rope,
            neox: false,
            inv_freq: Some(inv_freq),
            mscale: cfg.rope.magnitude(),
            norm: None,
            layout: RowLayout {
                src_head: q_head,
                src_off: m.qk_nope,
                dst_head: row,
                dst_off: m.kv_lora_rank,
                rot0: 0,
            },
        };
        g.op(ob.rope(&name("rope_q"), &q_rope)?);
        let (k_w, transposed, head_rows, rows) = match &self.kv_b {
            KvB::Split { k_b, .. } => (k_b, false, m.kv_lora_rank, m.kv_lora_rank),
            KvB::Legacy(kv_b) => (kv_b, true, m.qk_nope + m.v_head, m.qk_nope),
        };
        let absorb = HeadOp {
            w: k_w,
            transposed,
            n_heads: n_head,
            rows,
            head_rows,
            row_off: 0,
            x: &s.q_raw,
            x_layout: [q_dim, q_head, 0],
            y: &s.q,
            y_layout: [n_head * row, row, 0],
        };
        g.op(ob.head_matvec(&name("q_absorb"), &absorb)?);

        let attn = AttnOp {
            q: &s.q,
            k: &self.cache,
            v: &self.cache,
            out: &s.attn,
            kv,
            n_heads: n_head,
            n_kv_heads: 1,
            head_dim: row,
            head_dim_v: m.kv_lora_rank,
            k_stride: row,
            v_stride: row,
            scale: cfg.attn_scale,
        };
        g.op(ob.attention(&name("attn"), &attn)?);

        let (v_w, head_rows, row_off) = match &self.kv_b {
            KvB::Split { v_b, .. } => (v_b, m.v_head, 0),
            KvB::Legacy(kv_b) => (kv_b, m.qk_nope + m.v_head, m.qk_nope),
        };
        let expand = HeadOp {
            w: v_w,
            transposed: false,
            n_heads: n_head,
            rows: m.v_head,
            head_rows,
            row_off,
            x: &s.attn,
            x_layout: [n_head * m.kv_lora_rank, m.kv_lora_rank, 0],
            y: &s.attn_v,
            y_layout: [n_head * m.v_head, m.v_head, 0],
        };
        g.op(ob.head_matvec(&name("v_expand"), &expand)?);
        Ok(())
    }
}
