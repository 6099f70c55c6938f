//! RMSNorm of each token's row: out = x / sqrt(mean(x²) + eps) * weight.

use bytemuck::{Pod, Zeroable};

use super::mat_q8::Q8_BLOCK;
use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::Result;
use crate::gpu::pipelines::{PipelineKey, REDUCE};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct NormParams {
    n_cols: u32,
    eps: f32,
    _pad: [u32; 2],
}

const RMSNORM_COMMON: &str = include_str!("../../../shaders/rmsnorm_common.wgsl");

pub(super) const RMS_NORM: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, x, out, weight
        &[Uniform, Uniform, Read, ReadWrite, Read]
    },
    weights: WeightReader::None,
    kv: false,
    subgroups: false,
    prelude: "",
    consts: &[],
    headers: &[REDUCE, RMSNORM_COMMON],
    body: include_str!("../../../shaders/rmsnorm.wgsl"),
};
pub(super) const RMS_NORM_Q8: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, x, out, weight, out's 8-bit blocks
        &[Uniform, Uniform, Read, ReadWrite, Read, ReadWrite]
    },
    headers: &[REDUCE, RMSNORM_COMMON, Q8_BLOCK],
    body: include_str!("../../../shaders/rmsnorm_q8.wgsl"),
    ..RMS_NORM
};

impl OpBuilder<'_> {
    /// out[t] = rmsnorm(x[t]) * weight for each token's row of `n_cols` values (a
    /// workgroup per row).
    pub fn rms_norm(
        &mut self,
        name: &str,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        n_cols: u32,
        eps: f32,
    ) -> Result<Op> {
        let key = PipelineKey::new(Kernel::RmsNorm);
        self.op(
            name.to_string(),
            key,
            &norm_params(n_cols, eps),
            &[x, out, weight],
            GRID,
        )
    }

    /// [`Self::rms_norm`] for an output that the next ops multiply by matrices
    /// (`batched`: as matmuls): on the 8-bit path the same op also writes the output's
    /// 8-bit blocks (RmsNormQ8), and the mat ops that read `out` next take them instead
    /// of quantizing it again.
    /// `[x, out, weight]` as in rms_norm (an array: clippy's argument count).
    pub fn rms_norm_for_mat(
        &mut self,
        name: &str,
        [x, out, weight]: [&wgpu::Buffer; 3],
        n_cols: u32,
        eps: f32,
        batched: bool,
    ) -> Result<Op> {
        let Some(q8) = self.q8_output(n_cols) else {
            return self.rms_norm(name, x, out, weight, n_cols, eps);
        };
        let key = PipelineKey::new(Kernel::RmsNormQ8);
        let params = norm_params(n_cols, eps);
        let op = self.op(name.to_string(), key, &params, &[x, out, weight, &q8], GRID)?;
        self.set_quantized(out, n_cols, batched);
        Ok(op)
    }
}

/// A workgroup per token's row.
const GRID: Grid = Grid::TokenRows { per_token: 1 };

fn norm_params(n_cols: u32, eps: f32) -> NormParams {
    NormParams {
        n_cols,
        eps,
        _pad: [0; 2],
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, Harness, Rng};
    use crate::gpu::buffers;

    /// RMSNorm of each row of `n` values in f64.
    fn ref_rms_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
        let n = w.len();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(n) {
            let ms = row.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / n as f64;
            let scale = 1.0 / (ms + eps).sqrt();
            out.extend(
                row.iter()
                    .zip(w)
                    .map(|(v, w)| (f64::from(*v) * scale * f64::from(*w)) as f32),
            );
        }
        out
    }

    #[test]
    fn rms_norm_matches_reference() {
        let mut h = Harness::new();
        let (tokens, n) = (5usize, 200usize);
        let mut rng = Rng(5);
        let x = rng.vec(tokens * n);
        let w = rng.vec(n);
        let (xb, wb) = (h.f32s(&x), h.f32s(&w));
        let out = buffers::storage(&h.ctx, "out", (tokens * n * 4) as u64);
        let got = h.run(tokens as u32, 0, &out, tokens * n, |ob, g| {
            g.op(ob.rms_norm("norm", &xb, &out, &wb, n as u32, 1e-5).unwrap());
        });
        let want = ref_rms_norm(&x, &w, 1e-5);
        // A 200-term f32 sum of squares then a few roundings: 1e-5 relative.
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        assert_close("rms_norm", &got, &want, 1e-6, 1e-5, &scale);
    }
}
