//! The compute kernels. One kernel (or a family sharing its params, like the matrix
//! products) is one file here — its params struct, bindings, constants, grid, the
//! [`OpBuilder`] method that makes its ops, its CPU reference and its tests — plus its
//! WGSL body in `shaders/`. [`Kernel::spec`] is the one table that says what each
//! kernel's WGSL is composed of (see [`super::pipelines`]).
//!
//! Numbers that Rust and WGSL must agree on (rows per workgroup, tile sizes, flags,
//! the largest row a kernel holds) are Rust constants in the kernel's file, written into
//! its WGSL as `const` declarations by the composer ([`KernelSpec::consts`]): the WGSL
//! files use them but never define them.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::buffers::{self};
use super::context::GpuContext;
use super::pipelines::{Pipeline, PipelineCache, PipelineKey};
use super::tables::IQ_GRID_GROUP;
use crate::error::{Error, Result};

mod attention;
mod axpy;
pub mod bench;
mod head_matvec;
mod mat;
mod mat_q8;
mod rms_norm;
mod rope;
mod silu_mul;
#[cfg(test)]
mod test_util;

pub use attention::{AttnOp, MAX_HEAD_DIM, MAX_LATENT_DIM};
pub use head_matvec::HeadOp;
pub use mat::MatOp;
pub use mat_q8::{q8_bytes, q8_scratch};
pub use rope::{RopeOp, RowLayout};

/// Per-step uniform shared by all kernels (WGSL `Step` in shaders/common.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StepParams {
    pub n_tokens: u32,
    pub pos0: u32,
    pub _pad: [u32; 2],
}

/// The compute kernels, one per `.wgsl` op body in `shaders/` (a body may serve two
/// variants, as rope.wgsl does for queries and cache rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    MatVec,
    /// matvec with subgroup reductions, where the device has subgroups.
    MatVecSubgroup,
    /// matvec on 8-bit activation blocks with integer dot products, for CPU-backed
    /// devices and the formats with a q8dot reader; the activations in a uniform buffer.
    MatVecQ8,
    /// MatVecQ8 with its weights in a texture (buffers.rs WeightTexture).
    MatVecQ8Tex,
    /// MatVecQ8 with its input in a storage buffer: where the device's uniform bindings
    /// are under 64 KiB (downlevel), or one token's 8-bit input is larger than that
    /// (mat_q8.rs XQ_UNIFORM_BYTES).
    MatVecQ8StorageX,
    /// MatVecQ8Tex with its input in a storage buffer (as MatVecQ8StorageX).
    MatVecQ8TexStorageX,
    /// Activations to the 8-bit blocks MatVecQ8 and MatMulQ8 read.
    QuantizeQ8,
    MatMul,
    /// matmul without workgroup memory, for CPU-backed devices.
    MatMulRows,
    /// MatMulRows on 8-bit activation blocks (the prefill twin of MatVecQ8): every
    /// lane loads the activations of all the tile's tokens.
    MatMulQ8,
    /// MatMulQ8 with its weights in a texture.
    MatMulQ8Tex,
    /// MatMulQ8 whose lanes share the activation loads through subgroup shuffles (one
    /// token each): on CPU-backed devices whose subgroups have at least 8 lanes
    /// (DeviceProfile::matmul_shuffle).
    MatMulQ8Shuffle,
    /// MatMulQ8Tex sharing the activation loads (as MatMulQ8Shuffle).
    MatMulQ8TexShuffle,
    RmsNorm,
    /// RmsNorm that also writes its output's 8-bit blocks (for the 8-bit mat ops).
    RmsNormQ8,
    /// rope.wgsl writing f32 rows (queries).
    RopeToF32,
    /// rope.wgsl writing into the KV cache (keys, and values with no rotation).
    RopeToCache,
    Attention,
    /// attention.wgsl sized for MLA's latent heads (576 wide).
    AttentionWide,
    /// Barrier-free attention, one query per invocation: prefill on CPU-backed devices.
    AttentionRows,
    SiluMul,
    /// SiluMul that also writes its result's 8-bit blocks (for the 8-bit ffn_down).
    SiluMulQ8,
    /// A matrix per attention head (MLA's k_b absorption and v_b expansion).
    HeadMatVec,
    /// The transposed per-head product (the key half of a legacy attn_kv_b).
    HeadMatVecT,
    /// acc += w[k] * y (one routed expert into the token's MoE sum).
    Axpy,
}

/// How a binding is declared; the bind group layout follows from the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    Uniform,
    Read,
    ReadWrite,
    /// A texture_2d<u32> (weights in a texture).
    Texture,
}

/// How a kernel reads weight matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightReader {
    /// It reads none.
    None,
    /// Through the format's dequantizing reader (weights.wgsl and shaders/formats/).
    Dequantize,
    /// Through the format's integer-dot reader on 8-bit activations (shaders/q8dot/).
    Q8Dot,
}

/// What a kernel's WGSL module is made of, in the order the composer writes it:
/// `prelude`, `consts`, common.wgsl, the weight reader, `headers`, the q8 input and
/// reader (q8dot kernels), `body`.
pub struct KernelSpec {
    /// Bindings 0, 1, ... in order, as the WGSL declares them (0: params, 1: step).
    pub bindings: &'static [Binding],
    pub weights: WeightReader,
    /// Reads or writes the KV cache: compiled once per [`super::pipelines::KvType`].
    pub kv: bool,
    /// Needs the SUBGROUP feature.
    pub subgroups: bool,
    /// WGSL written first (type aliases the body is generic over).
    pub prelude: &'static str,
    /// Compile-time constants shared with Rust: `const NAME: u32 = value;`.
    pub consts: &'static [(&'static str, u32)],
    /// Shared WGSL pieces the body uses (shaders/*.wgsl); a piece may hold the entry
    /// point that calls the body's code (matmul_q8_x_*.wgsl, which differ in how the
    /// lanes get their activations).
    pub headers: &'static [&'static str],
    pub body: &'static str,
}

impl Kernel {
    #[cfg(test)]
    pub const ALL: [Kernel; 25] = [
        Kernel::MatVec,
        Kernel::MatVecSubgroup,
        Kernel::MatVecQ8,
        Kernel::MatVecQ8Tex,
        Kernel::MatVecQ8StorageX,
        Kernel::MatVecQ8TexStorageX,
        Kernel::QuantizeQ8,
        Kernel::MatMul,
        Kernel::MatMulRows,
        Kernel::MatMulQ8Shuffle,
        Kernel::MatMulQ8TexShuffle,
        Kernel::MatMulQ8,
        Kernel::MatMulQ8Tex,
        Kernel::RmsNorm,
        Kernel::RmsNormQ8,
        Kernel::RopeToF32,
        Kernel::RopeToCache,
        Kernel::Attention,
        Kernel::AttentionWide,
        Kernel::AttentionRows,
        Kernel::SiluMul,
        Kernel::SiluMulQ8,
        Kernel::HeadMatVec,
        Kernel::HeadMatVecT,
        Kernel::Axpy,
    ];

    /// The kernel's recipe, from its file.
    pub fn spec(self) -> &'static KernelSpec {
        match self {
            Kernel::MatVec => &mat::MATVEC,
            Kernel::MatVecSubgroup => &mat::MATVEC_SUBGROUP,
            Kernel::MatMul => &mat::MATMUL,
            Kernel::MatMulRows => &mat::MATMUL_ROWS,
            Kernel::MatVecQ8 => &mat_q8::MATVEC_Q8,
            Kernel::MatMulQ8Shuffle => &mat_q8::MATMUL_Q8_SHUFFLE,
            Kernel::MatVecQ8Tex => &mat_q8::MATVEC_Q8_TEX,
            Kernel::MatVecQ8StorageX => &mat_q8::MATVEC_Q8_STORAGE_X,
            Kernel::MatVecQ8TexStorageX => &mat_q8::MATVEC_Q8_TEX_STORAGE_X,
            Kernel::MatMulQ8TexShuffle => &mat_q8::MATMUL_Q8_TEX_SHUFFLE,
            Kernel::MatMulQ8 => &mat_q8::MATMUL_Q8,
            Kernel::MatMulQ8Tex => &mat_q8::MATMUL_Q8_TEX,
            Kernel::QuantizeQ8 => &mat_q8::QUANTIZE_Q8,
            Kernel::RmsNorm => &rms_norm::RMS_NORM,
            Kernel::RmsNormQ8 => &rms_norm::RMS_NORM_Q8,
            Kernel::RopeToF32 => &rope::ROPE_TO_F32,
            Kernel::RopeToCache => &rope::ROPE_TO_CACHE,
            Kernel::Attention => &attention::ATTENTION,
            Kernel::AttentionWide => &attention::ATTENTION_WIDE,
            Kernel::AttentionRows => &attention::ATTENTION_ROWS,
            Kernel::SiluMul => &silu_mul::SILU_MUL,
            Kernel::SiluMulQ8 => &silu_mul::SILU_MUL_Q8,
            Kernel::HeadMatVec => &head_matvec::HEAD_MATVEC,
            Kernel::HeadMatVecT => &head_matvec::HEAD_MATVEC_T,
            Kernel::Axpy => &axpy::AXPY,
        }
    }
}

/// Workgroup counts as a function of the step's token count.
#[derive(Clone, Copy, Debug)]
enum Grid {
    /// (x, n_tokens, 1)
    PerToken { x: u32 },
    /// (n_tokens * per_token, 1, 1)
    TokenRows { per_token: u32 },
    /// (x, ceil(n_tokens / tokens_per_y), 1)
    TokenTiles { x: u32, tokens_per_y: u32 },
    /// (x, 1, 1) whatever the token count
    Fixed { x: u32 },
    /// (x, heads, n_tokens)
    HeadsTokens { x: u32, heads: u32 },
}

impl Grid {
    fn size(self, n_tokens: u32) -> [u32; 3] {
        match self {
            Grid::PerToken { x } => [x, n_tokens, 1],
            Grid::TokenRows { per_token } => [n_tokens * per_token, 1, 1],
            Grid::TokenTiles { x, tokens_per_y } => [x, n_tokens.div_ceil(tokens_per_y), 1],
            Grid::Fixed { x } => [x, 1, 1],
            Grid::HeadsTokens { x, heads } => [x, heads, n_tokens],
        }
    }
}

/// A dispatch ready to record: pipeline, bind group (params included), grid.
pub struct Op {
    pub name: String,
    /// Which kernel and variant (the kernel tests check the choice; the kernel bench
    /// names it).
    pub key: PipelineKey,
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    grid: Grid,
    /// The stream unit whose weights this op reads (streamed dense weights).
    pub unit: Option<usize>,
}

impl Op {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32) {
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        if let Some(grid) = &self.pipeline.iq_grid {
            pass.set_bind_group(IQ_GRID_GROUP, grid, &[]);
        }
        let [x, y, z] = self.grid.size(n_tokens);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Builds ops for one model: holds the device, the pipeline cache, the step uniform,
/// the largest token count a step may have, and a dummy buffer for unused bindings.
/// Each kernel's file adds the method that builds its ops.
pub struct OpBuilder<'a> {
    pub ctx: &'a GpuContext,
    pipelines: &'a mut PipelineCache,
    step: &'a wgpu::Buffer,
    pub max_tokens: u32,
    dummy: &'a wgpu::Buffer,
    /// Where streamed weight parts are bound: each gets the next stream unit.
    pub stream: Option<StreamTarget<'a>>,
    /// Scratch for 8-bit activations (max_tokens tokens): with it, matvecs and matmuls
    /// of the formats with a q8dot reader run on integer dot products where the profile
    /// says q8_matvec (MatVecQ8, MatMulQ8). None keeps every mat op in f32.
    pub q8: Option<&'a wgpu::Buffer>,
    /// The input the last op built left quantized in `q8`: (x, n_cols, x_stride,
    /// batched). Set by a mat op (so consecutive mat ops on the same input, q, k, v or
    /// gate, up, quantize it once) or by an op that writes its output's 8-bit blocks
    /// itself (RmsNormQ8, SiluMulQ8: set_quantized); any other op clears it. Ops run in
    /// the order they are built, and only ops built here write the q8 scratch.
    quantized: Option<(wgpu::Buffer, u32, u32, bool)>,
}

/// Streamed parts become units in the order ops are built (graph order); unit u is
/// read from ring slot u % 2.
pub struct StreamTarget<'a> {
    pub ring: &'a [wgpu::Buffer; 2],
    /// (file offset, bytes) of each unit so far.
    pub units: Vec<(u64, u64)>,
}

impl<'a> OpBuilder<'a> {
    pub fn new(
        ctx: &'a GpuContext,
        pipelines: &'a mut PipelineCache,
        step: &'a wgpu::Buffer,
        max_tokens: u32,
        dummy: &'a wgpu::Buffer,
    ) -> Self {
        OpBuilder {
            ctx,
            pipelines,
            step,
            max_tokens,
            dummy,
            stream: None,
            q8: None,
            quantized: None,
        }
    }

    /// An op whose params become a uniform of their own and whose buffers are bound
    /// whole.
    fn op<P: Pod>(
        &mut self,
        name: String,
        key: PipelineKey,
        params: &P,
        buffers: &[&wgpu::Buffer],
        grid: Grid,
    ) -> Result<Op> {
        let params = buffers::uniform(self.ctx, &name, params);
        let bindings: Vec<_> = buffers
            .iter()
            .map(|b| b.as_entire_buffer_binding())
            .collect();
        self.op_bound(name, key, &params, &bindings, grid)
    }

    /// An op whose params uniform already exists (shared between ops) and whose
    /// buffers may be ranges of larger buffers (expert cache slots).
    fn op_bound(
        &mut self,
        name: String,
        key: PipelineKey,
        params: &wgpu::Buffer,
        buffers: &[wgpu::BufferBinding<'_>],
        grid: Grid,
    ) -> Result<Op> {
        let resources: Vec<_> = buffers
            .iter()
            .map(|b| wgpu::BindingResource::Buffer(b.clone()))
            .collect();
        self.op_resources(name, key, params, &resources, grid)
    }

    /// As [`OpBuilder::op_bound`], with any resources from binding 2 on (a texture).
    fn op_resources(
        &mut self,
        name: String,
        key: PipelineKey,
        params: &wgpu::Buffer,
        resources: &[wgpu::BindingResource<'_>],
        grid: Grid,
    ) -> Result<Op> {
        self.quantized = None;
        let [x, y, z] = grid.size(self.max_tokens);
        let max = self.ctx.profile.max_workgroups_per_dim;
        if x.max(y).max(z) > max {
            return Err(Error::Limit {
                what: format!(
                    "{name} at {} tokens per step (LoadOptions::max_batch; fewer need fewer)",
                    self.max_tokens
                ),
                needed: u64::from(x.max(y).max(z)),
                limit: u64::from(max),
                unit: "workgroups in one grid dimension",
            });
        }
        let pipeline = self.pipelines.get(key)?;
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: self.step.as_entire_binding(),
            },
        ];
        for (i, r) in resources.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 2,
                resource: r.clone(),
            });
        }
        let bind_group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&name),
                layout: &pipeline.layout,
                entries: &entries,
            });
        Ok(Op {
            name,
            key,
            pipeline,
            bind_group,
            grid,
            unit: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Kernel;

    /// `Kernel::ALL` drives the portability test (every variant through naga): a kernel
    /// missing from it would never be checked. The match is exhaustive, so a new variant
    /// does not compile until it has a place here, and the place must be its index in ALL.
    #[test]
    fn all_lists_every_kernel_once() {
        fn index(k: Kernel) -> usize {
            match k {
                Kernel::MatVec => 0,
                Kernel::MatVecSubgroup => 1,
                Kernel::MatVecQ8 => 2,
                Kernel::MatVecQ8Tex => 3,
                Kernel::MatVecQ8StorageX => 4,
                Kernel::MatVecQ8TexStorageX => 5,
                Kernel::QuantizeQ8 => 6,
                Kernel::MatMul => 7,
                Kernel::MatMulRows => 8,
                Kernel::MatMulQ8Shuffle => 9,
                Kernel::MatMulQ8TexShuffle => 10,
                Kernel::MatMulQ8 => 11,
                Kernel::MatMulQ8Tex => 12,
                Kernel::RmsNorm => 13,
                Kernel::RmsNormQ8 => 14,
                Kernel::RopeToF32 => 15,
                Kernel::RopeToCache => 16,
                Kernel::Attention => 17,
                Kernel::AttentionWide => 18,
                Kernel::AttentionRows => 19,
                Kernel::SiluMul => 20,
                Kernel::SiluMulQ8 => 21,
                Kernel::HeadMatVec => 22,
                Kernel::HeadMatVecT => 23,
                Kernel::Axpy => 24,
            }
        }
        for (i, &k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(index(k), i, "{k:?} is not at its place in Kernel::ALL");
        }
    }
}
