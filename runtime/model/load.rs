//! Loading a model: the memory plan, every block's weights (through
//! [`super::loader::Loader`]), the expert cache, and the two graphs.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::experts::cache::ExpertCache;
use crate::experts::store::ExpertStore;
use crate::file::gguf::GgufFile;
use crate::gpu::buffers::{self, Readback};
use crate::gpu::context::GpuContext;
use crate::gpu::graph::Graph;
use crate::gpu::kernels::{OpBuilder, StepParams};
use crate::gpu::pipelines::{KvType, PipelineCache};
use crate::gpu::slabs::{ExpertSlabs, SlotLayout};
use crate::gpu::stream::Streamer;
use crate::gpu::Buffer;
use crate::model::config::Config;
use crate::model::decoder::{Attention, Decoder, DecoderOptions, Layer, MemoryReport};
use crate::model::embed::EmbedRows;
use crate::model::ffn::Ffn;
use crate::model::gqa::GqaLayer;
use crate::model::loader::{rope_inv_freq, Loader, Progress};
use crate::model::mla::MlaLayer;
use crate::model::moe::{MoeParts, MoeRuntime, MoeScratch};
use crate::model::names::{self, LayerTensor as T};
use crate::model::plan::{self, ExpertBudget, PlanInput};
use crate::model::scratch::Scratch;

/// The KV cache of one layer: elements per position and how many caches (keys and
/// values, or MLA's one latent cache).
fn kv_row(cfg: &Config) -> (u32, u64) {
    match &cfg.mla {
        Some(m) => (m.cache_dim(), 1),
        None => (cfg.kv_dim(), 2),
    }
}

/// Where the routed experts are in the file, and the slot geometry they need (MoE).
fn locate_experts(
    file: &Arc<GgufFile>,
    cfg: &Config,
    ctx: &GpuContext,
) -> Result<Option<(ExpertStore, SlotLayout)>> {
    let Some(m) = &cfg.moe else {
        return Ok(None);
    };
    let store = ExpertStore::new(
        file.clone(),
        cfg.n_layer,
        [cfg.n_embd, m.n_ff_exp, m.n_expert],
        |l| cfg.is_moe_layer(l).then(|| names::expert_tensors(l)),
    )?;
    let shapes = store
        .layers()
        .map(|(_, l)| l.projs.map(|p| (p.format, p.n_rows, p.n_cols)));
    let layout = SlotLayout::new(ctx, shapes)?;
    Ok(Some((store, layout)))
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
        let (kv_row, n_caches) = kv_row(&cfg);
        let kv_bytes = u64::from(n_ctx) * u64::from(kv_row) * kv.bytes();
        // The largest weight part, as the uploader makes them (buffers::Uploader): the
        // plan must split and lay out every matrix at the same limit.
        let binding_limit = opts
            .binding_limit
            .min(ctx.profile.max_storage_binding)
            .min(ctx.profile.max_buffer_size);
        if kv_bytes > ctx.profile.max_storage_binding {
            return Err(Error::Limit {
                what: format!("one layer's KV cache for a context of {n_ctx}"),
                needed: kv_bytes,
                limit: ctx.profile.max_storage_binding,
                unit: "bytes",
            });
        }

        let file = Arc::new(file);
        let s = Scratch::new(&ctx, &cfg, opts.max_batch);
        let moe_scratch = cfg
            .moe
            .as_ref()
            .map_or(0, |m| MoeScratch::bytes(m, n_embd, opts.max_batch));
        let scratch_bytes = s.bytes() + moe_scratch;
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
        let experts = locate_experts(&file, &cfg, &ctx)?;
        let (expert_min, expert_all) = match (&cfg.moe, &experts) {
            (Some(m), Some((store, layout))) => (
                u64::from(m.n_expert_used) * layout.slot_bytes,
                store.total_experts() * layout.slot_bytes,
            ),
            _ => (0, 0),
        };
        let (layers_bytes, output_bytes, always, largest_part, largest_row) =
            PlanInput::dense_shapes(&file, &cfg, out_name, binding_limit, &ctx.profile);
        let plan = plan::plan(
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
        // Streamed layers' matrices are bound to ring slots by the graph; until then
        // a slot stands in for their buffer.
        let ring = |streamed: bool| match &streamer {
            Some(st) if streamed => Some((plan.slot_bytes, st.ring()[0].clone())),
            _ => None,
        };

        let mut ld = Loader::new(&file, &ctx, binding_limit, progress);
        let embed = EmbedRows::new(file.clone(), &cfg)?;
        let output_norm = ld.vector(names::OUTPUT_NORM, n_embd)?;
        let inv_freq = rope_inv_freq(&cfg, &mut ld)?;
        let inv_freq = buffers::upload_f32(&ctx, "rope_inv_freq", &inv_freq);
        let mut layers = Vec::with_capacity(cfg.n_layer as usize);
        let mut probs_bias = Vec::with_capacity(cfg.n_layer as usize);
        for i in 0..cfg.n_layer {
            ld.stream_into(ring(plan.streamed_layers.contains(&i)));
            let cache = |what: &str| buffers::storage(&ctx, &format!("blk.{i}.{what}"), kv_bytes);
            let (layer, bias) = Layer::load(&mut ld, &cfg, i, cache)?;
            layers.push(layer);
            probs_bias.push(bias);
        }
        ld.stream_into(ring(plan.output_streamed));
        let output = ld.matrix(out_name, cfg.n_vocab, n_embd)?;
        ld.stream_into(None);
        let (mut up, progress, weights, loaded) = ld.finish();

        let step = buffers::uniform(&ctx, "step", &StepParams::default());
        let readback = Readback::new(&ctx, "logits readback", u64::from(cfg.n_vocab) * 4);
        let mut pipelines = PipelineCache::new(&ctx.device);

        let moe = match (&cfg.moe, experts) {
            (Some(m), Some((store, layout))) => {
                // Under one budget, the expert cache gets what the plan leaves it.
                let budget = plan
                    .expert_cache
                    .map_or(opts.expert_budget, ExpertBudget::Bytes);
                let memory = plan::device_memory(ctx.profile.memory, crate::process::host_memory());
                let all = store.total_experts();
                let n_slots = plan::expert_slots(
                    file.path(),
                    [layout.slot_bytes, weights],
                    [u64::from(m.n_expert_used), all],
                    budget,
                    &memory,
                )?;
                let cache =
                    ExpertCache::new(cfg.n_layer as usize, m.n_expert, n_slots, opts.eviction);
                let slabs = ExpertSlabs::new(&ctx, layout, n_slots);
                let parts = MoeParts {
                    store,
                    cache,
                    slabs,
                    bias: probs_bias,
                    scratch: MoeScratch::new(&ctx, m, n_embd, opts.max_batch),
                };
                let dummy = buffers::storage(&ctx, "dummy", 16);
                let mut ob = OpBuilder::new(&ctx, &mut pipelines, &step, 1, &dummy);
                let mut rt = MoeRuntime::new(
                    &mut ob,
                    m.clone(),
                    n_embd,
                    parts,
                    opts.max_batch,
                    opts.prefetch,
                )?;
                let all_resident = u64::from(n_slots) >= all;
                if all_resident {
                    // Progress goes on in file bytes: the dense part is done.
                    let mut uploaded = loaded;
                    let total = loaded + rt.store_bytes();
                    rt.preload(&ctx, &mut up, &mut |b| {
                        uploaded += b;
                        progress(uploaded, total);
                    })?;
                }
                log::info!(
                    "experts: {n_slots} of {all} cached in {} MiB ({} resident at load), {}",
                    rt.cache_bytes() >> 20,
                    rt.resident(),
                    if all_resident {
                        "all resident"
                    } else {
                        "streamed from the file"
                    }
                );
                debug_assert_eq!(rt.scratch_bytes(), moe_scratch, "planned MoE scratch");
                Some(rt)
            }
            _ => None,
        };
        let memory = MemoryReport {
            weights,
            expert_cache: moe.as_ref().map_or(0, |m| m.cache_bytes()),
            kv_cache: n_caches * kv_bytes * u64::from(cfg.n_layer),
            scratch: scratch_bytes,
            stream_ring: streamer.as_ref().map_or(0, |st| st.ring_bytes()),
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
            inv_freq,
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
        let (prefill, units) = model.build_graph(&mut pipelines, true)?;
        let (decode, decode_units) = model.build_graph(&mut pipelines, false)?;
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
}

impl Layer {
    /// Block `i`'s weights; `cache(what)` makes one of its KV caches. Also returns the
    /// MoE selection bias of the layer, if it has one.
    fn load(
        ld: &mut Loader<'_, '_>,
        cfg: &Config,
        i: u32,
        cache: impl Fn(&str) -> Buffer,
    ) -> Result<(Layer, Option<Vec<f32>>)> {
        let n = |t| names::layer(i, t);
        let (attn, wo_cols) = match &cfg.mla {
            Some(m) => (
                Attention::Mla(MlaLayer::load(ld, cfg, m, i, cache("kv_latent"))?),
                cfg.n_head * m.v_head,
            ),
            None => (
                Attention::Gqa(GqaLayer::load(
                    ld,
                    cfg,
                    i,
                    [cache("k_cache"), cache("v_cache")],
                )?),
                cfg.q_dim(),
            ),
        };
        let (ffn, bias) = Ffn::load(ld, cfg, i)?;
        let layer = Layer {
            attn_norm: ld.vector(&n(T::AttnNorm), cfg.n_embd)?,
            attn,
            wo: ld.matrix(&n(T::AttnOutput), cfg.n_embd, wo_cols)?,
            ffn_norm: ld.vector(&n(T::FfnNorm), cfg.n_embd)?,
            ffn,
        };
        Ok((layer, bias))
    }
}
