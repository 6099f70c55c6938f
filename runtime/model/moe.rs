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
use crate::gpu::buffers::{Readback, WeightMatrix};
use crate::gpu::context::GpuContext;
use crate::gpu::graph::{flush, Buffer};
use crate::gpu::kernels::{Op, OpBuilder};
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

/// The ops of one expert cache slot for one weight layout: gate, up, down.
struct SlotOps {
    ops: [Op; 3],
}

/// Routing state and expert execution for every MoE layer of a model.
pub struct MoeRuntime {
    cfg: Moe,
    n_embd: u32,
    pub store: ExpertStore,
    pub cache: ExpertCache,
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

impl MoeRuntime {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ob: &mut OpBuilder<'_>,
        cfg: Moe,
        n_embd: u32,
        store: ExpertStore,
        cache: ExpertCache,
        bias: Vec<Option<Vec<f32>>>,
        s: MoeScratch,
        max_batch: u32,
        prefetch: bool,
    ) -> Result<MoeRuntime> {
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
        let first =
            store.layers().next().map(|(_, l)| *l).ok_or_else(|| {
                Error::Invalid("internal: a MoE runtime without MoE layers".into())
            })?;
        let layout = cache.layout();
        let mut slot_ops = Vec::with_capacity(layouts.len());
        for formats in &layouts {
            let matrix = |p: usize, buffer: &wgpu::Buffer, offset: u64| {
                let info = first.projs[p];
                WeightMatrix::in_slot(
                    formats[p],
                    [info.n_rows, info.n_cols],
                    buffer,
                    offset,
                    layout.sizes[p],
                )
            };
            let (b0, o0) = cache.slot_range(0, 0);
            let shapes = [matrix(0, b0, o0)?, matrix(1, b0, o0)?, matrix(2, b0, o0)?];
            let params = shapes.each_ref().map(|m| ob.slot_matvec_params(m));
            let io = [(&s.x, &s.gate), (&s.x, &s.up), (&s.gate, &s.y)];
            let mut per_slot = Vec::with_capacity(cache.n_slots() as usize);
            for slot in 0..cache.n_slots() {
                let mut ops = Vec::with_capacity(3);
                for p in 0..3 {
                    let (buffer, offset) = cache.slot_range(slot, p);
                    let w = matrix(p, buffer, offset)?;
                    let name = format!("expert.{}", ["gate", "up", "down"][p]);
                    ops.push(ob.slot_matvec(name, &w, &params[p], io[p].0, io[p].1)?);
                }
                let [g, u, d]: [Op; 3] = ops.try_into().map_err(|_| Error::Gpu("ops".into()))?;
                per_slot.push(SlotOps { ops: [g, u, d] });
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

    /// Runs the routed experts of `layer` for the step's `n_tokens` tokens. `enc` holds
    /// the work up to this layer's router (its logits in `MoeScratch::router`, the
    /// normed input in `xn`, the residual in `x`); it is submitted here, and the
    /// experts' work is recorded into it for the rest of the step to follow.
    pub fn run_layer(
        &mut self,
        ctx: &GpuContext,
        layer: usize,
        n_tokens: u32,
        xn: &Buffer,
        x: &Buffer,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<()> {
        let n_exp = self.cfg.n_expert as usize;
        let k_used = self.cfg.n_expert_used as usize;
        let n = n_tokens as usize;
        let bytes = (n * n_exp * 4) as u64;
        enc.copy_buffer_to_buffer(&self.s.router, 0, self.readback.buffer(), 0, bytes);
        let predict = n == 1 && self.prediction_target(layer).is_some();
        let n_read = if predict {
            let pb = (n_exp * 4) as u64;
            enc.copy_buffer_to_buffer(&self.s.pred, 0, self.readback.buffer(), bytes, pb);
            (n + 1) * n_exp
        } else {
            n * n_exp
        };
        flush(ctx, enc);
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
        ctx.queue.write_buffer(&self.s.weights, 0, w_bytes);
        self.cache.stats.tokens += u64::from(n_tokens) * u64::from(layer == self.first_moe_layer());

        let row = u64::from(self.n_embd) * 4;
        let layout = self.layer_layout[layer];
        let mut slots = [0u32; MAX_EXPERTS_USED as usize];
        for t in 0..n {
            // Bring the token's experts in; when the cache is full of experts that
            // recorded work still needs, submit that work and start again.
            'token: loop {
                for (slot, &e) in slots.iter_mut().zip(&self.routes[t].ids[..k_used]) {
                    match self.cache.acquire(ctx, &self.store, layer, e) {
                        Acquire::Hit(s) | Acquire::Miss(s) => *slot = s,
                        Acquire::Full => {
                            let t0 = Instant::now();
                            flush(ctx, enc);
                            self.cache.next_wave();
                            self.cache.stats.stall_ns += t0.elapsed().as_nanos() as u64;
                            continue 'token;
                        }
                    }
                }
                break;
            }
            let tr = t as u64 * row;
            enc.copy_buffer_to_buffer(xn, tr, &self.s.x, 0, row);
            enc.copy_buffer_to_buffer(x, tr, &self.s.acc, 0, row);
            let wk = (t * k_used * 4) as u64;
            enc.copy_buffer_to_buffer(&self.s.weights, wk, &self.s.w, 0, (k_used * 4) as u64);
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for (k, &slot) in slots[..k_used].iter().enumerate() {
                    let ops = &self.slot_ops[layout][slot as usize].ops;
                    ops[0].record(&mut pass, 1);
                    ops[1].record(&mut pass, 1);
                    self.silu.record(&mut pass, 1);
                    ops[2].record(&mut pass, 1);
                    self.axpy[k].record(&mut pass, 1);
                }
            }
            enc.copy_buffer_to_buffer(&self.s.acc, 0, x, tr, row);
        }
        if predict {
            // Start this layer's experts, then bring the next layer's predicted experts
            // in while they run (the writes are ordered after this submission).
            flush(ctx, enc);
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
                self.cache.prefetch(ctx, &self.store, next, e);
            }
            self.predicted[next] = Some(r);
        }
        Ok(())
    }

    fn first_moe_layer(&self) -> usize {
        self.store.layers().next().map_or(0, |(i, _)| i)
    }

    pub fn scratch_bytes(&self) -> u64 {
        let s = &self.s;
        [
            &s.router, &s.pred, &s.weights, &s.x, &s.acc, &s.w, &s.gate, &s.up, &s.y,
        ]
        .iter()
        .map(|b| b.size())
        .sum()
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
