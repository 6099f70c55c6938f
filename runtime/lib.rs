//! edgeseek: distilled DeepSeek-R1 models on any wgpu GPU through WGSL compute shaders.
//!
//! The public surface is this file: [`Model`] (load, evaluate, [`Model::session`]),
//! [`Session`] (prompts in, streamed [`Event`]s out), their options, [`Error`], and the
//! types they return. Everything else is internal; docs/architecture.md maps it.
//!
//! ```no_run
//! let mut model = edgeseek::Model::load("model.gguf", &edgeseek::LoadOptions::default())?;
//! let logits = model.eval(&[1, 2, 3])?;
//! # Ok::<(), edgeseek::Error>(())
//! ```

mod catalog;
mod chat;
mod error;
mod experts;
mod file;
mod gpu;
mod model;
mod process;
mod sampler;
mod session;
mod tokenizer;

use std::path::Path;

// The models we know by name (what `chat` fetches and the docs list), and what the
// process holds in memory: both for hosts that show them to their users, as the
// examples do.
pub use catalog::{CatalogEntry, CATALOG, DEFAULT_MODEL};
pub use chat::{split_think, ChatTemplate, Message, Role, ThinkSplit};
pub use error::{Error, Result};
pub use experts::cache::{Eviction, ExpertStats};
pub use file::gguf::{GgufFile, MetaValue, TensorInfo};
pub use file::quant::WeightFormat;
pub use gpu::context::{DeviceMemory, DeviceOptions, DeviceProfile};
pub use gpu::profile::DispatchTime;
pub use model::config::{Arch, Config, Gating, Mla, Moe, Rope};
pub use model::decoder::MemoryReport;
pub use model::plan::{ExpertBudget, MemoryPlan};
pub use process::{file_rss, rss, Rss};
pub use sampler::{argmax, top_k, Sampler, SamplerOptions};
pub use session::{
    encode_prompt, Event, GenerateOptions, Generation, Prompt, Session, StopReason, Summary,
};
pub use tokenizer::Tokenizer;
/// The wgpu edgeseek is built with, for hosts that share their device with us
/// ([`Model::load_on_device`]).
pub use wgpu;

/// One weight-matrix kernel timed alone, for `examples/kernel_bench` (the per-format
/// figures in docs/performance.md). Hidden: a door for the repository's own tool, not
/// an API; it may change with any commit.
#[doc(hidden)]
pub mod kernel_bench {
    pub use crate::gpu::kernels::bench::{KernelBench, MatTiming, MAX_COLS, MAX_TOKENS};
}

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Adapter choice, f16 and limits (`--adapter`, `--no-f16`, `--downlevel`).
    pub device: DeviceOptions,
    /// Context length the KV cache is sized for; default min(trained context, 4096).
    pub n_ctx: Option<u32>,
    /// Most tokens one prefill step processes; longer prompts go in chunks.
    pub max_batch: u32,
    /// Split weight matrices into parts of at most this many bytes even where the
    /// device allows larger bindings (tests use it to exercise the split path).
    pub max_binding_bytes: Option<u64>,
    /// GPU memory for routed experts of MoE models (`--expert-cache-mb N|min`): all of
    /// them when they fit in half the device memory (the default), or a budget they
    /// are streamed within.
    pub expert_cache_bytes: ExpertBudget,
    /// Which cached expert gives way to a new one.
    pub eviction: Eviction,
    /// While a MoE layer runs (decode), load the experts the next layer's router
    /// predicts from this layer's input (`--prefetch`).
    pub prefetch: bool,
    /// One budget for the model's GPU memory (`--max-resident-mb N`): KV cache (for
    /// `n_ctx`), scratch, dense weights and the expert cache are planned from it at
    /// load; dense layers that do not fit stream from the file every token. None: all
    /// dense weights resident.
    pub max_resident_bytes: Option<u64>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: DeviceOptions::default(),
            n_ctx: None,
            max_batch: 64,
            max_binding_bytes: None,
            expert_cache_bytes: ExpertBudget::Auto,
            eviction: Eviction::Lru,
            prefetch: false,
            max_resident_bytes: None,
        }
    }
}

/// A loaded model: weights on the GPU, a KV cache, and the current sequence position.
pub struct Model {
    inner: model::decoder::Decoder,
    tokenizer: Option<Tokenizer>,
    chat_template: Option<chat::ChatTemplate>,
}

impl Model {
    /// Opens a GGUF file, checks it and uploads its weights once. The file stays mapped
    /// (token embeddings are read from it each step, and experts or streamed layers
    /// where there are any), but the pages of uploaded weights are released.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Model> {
        Self::load_with_progress(path, opts, &mut |_, _| {})
    }

    /// As [`Model::load`], calling `progress(bytes uploaded, bytes to upload)` as the
    /// weights go to the GPU (for a progress bar).
    pub fn load_with_progress(
        path: impl AsRef<Path>,
        opts: &LoadOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Model> {
        Self::load_inner(path.as_ref(), opts, None, progress)
    }

    /// Loads onto a wgpu device and queue the host already owns (a game or UI that
    /// renders with wgpu). The device's features and limits are the host's; of
    /// `opts.device`, `no_f16`, `f32_activations`, `buffer_weights` and `downlevel`
    /// (here: no subgroup kernels) still apply, `adapter` does not.
    pub fn load_on_device(
        path: impl AsRef<Path>,
        opts: &LoadOptions,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<Model> {
        Self::load_inner(path.as_ref(), opts, Some((device, queue)), &mut |_, _| {})
    }

    fn load_inner(
        path: &Path,
        opts: &LoadOptions,
        host: Option<(wgpu::Device, wgpu::Queue)>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Model> {
        let file = file::gguf::GgufFile::open(path)?;
        let cfg = Config::from_gguf(&file)?;
        model::loader::check_kernel_limits(&cfg, file.path())?;
        if opts.max_batch == 0 || opts.max_batch > 4096 {
            return Err(Error::Invalid(format!(
                "max_batch {} (1..=4096)",
                opts.max_batch
            )));
        }
        let n_ctx = opts.n_ctx.unwrap_or(cfg.n_ctx_train.min(4096));
        if n_ctx == 0 {
            return Err(Error::Invalid("a context of 0 tokens".into()));
        }
        let ctx = match host {
            Some((device, queue)) => {
                gpu::context::GpuContext::from_device(device, queue, &opts.device)?
            }
            None => gpu::context::GpuContext::new(&opts.device)?,
        };
        let dense_opts = model::decoder::DecoderOptions {
            n_ctx,
            max_batch: opts.max_batch,
            binding_limit: opts.max_binding_bytes.unwrap_or(u64::MAX),
            expert_budget: opts.expert_cache_bytes,
            eviction: opts.eviction,
            prefetch: opts.prefetch,
            max_resident_bytes: opts.max_resident_bytes,
        };
        let tokenizer = load_tokenizer(&file)?;
        let chat_template = chat::ChatTemplate::from_gguf(&file)?;
        let inner = model::decoder::Decoder::load(file, cfg, ctx, dense_opts, progress)?;
        Ok(Model {
            inner,
            tokenizer,
            chat_template,
        })
    }

    pub fn config(&self) -> &Config {
        self.inner.config()
    }

    pub fn device(&self) -> &DeviceProfile {
        &self.inner.context().profile
    }

    /// GPU bytes held, by kind.
    pub fn memory(&self) -> MemoryReport {
        self.inner.memory()
    }

    /// Expert cache counters since load or [`Model::reset_expert_stats`]; None for
    /// dense models.
    pub fn expert_stats(&self) -> Option<ExpertStats> {
        self.inner.expert_stats()
    }

    pub fn reset_expert_stats(&mut self) {
        self.inner.reset_expert_stats()
    }

    /// How the memory budget was divided at load (resident, streamed, KV, scratch).
    pub fn plan(&self) -> &MemoryPlan {
        self.inner.plan()
    }

    /// Dense weight bytes streamed from the file since load (0 when all resident).
    pub fn bytes_streamed(&self) -> u64 {
        self.inner.bytes_streamed()
    }

    /// MoE models: (expert cache slots, routed experts in the model). All experts are
    /// resident when the first is at least the second; otherwise they are streamed.
    pub fn expert_slots(&self) -> Option<(u32, u64)> {
        self.inner.expert_slots()
    }

    pub fn n_ctx(&self) -> u32 {
        self.inner.n_ctx()
    }

    /// Tokens in the sequence so far.
    pub fn position(&self) -> u32 {
        self.inner.position()
    }

    /// Starts a new sequence.
    pub fn reset(&mut self) {
        self.inner.reset()
    }

    /// Keeps only the first `pos` tokens of the sequence (their KV entries stay valid).
    pub fn rewind(&mut self, pos: u32) -> Result<()> {
        if pos > self.position() {
            return Err(Error::Invalid(format!(
                "rewind to {pos} past position {}",
                self.position()
            )));
        }
        self.inner.rewind(pos);
        Ok(())
    }

    /// Evaluates one step of tokens (at most `max_batch`) like [`Model::eval`], timing
    /// each GPU dispatch (needs timestamp queries; slower than a normal step).
    pub fn eval_profiled(&mut self, tokens: &[u32]) -> Result<Vec<DispatchTime>> {
        self.inner.eval_profiled(tokens)
    }

    /// The tokenizer the file describes; None when it has none we can build.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// The chat template recognised in the file, if any.
    pub fn chat_template(&self) -> Option<&chat::ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// A text session: prompts in, streamed text out.
    pub fn session(&mut self) -> Result<Session<'_>> {
        Session::new(self)
    }

    /// Appends tokens to the sequence; returns the logits that follow the last one.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.inner.eval(tokens)
    }
}

/// The file's tokenizer: None when it has no vocabulary or one of a kind we do not
/// build (the model still runs on token ids); a broken vocabulary is an error.
fn load_tokenizer(file: &file::gguf::GgufFile) -> Result<Option<Tokenizer>> {
    if file.get("tokenizer.ggml.model").is_none() {
        return Ok(None);
    }
    match Tokenizer::from_gguf(file) {
        Ok(t) => Ok(Some(t)),
        Err(Error::Unsupported { what, .. }) => {
            log::warn!("{}: no tokenizer: {what}", file.path().display());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
