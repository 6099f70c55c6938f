//! The dense decoder (llama, qwen2, qwen3: flags, not copies): weights on the GPU,
//! the KV cache, and the forward pass recorded once as two graphs, a batched one for
//! prefill (matmul) and a one-token one for decode (matvec).

use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;
use crate::file::quant;
use crate::gpu::buffers::{self, Readback, Uploader, WeightMatrix};
use crate::gpu::context::GpuContext;
use crate::gpu::graph::{Buffer, Graph};
use crate::gpu::kernels::{AttnOp, MatOp, OpBuilder, RopeOp, StepParams};
use crate::gpu::pipelines::{KvType, PipelineCache};
use crate::gpu::profile::{profile_step, DispatchTime};
use crate::model::config::Config;
use crate::model::names::{self, LayerTensor as T};

/// Bytes the model holds on the GPU, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryReport {
    pub weights: u64,
    pub kv_cache: u64,
    pub scratch: u64,
}

/// Weights of one decoder block. Vectors are f32 (dequantized at load: they are tiny).
struct Layer {
    attn_norm: Buffer,             // [n_embd]
    wq: WeightMatrix,              // [q_dim, n_embd]
    wk: WeightMatrix,              // [kv_dim, n_embd]
    wv: WeightMatrix,              // [kv_dim, n_embd]
    bias_qkv: Option<[Buffer; 3]>, // qwen2: [q_dim], [kv_dim], [kv_dim]
    qk_norm: Option<[Buffer; 2]>,  // qwen3: [head_dim] each
    wo: WeightMatrix,              // [n_embd, q_dim]
    ffn_norm: Buffer,              // [n_embd]
    w_gate: WeightMatrix,          // [n_ff, n_embd]
    w_up: WeightMatrix,            // [n_ff, n_embd]
    w_down: WeightMatrix,          // [n_embd, n_ff]
    k_cache: Buffer,               // [n_ctx, kv_dim] kv_t
    v_cache: Buffer,               // [n_ctx, kv_dim] kv_t
}

/// Activations for up to `max_batch` tokens per step, f32.
struct Scratch {
    tokens: Buffer,  // [B] u32
    x: Buffer,       // [B, n_embd] residual stream
    xn: Buffer,      // [B, n_embd] normed
    q_raw: Buffer,   // [B, q_dim] projection before rope
    q: Buffer,       // [B, q_dim]
    k_raw: Buffer,   // [B, kv_dim]
    v_raw: Buffer,   // [B, kv_dim]
    attn: Buffer,    // [B, q_dim]
    gate: Buffer,    // [B, n_ff]
    up: Buffer,      // [B, n_ff]
    xn_last: Buffer, // [n_embd] the last token's normed state
    logits: Buffer,  // [n_vocab]
}

/// Called as weights are uploaded with (bytes uploaded, bytes to upload).
pub type Progress<'p> = &'p mut dyn FnMut(u64, u64);

/// Options the dense model needs from [`crate::LoadOptions`].
pub struct DenseOptions {
    pub n_ctx: u32,
    pub max_batch: u32,
    pub binding_limit: u64,
}

pub struct DenseModel {
    ctx: GpuContext,
    cfg: Config,
    kv: KvType,
    n_ctx: u32,
    max_batch: u32,
    layers: Vec<Layer>,
    token_embd: WeightMatrix,     // [n_vocab, n_embd]
    output: Option<WeightMatrix>, // [n_vocab, n_embd]; None: tied to token_embd
    output_norm: Buffer,
    s: Scratch,
    step: Buffer,
    readback: Readback,
    prefill: Graph,
    decode: Graph,
    memory: MemoryReport,
    pos: u32,
    logits: Vec<f32>,
}

/// Reads tensors from the file, checks their shapes, uploads them.
struct Loader<'a, 'p> {
    file: &'a GgufFile,
    progress: Progress<'p>,
    /// Tensor bytes in the file, for progress.
    total: u64,
    ctx: &'a GpuContext,
    up: Uploader,
    bytes: u64,
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
    fn matrix(&mut self, name: &str, n_rows: u32, n_cols: u32) -> Result<WeightMatrix> {
        let t = self.info(name)?;
        self.check_dims(name, &t.dims, &[u64::from(n_cols), u64::from(n_rows)])?;
        let data = self.file.tensor_data(t);
        let dims = [n_rows, n_cols];
        let m = WeightMatrix::upload(self.ctx, &mut self.up, name, t.format, dims, data)?;
        self.bytes += m.gpu_bytes();
        (self.progress)(self.bytes, self.total);
        Ok(m)
    }

    /// A vector of `n` values, dequantized to f32 on the CPU.
    fn vector(&mut self, name: &str, n: u32) -> Result<Buffer> {
        let t = self.info(name)?;
        self.check_dims(name, &t.dims, &[u64::from(n)])?;
        let mut v = vec![0f32; n as usize];
        quant::dequantize(t.format, self.file.tensor_data(t), &mut v);
        self.bytes += u64::from(n) * 4;
        Ok(buffers::upload_f32(self.ctx, name, &v))
    }

    fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }
}

impl DenseModel {
    pub fn load(
        file: &GgufFile,
        cfg: Config,
        ctx: GpuContext,
        opts: DenseOptions,
        progress: Progress<'_>,
    ) -> Result<Self> {
        let kv = if ctx.profile.f16 {
            KvType::F16
        } else {
            KvType::F32
        };
        let (n_embd, q_dim, kv_dim, n_ff) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim(), cfg.n_ff);
        let n_ctx = opts.n_ctx;
        let kv_bytes = u64::from(n_ctx) * u64::from(kv_dim) * kv.bytes();
        let binding_limit = opts.binding_limit.min(ctx.profile.max_storage_binding);
        if kv_bytes > ctx.profile.max_storage_binding {
            return Err(Error::Limit {
                what: format!("one layer's KV cache for a context of {n_ctx}"),
                needed: kv_bytes,
                limit: ctx.profile.max_storage_binding,
            });
        }

        let total = file.tensors().iter().map(|t| t.size).sum();
        let mut ld = Loader {
            file,
            progress,
            total,
            ctx: &ctx,
            up: Uploader::new(&ctx, binding_limit),
            bytes: 0,
        };
        let token_embd = ld.matrix(names::TOKEN_EMBD, cfg.n_vocab, n_embd)?;
        let output = if ld.has(names::OUTPUT) {
            Some(ld.matrix(names::OUTPUT, cfg.n_vocab, n_embd)?)
        } else {
            None
        };
        let output_norm = ld.vector(names::OUTPUT_NORM, n_embd)?;
        let inv_freq = rope_inv_freq(&cfg, &ld)?;
        let inv_freq = buffers::upload_f32(&ctx, "rope_inv_freq", &inv_freq);

        let mut layers = Vec::with_capacity(cfg.n_layer as usize);
        for i in 0..cfg.n_layer {
            let n = |t| names::layer(i, t);
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
            layers.push(Layer {
                attn_norm: ld.vector(&n(T::AttnNorm), n_embd)?,
                wq: ld.matrix(&n(T::AttnQ), q_dim, n_embd)?,
                wk: ld.matrix(&n(T::AttnK), kv_dim, n_embd)?,
                wv: ld.matrix(&n(T::AttnV), kv_dim, n_embd)?,
                bias_qkv,
                qk_norm,
                wo: ld.matrix(&n(T::AttnOutput), n_embd, q_dim)?,
                ffn_norm: ld.vector(&n(T::FfnNorm), n_embd)?,
                w_gate: ld.matrix(&n(T::FfnGate), n_ff, n_embd)?,
                w_up: ld.matrix(&n(T::FfnUp), n_ff, n_embd)?,
                w_down: ld.matrix(&n(T::FfnDown), n_embd, n_ff)?,
                k_cache: buffers::storage(&ctx, &format!("blk.{i}.k_cache"), kv_bytes),
                v_cache: buffers::storage(&ctx, &format!("blk.{i}.v_cache"), kv_bytes),
            });
        }
        let weights = ld.bytes;

        let b = u64::from(opts.max_batch);
        let f = |n: u32| b * u64::from(n) * 4;
        let st = |label: &str, bytes: u64| buffers::storage(&ctx, label, bytes);
        let s = Scratch {
            tokens: st("tokens", b * 4),
            x: st("x", f(n_embd)),
            xn: st("xn", f(n_embd)),
            q_raw: st("q_raw", f(q_dim)),
            q: st("q", f(q_dim)),
            k_raw: st("k_raw", f(kv_dim)),
            v_raw: st("v_raw", f(kv_dim)),
            attn: st("attn", f(q_dim)),
            gate: st("gate", f(n_ff)),
            up: st("up", f(n_ff)),
            xn_last: st("xn_last", u64::from(n_embd) * 4),
            logits: st("logits", u64::from(cfg.n_vocab) * 4),
        };
        let scratch = [
            &s.tokens, &s.x, &s.xn, &s.q_raw, &s.q, &s.k_raw, &s.v_raw, &s.attn, &s.gate, &s.up,
            &s.xn_last, &s.logits,
        ]
        .iter()
        .map(|b| b.size())
        .sum();
        let step = buffers::uniform(&ctx, "step", &StepParams::default());
        let readback = Readback::new(&ctx, "logits readback", u64::from(cfg.n_vocab) * 4);
        let memory = MemoryReport {
            weights,
            kv_cache: 2 * kv_bytes * u64::from(cfg.n_layer),
            scratch,
        };

        let mut model = DenseModel {
            ctx,
            cfg,
            kv,
            n_ctx,
            max_batch: opts.max_batch,
            layers,
            token_embd,
            output,
            output_norm,
            s,
            step,
            readback,
            prefill: Graph::default(),
            decode: Graph::default(),
            memory,
            pos: 0,
            logits: Vec::new(),
        };
        let mut pipelines = PipelineCache::new(&model.ctx.device);
        model.prefill = model.build_graph(&mut pipelines, &inv_freq, true)?;
        model.decode = model.build_graph(&mut pipelines, &inv_freq, false)?;
        log::info!(
            "loaded {} x{} layers: weights {} MiB, KV {} MiB ({:?}), {} dispatches per decode step",
            model.cfg.arch.name(),
            model.cfg.n_layer,
            model.memory.weights >> 20,
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
    ) -> Result<Graph> {
        let cfg = &self.cfg;
        let s = &self.s;
        let dummy = buffers::storage(&self.ctx, "dummy", 16);
        let mut ob = OpBuilder {
            ctx: &self.ctx,
            pipelines,
            step: &self.step,
            max_tokens: if batched { self.max_batch } else { 1 },
            dummy: &dummy,
        };
        let (n_embd, q_dim, kv_dim) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
        let eps = cfg.rms_eps;
        let mut g = Graph::default();

        g.ops(ob.embed(&self.token_embd, &s.tokens, &s.x)?);
        for (i, l) in self.layers.iter().enumerate() {
            let name = |what: &str| format!("blk.{i}.{what}");
            // Attention: x += Wo · attn(rope(Wq·n), rope(Wk·n), Wv·n), n = rmsnorm(x)
            g.op(ob.rms_norm(&name("attn_norm"), &s.x, &s.xn, &l.attn_norm, n_embd, eps)?);
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
            let norm = |j: usize| l.qk_norm.as_ref().map(|n| (&n[j], eps));
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
                norm,
            };
            let kv = Some(self.kv);
            g.op(ob.rope(
                &name("rope_q"),
                &rope(
                    &s.q_raw,
                    q_dim,
                    &s.q,
                    q_dim,
                    None,
                    cfg.n_head,
                    cfg.n_rot,
                    norm(0),
                ),
            )?);
            g.op(ob.rope(
                &name("rope_k"),
                &rope(
                    &s.k_raw,
                    kv_dim,
                    &l.k_cache,
                    kv_dim,
                    kv,
                    cfg.n_head_kv,
                    cfg.n_rot,
                    norm(1),
                ),
            )?);
            g.op(ob.rope(
                &name("store_v"),
                &rope(
                    &s.v_raw,
                    kv_dim,
                    &l.v_cache,
                    kv_dim,
                    kv,
                    cfg.n_head_kv,
                    0,
                    None,
                ),
            )?);
            let attn = AttnOp {
                q: &s.q,
                k: &l.k_cache,
                v: &l.v_cache,
                out: &s.attn,
                kv: self.kv,
                n_heads: cfg.n_head,
                n_kv_heads: cfg.n_head_kv,
                head_dim: cfg.head_dim,
            };
            g.op(ob.attention(&name("attn"), &attn)?);
            let m = MatOp {
                w: &l.wo,
                x: &s.attn,
                x_stride: q_dim,
                y: &s.x,
                bias: None,
                accumulate: true,
            };
            g.ops(ob.mat(&name("attn_output"), &m, batched)?);

            // FFN: x += Wdown · (silu(Wgate·n) * Wup·n), n = rmsnorm(x)
            g.op(ob.rms_norm(&name("ffn_norm"), &s.x, &s.xn, &l.ffn_norm, n_embd, eps)?);
            let m = MatOp {
                w: &l.w_gate,
                x: &s.xn,
                x_stride: n_embd,
                y: &s.gate,
                bias: None,
                accumulate: false,
            };
            g.ops(ob.mat(&name("ffn_gate"), &m, batched)?);
            let m = MatOp {
                w: &l.w_up,
                x: &s.xn,
                x_stride: n_embd,
                y: &s.up,
                bias: None,
                accumulate: false,
            };
            g.ops(ob.mat(&name("ffn_up"), &m, batched)?);
            g.op(ob.silu_mul(&name("ffn_silu_mul"), &s.gate, &s.up, cfg.n_ff)?);
            let m = MatOp {
                w: &l.w_down,
                x: &s.gate,
                x_stride: cfg.n_ff,
                y: &s.x,
                bias: None,
                accumulate: true,
            };
            g.ops(ob.mat(&name("ffn_down"), &m, batched)?);
        }
        // Logits of the last token only.
        g.op(ob.rms_norm("output_norm", &s.x, &s.xn, &self.output_norm, n_embd, eps)?);
        g.copy_last_row(&s.xn, &s.xn_last, u64::from(n_embd) * 4);
        let out = self.output.as_ref().unwrap_or(&self.token_embd);
        let m = MatOp {
            w: out,
            x: &s.xn_last,
            x_stride: n_embd,
            y: &s.logits,
            bias: None,
            accumulate: false,
        };
        ob.max_tokens = 1;
        g.ops(ob.mat("output", &m, false)?);
        Ok(g)
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

    /// As [`DenseModel::eval`] for one step (at most `max_batch` tokens), timing every
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
        let bytes = bytemuck::cast_slice(chunk);
        self.ctx.queue.write_buffer(&self.s.tokens, 0, bytes);
        let graph = if n == 1 { &self.decode } else { &self.prefill };
        let step = StepParams {
            n_tokens: n,
            pos0: self.pos,
            _pad: [0; 2],
        };
        let result = (&self.s.logits, u64::from(self.cfg.n_vocab) * 4);
        let times = if profile {
            profile_step(&self.ctx, graph, &self.step, step, result, &self.readback)?
        } else {
            graph.submit(&self.ctx, &self.step, step, result, &self.readback);
            Vec::new()
        };
        self.pos += n;
        Ok(times)
    }
}

/// Per-pair rope frequencies, base^(-2i/n_rot) scaled, computed in f64.
fn rope_inv_freq(cfg: &Config, ld: &Loader<'_, '_>) -> Result<Vec<f32>> {
    let half = (cfg.n_rot / 2) as usize;
    let factors = if ld.has(names::ROPE_FREQS) {
        let t = ld.info(names::ROPE_FREQS)?;
        ld.check_dims(names::ROPE_FREQS, &t.dims, &[half as u64])?;
        let mut f = vec![0f32; half];
        quant::dequantize(t.format, ld.file.tensor_data(t), &mut f);
        f
    } else {
        vec![1.0; half]
    };
    let base = f64::from(cfg.rope_base);
    Ok((0..half)
        .map(|i| {
            let inv = base.powf(-2.0 * i as f64 / f64::from(cfg.n_rot));
            (inv * f64::from(cfg.rope_freq_scale) / f64::from(factors[i])) as f32
        })
        .collect())
}
