//! Activations of one forward step, f32, for up to `max_batch` tokens: the residual
//! stream and the intermediates every block writes (shared by all layers).

use crate::gpu::buffers;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{q8_bytes, q8_scratch};
use crate::gpu::Buffer;
use crate::model::config::Config;

pub(crate) struct Scratch {
    pub x: Buffer,       // [B, n_embd] residual stream
    pub xn: Buffer,      // [B, n_embd] normed
    pub q_raw: Buffer,   // [B, q_dim] projection before rope
    pub q: Buffer,       // [B, n_head * query width] (MLA: absorbed latent + rope)
    pub k_raw: Buffer,   // [B, kv_dim] (MLA: latent + rope key)
    pub v_raw: Buffer,   // [B, kv_dim]
    pub attn: Buffer,    // [B, n_head * value width] (MLA: per-head latent)
    pub attn_v: Buffer,  // [B, n_head * v_head] (MLA: expanded through v_b)
    pub lora: Buffer,    // [B, q_lora_rank] (MLA with q_a/q_b)
    pub lora_n: Buffer,  // [B, q_lora_rank]
    pub gate: Buffer,    // [B, n_ff]
    pub up: Buffer,      // [B, n_ff]
    pub xn_last: Buffer, // [n_embd] the last token's normed state
    pub logits: Buffer,  // [n_vocab]
    pub q8: Buffer,      // a step's mat op input as 8-bit blocks (MatVecQ8, MatMulQ8)
}

impl Scratch {
    pub fn new(ctx: &GpuContext, cfg: &Config, max_batch: u32) -> Scratch {
        let b = u64::from(max_batch);
        let f = |n: u32| b * u64::from(n) * 4;
        let st = |label: &str, bytes: u64| buffers::storage(ctx, label, bytes);
        let (q_width, attn_width, k_width, v_width, lora) = match &cfg.mla {
            Some(m) => (
                cfg.n_head * m.cache_dim(),
                cfg.n_head * m.kv_lora_rank,
                m.cache_dim(),
                0,
                m.q_lora_rank,
            ),
            None => (cfg.q_dim(), cfg.q_dim(), cfg.kv_dim(), cfg.kv_dim(), 0),
        };
        let v_out = cfg.mla.as_ref().map_or(0, |m| cfg.n_head * m.v_head);
        let n_ff = match &cfg.moe {
            Some(m) => cfg.n_ff.max(m.n_ff_exp * m.n_expert_shared),
            None => cfg.n_ff,
        };
        // The widest input a matvec or matmul reads.
        let matvec_input = [cfg.n_embd, attn_width, v_out, lora, n_ff]
            .into_iter()
            .max()
            .unwrap_or(0);
        Scratch {
            x: st("x", f(cfg.n_embd)),
            xn: st("xn", f(cfg.n_embd)),
            q_raw: st("q_raw", f(cfg.q_dim())),
            q: st("q", f(q_width)),
            k_raw: st("k_raw", f(k_width)),
            v_raw: st("v_raw", f(v_width)),
            attn: st("attn", f(attn_width)),
            attn_v: st("attn_v", f(v_out)),
            lora: st("lora", f(lora)),
            lora_n: st("lora_n", f(lora)),
            gate: st("gate", f(n_ff)),
            up: st("up", f(n_ff)),
            xn_last: st("xn_last", u64::from(cfg.n_embd) * 4),
            logits: st("logits", u64::from(cfg.n_vocab) * 4),
            // Only where mat ops take 8-bit activations (OpBuilder::quantize_input).
            q8: match ctx.profile.q8_matvec {
                true => q8_scratch(ctx, b * q8_bytes(matvec_input)),
                false => st("q8", 16),
            },
        }
    }

    /// GPU bytes of all the buffers.
    pub fn bytes(&self) -> u64 {
        [
            &self.x,
            &self.xn,
            &self.q_raw,
            &self.q,
            &self.k_raw,
            &self.v_raw,
            &self.attn,
            &self.attn_v,
            &self.lora,
            &self.lora_n,
            &self.gate,
            &self.up,
            &self.xn_last,
            &self.logits,
            &self.q8,
        ]
        .iter()
        .map(|b| b.size())
        .sum()
    }
}

/// What recording any block needs besides its own weights: the config, the step's
/// activations, the rope frequencies, the KV element type and whether the graph is the
/// batched (prefill) one.
pub(crate) struct BlockCtx<'a> {
    pub cfg: &'a Config,
    pub s: &'a Scratch,
    pub inv_freq: &'a Buffer, // [n_rot / 2] f32
    pub kv: crate::gpu::pipelines::KvType,
    pub batched: bool,
}
