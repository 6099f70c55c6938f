//! The feed-forward half of a block: a SwiGLU (dense layers, and the shared experts of
//! deepseek2 MoE layers) and, in MoE layers, the router whose choice the step pauses for
//! (the routed experts run in [`super::moe`]).

use crate::error::{Error, Result};
use crate::gpu::buffers::WeightMatrix;
use crate::gpu::graph::{Graph, Pause};
use crate::gpu::kernels::{MatOp, OpBuilder};
use crate::model::config::Config;
use crate::model::loader::Loader;
use crate::model::moe::MoeRuntime;
use crate::model::names::{self, LayerTensor as T};
use crate::model::scratch::{BlockCtx, Scratch};

pub(crate) enum Ffn {
    /// SwiGLU: [n_ff, n_embd] gate and up, [n_embd, n_ff] down.
    Dense([WeightMatrix; 3]),
    /// Router [n_expert, n_embd]; shared experts as one SwiGLU (deepseek2). The routed
    /// experts stay in the file (experts::store).
    Moe {
        router: WeightMatrix,
        shared: Option<[WeightMatrix; 3]>,
    },
}

impl Ffn {
    /// The FFN of block `i`, and for MoE layers with a selection bias (DeepSeek-V3's
    /// exp_probs_b) that bias, which routing applies on the CPU.
    pub fn load(ld: &mut Loader<'_, '_>, cfg: &Config, i: u32) -> Result<(Ffn, Option<Vec<f32>>)> {
        let n = |t| names::layer(i, t);
        let n_embd = cfg.n_embd;
        let swiglu = |ld: &mut Loader<'_, '_>, [g, u, d]: [T; 3], n_ff: u32| -> Result<_> {
            Ok([
                ld.matrix(&n(g), n_ff, n_embd)?,
                ld.matrix(&n(u), n_ff, n_embd)?,
                ld.matrix(&n(d), n_embd, n_ff)?,
            ])
        };
        match &cfg.moe {
            Some(m) if m.is_moe_layer(i) => {
                let router = ld.matrix(&n(T::FfnGateInp), m.n_expert, n_embd)?;
                let bias = if m.selection_bias {
                    Some(ld.vector_f32(&n(T::ExpProbsBias), m.n_expert)?)
                } else {
                    None
                };
                let shared = if m.n_expert_shared > 0 {
                    let shexp = [T::FfnGateShexp, T::FfnUpShexp, T::FfnDownShexp];
                    Some(swiglu(ld, shexp, m.n_ff_exp * m.n_expert_shared)?)
                } else {
                    None
                };
                Ok((Ffn::Moe { router, shared }, bias))
            }
            _ => {
                let dense = [T::FfnGate, T::FfnUp, T::FfnDown];
                Ok((Ffn::Dense(swiglu(ld, dense, cfg.n_ff)?), None))
            }
        }
    }

    /// The router of a MoE layer.
    pub fn router(&self) -> Option<&WeightMatrix> {
        match self {
            Ffn::Moe { router, .. } => Some(router),
            Ffn::Dense(_) => None,
        }
    }

    /// Records x += FFN(xn) for block `i`. MoE layers record the shared experts and the
    /// router, then pause for the routed experts; with prefetch, decode also applies
    /// the next MoE layer's router (`next_router`) to this layer's input.
    pub fn record(
        &self,
        g: &mut Graph,
        ob: &mut OpBuilder<'_>,
        b: &BlockCtx<'_>,
        i: usize,
        moe: Option<&MoeRuntime>,
        next_router: Option<&WeightMatrix>,
    ) -> Result<()> {
        let (cfg, s) = (b.cfg, b.s);
        let name = |what: &str| format!("blk.{i}.{what}");
        match self {
            Ffn::Dense(w) => record_swiglu(g, ob, s, w, cfg.n_ff, b.batched, &name("ffn")),
            Ffn::Moe { router, shared } => {
                let m = cfg.moe.as_ref().ok_or_else(|| {
                    Error::Internal(format!("MoE layer {i} in a model without a MoE config"))
                })?;
                if let Some(w) = shared {
                    let n_ff = m.n_ff_exp * m.n_expert_shared;
                    record_swiglu(g, ob, s, w, n_ff, b.batched, &name("ffn_shexp"))?;
                }
                let rt = moe.ok_or_else(|| {
                    Error::Internal(format!("MoE layer {i} without a MoE runtime"))
                })?;
                let logits = MatOp {
                    w: router,
                    x: &s.xn,
                    x_stride: cfg.n_embd,
                    y: rt.router_buffer(),
                    bias: None,
                    accumulate: false,
                };
                g.ops(ob.mat(&name("ffn_gate_inp"), &logits, b.batched)?);
                // Decode with prefetch: the next MoE layer's router on this input.
                if let (false, Some(next), Some((_, pred))) =
                    (b.batched, next_router, rt.prediction_target(i))
                {
                    let m = MatOp {
                        w: next,
                        y: pred,
                        ..logits
                    };
                    g.ops(ob.mat(&name("ffn_gate_inp_next"), &m, b.batched)?);
                }
                g.pause(Pause::Moe(i));
                Ok(())
            }
        }
    }
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
    let silu = format!("{name}_silu_mul");
    g.op(ob.silu_mul_for_mat(&silu, &s.gate, &s.up, n_ff, batched)?);
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
