//! Mixture-of-experts FFN layers at run time: the router's logits come back to the CPU,
//! experts are chosen as llama.cpp's build_moe_ffn chooses them, missing experts are
//! brought into the cache, and each token's experts run on their cache slots.
//!
//! Every token's experts run the same kernels in the same order whatever the cache
//! holds, so the budget changes speed, never the numbers.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::experts::cache::{Acquire, ExpertCache, ExpertStats};
use crate::experts::store::ExpertStore;
use crate::gpu::buffers::{self, Readback, Uploader, WeightMatrix};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{Op, OpBuilder};
use crate::gpu::slabs::ExpertSlabs;
use crate::gpu::{Buffer, Encoder};
use crate::model::config::{Gating, Moe, MAX_EXPERTS_USED};

/// The experts one token uses and their weights, in selection order.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub n: usize,
    pub ids: [u32; MAX_EXPERTS_USED as usize],
    pub weights: [f32; MAX_EXPERTS_USED as usize],
}

/// llama.cpp's build_moe_ffn on one token's router logits: softmax or sigmoid
/// probabilities; selection scores = probabilities + `bias` (DeepSeek-V3's
/// exp_probs_b); with expert groups, only the `n_groups_used` groups with the largest
/// sum of their two best scores compete; top-k by score; weights = probabilities of
/// the chosen, optionally normalised (sum clamped at 6.1e-5) and scaled.
/// `scratch` holds n_expert floats (no allocation per token).
pub fn route(cfg: &Moe, logits: &[f32], bias: Option<&[f32]>, scratch: &mut Vec<f32>) -> Route {
    let n = logits.len();
    let probs = scratch;
    probs.clear();
    match cfg.gating {
        Gating::Softmax => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            probs.extend(logits.iter().map(|&l| (l - max).exp()));
            let sum: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= sum);
        }
        Gating::Sigmoid => probs.extend(logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp()))),
    }
    let score = |e: usize| probs[e] + bias.map_or(0.0, |b| b[e]);
    // Group mask: groups whose top-2 score sum is among the n_groups_used largest.
    let mut allowed = [true; crate::model::config::MAX_EXPERTS as usize];
    if cfg.n_groups > 1 {
        let per = n / cfg.n_groups as usize;
        let mut group_score = [f32::NEG_INFINITY; crate::model::config::MAX_EXPERTS as usize];
        for (g, gs) in group_score
            .iter_mut()
            .enumerate()
            .take(cfg.n_groups as usize)
        {
            let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
            for e in g * per..(g + 1) * per {
                let s = score(e);
                if s > a {
                    b = a;
                    a = s;
                } else if s > b {
                    b = s;
                }
            }
            *gs = a + b;
        }
        let mut keep = [false; crate::model::config::MAX_EXPERTS as usize];
        for _ in 0..cfg.n_groups_used {
            let best = (0..cfg.n_groups as usize)
                .filter(|&g| !keep[g])
                .max_by(|&x, &y| group_score[x].total_cmp(&group_score[y]).then(y.cmp(&x)))
                .expect("n_groups_used < n_groups");
            keep[best] = true;
        }
        for (e, a) in allowed.iter_mut().enumerate().take(n) {
            *a = keep[e / per];
        }
    }
    let mut r = Route {
        n: cfg.n_expert_used as usize,
        ids: [0; MAX_EXPERTS_USED as usize],
        weights: [0.0; MAX_EXPERTS_USED as usize],
    };
    let mut taken = [false; crate::model::config::MAX_EXPERTS as usize];
    for k in 0..r.n {
        // Largest score; ties to the smaller id.
        let best = (0..n)
            .filter(|&e| allowed[e] && !taken[e])
            .max_by(|&x, &y| score(x).total_cmp(&score(y)).then(y.cmp(&x)))
            .expect("expert_used_count <= experts in the allowed groups (checked at load)");
        taken[best] = true;
        r.ids[k] = best as u32;
        r.weights[k] = probs[best];
    }
    if cfg.norm_weights {
        let sum: f32 = r.weights[..r.n].iter().sum();
        let sum = sum.max(6.103_515_6e-5);
        r.weights[..r.n].iter_mut().for_each(|w| *w /= sum);
    }
    if cfg.weights_scale != 1.0 {
        r.weights[..r.n]
            .iter_mut()
            .for_each(|w| *w *= cfg.weights_scale);
    }
    r
}

/// Activations of the expert FFN of one token (f32).
pub struct MoeScratch {
    pub router: Buffer,  // [B, n_expert] logits
    pub pred: Buffer,    // [n_expert] the next MoE layer's router on this layer's input
    pub weights: Buffer, // [B, n_expert_used] routing weights
    pub x: Buffer,       // [n_embd] the token's normed input
    pub acc: Buffer,     // [n_embd] residual + weighted expert outputs
    pub w: Buffer,       // [n_expert_used] the token's weights
    pub gate: Buffer,    // [n_ff_exp]
    pub up: Buffer,      // [n_ff_exp]
    pub y: Buffer,       // [n_embd] one expert's output
}

impl MoeScratch {
    pub fn new(ctx: &GpuContext, m: &Moe, n_embd: u32, max_batch: u32) -> MoeScratch {
        let b = u64::from(max_batch);
        let f = |label: &str, n: u64| buffers::storage(ctx, label, n * 4);
        MoeScratch {
            router: f("moe.router", b * u64::from(m.n_expert)),
            pred: f("moe.pred", u64::from(m.n_expert)),
            weights: f("moe.weights", b * u64::from(m.n_expert_used)),
            x: f("moe.x", u64::from(n_embd)),
            acc: f("moe.acc", u64::from(n_embd)),
            w: f("moe.w", u64::from(m.n_expert_used)),
            gate: f("moe.gate", u64::from(m.n_ff_exp)),
            up: f("moe.up", u64::from(m.n_ff_exp)),
            y: f("moe.y", u64::from(n_embd)),
        }
    }

    /// GPU bytes [`MoeScratch::new`] allocates (for the memory plan, before it does).
    pub fn bytes(m: &Moe, n_embd: u32, max_batch: u32) -> u64 {
        let (b, e, k) = (
            u64::from(max_batch),
            u64::from(m.n_expert),
            u64::from(m.n_expert_used),
        );
        4 * (b * e + e + b * k + 3 * u64::from(n_embd) + k + 2 * u64::from(m.n_ff_exp))
    }

    fn gpu_bytes(&self) -> u64 {
        [
            &self.router,
            &self.pred,
            &self.weights,
            &self.x,
            &self.acc,
            &self.w,
            &self.gate,
            &self.up,
            &self.y,
        ]
        .iter()
        .map(|b| b.size())
        .sum()
    }
}

/// The ops of one expert cache slot for one weight layout: gate, up, down.
struct SlotOps {
    ops: [Op; 3],
}

/// Routing state and expert execution for every MoE layer of a model.
pub struct MoeRuntime {
    cfg: Moe,
    n_embd: u32,
    store: ExpertStore,
    cache: ExpertCache,
    slabs: ExpertSlabs,
    /// Selection bias per layer (exp_probs_b), on the CPU.
    bias: Vec<Option<Vec<f32>>>,
    /// Weight layout (index into `slot_ops`) per layer.
    layer_layout: Vec<usize>,
    /// [layout][slot]
    slot_ops: Vec<Vec<SlotOps>>,
    silu: Op,
    axpy: Vec<Op>,
    s: MoeScratch,
    readback: Readback,
    logits: Vec<f32>,
    probs: Vec<f32>,
    routes: Vec<Route>,
    weights: Vec<f32>,
    /// Decode: load the next layer's predicted experts while this layer runs.
    prefetch: bool,
    /// The MoE layer after each MoE layer (usize::MAX for the last).
    next_layer: Vec<usize>,
    /// Experts predicted for each layer at the previous MoE layer (this token).
    predicted: Vec<Option<Route>>,
}

/// What the MoE runtime is built from (see [`MoeRuntime::new`]).
pub struct MoeParts {
    pub store: ExpertStore,
    pub cache: ExpertCache,
    pub slabs: ExpertSlabs,
    /// Selection bias per layer (None for dense layers and routers without one).
    pub bias: Vec<Option<Vec<f32>>>,
    pub scratch: MoeScratch,
}

impl MoeRuntime {
    pub fn new(
        ob: &mut OpBuilder<'_>,
        cfg: Moe,
        n_embd: u32,
        parts: MoeParts,
        max_batch: u32,
        prefetch: bool,
    ) -> Result<MoeRuntime> {
        let MoeParts {
            store,
            cache,
            slabs,
            bias,
            scratch: s,
        } = parts;
        let mut layouts: Vec<[crate::file::quant::WeightFormat; 3]> = Vec::new();
        let mut layer_layout = vec![usize::MAX; bias.len()];
        for (l, le) in store.layers() {
            let f = le.formats();
            let i = match layouts.iter().position(|x| *x == f) {
                Some(i) => i,
                None => {
                    layouts.push(f);
                    layouts.len() - 1
                }
            };
            layer_layout[l] = i;
        }
        let first = store
            .layers()
            .next()
            .map(|(_, l)| *l)
            .ok_or_else(|| Error::Internal("a MoE runtime without MoE layers".into()))?;
        let layout = slabs.layout();
        let mut slot_ops = Vec::with_capacity(layouts.len());
        for formats in &layouts {
            let matrix = |p: usize, slot: u32| {
                let info = first.projs[p];
                let (buffer, offset) = slabs.slot_range(slot, p);
                WeightMatrix::in_slot(
                    formats[p],
                    [info.n_rows, info.n_cols],
                    buffer,
                    offset,
                    layout.sizes[p],
                )
            };
            let shapes = [matrix(0, 0)?, matrix(1, 0)?, matrix(2, 0)?];
            let params = shapes.each_ref().map(|m| ob.slot_matvec_params(m));
            let io = [(&s.x, &s.gate), (&s.x, &s.up), (&s.gate, &s.y)];
            let mut per_slot = Vec::with_capacity(cache.n_slots() as usize);
            for slot in 0..cache.n_slots() {
                let mut op = |p: usize| -> Result<Op> {
                    let w = matrix(p, slot)?;
                    let name = format!("expert.{}", ["gate", "up", "down"][p]);
                    ob.slot_matvec(name, &w, &params[p], io[p].0, io[p].1)
                };
                let ops = [op(0)?, op(1)?, op(2)?];
                per_slot.push(SlotOps { ops });
            }
            slot_ops.push(per_slot);
        }
        let silu = ob.silu_mul("expert.silu_mul", &s.gate, &s.up, cfg.n_ff_exp)?;
        let axpy = (0..cfg.n_expert_used)
            .map(|k| ob.axpy("expert.add", &s.acc, &s.y, &s.w, n_embd, k))
            .collect::<Result<Vec<_>>>()?;
        // Router logits of every token, then the prediction for the next layer.
        let n_router = u64::from(max_batch + 1) * u64::from(cfg.n_expert);
        let readback = Readback::new(ob.ctx, "router readback", n_router * 4);
        let moe_layers: Vec<usize> = store.layers().map(|(i, _)| i).collect();
        let mut next_layer = vec![usize::MAX; bias.len()];
        for w in moe_layers.windows(2) {
            next_layer[w[0]] = w[1];
        }
        Ok(MoeRuntime {
            n_embd,
            store,
            cache,
            slabs,
            bias,
            layer_layout,
            slot_ops,
            silu,
            axpy,
            s,
            readback,
            logits: vec![0.0; n_router as usize],
            probs: Vec::with_capacity(cfg.n_expert as usize),
            routes: Vec::with_capacity(max_batch as usize),
            weights: vec![0.0; (max_batch * cfg.n_expert_used) as usize],
            prefetch,
            predicted: vec![None; next_layer.len()],
            next_layer,
            cfg,
        })
    }

    /// Fills every slot with experts in (layer, expert) order at load, through the
    /// uploader's staging (when the whole model's experts fit).
    pub fn preload(
        &mut self,
        ctx: &GpuContext,
        up: &mut Uploader,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let mut slot = 0;
        let layers: Vec<usize> = self.store.layers().map(|(i, _)| i).collect();
        for layer in layers {
            for expert in 0..self.store.n_expert() {
                if slot >= self.cache.n_slots() {
                    return Ok(());
                }
                for proj in 0..3 {
                    let bytes = self.store.bytes(layer, expert, proj);
                    self.slabs.upload(ctx, up, slot, proj, bytes)?;
                    self.store.release(layer, expert, proj);
                    progress(bytes.len() as u64);
                }
                self.cache.place(slot, layer, expert);
                slot += 1;
            }
        }
        Ok(())
    }

    /// Copies `expert` of `layer` from the file into `slot` (queued before the next
    /// submission) and counts the bytes.
    fn load(&mut self, ctx: &GpuContext, layer: usize, expert: u32, slot: u32) {
        for proj in 0..3 {
            let bytes = self.store.bytes(layer, expert, proj);
            self.slabs.write(ctx, slot, proj, bytes);
            self.cache.stats.bytes_read += bytes.len() as u64;
            self.store.release(layer, expert, proj);
        }
    }

    /// Where the graph writes the router logits of a step.
    pub fn router_buffer(&self) -> &Buffer {
        &self.s.router
    }

    /// Where the decode graph writes the next MoE layer's router applied to this
    /// layer's input, when `layer` has a prediction (prefetch on, a next MoE layer).
    pub fn prediction_target(&self, layer: usize) -> Option<(usize, &Buffer)> {
        let next = self.next_layer[layer];
        (self.prefetch && next != usize::MAX).then_some((next, &self.s.pred))
    }

    pub fn stats(&self) -> ExpertStats {
        self.cache.stats
    }

    pub fn reset_stats(&mut self) {
        self.cache.reset_stats();
    }

    /// Bytes of every expert of every layer in the file.
    pub fn store_bytes(&self) -> u64 {
        self.store.total_bytes()
    }

    /// (cache slots, experts in the model).
    pub fn slots(&self) -> (u32, u64) {
        (self.cache.n_slots(), self.store.total_experts())
    }

    /// GPU bytes of the expert slots.
    pub fn cache_bytes(&self) -> u64 {
        self.slabs.gpu_bytes()
    }

    /// Experts in the cache now.
    pub fn resident(&self) -> u32 {
        self.cache.resident()
    }

    /// Runs the routed experts of `layer` for the step's `n_tokens` tokens. `enc` holds
    /// the work up to this layer's router (its logits in `MoeScratch::router`, the
    /// normed input in `xn`, the residual in `x`); it is submitted here, and the
    /// experts' work is recorded into it for the rest of the step to follow.
    pub fn run_layer(
        &mut self,
        layer: usize,
        n_tokens: u32,
        xn: &Buffer,
        x: &Buffer,
        enc: &mut Encoder<'_>,
    ) -> Result<()> {
        let ctx = enc.context();
        let n_exp = self.cfg.n_expert as usize;
        let k_used = self.cfg.n_expert_used as usize;
        let n = n_tokens as usize;
        let bytes = (n * n_exp * 4) as u64;
        enc.copy(&self.s.router, 0, self.readback.buffer(), 0, bytes);
        let predict = n == 1 && self.prediction_target(layer).is_some();
        let n_read = if predict {
            let pb = (n_exp * 4) as u64;
            enc.copy(&self.s.pred, 0, self.readback.buffer(), bytes, pb);
            (n + 1) * n_exp
        } else {
            n * n_exp
        };
        enc.flush();
        // Everything recorded so far (earlier layers' experts included) is submitted.
        self.cache.next_wave();
        self.readback.read_f32(ctx, &mut self.logits[..n_read])?;

        self.routes.clear();
        for t in 0..n {
            let logits = &self.logits[t * n_exp..(t + 1) * n_exp];
            let r = route(
                &self.cfg,
                logits,
                self.bias[layer].as_deref(),
                &mut self.probs,
            );
            self.weights[t * k_used..(t + 1) * k_used].copy_from_slice(&r.weights[..k_used]);
            self.routes.push(r);
        }
        if let Some(p) = self.predicted[layer].take() {
            let chosen = &self.routes[0].ids[..k_used];
            let right = p.ids[..k_used]
                .iter()
                .filter(|e| chosen.contains(e))
                .count();
            self.cache.stats.predicted += k_used as u64;
            self.cache.stats.predicted_right += right as u64;
        }
        let w_bytes: &[u8] = bytemuck::cast_slice(&self.weights[..n * k_used]);
        ctx.write(&self.s.weights, 0, w_bytes);
        self.cache.stats.tokens += u64::from(n_tokens) * u64::from(layer == self.first_moe_layer());

        let row = u64::from(self.n_embd) * 4;
        let layout = self.layer_layout[layer];
        let mut slots = [0u32; MAX_EXPERTS_USED as usize];
        for t in 0..n {
            // Bring the token's experts in; when the cache is full of experts that
            // recorded work still needs, submit that work, start a new wave, keep the
            // experts this token already holds, and go on with the next.
            let ids = self.routes[t].ids;
            let mut i = 0;
            while i < k_used {
                let e = ids[i];
                slots[i] = match self.cache.acquire(layer, e) {
                    Acquire::Hit(s) => s,
                    Acquire::Miss(s) => {
                        let t0 = Instant::now();
                        self.load(ctx, layer, e, s);
                        self.cache.stats.stall_ns += t0.elapsed().as_nanos() as u64;
                        s
                    }
                    Acquire::Full => {
                        let t0 = Instant::now();
                        enc.flush();
                        self.cache.next_wave();
                        for &s in &slots[..i] {
                            self.cache.pin(s);
                        }
                        self.cache.stats.stall_ns += t0.elapsed().as_nanos() as u64;
                        continue;
                    }
                };
                i += 1;
            }
            let tr = t as u64 * row;
            enc.copy(xn, tr, &self.s.x, 0, row);
            enc.copy(x, tr, &self.s.acc, 0, row);
            let wk = (t * k_used * 4) as u64;
            enc.copy(&self.s.weights, wk, &self.s.w, 0, (k_used * 4) as u64);
            {
                let mut pass = enc.pass();
                for (k, &slot) in slots[..k_used].iter().enumerate() {
                    let ops = &self.slot_ops[layout][slot as usize].ops;
                    pass.record(&ops[0], 1);
                    pass.record(&ops[1], 1);
                    pass.record(&self.silu, 1);
                    pass.record(&ops[2], 1);
                    pass.record(&self.axpy[k], 1);
                }
            }
            enc.copy(&self.s.acc, 0, x, tr, row);
        }
        if predict {
            // Start this layer's experts, then bring the next layer's predicted experts
            // in while they run (the writes are ordered after this submission).
            enc.flush();
            self.cache.next_wave();
            let next = self.next_layer[layer];
            let logits = &self.logits[n_exp..2 * n_exp];
            let r = route(
                &self.cfg,
                logits,
                self.bias[next].as_deref(),
                &mut self.probs,
            );
            for &e in &r.ids[..k_used] {
                let t0 = Instant::now();
                if let Some(slot) = self.cache.prefetch(next, e) {
                    self.load(ctx, next, e, slot);
                    self.cache.stats.prefetch_ns += t0.elapsed().as_nanos() as u64;
                }
            }
            self.predicted[next] = Some(r);
        }
        Ok(())
    }

    fn first_moe_layer(&self) -> usize {
        self.store.layers().next().map_or(0, |(i, _)| i)
    }

    pub fn scratch_bytes(&self) -> u64 {
        self.s.gpu_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(gating: Gating, n_expert: u32, used: u32, groups: (u32, u32)) -> Moe {
        Moe {
            n_expert,
            n_expert_used: used,
            n_expert_shared: 0,
            n_ff_exp: 32,
            n_dense_lead: 0,
            gating,
            selection_bias: false,
            norm_weights: false,
            weights_scale: 1.0,
            n_groups: groups.0,
            n_groups_used: groups.1,
        }
    }

    #[test]
    fn softmax_router_takes_the_top_k_probabilities_in_order() {
        let c = cfg(Gating::Softmax, 6, 2, (0, 0));
        let logits = [0.1, 2.0, -1.0, 1.5, 0.0, 1.9];
        let r = route(&c, &logits, None, &mut Vec::new());
        assert_eq!(&r.ids[..2], &[1, 5]);
        let z: f32 = logits.iter().map(|l| (l - 2.0f32).exp()).sum();
        assert!((r.weights[0] - 1.0 / z).abs() < 1e-6);
        assert!((r.weights[1] - (-0.1f32).exp() / z).abs() < 1e-6);
    }

    #[test]
    fn bias_chooses_but_does_not_weigh_and_weights_are_normalised_and_scaled() {
        let mut c = cfg(Gating::Sigmoid, 4, 2, (0, 0));
        c.norm_weights = true;
        c.weights_scale = 2.5;
        let logits = [3.0, 2.0, 1.0, 0.0];
        let bias = [0.0, 0.0, 0.5, 0.9];
        let r = route(&c, &logits, Some(&bias), &mut Vec::new());
        // Scores: sig + bias = 0.95, 0.88, 1.23, 1.40 -> experts 3 then 2.
        assert_eq!(&r.ids[..2], &[3, 2]);
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        let (a, b) = (sig(0.0), sig(1.0));
        assert!((r.weights[0] - 2.5 * a / (a + b)).abs() < 1e-6);
        assert!((r.weights[1] - 2.5 * b / (a + b)).abs() < 1e-6);
    }

    #[test]
    fn groups_limit_the_choice_to_the_groups_with_the_best_top_two_sums() {
        // 4 groups of 2; group scores (sum of both): g0 1.8, g1 1.0 + 0.0, g2 1.2, g3 0.3.
        let c = cfg(Gating::Sigmoid, 8, 2, (4, 2));
        let probs = [0.9f32, 0.9, 1.0, 0.0, 0.6, 0.6, 0.2, 0.1];
        let logits: Vec<f32> = probs
            .iter()
            .map(|p| {
                let p = p.clamp(1e-4, 1.0 - 1e-4);
                (p / (1.0 - p)).ln()
            })
            .collect();
        let r = route(&c, &logits, None, &mut Vec::new());
        // Without groups expert 2 (~1.0) would win; its group (1.0) loses to g0 and g2.
        assert_eq!(&r.ids[..2], &[0, 1]);
    }
}
