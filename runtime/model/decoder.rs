//! The decoder for every architecture (llama, qwen2, qwen3, qwen3moe, deepseek2: flags
//! and per-layer variants, not copies): weights on the GPU, the KV cache, and the
//! forward pass recorded once as two graphs, a batched one for prefill (matmul) and a
//! one-token one for decode (matvec). MoE layers stop the graph where the router's
//! choice must come back to the CPU (see [`super::moe`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::experts::cache::{Eviction, ExpertCache, ExpertStats};
use crate::experts::store::ExpertStore;
use crate::file::gguf::GgufFile;
use crate::file::quant;
use crate::gpu::buffers::{self, Readback, Uploader, WeightMatrix};
use crate::gpu::context::GpuContext;
use crate::gpu::graph::{Buffer, Graph, Pause};
use crate::gpu::kernels::{
    q8_bytes, AttnOp, MatOp, OpBuilder, RopeOp, RowLayout, StepParams, StreamTarget,
};
use crate::gpu::pipelines::{KvType, PipelineCache};
use crate::gpu::profile::{profile_step, DispatchTime};
use crate::model::config::Config;
use crate::model::mla::MlaLayer;
use crate::model::moe::{MoeRuntime, MoeScratch};
use crate::model::names::{self, LayerTensor as T};
use crate::model::stream::{self, MemoryPlan, PlanInput, Streamer};

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

/// Grouped-query attention weights and cache of one block (llama, qwen2, qwen3).
/// Vectors are f32 (dequantized at load: they are tiny).
struct GqaLayer {
    wq: WeightMatrix,              // [q_dim, n_embd]
    wk: WeightMatrix,              // [kv_dim, n_embd]
    wv: WeightMatrix,              // [kv_dim, n_embd]
    bias_qkv: Option<[Buffer; 3]>, // qwen2: [q_dim], [kv_dim], [kv_dim]
    qk_norm: Option<[Buffer; 2]>,  // qwen3: [head_dim] each
    k_cache: Buffer,               // [n_ctx, kv_dim] kv_t
    v_cache: Buffer,               // [n_ctx, kv_dim] kv_t
}

enum Attention {
    Gqa(GqaLayer),
    Mla(MlaLayer),
}

enum Ffn {
    /// SwiGLU: [n_ff, n_embd] gate and up, [n_embd, n_ff] down.
    Dense([WeightMatrix; 3]),
    /// Router [n_expert, n_embd]; shared experts as one SwiGLU (deepseek2). The routed
    /// experts stay in the file (experts::store).
    Moe {
        router: WeightMatrix,
        shared: Option<[WeightMatrix; 3]>,
    },
}

/// Weights of one decoder block.
struct Layer {
    attn_norm: Buffer, // [n_embd]
    attn: Attention,
    wo: WeightMatrix, // [n_embd, n_head * value width]
    ffn_norm: Buffer, // [n_embd]
    ffn: Ffn,
}

/// Activations for up to `max_batch` tokens per step, f32.
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

/// Called as weights are uploaded with (bytes uploaded, bytes to upload).
pub type Progress<'p> = &'p mut dyn FnMut(u64, u64);

/// Where the routed experts go (MoE models).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ExpertBudget {
    /// Every expert resident when they fit in [`AUTO_EXPERT_SHARE`] of the device
    /// memory (host RAM on integrated and CPU devices), else stream within that share.
    #[default]
    Auto,
    /// The smallest cache the model allows: one token's experts of one layer.
    Min,
    /// At most this many bytes of expert slots.
    Bytes(u64),
}

/// Share of device memory the automatic expert budget may take.
pub const AUTO_EXPERT_SHARE: f64 = 0.5;

/// Options the decoder needs from [`crate::LoadOptions`].
pub struct DecoderOptions {
    pub n_ctx: u32,
    pub max_batch: u32,
    pub binding_limit: u64,
    pub expert_budget: ExpertBudget,
    pub eviction: Eviction,
    pub prefetch: bool,
    /// One budget for everything (see [`crate::model::stream`]).
    pub max_resident_bytes: Option<u64>,
}

pub struct Decoder {
    ctx: GpuContext,
    cfg: Config,
    kv: KvType,
    n_ctx: u32,
    max_batch: u32,
    layers: Vec<Layer>,
    /// Token embeddings, gathered on the CPU from the file mapping.
    embed: EmbedRows,
    output: WeightMatrix, // [n_vocab, n_embd] (token_embd when tied)
    output_norm: Buffer,
    streamer: Option<Streamer>,
    plan: MemoryPlan,
    s: Scratch,
    step: Buffer,
    readback: Readback,
    prefill: Graph,
    decode: Graph,
    moe: Option<MoeRuntime>,
    memory: MemoryReport,
    pos: u32,
    logits: Vec<f32>,
}

/// Reads tensors from the file, checks their shapes, uploads them.
pub(crate) struct Loader<'a, 'p> {
    file: &'a GgufFile,
    progress: Progress<'p>,
    /// Tensor bytes to upload, for progress.
    total: u64,
    ctx: &'a GpuContext,
    up: Uploader,
    bytes: u64,
    /// While loading a streamed layer: (ring slot bytes, placeholder buffer).
    stream: Option<(u64, Buffer)>,
    binding_limit: u64,
}

impl<'a> Loader<'a, '_> {
    fn info(&self, name: &str) -> Result<&'a crate::file::gguf::TensorInfo> {
        self.file
            .tensor(name)
            .ok_or_else(|| Error::bad_file(self.file.path(), format!("missing tensor '{name}'")))
    }

    fn check_dims(&self, name: &str, dims: &[u64], want: &[u64]) -> Result<()> {
        if dims != want {
            return Err(Error::bad_file(
                self.file.path(),
                format!("tensor '{name}' has shape {dims:?}, expected {want:?}"),
            ));
        }
        Ok(())
    }

    /// A [n_rows, n_cols] matrix (GGUF dims [n_cols, n_rows]).
    pub fn matrix(&mut self, name: &str, n_rows: u32, n_cols: u32) -> Result<WeightMatrix> {
        self.matrix_dims(
            name,
            &[u64::from(n_cols), u64::from(n_rows)],
            n_rows,
            n_cols,
        )
    }

    /// A 3-D tensor [n, rows, cols] (GGUF dims [cols, rows, n]) as one matrix of
    /// n * rows rows: one block of rows per head.
    pub fn matrix3(&mut self, name: &str, n: u32, rows: u32, cols: u32) -> Result<WeightMatrix> {
        let dims = [u64::from(cols), u64::from(rows), u64::from(n)];
        self.matrix_dims(name, &dims, n * rows, cols)
    }

    fn matrix_dims(
        &mut self,
        name: &str,
        want: &[u64],
        n_rows: u32,
        n_cols: u32,
    ) -> Result<WeightMatrix> {
        let t = self.info(name)?;
        self.check_dims(name, &t.dims, want)?;
        let dims = [n_rows, n_cols];
        if let Some((slot, placeholder)) = &self.stream {
            if !stream::always_resident(name) {
                return stream::streamed_matrix(t, dims, *slot, self.binding_limit, placeholder);
            }
        }
        let data = self.file.tensor_data(t);
        let m = WeightMatrix::upload(self.ctx, &mut self.up, name, t.format, dims, data)?;
        // Uploaded: the mapped pages need not stay in the resident set.
        self.file.release(t.offset, t.size);
        self.bytes += m.gpu_bytes();
        (self.progress)(self.bytes, self.total);
        Ok(m)
    }

    /// A vector of `n` values, dequantized on the CPU.
    pub fn vector_f32(&mut self, name: &str, n: u32) -> Result<Vec<f32>> {
        let t = self.info(name)?;
        self.check_dims(name, &t.dims, &[u64::from(n)])?;
        let mut v = vec![0f32; n as usize];
        quant::dequantize(t.format, self.file.tensor_data(t), &mut v);
        Ok(v)
    }

    /// A vector of `n` values, dequantized to f32 on the CPU and uploaded.
    pub fn vector(&mut self, name: &str, n: u32) -> Result<Buffer> {
        let v = self.vector_f32(name, n)?;
        self.bytes += u64::from(n) * 4;
        Ok(buffers::upload_f32(self.ctx, name, &v))
    }

    pub fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }
}

/// Routed expert tensors, which are not uploaded at load.
fn is_expert_tensor(name: &str) -> bool {
    name.ends_with("_exps.weight")
}

impl Decoder {
    pub fn load(
        file: GgufFile,
        cfg: Config,
        ctx: GpuContext,
        opts: DecoderOptions,
        progress: Progress<'_>,
    ) -> Result<Self> {
        let kv = if ctx.profile.f16 {
            KvType::F16
        } else {
            KvType::F32
        };
        let n_embd = cfg.n_embd;
        let n_ctx = opts.n_ctx;
        // Elements per position of one layer's cache(s).
        let (kv_row, n_caches) = match &cfg.mla {
            Some(m) => (m.cache_dim(), 1),
            None => (cfg.kv_dim(), 2),
        };
        let kv_bytes = u64::from(n_ctx) * u64::from(kv_row) * kv.bytes();
        let binding_limit = opts.binding_limit.min(ctx.profile.max_storage_binding);
        if kv_bytes > ctx.profile.max_storage_binding {
            return Err(Error::Limit {
                what: format!("one layer's KV cache for a context of {n_ctx}"),
                needed: kv_bytes,
                limit: ctx.profile.max_storage_binding,
            });
        }

        let file = Arc::new(file);
        let s = make_scratch(&ctx, &cfg, opts.max_batch);
        let moe_scratch = cfg.moe.as_ref().map_or(0, |m| {
            let (b, e, k) = (
                u64::from(opts.max_batch),
                u64::from(m.n_expert),
                u64::from(m.n_expert_used),
            );
            4 * (b * e + e + b * k + 3 * u64::from(n_embd) + k + 2 * u64::from(m.n_ff_exp))
        });
        let scratch_bytes: u64 =
            scratch_list(&s).iter().map(|b| b.size()).sum::<u64>() + moe_scratch;
        let tied = file.tensor(names::OUTPUT).is_none();
        let out_name = if tied {
            names::TOKEN_EMBD
        } else {
            names::OUTPUT
        };
        if file.tensor(out_name).is_none() {
            let problem = format!("missing tensor '{out_name}'");
            return Err(Error::bad_file(file.path(), problem));
        }

        // Routed experts: located in the file (kept mapped), cached under a budget.
        let store = match &cfg.moe {
            Some(_) => Some(ExpertStore::new(file.clone(), &cfg)?),
            None => None,
        };
        let slot_layout = match &store {
            Some(st) => Some(ExpertCache::slot_layout(&ctx, st)?),
            None => None,
        };
        let (expert_min, expert_all) = match (&cfg.moe, &store, &slot_layout) {
            (Some(m), Some(st), Some(l)) => (
                u64::from(m.n_expert_used) * l.slot_bytes,
                st.total_experts() * l.slot_bytes,
            ),
            _ => (0, 0),
        };
        let (layers_bytes, output_bytes, always, largest_part, largest_row) =
            PlanInput::dense_shapes(&file, &cfg, out_name, binding_limit);
        let plan = stream::plan(
            file.path(),
            &PlanInput {
                budget: opts.max_resident_bytes,
                kv_cache: n_caches * kv_bytes * u64::from(cfg.n_layer),
                scratch: scratch_bytes,
                layers: layers_bytes,
                output: output_bytes,
                always_resident: always,
                largest_part,
                largest_row,
                expert_min,
                expert_all,
                n_ctx,
            },
        )?;
        log::info!("{}: {}", file.path().display(), plan.describe());
        let streamer =
            (plan.stream_buffers > 0).then(|| Streamer::new(&ctx, file.clone(), plan.slot_bytes));
        let placeholder = streamer.as_ref().map(|st| st.ring()[0].clone());

        let total = file
            .tensors()
            .iter()
            .filter(|t| !is_expert_tensor(&t.name) && t.name != names::TOKEN_EMBD)
            .map(|t| t.size)
            .sum();
        let mut ld = Loader {
            file: &file,
            progress,
            total,
            ctx: &ctx,
            up: Uploader::new(&ctx, binding_limit),
            bytes: 0,
            stream: None,
            binding_limit,
        };
        let embed = EmbedRows::new(file.clone(), &cfg)?;
        let output_norm = ld.vector(names::OUTPUT_NORM, n_embd)?;
        let inv_freq = rope_inv_freq(&cfg, &ld)?;
        let inv_freq = buffers::upload_f32(&ctx, "rope_inv_freq", &inv_freq);

        let mut layers = Vec::with_capacity(cfg.n_layer as usize);
        let mut probs_bias = Vec::with_capacity(cfg.n_layer as usize);
        for i in 0..cfg.n_layer {
            let n = |t| names::layer(i, t);
            let cache = |what: &str| buffers::storage(&ctx, &format!("blk.{i}.{what}"), kv_bytes);
            ld.stream = match &placeholder {
                Some(p) if plan.streamed_layers.contains(&i) => Some((plan.slot_bytes, p.clone())),
                _ => None,
            };
            let (attn, wo_cols) = match &cfg.mla {
                Some(m) => (
                    Attention::Mla(MlaLayer::load(&mut ld, &cfg, m, i, cache("kv_latent"))?),
                    cfg.n_head * m.v_head,
                ),
                None => (
                    Attention::Gqa(load_gqa(
                        &mut ld,
                        &cfg,
                        i,
                        [cache("k_cache"), cache("v_cache")],
                    )?),
                    cfg.q_dim(),
                ),
            };
            let (ffn, bias) = match &cfg.moe {
                Some(m) if m.is_moe_layer(i) => {
                    let router = ld.matrix(&n(T::FfnGateInp), m.n_expert, n_embd)?;
                    let bias = if m.selection_bias {
                        Some(ld.vector_f32(&n(T::ExpProbsBias), m.n_expert)?)
                    } else {
                        None
                    };
                    let shared = if m.n_expert_shared > 0 {
                        let n_ff = m.n_ff_exp * m.n_expert_shared;
                        Some([
                            ld.matrix(&n(T::FfnGateShexp), n_ff, n_embd)?,
                            ld.matrix(&n(T::FfnUpShexp), n_ff, n_embd)?,
                            ld.matrix(&n(T::FfnDownShexp), n_embd, n_ff)?,
                        ])
                    } else {
                        None
                    };
                    (Ffn::Moe { router, shared }, bias)
                }
                _ => (
                    Ffn::Dense([
                        ld.matrix(&n(T::FfnGate), cfg.n_ff, n_embd)?,
                        ld.matrix(&n(T::FfnUp), cfg.n_ff, n_embd)?,
                        ld.matrix(&n(T::FfnDown), n_embd, cfg.n_ff)?,
                    ]),
                    None,
                ),
            };
            probs_bias.push(bias);
            layers.push(Layer {
                attn_norm: ld.vector(&n(T::AttnNorm), n_embd)?,
                attn,
                wo: ld.matrix(&n(T::AttnOutput), n_embd, wo_cols)?,
                ffn_norm: ld.vector(&n(T::FfnNorm), n_embd)?,
                ffn,
            });
        }
        ld.stream = match &placeholder {
            Some(p) if plan.output_streamed => Some((plan.slot_bytes, p.clone())),
            _ => None,
        };
        let output = ld.matrix(out_name, cfg.n_vocab, n_embd)?;
        ld.stream = None;
        let weights = ld.bytes;
        let Loader {
            mut up,
            progress,
            total,
            ..
        } = ld;

        let scratch = scratch_bytes;
        let step = buffers::uniform(&ctx, "step", &StepParams::default());
        let readback = Readback::new(&ctx, "logits readback", u64::from(cfg.n_vocab) * 4);
        let mut pipelines = PipelineCache::new(&ctx.device);

        // Routed experts: located in the file (kept mapped), cached under the budget.
        let moe = match (&cfg.moe, store, slot_layout) {
            (Some(m), Some(store), Some(layout)) => {
                // Under one budget, the expert cache gets what the plan leaves it.
                let budget = plan
                    .expert_cache
                    .map_or(opts.expert_budget, ExpertBudget::Bytes);
                let n_slots =
                    expert_slots(&store, layout.slot_bytes, m.n_expert_used, weights, budget)?;
                let mut cache = ExpertCache::new(&ctx, &store, layout, n_slots, opts.eviction)?;
                if u64::from(n_slots) >= store.total_experts() {
                    let total = total + store.total_bytes();
                    let mut uploaded = weights;
                    cache.preload(&ctx, &mut up, &store, &mut |b| {
                        uploaded += b;
                        progress(uploaded, total);
                    })?;
                }
                log::info!(
                    "experts: {} of {} cached in {} MiB ({} resident at load), {}",
                    n_slots,
                    store.total_experts(),
                    cache.gpu_bytes() >> 20,
                    cache.resident(),
                    if u64::from(n_slots) >= store.total_experts() {
                        "all resident"
                    } else {
                        "streamed from the file"
                    }
                );
                let b = u64::from(opts.max_batch);
                let f = |label: &str, n: u64| buffers::storage(&ctx, label, n * 4);
                let ms = MoeScratch {
                    router: f("moe.router", b * u64::from(m.n_expert)),
                    pred: f("moe.pred", u64::from(m.n_expert)),
                    weights: f("moe.weights", b * u64::from(m.n_expert_used)),
                    x: f("moe.x", u64::from(n_embd)),
                    acc: f("moe.acc", u64::from(n_embd)),
                    w: f("moe.w", u64::from(m.n_expert_used)),
                    gate: f("moe.gate", u64::from(m.n_ff_exp)),
                    up: f("moe.up", u64::from(m.n_ff_exp)),
                    y: f("moe.y", u64::from(n_embd)),
                };
                let dummy = buffers::storage(&ctx, "dummy", 16);
                let mut ob = OpBuilder::new(&ctx, &mut pipelines, &step, 1, &dummy);
                let rt = MoeRuntime::new(
                    &mut ob,
                    m.clone(),
                    n_embd,
                    store,
                    cache,
                    probs_bias,
                    ms,
                    opts.max_batch,
                    opts.prefetch,
                )?;
                debug_assert_eq!(rt.scratch_bytes(), moe_scratch, "planned MoE scratch");
                Some(rt)
            }
            _ => None,
        };
        let memory = MemoryReport {
            weights,
            expert_cache: moe.as_ref().map_or(0, |m| m.cache.gpu_bytes()),
            kv_cache: n_caches * kv_bytes * u64::from(cfg.n_layer),
            scratch,
            stream_ring: streamer
                .as_ref()
                .map_or(0, |st| st.ring().iter().map(|b| b.size()).sum()),
        };

        let mut model = Decoder {
            ctx,
            cfg,
            kv,
            n_ctx,
            max_batch: opts.max_batch,
            layers,
            embed,
            output,
            output_norm,
            streamer,
            plan,
            s,
            step,
            readback,
            prefill: Graph::default(),
            decode: Graph::default(),
            moe,
            memory,
            pos: 0,
            logits: Vec::new(),
        };
        let (prefill, units) = model.build_graph(&mut pipelines, &inv_freq, true)?;
        let (decode, decode_units) = model.build_graph(&mut pipelines, &inv_freq, false)?;
        if let Some(st) = &mut model.streamer {
            st.set_units(units)?;
            st.set_units(decode_units)?;
        }
        model.prefill = prefill;
        model.decode = decode;
        log::info!(
            "loaded {} x{} layers: weights {} MiB, experts {} MiB, KV {} MiB ({:?}), {} dispatches per decode step",
            model.cfg.arch.name(),
            model.cfg.n_layer,
            model.memory.weights >> 20,
            model.memory.expert_cache >> 20,
            model.memory.kv_cache >> 20,
            kv,
            model.decode.dispatch_count()
        );
        Ok(model)
    }

    /// The forward pass, recorded once. `batched`: many tokens per step (matmul).
    fn build_graph(
        &self,
        pipelines: &mut PipelineCache,
        inv_freq: &Buffer,
        batched: bool,
    ) -> Result<(Graph, Vec<(u64, u64)>)> {
        let cfg = &self.cfg;
        let s = &self.s;
        let dummy = buffers::storage(&self.ctx, "dummy", 16);
        let max_tokens = if batched { self.max_batch } else { 1 };
        let mut ob = OpBuilder::new(&self.ctx, pipelines, &self.step, max_tokens, &dummy);
        ob.stream = self.streamer.as_ref().map(|st| StreamTarget {
            ring: st.ring(),
            units: Vec::new(),
        });
        ob.q8 = Some(&s.q8);
        let n_embd = cfg.n_embd;
        let eps = cfg.rms_eps;
        let mut g = Graph::default();

        // The embedding rows are written into x on the CPU (EmbedRows).
        for (i, l) in self.layers.iter().enumerate() {
            let name = |what: &str| format!("blk.{i}.{what}");
            // Attention: x += Wo · attn(...), n = rmsnorm(x)
            g.op(ob.rms_norm(&name("attn_norm"), &s.x, &s.xn, &l.attn_norm, n_embd, eps)?);
            let (attn_out, attn_width) = match &l.attn {
                Attention::Gqa(a) => {
                    self.record_gqa(&mut g, &mut ob, a, inv_freq, batched, i)?;
                    (&s.attn, cfg.q_dim())
                }
                Attention::Mla(a) => {
                    let m = cfg.mla.as_ref().expect("MLA layers have an MLA config");
                    a.record(&mut g, &mut ob, cfg, m, s, inv_freq, self.kv, batched, i)?;
                    (&s.attn_v, cfg.n_head * m.v_head)
                }
            };
            let m = MatOp {
                w: &l.wo,
                x: attn_out,
                x_stride: attn_width,
                y: &s.x,
                bias: None,
                accumulate: true,
            };
            g.ops(ob.mat(&name("attn_output"), &m, batched)?);

            // FFN: x += Wdown · (silu(Wgate·n) * Wup·n), n = rmsnorm(x)
            g.op(ob.rms_norm(&name("ffn_norm"), &s.x, &s.xn, &l.ffn_norm, n_embd, eps)?);
            match &l.ffn {
                Ffn::Dense(w) => {
                    record_swiglu(&mut g, &mut ob, s, w, cfg.n_ff, batched, &name("ffn"))?;
                }
                Ffn::Moe { router, shared } => {
                    if let Some(w) = shared {
                        let moe = cfg.moe.as_ref().expect("MoE layers have a MoE config");
                        let n_ff = moe.n_ff_exp * moe.n_expert_shared;
                        record_swiglu(&mut g, &mut ob, s, w, n_ff, batched, &name("ffn_shexp"))?;
                    }
                    let rt = self.moe.as_ref().expect("MoE layers have a MoE runtime");
                    let m = MatOp {
                        w: router,
                        x: &s.xn,
                        x_stride: n_embd,
                        y: rt.router_buffer(),
                        bias: None,
                        accumulate: false,
                    };
                    g.ops(ob.mat(&name("ffn_gate_inp"), &m, batched)?);
                    // Decode with prefetch: the next MoE layer's router on this input.
                    if let (false, Some((next, pred))) = (batched, rt.prediction_target(i)) {
                        let Ffn::Moe {
                            router: next_router,
                            ..
                        } = &self.layers[next].ffn
                        else {
                            unreachable!("the next MoE layer has a router")
                        };
                        let m = MatOp {
                            w: next_router,
                            x: &s.xn,
                            x_stride: n_embd,
                            y: pred,
                            bias: None,
                            accumulate: false,
                        };
                        g.ops(ob.mat(&name("ffn_gate_inp_next"), &m, batched)?);
                    }
                    g.pause(Pause::Moe(i));
                }
            }
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

    /// q, k, v projections, rope (k and v straight into the cache) and attention.
    fn record_gqa(
        &self,
        g: &mut Graph,
        ob: &mut OpBuilder<'_>,
        l: &GqaLayer,
        inv_freq: &Buffer,
        batched: bool,
        i: usize,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let s = &self.s;
        let name = |what: &str| format!("blk.{i}.{what}");
        let (n_embd, q_dim, kv_dim) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
        let eps = cfg.rms_eps;
        let bias = |j: usize| l.bias_qkv.as_ref().map(|b| &b[j]);
        let proj = [
            (&l.wq, &s.q_raw, "q"),
            (&l.wk, &s.k_raw, "k"),
            (&l.wv, &s.v_raw, "v"),
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
            g.ops(ob.mat(&name(what), &m, batched)?);
        }
        let norm = |j: usize| l.qk_norm.as_ref().map(|n| (&n[j], eps, cfg.head_dim));
        let rope = |src, src_stride, dst, dst_stride, to_cache, n_heads, n_rot, norm| RopeOp {
            src,
            src_stride,
            dst,
            dst_stride,
            to_cache,
            n_heads,
            head_dim: cfg.head_dim,
            n_rot,
            neox: cfg.arch.rope_neox(),
            inv_freq: Some(inv_freq),
            mscale: cfg.rope.magnitude(),
            norm,
            layout: RowLayout::packed(cfg.head_dim),
        };
        let kv = Some(self.kv);
        let (n_head, n_head_kv, n_rot) = (cfg.n_head, cfg.n_head_kv, cfg.n_rot);
        let q = rope(&s.q_raw, q_dim, &s.q, q_dim, None, n_head, n_rot, norm(0));
        g.op(ob.rope(&name("rope_q"), &q)?);
        let k = rope(
            &s.k_raw,
            kv_dim,
            &l.k_cache,
            kv_dim,
            kv,
            n_head_kv,
            n_rot,
            norm(1),
        );
        g.op(ob.rope(&name("rope_k"), &k)?);
        let v = rope(&s.v_raw, kv_dim, &l.v_cache, kv_dim, kv, n_head_kv, 0, None);
        g.op(ob.rope(&name("store_v"), &v)?);
        let attn = AttnOp {
            q: &s.q,
            k: &l.k_cache,
            v: &l.v_cache,
            out: &s.attn,
            kv: self.kv,
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
        let (ctx, s) = (&self.ctx, &self.s);
        let (moe, streamer) = (&mut self.moe, &mut self.streamer);
        let mut hook =
            |pause: Pause, enc: &mut wgpu::CommandEncoder| match (pause, &mut *moe, &mut *streamer)
            {
                (Pause::Moe(layer), Some(moe), _) => moe.run_layer(ctx, layer, n, &s.xn, &s.x, enc),
                (Pause::Stream(u), _, Some(st)) => st.load(ctx, u, enc),
                _ => Err(Error::Gpu(format!(
                    "internal: a {pause:?} pause without its runtime"
                ))),
            };
        let times = if profile {
            profile_step(
                ctx,
                graph,
                &self.step,
                step,
                result,
                &self.readback,
                &mut hook,
            )?
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
        self.moe
            .as_ref()
            .map(|m| (m.cache.n_slots(), m.store.total_experts()))
    }

    pub fn reset_expert_stats(&mut self) {
        if let Some(m) = &mut self.moe {
            m.cache.reset_stats();
        }
    }
}

/// Rope frequencies per pair (see [`crate::model::config::Rope::inv_freq`]), with
/// llama3's `rope_freqs` divisors where the file has them.
fn rope_inv_freq(cfg: &Config, ld: &Loader<'_, '_>) -> Result<Vec<f32>> {
    let half = cfg.n_rot / 2;
    let factors = if ld.has(names::ROPE_FREQS) {
        let t = ld.info(names::ROPE_FREQS)?;
        ld.check_dims(names::ROPE_FREQS, &t.dims, &[u64::from(half)])?;
        let mut f = vec![0f32; half as usize];
        quant::dequantize(t.format, ld.file.tensor_data(t), &mut f);
        f
    } else {
        Vec::new()
    };
    Ok(cfg.rope.inv_freq(cfg.n_rot, &factors))
}

fn load_gqa(
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

/// x += Wdown · (silu(Wgate·xn) * Wup·xn) for `n_ff` hidden units.
fn record_swiglu(
    g: &mut Graph,
    ob: &mut OpBuilder<'_>,
    s: &Scratch,
    [gate, up, down]: &[WeightMatrix; 3],
    n_ff: u32,
    batched: bool,
    name: &str,
) -> Result<()> {
    let n_embd = gate.n_cols;
    for (w, y, what) in [(gate, &s.gate, "gate"), (up, &s.up, "up")] {
        let m = MatOp {
            w,
            x: &s.xn,
            x_stride: n_embd,
            y,
            bias: None,
            accumulate: false,
        };
        g.ops(ob.mat(&format!("{name}_{what}"), &m, batched)?);
    }
    g.op(ob.silu_mul(&format!("{name}_silu_mul"), &s.gate, &s.up, n_ff)?);
    let m = MatOp {
        w: down,
        x: &s.gate,
        x_stride: n_ff,
        y: &s.x,
        bias: None,
        accumulate: true,
    };
    g.ops(ob.mat(&format!("{name}_down"), &m, batched)?);
    Ok(())
}

fn make_scratch(ctx: &GpuContext, cfg: &Config, max_batch: u32) -> Scratch {
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
        q8: st(
            "q8",
            match ctx.profile.q8_matvec {
                true => b * q8_bytes(matvec_input),
                false => 16,
            },
        ),
    }
}

fn scratch_list(s: &Scratch) -> [&Buffer; 15] {
    [
        &s.x, &s.xn, &s.q_raw, &s.q, &s.k_raw, &s.v_raw, &s.attn, &s.attn_v, &s.lora, &s.lora_n,
        &s.gate, &s.up, &s.xn_last, &s.logits, &s.q8,
    ]
}

/// Cache slots for the budget: at least one token's experts of one layer.
fn expert_slots(
    store: &ExpertStore,
    slot_bytes: u64,
    n_used: u32,
    dense_bytes: u64,
    budget: ExpertBudget,
) -> Result<u32> {
    let all = store.total_experts();
    let min_bytes = u64::from(n_used) * slot_bytes;
    let slots = match budget {
        ExpertBudget::Min => u64::from(n_used),
        ExpertBudget::Bytes(b) => {
            if b < min_bytes {
                return Err(Error::Limit {
                    what: format!(
                        "{}: the expert cache (one token's {n_used} experts of one layer, {:.1} MiB)",
                        store.path().display(),
                        min_bytes as f64 / (1 << 20) as f64
                    ),
                    needed: min_bytes,
                    limit: b,
                });
            }
            b / slot_bytes
        }
        ExpertBudget::Auto => {
            let memory = crate::process::device_memory().unwrap_or(8 << 30);
            let share = (memory as f64 * AUTO_EXPERT_SHARE) as u64;
            let room = share.saturating_sub(dense_bytes).max(min_bytes);
            let slots = room / slot_bytes;
            log::info!(
                "expert budget: {} of {} experts ({} MiB of {:.0}% of {} MiB memory, less {} MiB of dense weights)",
                slots.min(all),
                all,
                (slots.min(all) * slot_bytes) >> 20,
                AUTO_EXPERT_SHARE * 100.0,
                memory >> 20,
                dense_bytes >> 20
            );
            slots
        }
    };
    Ok(slots.min(all).max(u64::from(n_used)) as u32)
}

/// The token embedding table, left in the file: each step's rows are dequantized on
/// the CPU (bit-exact with llama.cpp's reference dequantization) and written into the
/// residual stream, so the table is never resident. Only the rows of the tokens seen
/// are ever read.
struct EmbedRows {
    file: Arc<GgufFile>,
    format: quant::WeightFormat,
    offset: u64,
    row_bytes: u64,
    rows: Vec<f32>,
    n_embd: usize,
}

impl EmbedRows {
    fn new(file: Arc<GgufFile>, cfg: &Config) -> Result<EmbedRows> {
        let t = file.tensor(names::TOKEN_EMBD).ok_or_else(|| {
            Error::bad_file(
                file.path(),
                format!("missing tensor '{}'", names::TOKEN_EMBD),
            )
        })?;
        let want = [u64::from(cfg.n_embd), u64::from(cfg.n_vocab)];
        let row_bytes = t.format.row_bytes(want[0]);
        match row_bytes {
            Some(rb) if t.dims == want && rb * want[1] == t.size => Ok(EmbedRows {
                format: t.format,
                offset: t.offset,
                row_bytes: rb,
                rows: Vec::new(),
                n_embd: cfg.n_embd as usize,
                file,
            }),
            _ => Err(Error::bad_file(
                file.path(),
                format!(
                    "tensor '{}' has shape {:?}, expected {want:?}",
                    names::TOKEN_EMBD,
                    t.dims
                ),
            )),
        }
    }

    /// x[t] = embedding of tokens[t] (ids checked against the vocabulary by the caller).
    fn write(&mut self, ctx: &GpuContext, tokens: &[u32], x: &Buffer) {
        self.rows.resize(tokens.len() * self.n_embd, 0.0);
        for (row, &tok) in self.rows.chunks_mut(self.n_embd).zip(tokens) {
            let start = self.offset + u64::from(tok) * self.row_bytes;
            quant::dequantize(self.format, self.file.range(start, self.row_bytes), row);
        }
        ctx.queue
            .write_buffer(x, 0, bytemuck::cast_slice(&self.rows));
    }
}
