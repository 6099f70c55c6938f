//! Matrix products on 8-bit activations, for CPU-backed devices (lavapipe): the input is
//! first quantized to blocks of 32 (QuantizeQ8, as llama.cpp's CPU backend does), then
//! MatVecQ8 (decode) or MatMulQ8 (prefill) take integer dot products through the
//! format's q8dot reader (shaders/q8dot/). [`OpBuilder::mat`] chooses them; this file
//! holds their recipes and the quantize step.

use bytemuck::{Pod, Zeroable};

use super::mat::{MAT_BINDINGS, MAT_COMMON, MAT_FLAGS};
use super::{Binding, Grid, Kernel, KernelSpec, MatOp, Op, OpBuilder, WeightReader};
use crate::error::{Error, Result};
use crate::file::quant::WeightFormat;
use crate::gpu::buffers::{PartStorage, RowLayout, MAX_ROW_GROUP};
use crate::gpu::context::{DeviceProfile, GpuContext};
use crate::gpu::pipelines::{q8dot_reader, PipelineKey};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct QuantParams {
    n: u32,
    x_stride: u32,
    _pad: [u32; 2],
}

/// Rows per workgroup of matvec_q8.wgsl (16 lanes x 4 rows each).
const MATVEC_Q8_ROWS: u32 = 64;
/// The tile of matmul_q8.wgsl: 8 lanes x 8 rows each, 8 tokens.
const MATMUL_Q8_ROWS: u32 = 64;
const MATMUL_Q8_TOKENS: u32 = 8;
// matmul_q8.wgsl's register tile is written out for these sizes.
const _: () = assert!(MATMUL_Q8_ROWS == 64 && MATMUL_Q8_TOKENS == 8);
// A workgroup's rows are whole groups of the grouped layout.
const _: () = assert!(MATVEC_Q8_ROWS % MAX_ROW_GROUP == 0 && MATMUL_Q8_ROWS % MAX_ROW_GROUP == 0);
/// MatParams.flags holds a grouped matrix's block bytes from this bit (8 bits: the
/// largest block is Q6_K's 210 bytes) and log2 of its rows per group from
/// GROUP_ROWS_SHIFT; both 0 in the file's order.
pub(super) const GROUP_BLOCK_SHIFT: u32 = 8;
pub(super) const GROUP_ROWS_SHIFT: u32 = 16;
// The other flags stay below the layout's bits.
const _: () = assert!(super::mat::FLAG_BIAS | super::mat::FLAG_ACCUMULATE < 1 << GROUP_BLOCK_SHIFT);

/// The bits of MatParams.flags that say how `layout` orders the rows of a matrix in
/// `format`.
pub(super) fn layout_flags(layout: RowLayout, format: WeightFormat) -> u32 {
    match layout {
        RowLayout::Rows => 0,
        RowLayout::Groups(n) => {
            (format.block_bytes() << GROUP_BLOCK_SHIFT) | (n.ilog2() << GROUP_ROWS_SHIFT)
        }
    }
}
const _: () = assert!(MATVEC_Q8_ROWS % 4 == 0);
/// Blocks of 32 values per workgroup of quantize_q8.wgsl (one per invocation).
const QUANTIZE_BLOCKS: u32 = 64;

const Q8_INPUT: &str = include_str!("../../../shaders/q8_input.wgsl");
/// quantize_block(): one block of 32 values to the 8-bit layout, for QuantizeQ8 and the
/// ops that write their output's 8-bit blocks themselves (RmsNormQ8, SiluMulQ8).
pub(super) const Q8_BLOCK: &str = include_str!("../../../shaders/q8_block.wgsl");
/// Where xq() reads the 8-bit activations from: a storage buffer (any number of tokens)
/// or a uniform buffer (one token of at most XQ_UNIFORM_BYTES: the matvec).
const X_STORAGE: &str = include_str!("../../../shaders/q8_x_storage.wgsl");
const X_UNIFORM: &str = include_str!("../../../shaders/q8_x_uniform.wgsl");
/// Where the q8dot readers' w4() takes the weights from: a storage buffer or a texture.
const W4_STORAGE: &str = include_str!("../../../shaders/q8dot/w4_storage.wgsl");
const W4_TEXTURE: &str = include_str!("../../../shaders/q8dot/w4_texture.wgsl");

/// The uniform activations' binding: WebGPU's default uniform binding limit, so one
/// token of up to 52,416 values fits (q8_bytes: a byte per value and 8 per 32).
pub const XQ_UNIFORM_BYTES: u64 = 64 << 10;

/// MAT_BINDINGS with the weights (binding 2) in a texture.
const BINDINGS_TEX: &[Binding] = {
    use Binding::{Read, ReadWrite, Texture, Uniform};
    // params, step, W, X, Y, bias
    &[Uniform, Uniform, Texture, Read, ReadWrite, Read]
};
/// MAT_BINDINGS with the input (binding 3) in a uniform buffer.
const BINDINGS_UNIFORM_X: &[Binding] = {
    use Binding::{Read, ReadWrite, Uniform};
    // params, step, W, X, Y, bias
    &[Uniform, Uniform, Read, Uniform, ReadWrite, Read]
};
/// Both: the weights in a texture, the input in a uniform buffer.
const BINDINGS_TEX_UNIFORM_X: &[Binding] = {
    use Binding::{Read, ReadWrite, Texture, Uniform};
    // params, step, W, X, Y, bias
    &[Uniform, Uniform, Texture, Uniform, ReadWrite, Read]
};
// XQ_UNIFORM_VEC4S: the uniform array's length (the StorageX twins do not use it).
// GROUP_BLOCK_SHIFT, GROUP_ROWS_SHIFT: where MatParams.flags says how the rows are
// ordered (layout_flags).
const MATVEC_CONSTS: &[(&str, u32)] = &[
    MAT_FLAGS[0],
    MAT_FLAGS[1],
    ("GROUP_BLOCK_SHIFT", GROUP_BLOCK_SHIFT),
    ("GROUP_ROWS_SHIFT", GROUP_ROWS_SHIFT),
    ("ROWS", MATVEC_Q8_ROWS),
    ("XQ_UNIFORM_VEC4S", (XQ_UNIFORM_BYTES / 16) as u32),
];
const MATMUL_CONSTS: &[(&str, u32)] = &[
    MAT_FLAGS[0],
    MAT_FLAGS[1],
    ("GROUP_BLOCK_SHIFT", GROUP_BLOCK_SHIFT),
    ("GROUP_ROWS_SHIFT", GROUP_ROWS_SHIFT),
    ("ROWS", MATMUL_Q8_ROWS),
    ("TOKENS", MATMUL_Q8_TOKENS),
];
const MATVEC_BODY: &str = include_str!("../../../shaders/matvec_q8.wgsl");
const MATMUL_BODY: &str = include_str!("../../../shaders/matmul_q8.wgsl");
/// How the matmul's lanes get their tokens' activations (each also holds the entry
/// point): shared through subgroup shuffles (one load per lane,
/// DeviceProfile::matmul_shuffle), or each lane loading all.
const MATMUL_X_SHUFFLE: &str = include_str!("../../../shaders/matmul_q8_x_shuffle.wgsl");
const MATMUL_X_EACH: &str = include_str!("../../../shaders/matmul_q8_x_each.wgsl");

const fn q8_mat(
    bindings: &'static [Binding],
    consts: &'static [(&'static str, u32)],
    headers: &'static [&'static str],
    body: &'static str,
) -> KernelSpec {
    KernelSpec {
        bindings,
        weights: WeightReader::Q8Dot,
        kv: false,
        subgroups: false,
        prelude: "",
        consts,
        headers,
        body,
    }
}

pub(super) const MATVEC_Q8: KernelSpec = q8_mat(
    BINDINGS_UNIFORM_X,
    MATVEC_CONSTS,
    &[MAT_COMMON, Q8_INPUT, X_UNIFORM, W4_STORAGE],
    MATVEC_BODY,
);
pub(super) const MATVEC_Q8_TEX: KernelSpec = q8_mat(
    BINDINGS_TEX_UNIFORM_X,
    MATVEC_CONSTS,
    &[MAT_COMMON, Q8_INPUT, X_UNIFORM, W4_TEXTURE],
    MATVEC_BODY,
);
pub(super) const MATVEC_Q8_STORAGE_X: KernelSpec = q8_mat(
    MAT_BINDINGS,
    MATVEC_CONSTS,
    &[MAT_COMMON, Q8_INPUT, X_STORAGE, W4_STORAGE],
    MATVEC_BODY,
);
pub(super) const MATVEC_Q8_TEX_STORAGE_X: KernelSpec = q8_mat(
    BINDINGS_TEX,
    MATVEC_CONSTS,
    &[MAT_COMMON, Q8_INPUT, X_STORAGE, W4_TEXTURE],
    MATVEC_BODY,
);
/// The 8-bit matmul with its weights in a texture or a storage buffer (`texture`), its
/// lanes sharing their tokens' activations through subgroup shuffles or each loading
/// them all (`shuffle`). Two choices, four kernels: each wins where it is chosen
/// (docs/performance.md).
const fn matmul_q8(texture: bool, shuffle: bool) -> KernelSpec {
    let headers: &[&str] = match (texture, shuffle) {
        (true, true) => &[
            MAT_COMMON,
            Q8_INPUT,
            X_STORAGE,
            W4_TEXTURE,
            MATMUL_X_SHUFFLE,
        ],
        (true, false) => &[MAT_COMMON, Q8_INPUT, X_STORAGE, W4_TEXTURE, MATMUL_X_EACH],
        (false, true) => &[
            MAT_COMMON,
            Q8_INPUT,
            X_STORAGE,
            W4_STORAGE,
            MATMUL_X_SHUFFLE,
        ],
        (false, false) => &[MAT_COMMON, Q8_INPUT, X_STORAGE, W4_STORAGE, MATMUL_X_EACH],
    };
    let bindings = if texture { BINDINGS_TEX } else { MAT_BINDINGS };
    KernelSpec {
        subgroups: shuffle,
        ..q8_mat(bindings, MATMUL_CONSTS, headers, MATMUL_BODY)
    }
}

pub(super) const MATMUL_Q8: KernelSpec = matmul_q8(false, false);
pub(super) const MATMUL_Q8_TEX: KernelSpec = matmul_q8(true, false);
pub(super) const MATMUL_Q8_SHUFFLE: KernelSpec = matmul_q8(false, true);
pub(super) const MATMUL_Q8_TEX_SHUFFLE: KernelSpec = matmul_q8(true, true);
pub(super) const QUANTIZE_Q8: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, X, XQ
        &[Uniform, Uniform, Read, ReadWrite]
    },
    weights: WeightReader::None,
    kv: false,
    subgroups: false,
    prelude: "",
    consts: &[("BLOCKS", QUANTIZE_BLOCKS)],
    headers: &[Q8_BLOCK],
    body: include_str!("../../../shaders/quantize_q8.wgsl"),
};

/// Bytes of 8-bit activation blocks (shaders/quantize_q8.wgsl) for `n` values of one
/// token: a byte per value plus an f32 pair per 32, padded to 16 bytes (the readers
/// load vec4s). Tokens follow one another.
pub fn q8_bytes(n: u32) -> u64 {
    (u64::from(n) + u64::from(n / 32) * 8).next_multiple_of(16)
}

/// Whether one token of `n_cols` 8-bit activations fits the matvec's uniform binding on
/// this device (WebGPU's default 64 KiB; the downlevel limits give 16 KiB: none fits).
pub(super) fn fits_uniform(profile: &DeviceProfile, n_cols: u32) -> bool {
    profile.max_uniform_binding >= XQ_UNIFORM_BYTES && q8_bytes(n_cols) <= XQ_UNIFORM_BYTES
}

/// The uniform binding of the 8-bit activations: the first XQ_UNIFORM_BYTES of the q8
/// scratch, which [`q8_scratch`] makes at least that large and bindable as a uniform.
pub(super) fn uniform_x_binding<'a>(
    name: &str,
    q8: &'a wgpu::Buffer,
) -> Result<wgpu::BindingResource<'a>> {
    if q8.size() < XQ_UNIFORM_BYTES || !q8.usage().contains(wgpu::BufferUsages::UNIFORM) {
        return Err(Error::Internal(format!(
            "{name}: the 8-bit activation scratch is not a {XQ_UNIFORM_BYTES}-byte uniform"
        )));
    }
    Ok(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: q8,
        offset: 0,
        size: wgpu::BufferSize::new(XQ_UNIFORM_BYTES),
    }))
}

/// The scratch the 8-bit activations of up to `bytes` are written to (QuantizeQ8) and
/// read from: a storage buffer that the matvec can also bind as its uniform input.
pub fn q8_scratch(ctx: &GpuContext, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("q8"),
        size: bytes.max(XQ_UNIFORM_BYTES).next_multiple_of(16),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::UNIFORM
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The grid of a MatVecQ8 or MatMulQ8 op (or a twin) over a part of `n_rows` rows.
pub(super) fn grid(kernel: Kernel, n_rows: u32) -> Grid {
    match kernel {
        Kernel::MatMulQ8Shuffle
        | Kernel::MatMulQ8TexShuffle
        | Kernel::MatMulQ8
        | Kernel::MatMulQ8Tex => Grid::TokenTiles {
            x: n_rows.div_ceil(MATMUL_Q8_ROWS),
            tokens_per_y: MATMUL_Q8_TOKENS,
        },
        _ => Grid::Fixed {
            x: n_rows.div_ceil(MATVEC_Q8_ROWS),
        },
    }
}

impl OpBuilder<'_> {
    /// The q8 scratch, where an op whose output feeds mat ops may write that output's
    /// 8-bit blocks itself (RmsNormQ8, SiluMulQ8; it still writes the f32 output, which
    /// other readers take): on the 8-bit path (q8_matvec), for rows of `n` values (whole
    /// blocks), where every token's fit (those ops write all of the step's tokens,
    /// whether or not the mat ops after them are batched).
    pub(super) fn q8_output(&self, n: u32) -> Option<wgpu::Buffer> {
        let q8 = self.q8?;
        let fits = u64::from(self.max_tokens) * q8_bytes(n) <= q8.size();
        (self.ctx.profile.q8_matvec && n % 32 == 0 && fits).then(|| q8.clone())
    }

    /// Records that the op just built left `x` (rows of `n` values, one after another)
    /// quantized in the q8 scratch, as quantize_input would for mat ops with this
    /// `batched`.
    pub(super) fn set_quantized(&mut self, x: &wgpu::Buffer, n: u32, batched: bool) {
        self.quantized = Some((x.clone(), n, n, batched));
    }

    /// The 8-bit copy of `m.x` a MatVecQ8 or MatMulQ8 reads, with the op that makes it
    /// pushed onto `ops` unless the op just before (the previous mat op, or the op that
    /// produced the input: set_quantized) already left the same input quantized;
    /// None where the op stays in f32 (no q8 scratch, a GPU, or a format without
    /// q8dot). A matvec's input is one token even inside a prefill step (the output
    /// head reads xn_last), so only batched inputs are quantized for every token.
    pub(super) fn quantize_input(
        &mut self,
        name: &str,
        m: &MatOp<'_>,
        batched: bool,
        ops: &mut Vec<Op>,
    ) -> Result<Option<wgpu::Buffer>> {
        let Some(q8) = self.q8 else {
            return Ok(None);
        };
        // Texture parts and grouped rows are read by the q8dot kernels only, whatever
        // the profile says.
        let textures =
            m.w.parts
                .iter()
                .any(|p| matches!(p.storage, PartStorage::Texture(_)));
        let only_q8 = textures || m.w.layout != RowLayout::Rows;
        if !(self.ctx.profile.q8_matvec || only_q8) || q8dot_reader(m.w.format).is_none() {
            return Ok(None);
        }
        let n = m.w.n_cols;
        let key = (m.x.clone(), n, m.x_stride, batched);
        if self.quantized.as_ref() == Some(&key) {
            return Ok(Some(q8.clone()));
        }
        let tokens = if batched { self.max_tokens } else { 1 };
        let bytes = u64::from(tokens) * q8_bytes(n);
        if bytes > q8.size() {
            return Err(Error::Internal(format!(
                "{name} needs {bytes} bytes of 8-bit activations, the scratch has {}",
                q8.size()
            )));
        }
        let params = QuantParams {
            n,
            x_stride: m.x_stride,
            _pad: [0; 2],
        };
        let key = PipelineKey::new(Kernel::QuantizeQ8);
        let x = (n / 32).div_ceil(QUANTIZE_BLOCKS);
        let grid = match batched {
            true => Grid::PerToken { x },
            false => Grid::Fixed { x },
        };
        ops.push(self.op(format!("{name}.q8"), key, &params, &[m.x, q8], grid)?);
        Ok(Some(q8.clone()))
    }
}

/// x as quantize_q8.wgsl leaves it: per 32 values, q = round_ties_even(x * 127 / amax)
/// and x' = q * amax / 127.
#[cfg(test)]
pub(super) fn ref_q8(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for block in x.chunks(32) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        out.extend(block.iter().map(|v| (v * id).round_ties_even() * d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::mat::tests::ref_matmul;
    use super::super::test_util::{assert_close, dequant_rows, Harness, Rng};
    use super::*;
    use crate::file::quant::{self, WeightFormat};
    use crate::gpu::buffers::{Uploader, WeightMatrix};
    use crate::gpu::Buffer;

    // MatVecQ8 and MatMulQ8 against the CPU reference for every format: see
    // mat.rs's tests, which run both kernel families.

    #[test]
    fn q8_matvecs_on_one_input_quantize_it_once() {
        // q, k, v (or gate, up) read the same input: one quantize op before the first,
        // none before the others; a new input, or any op in between, quantizes again.
        let mut h = Harness::new();
        h.ctx.profile.q8_matvec = true;
        let f = WeightFormat::Q4_1;
        let (rows, cols) = (40usize, 64usize);
        let bytes = quant::random_blocks(f, rows, cols, 3);
        let mut up = Uploader::new(&h.ctx, u64::MAX);
        let dims = [rows as u32, cols as u32];
        let wm = WeightMatrix::upload(&h.ctx, &mut up, "w", f, dims, &bytes).unwrap();
        let mut rng = Rng(5);
        let (x1, x2) = (rng.vec(cols), rng.vec(cols));
        let (b1, b2) = (h.f32s(&x1), h.f32s(&x2));
        let ys: Vec<Buffer> = (0..4).map(|_| h.f32s(&vec![0.0; rows])).collect();
        let mut kernels = Vec::new();
        let got = h.run(1, 0, &ys[3], rows, |ob, g| {
            for (x, y) in [(&b1, &ys[0]), (&b1, &ys[1]), (&b2, &ys[2]), (&b1, &ys[3])] {
                let m = MatOp {
                    w: &wm,
                    x,
                    x_stride: cols as u32,
                    y,
                    bias: None,
                    accumulate: false,
                };
                let ops = ob.mat("w", &m, false).unwrap();
                kernels.extend(ops.iter().map(|op| op.key.kernel));
                g.ops(ops);
            }
        });
        use Kernel::{MatVecQ8 as M, QuantizeQ8 as Q};
        assert_eq!(kernels, [Q, M, M, Q, M, Q, M]);
        // The last matvec read x1 again after x2 was quantized over it.
        let w = dequant_rows(f, &bytes, rows, cols);
        let (want, mag) = ref_matmul(&w, &ref_q8(&x1), rows, cols, 1);
        assert_close("q8 requantized", &got, &want, 1e-5, 1e-5, &mag);
    }

    /// Which op makes the mat op's input: a norm or the SwiGLU.
    #[derive(Clone, Copy, Debug)]
    enum Producer {
        Norm,
        Silu,
    }

    #[test]
    fn ops_that_feed_mat_ops_write_the_8_bit_blocks_quantize_would() {
        // RmsNormQ8 and SiluMulQ8 write their output and its 8-bit blocks; the mat op
        // that reads the output next quantizes nothing and must give bit for bit what
        // the plain op, QuantizeQ8 and the mat op give: one token (matvec) and 19
        // (matmul), 96 values per token (3 blocks), 288 (9 blocks: more than one
        // SiluMulQ8 workgroup of 8 blocks) and 2112 (66 blocks: RmsNormQ8's 64
        // invocations take two blocks each in turn). The q8 scratch is poisoned
        // before every run, so blocks a fused op failed to write cannot pass.
        let mut h = Harness::new();
        h.ctx.profile.q8_matvec = true;
        let f = WeightFormat::Q4_0;
        for cols in [96usize, 288, 2112] {
            let rows = 40usize;
            let bytes = quant::random_blocks(f, rows, cols, 17);
            let mut up = Uploader::new(&h.ctx, u64::MAX);
            let dims = [rows as u32, cols as u32];
            let wm = WeightMatrix::upload(&h.ctx, &mut up, "w", f, dims, &bytes).unwrap();
            for tokens in [1usize, 19] {
                let batched = tokens > 1;
                let mut rng = Rng(23);
                let (a, b) = (rng.vec(tokens * cols), rng.vec(tokens * cols));
                let norm_w = rng.vec(cols);
                // The mat op's result, or (`read_input`) the f32 input it was given, with
                // the producer on its own or writing the 8-bit blocks too (`for_mat`).
                let run = |h: &mut Harness, producer: Producer, for_mat: bool, read_input: bool| {
                    let (ab, bb, nb) = (h.f32s(&a), h.f32s(&b), h.f32s(&norm_w));
                    let out = h.f32s(&vec![0.0; tokens * cols]);
                    let y = h.f32s(&vec![0.0; tokens * rows]);
                    let input = match producer {
                        Producer::Norm => &out,
                        Producer::Silu => &ab,
                    };
                    let (read, n_read) = match read_input {
                        true => (input, tokens * cols),
                        false => (&y, tokens * rows),
                    };
                    h.poison_q8();
                    let mut kernels = Vec::new();
                    let got = h.run(tokens as u32, 0, read, n_read, |ob, g| {
                        let n = cols as u32;
                        // The mat op's input: the norm's output, or gate after SwiGLU.
                        let op = match (producer, for_mat) {
                            (Producer::Norm, true) => {
                                ob.rms_norm_for_mat("n", [&ab, &out, &nb], n, 1e-5, batched)
                            }
                            (Producer::Norm, false) => ob.rms_norm("n", &ab, &out, &nb, n, 1e-5),
                            (Producer::Silu, true) => {
                                ob.silu_mul_for_mat("s", &ab, &bb, n, batched)
                            }
                            (Producer::Silu, false) => ob.silu_mul("s", &ab, &bb, n),
                        };
                        let op = op.unwrap();
                        kernels.push(op.key.kernel);
                        g.op(op);
                        let m = MatOp {
                            w: &wm,
                            x: input,
                            x_stride: n,
                            y: &y,
                            bias: None,
                            accumulate: false,
                        };
                        let ops = ob.mat("w", &m, batched).unwrap();
                        kernels.extend(ops.iter().map(|op| op.key.kernel));
                        g.ops(ops);
                    });
                    (got, kernels)
                };
                for producer in [Producer::Norm, Producer::Silu] {
                    let (want, plain_kernels) = run(&mut h, producer, false, false);
                    let (got, kernels) = run(&mut h, producer, true, false);
                    let what = format!("{producer:?}, {cols} values, {tokens} token(s)");
                    assert_eq!(plain_kernels[1], Kernel::QuantizeQ8, "{what}");
                    let fused_kernel = match producer {
                        Producer::Norm => Kernel::RmsNormQ8,
                        Producer::Silu => Kernel::SiluMulQ8,
                    };
                    assert_eq!(kernels[0], fused_kernel, "{what}");
                    assert_eq!(kernels.len(), 2, "{what}: no quantize op: {kernels:?}");
                    assert_eq!(kernels[1], plain_kernels[2], "{what}");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{what}");
                    // The f32 output, which readers other than 8-bit mat ops take.
                    let (want, _) = run(&mut h, producer, false, true);
                    let (got, _) = run(&mut h, producer, true, true);
                    assert_eq!(bits(&got), bits(&want), "{what}: f32 output");
                }
            }
        }
    }
}
