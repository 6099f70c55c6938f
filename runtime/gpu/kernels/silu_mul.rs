//! The SwiGLU nonlinearity: gate = silu(gate) * up, in place, per token.

use bytemuck::{Pod, Zeroable};

use super::mat_q8::Q8_BLOCK;
use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::Result;
use crate::gpu::pipelines::PipelineKey;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct GluParams {
    n: u32,
    _pad: [u32; 3],
}

/// Invocations per workgroup, one value each.
const WG: u32 = 256;
/// SiluMulQ8: blocks of 32 values per workgroup, one per invocation (a SIMD group on
/// lavapipe, so that an FFN of 1536 still spreads over 6 workgroups).
const Q8_BLOCKS: u32 = 8;
const SILU_MUL_COMMON: &str = include_str!("../../../shaders/silu_mul_common.wgsl");

pub(super) const SILU_MUL: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, gate, up
        &[Uniform, Uniform, ReadWrite, Read]
    },
    weights: WeightReader::None,
    kv: false,
    subgroups: false,
    prelude: "",
    consts: &[("WG", WG)],
    headers: &[SILU_MUL_COMMON],
    body: include_str!("../../../shaders/silu_mul.wgsl"),
};
pub(super) const SILU_MUL_Q8: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, gate, up, gate's 8-bit blocks
        &[Uniform, Uniform, ReadWrite, Read, ReadWrite]
    },
    consts: &[("BLOCKS", Q8_BLOCKS)],
    headers: &[SILU_MUL_COMMON, Q8_BLOCK],
    body: include_str!("../../../shaders/silu_mul_q8.wgsl"),
    ..SILU_MUL
};

impl OpBuilder<'_> {
    /// gate = silu(gate) * up over `n` values per token.
    pub fn silu_mul(
        &mut self,
        name: &str,
        gate: &wgpu::Buffer,
        up: &wgpu::Buffer,
        n: u32,
    ) -> Result<Op> {
        let key = PipelineKey::new(Kernel::SiluMul);
        let grid = Grid::PerToken { x: n.div_ceil(WG) };
        self.op(name.to_string(), key, &glu_params(n), &[gate, up], grid)
    }

    /// [`Self::silu_mul`] for a result that the next op multiplies by a matrix
    /// (`batched`: as a matmul): on the 8-bit path the same op also writes the result's
    /// 8-bit blocks (SiluMulQ8), and the mat op that reads `gate` next takes them
    /// instead of quantizing it again.
    pub fn silu_mul_for_mat(
        &mut self,
        name: &str,
        gate: &wgpu::Buffer,
        up: &wgpu::Buffer,
        n: u32,
        batched: bool,
    ) -> Result<Op> {
        let Some(q8) = self.q8_output(n) else {
            return self.silu_mul(name, gate, up, n);
        };
        let key = PipelineKey::new(Kernel::SiluMulQ8);
        let grid = Grid::PerToken {
            x: (n / 32).div_ceil(Q8_BLOCKS),
        };
        let op = self.op(
            name.to_string(),
            key,
            &glu_params(n),
            &[gate, up, &q8],
            grid,
        )?;
        self.set_quantized(gate, n, batched);
        Ok(op)
    }
}

fn glu_params(n: u32) -> GluParams {
    GluParams { n, _pad: [0; 3] }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, Harness, Rng};

    #[test]
    fn silu_mul_matches_reference() {
        let mut h = Harness::new();
        // 300 values: more than one 256-wide workgroup, the second partial.
        let (tokens, n) = (3usize, 300usize);
        let mut rng = Rng(11);
        let gate: Vec<f32> = rng.vec(tokens * n).iter().map(|v| v * 8.0).collect();
        let up = rng.vec(tokens * n);
        let (gb, ub) = (h.f32s(&gate), h.f32s(&up));
        let got = h.run(tokens as u32, 0, &gb, tokens * n, |ob, g| {
            g.op(ob.silu_mul("glu", &gb, &ub, n as u32).unwrap());
        });
        let want: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        // exp is not correctly rounded on GPUs: a few ulp.
        assert_close("silu_mul", &got, &want, 1e-6, 1e-5, &scale);
    }
}
