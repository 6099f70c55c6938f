//! The decoder for every architecture (llama, qwen2, qwen3, qwen3moe, deepseek2: flags
//! and per-layer variants, not copies). It owns the weights on the GPU, the KV cache and
//! the forward pass, recorded once as two graphs — a batched one for prefill (matmul)
//! and a one-token one for decode (matvec) — and runs them one step at a time. MoE
//! layers stop the graph where the router's choice must come back to the CPU
//! ([`super::moe`]); dense layers the memory plan streams stop it where their next
//! part must be copied in ([`crate::gpu::stream`]).
//!
//! Loading (the memory plan, reading and checking tensors, uploads) is
//! [`super::load`]. One token's path: [`Decoder::eval`] -> `step` writes the token's embedding row into
//! `x` ([`super::embed`]) -> the graph, per block: `x += attn(norm(x))` ([`super::gqa`]
//! or [`super::mla`]), `x += ffn(norm(x))` ([`super::ffn`], routed experts at the MoE
//! pause) -> output norm and the output matrix on the last token -> logits read back.

use crate::error::{Error, Result};
use crate::experts::cache::{Eviction, ExpertStats};
use crate::gpu::buffers::{self, Readback, WeightMatrix};
use crate::gpu::context::GpuContext;
use crate::gpu::graph::{Graph, Pause};
use crate::gpu::kernels::{MatOp, OpBuilder, StepParams, StreamTarget};
use crate::gpu::pipelines::{KvType, PipelineCache};
use crate::gpu::profile::{profile_step, DispatchTime};
use crate::gpu::stream::Streamer;
use crate::gpu::{Buffer, Encoder};
use crate::model::config::Config;
use crate::model::embed::EmbedRows;
use crate::model::ffn::Ffn;
use crate::model::gqa::GqaLayer;
use crate::model::mla::MlaLayer;
use crate::model::moe::MoeRuntime;
use crate::model::plan::{ExpertBudget, MemoryPlan};
use crate::model::scratch::{BlockCtx, Scratch};

/// Bytes the model holds on the GPU, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryReport {
    /// Dense weights (everything but routed experts).
    pub weights: u64,
    /// The routed-expert cache (MoE models).
    pub expert_cache: u64,
    pub kv_cache: u64,
    pub scratch: u64,
    /// The ring dense weights stream through, when they do not all fit the budget.
    pub stream_ring: u64,
}

pub(super) enum Attention {
    Gqa(GqaLayer),
    Mla(MlaLayer),
}

/// Weights of one decoder block.
pub(super) struct Layer {
    pub(super) attn_norm: Buffer, // [n_embd]
    pub(super) attn: Attention,
    pub(super) wo: WeightMatrix, // [n_embd, n_head * value width]
    pub(super) ffn_norm: Buffer, // [n_embd]
    pub(super) ffn: Ffn,
}

/// Options the decoder needs from [`crate::LoadOptions`].
pub struct DecoderOptions {
    pub n_ctx: u32,
    pub max_batch: u32,
    pub binding_limit: u64,
    pub expert_budget: ExpertBudget,
    pub eviction: Eviction,
    pub prefetch: bool,
    /// One budget for everything (see [`crate::model::plan`]).
    pub max_resident_bytes: Option<u64>,
}

pub struct Decoder {
    pub(super) ctx: GpuContext,
    pub(super) cfg: Config,
    pub(super) kv: KvType,
    pub(super) n_ctx: u32,
    pub(super) max_batch: u32,
    pub(super) layers: Vec<Layer>,
    /// Token embeddings, gathered on the CPU from the file mapping.
    pub(super) embed: EmbedRows,
    pub(super) output: WeightMatrix, // [n_vocab, n_embd] (token_embd when tied)
    pub(super) output_norm: Buffer,  // [n_embd]
    pub(super) inv_freq: Buffer,     // [n_rot / 2]
    pub(super) streamer: Option<Streamer>,
    pub(super) plan: MemoryPlan,
    pub(super) s: Scratch,
    pub(super) step: Buffer,
    pub(super) readback: Readback,
    pub(super) prefill: Graph,
    pub(super) decode: Graph,
    pub(super) moe: Option<MoeRuntime>,
    pub(super) memory: MemoryReport,
    pub(super) pos: u32,
    pub(super) logits: Vec<f32>,
}

impl Decoder {
    /// The forward pass, recorded once. `batched`: many tokens per step (matmul).
    /// Returns the graph and the stream units it reads, in order.
    pub(super) fn build_graph(
        &self,
        pipelines: &mut PipelineCache,
        batched: bool,
    ) -> Result<(Graph, Vec<(u64, u64)>)> {
        let (cfg, s) = (&self.cfg, &self.s);
        let dummy = buffers::storage(&self.ctx, "dummy", 16);
        let max_tokens = if batched { self.max_batch } else { 1 };
        let mut ob = OpBuilder::new(&self.ctx, pipelines, &self.step, max_tokens, &dummy);
        ob.stream = self.streamer.as_ref().map(|st| StreamTarget {
            ring: st.ring(),
            units: Vec::new(),
        });
        ob.q8 = Some(&s.q8);
        let b = BlockCtx {
            cfg,
            s,
            inv_freq: &self.inv_freq,
            kv: self.kv,
            batched,
        };
        let (n_embd, eps) = (cfg.n_embd, cfg.rms_eps);
        let mut g = Graph::default();

        // x holds the step's embedding rows (written on the CPU: EmbedRows).
        for (i, l) in self.layers.iter().enumerate() {
            let name = |what: &str| format!("blk.{i}.{what}");
            // x += Wo · attention(rmsnorm(x))
            let norm = [&s.x, &s.xn, &l.attn_norm];
            g.op(ob.rms_norm_for_mat(&name("attn_norm"), norm, n_embd, eps, batched)?);
            let (attn_out, attn_width) = match &l.attn {
                Attention::Gqa(a) => {
                    a.record(&mut g, &mut ob, &b, i)?;
                    (&s.attn, cfg.q_dim())
                }
                Attention::Mla(a) => {
                    a.record(&mut g, &mut ob, &b, i)?;
                    (&s.attn_v, l.wo.n_cols)
                }
            };
            let wo = MatOp {
                w: &l.wo,
                x: attn_out,
                x_stride: attn_width,
                y: &s.x,
                bias: None,
                accumulate: true,
            };
            g.ops(ob.mat(&name("attn_output"), &wo, batched)?);

            // x += ffn(rmsnorm(x))
            let norm = [&s.x, &s.xn, &l.ffn_norm];
            g.op(ob.rms_norm_for_mat(&name("ffn_norm"), norm, n_embd, eps, batched)?);
            let moe = self.moe.as_ref();
            let next_router = moe
                .and_then(|rt| rt.prediction_target(i))
                .and_then(|(next, _)| self.layers[next].ffn.router());
            l.ffn.record(&mut g, &mut ob, &b, i, moe, next_router)?;
        }
        // Logits of the last token only.
        g.op(ob.rms_norm("output_norm", &s.x, &s.xn, &self.output_norm, n_embd, eps)?);
        g.copy_last_row(&s.xn, &s.xn_last, u64::from(n_embd) * 4);
        let m = MatOp {
            w: &self.output,
            x: &s.xn_last,
            x_stride: n_embd,
            y: &s.logits,
            bias: None,
            accumulate: false,
        };
        ob.max_tokens = 1;
        g.ops(ob.mat("output", &m, false)?);
        // Streamed parts were numbered as the ops were built: load each one ahead.
        let units = ob.stream.take().map(|st| st.units).unwrap_or_default();
        g.place_stream_pauses(units.len());
        Ok((g, units))
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub fn memory(&self) -> MemoryReport {
        self.memory
    }

    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    pub fn position(&self) -> u32 {
        self.pos
    }

    /// Forgets the sequence; the KV cache is overwritten from position 0.
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Moves back to `pos` (≤ the current position): later cache rows are overwritten.
    pub fn rewind(&mut self, pos: u32) {
        self.pos = self.pos.min(pos);
    }

    /// Token ids inside the vocabulary, and room for them in the context.
    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        if let Some(&bad) = tokens.iter().find(|&&t| t >= self.cfg.n_vocab) {
            return Err(Error::Invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.cfg.n_vocab
            )));
        }
        let end = self.pos as usize + tokens.len();
        if end > self.n_ctx as usize {
            return Err(Error::Invalid(format!(
                "{} tokens after position {} exceed the context of {} tokens",
                tokens.len(),
                self.pos,
                self.n_ctx
            )));
        }
        Ok(())
    }

    /// Appends `tokens` to the sequence and returns the logits after the last one.
    /// Several tokens go through the batched prefill graph in chunks of `max_batch`.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        if tokens.is_empty() {
            return Err(Error::Invalid("no tokens to evaluate".into()));
        }
        self.check_tokens(tokens)?;
        for chunk in tokens.chunks(self.max_batch as usize) {
            self.step(chunk, false)?;
        }
        self.logits.resize(self.cfg.n_vocab as usize, 0.0);
        self.readback.read_f32(&self.ctx, &mut self.logits)?;
        Ok(&self.logits)
    }

    /// As [`Decoder::eval`] for one step (at most `max_batch` tokens), timing every
    /// dispatch on the GPU.
    pub fn eval_profiled(&mut self, tokens: &[u32]) -> Result<Vec<DispatchTime>> {
        if tokens.is_empty() || tokens.len() > self.max_batch as usize {
            return Err(Error::Invalid(format!(
                "a profiled step takes 1 to {} tokens, not {}",
                self.max_batch,
                tokens.len()
            )));
        }
        self.check_tokens(tokens)?;
        self.step(tokens, true)
    }

    /// Runs one step of at most `max_batch` tokens: the decode graph for one token, the
    /// prefill graph otherwise; with `profile`, times each dispatch (else returns none).
    fn step(&mut self, chunk: &[u32], profile: bool) -> Result<Vec<DispatchTime>> {
        let n = chunk.len() as u32;
        self.embed.write(&self.ctx, chunk, &self.s.x);
        let graph = if n == 1 { &self.decode } else { &self.prefill };
        let step = StepParams {
            n_tokens: n,
            pos0: self.pos,
            _pad: [0; 2],
        };
        let result = (&self.s.logits, u64::from(self.cfg.n_vocab) * 4);
        let s = &self.s;
        let (moe, streamer) = (&mut self.moe, &mut self.streamer);
        let mut hook =
            |pause: Pause, enc: &mut Encoder<'_>| match (pause, &mut *moe, &mut *streamer) {
                (Pause::Moe(layer), Some(moe), _) => moe.run_layer(layer, n, &s.xn, &s.x, enc),
                (Pause::Stream(u), _, Some(st)) => st.load(u, enc),
                _ => Err(Error::Internal(format!(
                    "a {pause:?} pause without its runtime"
                ))),
            };
        let ctx = &self.ctx;
        let times = if profile {
            let rb = &self.readback;
            profile_step(ctx, graph, &self.step, step, result, rb, &mut hook)?
        } else {
            graph.submit(ctx, &self.step, step, result, &self.readback, &mut hook)?;
            Vec::new()
        };
        self.pos += n;
        Ok(times)
    }

    /// Expert cache counters (MoE models).
    pub fn expert_stats(&self) -> Option<ExpertStats> {
        self.moe.as_ref().map(|m| m.stats())
    }

    /// How the memory budget was spent.
    pub fn plan(&self) -> &MemoryPlan {
        &self.plan
    }

    /// Dense weight bytes read from the file since load (streamed layers).
    pub fn bytes_streamed(&self) -> u64 {
        self.streamer.as_ref().map_or(0, |st| st.bytes_streamed)
    }

    /// (cache slots, experts in the model) for MoE models.
    pub fn expert_slots(&self) -> Option<(u32, u64)> {
        self.moe.as_ref().map(|m| m.slots())
    }

    pub fn reset_expert_stats(&mut self) {
        if let Some(m) = &mut self.moe {
            m.reset_stats();
        }
    }
}
