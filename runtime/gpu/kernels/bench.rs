//! One weight-matrix kernel timed alone, for `examples/kernel_bench` (the per-format
//! figures of docs/performance.md): a matrix of random valid blocks of a format, its ops
//! recorded `reps` times into one step, each dispatch timed with timestamp queries.
//! Reached as `edgeseek::kernel_bench`, hidden from the docs: a door for the
//! repository's own tool, not an API anyone should build on.

use super::{q8_bytes, Kernel, MatOp, OpBuilder, StepParams};
use crate::error::{Error, Result};
use crate::file::quant::{self, WeightFormat};
use crate::gpu::buffers::{
    self, MatrixUse, Placement, Readback, RowLayout, Uploader, WeightMatrix, MAX_ROW_GROUP,
};
use crate::gpu::context::{DeviceOptions, GpuContext};
use crate::gpu::graph::Graph;
use crate::gpu::pipelines::{q8dot_reader, PipelineCache};
use crate::gpu::profile::profile_step;
use crate::gpu::Buffer;

/// The GPU time of one matrix op.
#[derive(Clone, Debug)]
pub struct MatTiming {
    /// The kernel that ran (e.g. "MatVecQ8").
    pub kernel: String,
    /// Seconds of the matrix kernel (all parts of a split matrix), median over reps.
    pub mat_s: f64,
    /// Seconds spent quantizing its input to 8-bit blocks, median over the reps that
    /// did (0 for the f32 kernels).
    pub quantize_s: f64,
    /// Bytes of weights the kernel reads once.
    pub weight_bytes: u64,
}

/// A device and what every op needs, kept across timings so pipelines compile once.
pub struct KernelBench {
    ctx: GpuContext,
    pipelines: PipelineCache,
    step: Buffer,
    dummy: Buffer,
    q8: Buffer,
}

/// The most tokens one timing takes (the 8-bit scratch is sized for it).
pub const MAX_TOKENS: u32 = 64;
/// The widest input row (the 8-bit scratch is sized for it).
pub const MAX_COLS: u32 = 32768;

impl KernelBench {
    pub fn new(opts: &DeviceOptions) -> Result<KernelBench> {
        let ctx = GpuContext::new(opts)?;
        let pipelines = PipelineCache::new(&ctx.device);
        let step = buffers::uniform(&ctx, "step", &StepParams::default());
        let dummy = buffers::storage(&ctx, "dummy", 16);
        let q8 = super::q8_scratch(&ctx, u64::from(MAX_TOKENS) * q8_bytes(MAX_COLS));
        Ok(KernelBench {
            ctx,
            pipelines,
            step,
            dummy,
            q8,
        })
    }

    pub fn adapter(&self) -> &str {
        &self.ctx.profile.adapter_name
    }

    /// `y = W x` for `tokens` tokens (1: the decode matvec; more: the prefill matmul)
    /// with W `rows` x `cols` in `format`, recorded `reps` times.
    /// `textures`: Some(true) puts the weights in a texture for every format with a
    /// q8dot reader, Some(false) in a buffer, None where a model's load would
    /// ([`Placement::of`]). `group_rows`: the row order, Some(n) groups of n rows
    /// ([`RowLayout::Groups`], formats with a q8dot reader; 1 the file's order), None
    /// where a model's load would ([`RowLayout::of`]).
    pub fn time_mat(
        &mut self,
        format: WeightFormat,
        [rows, cols]: [u32; 2],
        tokens: u32,
        reps: u32,
        textures: Option<bool>,
        group_rows: Option<u32>,
    ) -> Result<MatTiming> {
        let bad = |what: String| Err(Error::Invalid(format!("kernel bench: {what}")));
        if !(1..=MAX_TOKENS).contains(&tokens) || reps == 0 {
            return bad(format!(
                "{tokens} tokens (1..={MAX_TOKENS}), {reps} reps (> 0)"
            ));
        }
        if group_rows.is_some_and(|n| !n.is_power_of_two() || n > MAX_ROW_GROUP) {
            return bad(format!(
                "groups of {group_rows:?} rows (a power of two up to {MAX_ROW_GROUP})"
            ));
        }
        if rows == 0 || cols == 0 || cols > MAX_COLS || cols % format.block_elems() != 0 {
            return bad(format!(
                "{rows} x {cols} for {} (columns a multiple of {}, at most {MAX_COLS})",
                format.name(),
                format.block_elems()
            ));
        }
        let bytes = quant::random_blocks(format, rows as usize, cols as usize, 7);
        let ctx = &self.ctx;
        let mut up = Uploader::new(ctx, u64::MAX);
        let dims = [rows, cols];
        let texture = Placement::Textures {
            max_dim: ctx.profile.max_texture_dim,
        };
        let placement = match textures {
            None => Placement::of(&ctx.profile, format, MatrixUse::Mat),
            Some(true) if q8dot_reader(format).is_some() => texture,
            Some(_) => Placement::Buffers,
        };
        let layout = match group_rows {
            None => RowLayout::of(&ctx.profile, format, MatrixUse::Mat),
            Some(n) if n > 1 && q8dot_reader(format).is_some() => RowLayout::Groups(n),
            Some(_) => RowLayout::Rows,
        };
        let w = WeightMatrix::upload_placed(
            ctx, &mut up, "w", format, dims, &bytes, placement, layout,
        )?;
        let x: Vec<f32> = (0..tokens * cols)
            .map(|i| ((i % 97) as f32 - 48.0) / 64.0)
            .collect();
        let xb = buffers::upload_f32(ctx, "x", &x);
        let yb = buffers::storage(ctx, "y", u64::from(tokens * rows) * 4);
        let mut g = Graph::default();
        {
            let mut ob = OpBuilder::new(ctx, &mut self.pipelines, &self.step, tokens, &self.dummy);
            ob.q8 = Some(&self.q8);
            let m = MatOp {
                w: &w,
                x: &xb,
                x_stride: cols,
                y: &yb,
                bias: None,
                accumulate: false,
            };
            for _ in 0..reps {
                g.ops(ob.mat("w", &m, tokens > 1)?);
            }
        }
        let rb = Readback::new(ctx, "y", 4);
        let step = StepParams {
            n_tokens: tokens,
            pos0: 0,
            _pad: [0; 2],
        };
        let mut no_pause = |p, _: &mut crate::gpu::Encoder<'_>| -> Result<()> {
            Err(Error::Internal(format!(
                "a kernel bench step paused ({p:?})"
            )))
        };
        // Once untimed: the first run pays for pipeline compilation and page faults.
        let run = |g: &Graph, hook: &mut crate::gpu::graph::PauseHook<'_>| {
            profile_step(ctx, g, &self.step, step, (&yb, 4), &rb, hook)
        };
        run(&g, &mut no_pause)?;
        let times = run(&g, &mut no_pause)?;

        // Each rep is the quantize op (8-bit kernels; the builder reuses a quantized
        // input, so only the first rep may have one) then the matrix's parts.
        let kinds: Vec<Kernel> = g.dispatch_kernels().collect();
        let per_rep = kinds.len() / reps as usize;
        let mut mat = Vec::new();
        let mut quantize = Vec::new();
        let mut kernel = None;
        for rep in times
            .chunks(per_rep.max(1))
            .zip(kinds.chunks(per_rep.max(1)))
        {
            let (mut m, mut q) = (0.0, 0.0);
            for (t, k) in rep.0.iter().zip(rep.1) {
                if *k == Kernel::QuantizeQ8 {
                    q += t.ns;
                } else {
                    m += t.ns;
                    kernel.get_or_insert(*k);
                }
            }
            mat.push(m * 1e-9);
            if q > 0.0 {
                quantize.push(q * 1e-9);
            }
        }
        Ok(MatTiming {
            kernel: format!("{:?}", kernel.unwrap_or(Kernel::MatVec)),
            mat_s: median(&mut mat),
            quantize_s: median(&mut quantize),
            weight_bytes: bytes.len() as u64,
        })
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
