//! acc += w[k] * y: one routed expert's output into the token's MoE sum.

use bytemuck::{Pod, Zeroable};

use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::Result;
use crate::gpu::pipelines::PipelineKey;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AxpyParams {
    n: u32,
    k: u32,
    _pad: [u32; 2],
}

/// Invocations per workgroup, one value each.
const WG: u32 = 256;

pub(super) const AXPY: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, acc, y, w
        &[Uniform, Uniform, ReadWrite, Read, Read]
    },
    weights: WeightReader::None,
    kv: false,
    subgroups: false,
    prelude: "",
    consts: &[("WG", WG)],
    headers: &[],
    body: include_str!("../../../shaders/axpy.wgsl"),
};

impl OpBuilder<'_> {
    /// acc += w[k] * y over `n` floats (one token).
    pub fn axpy(
        &mut self,
        name: &str,
        acc: &wgpu::Buffer,
        y: &wgpu::Buffer,
        w: &wgpu::Buffer,
        n: u32,
        k: u32,
    ) -> Result<Op> {
        let params = AxpyParams { n, k, _pad: [0; 2] };
        let key = PipelineKey::new(Kernel::Axpy);
        let grid = Grid::Fixed { x: n.div_ceil(WG) };
        self.op(name.to_string(), key, &params, &[acc, y, w], grid)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, Harness, Rng};

    #[test]
    fn axpy_adds_the_kth_weighted_vector() {
        let mut h = Harness::new();
        let n = 300usize;
        let mut rng = Rng(77);
        let (acc0, y, w) = (rng.vec(n), rng.vec(n), rng.vec(4));
        let (ab, yb, wb) = (h.f32s(&acc0), h.f32s(&y), h.f32s(&w));
        let got = h.run(1, 0, &ab, n, |ob, g| {
            g.op(ob.axpy("axpy", &ab, &yb, &wb, n as u32, 2).unwrap());
        });
        let want: Vec<f32> = (0..n).map(|i| acc0[i] + w[2] * y[i]).collect();
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        // One fused or unfused multiply-add: a rounding or two.
        assert_close("axpy", &got, &want, 1e-6, 1e-6, &scale);
    }
}
