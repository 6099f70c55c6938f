//! What every kernel test needs: a GPU (whatever adapter wgpu finds — lavapipe in CI;
//! tests fail, never skip, without one), a harness that runs ops for one step and reads
//! a buffer back, deterministic inputs and a tolerance check.

use super::{OpBuilder, StepParams};
use crate::file::quant::{self, WeightFormat};
use crate::gpu::buffers::{self, Readback};
use crate::gpu::context::{DeviceOptions, GpuContext};
use crate::gpu::graph::Graph;
use crate::gpu::pipelines::PipelineCache;
use crate::gpu::Buffer;

/// A tiny deterministic generator for test inputs (values in [-1, 1)).
pub struct Rng(pub u64);

impl Rng {
    pub fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

/// Runs ops for one step of `n_tokens` at `pos0` and reads `n_out` floats of a buffer.
pub struct Harness {
    pub ctx: GpuContext,
    pipelines: PipelineCache,
    step: Buffer,
    dummy: Buffer,
    q8: Buffer,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(&DeviceOptions::default())
    }

    pub fn with(opts: &DeviceOptions) -> Self {
        let ctx = GpuContext::new(opts).unwrap_or_else(|e| panic!("{e}"));
        let pipelines = PipelineCache::new(&ctx.device);
        let step = buffers::uniform(&ctx, "step", &StepParams::default());
        let dummy = buffers::storage(&ctx, "dummy", 16);
        let q8 = super::q8_scratch(&ctx, 64 * super::q8_bytes(4096));
        Harness {
            ctx,
            pipelines,
            step,
            dummy,
            q8,
        }
    }

    /// Builds ops with `build` (ops for up to `n_tokens` tokens), runs them for one step
    /// and reads back the first `n_out` floats of `out`.
    pub fn run(
        &mut self,
        n_tokens: u32,
        pos0: u32,
        out: &Buffer,
        n_out: usize,
        build: impl FnOnce(&mut OpBuilder<'_>, &mut Graph),
    ) -> Vec<f32> {
        let mut g = Graph::default();
        {
            let mut ob = OpBuilder::new(
                &self.ctx,
                &mut self.pipelines,
                &self.step,
                n_tokens,
                &self.dummy,
            );
            ob.q8 = Some(&self.q8);
            build(&mut ob, &mut g);
        }
        let rb = Readback::new(&self.ctx, "out", (n_out * 4) as u64);
        let step = StepParams {
            n_tokens,
            pos0,
            _pad: [0; 2],
        };
        let mut no_pause = |p, _: &mut crate::gpu::Encoder<'_>| -> crate::error::Result<()> {
            panic!("kernel tests have no pauses, got {p:?}")
        };
        g.submit(
            &self.ctx,
            &self.step,
            step,
            (out, (n_out * 4) as u64),
            &rb,
            &mut no_pause,
        )
        .unwrap();
        let mut v = vec![0.0; n_out];
        rb.read_f32(&self.ctx, &mut v).unwrap();
        v
    }

    pub fn f32s(&self, data: &[f32]) -> Buffer {
        buffers::upload_f32(&self.ctx, "in", data)
    }

    /// Fills the 8-bit activation scratch with 0xff bytes (before the next run), so
    /// that a run which reads blocks nothing wrote cannot pass on an earlier run's.
    pub fn poison_q8(&self) {
        let bytes = vec![0xff; self.q8.size() as usize];
        self.ctx.write(&self.q8, 0, &bytes);
    }
}

/// Columns per row for a format: an odd number of blocks, and more than one matvec
/// lane's stride so the lane loop wraps.
pub fn odd_cols(f: WeightFormat) -> usize {
    match f.block_elems() {
        256 => 768,
        _ => 288,
    }
}

/// `rows` rows of `cols` weights in format `f`, dequantized by the CPU reference.
pub fn dequant_rows(f: WeightFormat, bytes: &[u8], rows: usize, cols: usize) -> Vec<f32> {
    let mut w = vec![0.0; rows * cols];
    let rb = f.row_bytes(cols as u64).unwrap() as usize;
    for r in 0..rows {
        quant::dequantize(
            f,
            &bytes[r * rb..(r + 1) * rb],
            &mut w[r * cols..(r + 1) * cols],
        );
    }
    w
}

/// Asserts |got - want| <= atol + rtol * scale elementwise, naming the first failure.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32, scale: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let tol = atol + rtol * scale[i];
        assert!(
            (got[i] - want[i]).abs() <= tol && got[i].is_finite(),
            "{what}: element {i}: got {} want {} (tol {tol})",
            got[i],
            want[i]
        );
    }
}

/// The KV element types this device can run (f16 where it has SHADER_F16).
pub fn kv_types(h: &Harness) -> &'static [crate::gpu::pipelines::KvType] {
    use crate::gpu::pipelines::KvType;
    if h.ctx.profile.f16 {
        &[KvType::F32, KvType::F16]
    } else {
        &[KvType::F32]
    }
}
