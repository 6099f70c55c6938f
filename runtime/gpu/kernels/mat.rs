//! Matrix products `y (+)= W x (+ bias)`: matvec for one token (decode), matmul for many
//! (prefill), in f32 through the format's dequantizing reader. On CPU-backed devices the
//! formats with an integer-dot reader take the 8-bit kernels of [`super::mat_q8`]
//! instead; [`OpBuilder::mat`] chooses. Params and bindings: shaders/mat_common.wgsl.

use bytemuck::{Pod, Zeroable};

use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::{Error, Result};
use crate::gpu::buffers::{self, PartStorage, RowLayout, WeightMatrix};
use crate::gpu::pipelines::PipelineKey;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(super) struct MatParams {
    pub n_rows: u32,
    pub n_cols: u32,
    pub row_bytes: u32,
    pub out_row0: u32,
    pub y_stride: u32,
    pub x_stride: u32,
    pub flags: u32,
    /// Weights in a texture: log2 of its row width in texels.
    pub w_shift: u32,
}

pub(super) const FLAG_BIAS: u32 = 1;
pub(super) const FLAG_ACCUMULATE: u32 = 2;

/// Rows per workgroup of matvec.wgsl (64 invocations: 4 rows x 16 lanes).
const MATVEC_ROWS: u32 = 4;
/// Rows per workgroup of matvec_subgroup.wgsl (whatever the subgroup size).
const MATVEC_SUBGROUP_ROWS: u32 = 16;
/// The tile of matmul.wgsl: rows x tokens per workgroup.
const MATMUL_TILE_ROWS: u32 = 32;
const MATMUL_TILE_TOKENS: u32 = 16;
/// matmul_rows.wgsl: a row per invocation, 64 rows x 16 tokens per workgroup.
const MATMUL_ROWS_ROWS: u32 = 64;
const MATMUL_ROWS_TOKENS: u32 = 16;

pub(super) const MAT_BINDINGS: &[Binding] = {
    use Binding::{Read, ReadWrite, Uniform};
    // params, step, W, X, Y, bias
    &[Uniform, Uniform, Read, Read, ReadWrite, Read]
};
pub(super) const MAT_COMMON: &str = include_str!("../../../shaders/mat_common.wgsl");
pub(super) const MAT_FLAGS: [(&str, u32); 2] = [
    ("FLAG_BIAS", FLAG_BIAS),
    ("FLAG_ACCUMULATE", FLAG_ACCUMULATE),
];

const fn f32_mat(consts: &'static [(&'static str, u32)], body: &'static str) -> KernelSpec {
    KernelSpec {
        bindings: MAT_BINDINGS,
        weights: WeightReader::Dequantize,
        kv: false,
        subgroups: false,
        prelude: "",
        consts,
        headers: &[MAT_COMMON],
        body,
    }
}

pub(super) const MATVEC: KernelSpec = f32_mat(
    &[MAT_FLAGS[0], MAT_FLAGS[1], ("ROWS", MATVEC_ROWS)],
    include_str!("../../../shaders/matvec.wgsl"),
);
pub(super) const MATVEC_SUBGROUP: KernelSpec = KernelSpec {
    subgroups: true,
    ..f32_mat(
        &[MAT_FLAGS[0], MAT_FLAGS[1], ("ROWS", MATVEC_SUBGROUP_ROWS)],
        include_str!("../../../shaders/matvec_subgroup.wgsl"),
    )
};
pub(super) const MATMUL: KernelSpec = f32_mat(
    &[
        MAT_FLAGS[0],
        MAT_FLAGS[1],
        ("TILE_ROWS", MATMUL_TILE_ROWS),
        ("TILE_TOKENS", MATMUL_TILE_TOKENS),
    ],
    include_str!("../../../shaders/matmul.wgsl"),
);
pub(super) const MATMUL_ROWS: KernelSpec = f32_mat(
    &[
        MAT_FLAGS[0],
        MAT_FLAGS[1],
        ("ROWS", MATMUL_ROWS_ROWS),
        ("TOKENS", MATMUL_ROWS_TOKENS),
    ],
    include_str!("../../../shaders/matmul_rows.wgsl"),
);

/// `y (+)= W x (+ bias)` for one matrix, as matvec (one token) or matmul (many).
pub struct MatOp<'b> {
    pub w: &'b WeightMatrix,
    pub x: &'b wgpu::Buffer, // [n_tokens, x_stride] f32
    pub x_stride: u32,
    pub y: &'b wgpu::Buffer, // [n_tokens, w.n_rows] f32
    pub bias: Option<&'b wgpu::Buffer>,
    pub accumulate: bool,
}

impl OpBuilder<'_> {
    /// One op per part of the matrix (after a quantize op where the input is not
    /// quantized yet). `batched` picks matmul (prefill) over matvec.
    pub fn mat(&mut self, name: &str, m: &MatOp<'_>, batched: bool) -> Result<Vec<Op>> {
        let mut ops = Vec::new();
        let q8 = self.quantize_input(name, m, batched, &mut ops)?;
        let profile = &self.ctx.profile;
        // The matvec reads one token's 8-bit activations from a uniform buffer where
        // they fit, from the storage buffer otherwise (the StorageX twins).
        let uniform_x = super::mat_q8::fits_uniform(profile, m.w.n_cols);
        let kernel = match (batched, profile.subgroups) {
            (false, _) if q8.is_some() && uniform_x => Kernel::MatVecQ8,
            (false, _) if q8.is_some() => Kernel::MatVecQ8StorageX,
            (true, _) if q8.is_some() && profile.matmul_shuffle => Kernel::MatMulQ8Shuffle,
            (true, _) if q8.is_some() => Kernel::MatMulQ8,
            (true, _) if profile.cpu_device => Kernel::MatMulRows,
            (true, _) => Kernel::MatMul,
            (false, true) => Kernel::MatVecSubgroup,
            (false, false) => Kernel::MatVec,
        };
        let mut flags = 0;
        if m.bias.is_some() {
            flags |= FLAG_BIAS;
        }
        if m.accumulate {
            flags |= FLAG_ACCUMULATE;
        }
        if m.w.layout != RowLayout::Rows {
            if q8.is_none() {
                return Err(Error::Internal(format!(
                    "{name}: rows in groups for {kernel:?} (no 8-bit input)"
                )));
            }
            flags |= super::mat_q8::layout_flags(m.w.layout, m.w.format);
        }
        for (i, part) in m.w.parts.iter().enumerate() {
            // Texture parts take the texture twin of the 8-bit kernel.
            let (kernel, w_shift) = match (&part.storage, kernel) {
                (PartStorage::Buffer(_), k) => (k, 0),
                (PartStorage::Texture(t), Kernel::MatVecQ8) => (Kernel::MatVecQ8Tex, t.shift),
                (PartStorage::Texture(t), Kernel::MatVecQ8StorageX) => {
                    (Kernel::MatVecQ8TexStorageX, t.shift)
                }
                (PartStorage::Texture(t), Kernel::MatMulQ8Shuffle) => {
                    (Kernel::MatMulQ8TexShuffle, t.shift)
                }
                (PartStorage::Texture(t), Kernel::MatMulQ8) => (Kernel::MatMulQ8Tex, t.shift),
                (PartStorage::Texture(_), k) => {
                    return Err(Error::Internal(format!(
                        "{name}: weights in a texture for {k:?} (no 8-bit input)"
                    )))
                }
            };
            let key = PipelineKey::with_format(kernel, m.w.format);
            let params = MatParams {
                n_rows: part.n_rows,
                n_cols: m.w.n_cols,
                row_bytes: m.w.row_bytes,
                out_row0: part.row0,
                y_stride: m.w.n_rows,
                x_stride: m.x_stride,
                flags,
                w_shift,
            };
            let grid = match kernel {
                Kernel::MatMulQ8Shuffle
                | Kernel::MatMulQ8TexShuffle
                | Kernel::MatMulQ8
                | Kernel::MatMulQ8Tex
                | Kernel::MatVecQ8
                | Kernel::MatVecQ8Tex
                | Kernel::MatVecQ8StorageX
                | Kernel::MatVecQ8TexStorageX => super::mat_q8::grid(kernel, part.n_rows),
                Kernel::MatMulRows => Grid::TokenTiles {
                    x: part.n_rows.div_ceil(MATMUL_ROWS_ROWS),
                    tokens_per_y: MATMUL_ROWS_TOKENS,
                },
                Kernel::MatMul => Grid::TokenTiles {
                    x: part.n_rows.div_ceil(MATMUL_TILE_ROWS),
                    tokens_per_y: MATMUL_TILE_TOKENS,
                },
                Kernel::MatVecSubgroup => Grid::Fixed {
                    x: part.n_rows.div_ceil(MATVEC_SUBGROUP_ROWS),
                },
                _ => Grid::Fixed {
                    x: part.n_rows.div_ceil(MATVEC_ROWS),
                },
            };
            let bias = m.bias.unwrap_or(self.dummy);
            let params = buffers::uniform(self.ctx, name, &params);
            let mut unit = None;
            let w = match (part.source, &part.storage) {
                (None, PartStorage::Texture(t)) => wgpu::BindingResource::TextureView(&t.view),
                (None, PartStorage::Buffer(_)) => {
                    wgpu::BindingResource::Buffer(part.buffer_binding(name)?)
                }
                (Some(src), _) => {
                    let st = self.stream.as_mut().ok_or_else(|| {
                        Error::Internal(format!("streamed {name} without a stream ring"))
                    })?;
                    let u = st.units.len();
                    st.units.push(src);
                    unit = Some(u);
                    let ring: &[wgpu::Buffer; 2] = st.ring;
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &ring[u % 2],
                        offset: 0,
                        size: wgpu::BufferSize::new(part.size),
                    })
                }
            };
            let x = match (&q8, kernel) {
                (Some(q8), Kernel::MatVecQ8 | Kernel::MatVecQ8Tex) => {
                    super::mat_q8::uniform_x_binding(name, q8)?
                }
                (Some(q8), _) => q8.as_entire_binding(),
                (None, _) => m.x.as_entire_binding(),
            };
            let bufs = [w, x, m.y.as_entire_binding(), bias.as_entire_binding()];
            let mut op = self.op_resources(format!("{name}[{i}]"), key, &params, &bufs, grid)?;
            op.unit = unit;
            ops.push(op);
        }
        if q8.is_some() {
            self.quantized = Some((m.x.clone(), m.w.n_cols, m.x_stride, batched));
        }
        Ok(ops)
    }

    /// `y = W x` for one token, with W a range of a larger buffer (an expert cache
    /// slot) and a params uniform shared by every slot of the same layout.
    pub fn slot_matvec(
        &mut self,
        name: String,
        w: &WeightMatrix,
        params: &wgpu::Buffer,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<Op> {
        let (kernel, rows_per_wg) = if self.ctx.profile.subgroups {
            (Kernel::MatVecSubgroup, MATVEC_SUBGROUP_ROWS)
        } else {
            (Kernel::MatVec, MATVEC_ROWS)
        };
        if w.layout != RowLayout::Rows {
            return Err(Error::Internal(format!(
                "{name}: an expert slot's rows in groups (the f32 matvec reads the file's order)"
            )));
        }
        let key = PipelineKey::with_format(kernel, w.format);
        let part = &w.parts[0];
        let grid = Grid::Fixed {
            x: w.n_rows.div_ceil(rows_per_wg),
        };
        let bufs = [
            part.buffer_binding(&name)?,
            x.as_entire_buffer_binding(),
            y.as_entire_buffer_binding(),
            self.dummy.as_entire_buffer_binding(),
        ];
        self.op_bound(name, key, params, &bufs, grid)
    }

    /// The params uniform of [`OpBuilder::slot_matvec`] for matrices shaped like `w`.
    pub fn slot_matvec_params(&self, w: &WeightMatrix) -> wgpu::Buffer {
        let params = MatParams {
            n_rows: w.n_rows,
            n_cols: w.n_cols,
            row_bytes: w.row_bytes,
            out_row0: 0,
            y_stride: w.n_rows,
            x_stride: w.n_cols,
            flags: 0,
            w_shift: 0,
        };
        buffers::uniform(self.ctx, "expert matvec", &params)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::mat_q8::ref_q8;
    use super::super::test_util::{assert_close, dequant_rows, odd_cols, Harness, Rng};
    use super::*;
    use crate::file::quant::{self, WeightFormat};
    use crate::gpu::buffers::{
        MatrixUse, PartStorage, Placement, Readback, RowLayout, Uploader, WEIGHT_PAD,
    };
    use crate::gpu::context::DeviceOptions;
    use crate::gpu::pipelines::q8dot_reader;

    /// Reference y[t][r] = sum_k w[r][k] x[t][k] in f64, plus sum |w x| per output for
    /// the tolerance.
    pub(in crate::gpu::kernels) fn ref_matmul(
        w: &[f32],
        x: &[f32],
        rows: usize,
        cols: usize,
        tokens: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut y = vec![0.0; tokens * rows];
        let mut mag = vec![0.0; tokens * rows];
        for t in 0..tokens {
            for r in 0..rows {
                let (mut s, mut m) = (0f64, 0f64);
                for k in 0..cols {
                    let p = f64::from(w[r * cols + k]) * f64::from(x[t * cols + k]);
                    s += p;
                    m += p.abs();
                }
                y[t * rows + r] = s as f32;
                mag[t * rows + r] = m as f32;
            }
        }
        (y, mag)
    }

    /// The kernel [`OpBuilder::mat`] must pick for this profile and format, with the
    /// weights in textures (`textures`, formats with a q8dot reader) or buffers, in
    /// groups of rows (`groups`, the same formats) or the file's order.
    /// The matvec reads its activations from a uniform buffer unless the profile's
    /// uniform binding is below 64 KiB (downlevel) or the input is wider than 64 KiB holds (the StorageX twins).
    fn expected_kernel(
        h: &Harness,
        f: WeightFormat,
        cols: usize,
        batched: bool,
        textures: bool,
        groups: bool,
    ) -> Kernel {
        let reader = q8dot_reader(f).is_some();
        let tex = textures && reader;
        let q8 = (h.ctx.profile.q8_matvec || tex || groups) && reader;
        // One token's 8-bit input: a byte per value and 8 bytes per 32, in 16-byte vec4s.
        let input_bytes = (cols + cols / 32 * 8).next_multiple_of(16) as u64;
        let uniform = h.ctx.profile.max_uniform_binding >= 64 << 10 && input_bytes <= 64 << 10;
        let shared = h.ctx.profile.matmul_shuffle;
        match (batched, h.ctx.profile.subgroups) {
            (false, _) if tex && uniform => Kernel::MatVecQ8Tex,
            (false, _) if tex => Kernel::MatVecQ8TexStorageX,
            (true, _) if tex && shared => Kernel::MatMulQ8TexShuffle,
            (true, _) if tex => Kernel::MatMulQ8Tex,
            (false, _) if q8 && uniform => Kernel::MatVecQ8,
            (false, _) if q8 => Kernel::MatVecQ8StorageX,
            (true, _) if q8 && shared => Kernel::MatMulQ8Shuffle,
            (true, _) if q8 => Kernel::MatMulQ8,
            (true, _) if h.ctx.profile.cpu_device => Kernel::MatMulRows,
            (true, _) => Kernel::MatMul,
            (false, true) => Kernel::MatVecSubgroup,
            (false, false) => Kernel::MatVec,
        }
    }

    /// How a case uploads its weights: in textures and in groups of rows where the
    /// format has a q8dot reader (whether or not a model's load would choose them:
    /// every reader must read every way).
    #[derive(Clone, Copy)]
    struct Upload {
        textures: bool,
        groups: bool,
    }

    const BUFFERS: Upload = Upload {
        textures: false,
        groups: false,
    };

    fn check_mat(h: &mut Harness, f: WeightFormat, tokens: usize, split: bool, how: Upload) {
        let reader = q8dot_reader(f);
        let (textures, groups) = (
            how.textures && reader.is_some(),
            how.groups && reader.is_some(),
        );
        // In groups: the reader's size where a model's load uses groups, 8 rows for Q6_K.
        let group_rows = reader.map_or(1, |r| if r.row_group > 1 { r.row_group } else { 8 });
        // Unsplit: more than two of the 8-bit kernels' 64-row workgroups, the last one
        // short (in groups: a group padded with zero rows, 133 = 64 + 64 + 5).
        let rows = if split && !groups { 37usize } else { 133 };
        let cols = odd_cols(f);
        let bytes = quant::random_blocks(f, rows, cols, 7 + f.ggml_type() as u64);
        let w = dequant_rows(f, &bytes, rows, cols);
        let rb = f.row_bytes(cols as u64).unwrap();
        // Split: at most 5 rows per part -> 8 parts, the last one short; in groups, one
        // group per part, the last one a short group.
        let part_rows = if groups { u64::from(group_rows) } else { 5 };
        let limit = if split {
            part_rows * rb + WEIGHT_PAD
        } else {
            u64::MAX
        };
        let mut up = Uploader::new(&h.ctx, limit);
        let dims = [rows as u32, cols as u32];
        let placement = match textures {
            true => Placement::Textures {
                max_dim: h.ctx.profile.max_texture_dim,
            },
            false => Placement::Buffers,
        };
        let layout = if groups {
            RowLayout::Groups(group_rows)
        } else {
            RowLayout::Rows
        };
        let wm =
            WeightMatrix::upload_placed(&h.ctx, &mut up, "w", f, dims, &bytes, placement, layout)
                .unwrap();
        assert_eq!(wm.layout, layout);
        let want_bytes = WeightMatrix::gpu_bytes_of(f, dims, limit, placement, layout);
        assert_eq!(Some(wm.gpu_bytes()), want_bytes, "the memory plan's figure");
        let want_parts = match (split, groups) {
            (false, _) => 1,
            (true, false) => 8,
            (true, true) => rows.div_ceil(group_rows as usize),
        };
        assert_eq!(wm.parts.len(), want_parts);
        let mut rng = Rng(99);
        let batched = tokens > 1;
        // Batched inputs are rows of a wider buffer (x_stride > cols), as in a model.
        let x_stride = if batched { cols + 32 } else { cols };
        let x_wide = rng.vec(tokens * x_stride);
        let x: Vec<f32> = x_wide
            .chunks(x_stride)
            .flat_map(|row| row[..cols].to_vec())
            .collect();
        let bias = rng.vec(rows);
        let y0 = rng.vec(tokens * rows);
        let (xb, bb, yb) = (h.f32s(&x_wide), h.f32s(&bias), h.f32s(&y0));
        let expected = expected_kernel(h, f, cols, batched, textures, groups);
        let q8 = matches!(
            expected,
            Kernel::MatVecQ8
                | Kernel::MatMulQ8Shuffle
                | Kernel::MatVecQ8Tex
                | Kernel::MatMulQ8TexShuffle
                | Kernel::MatMulQ8
                | Kernel::MatMulQ8Tex
                | Kernel::MatVecQ8StorageX
                | Kernel::MatVecQ8TexStorageX
        );
        let got = h.run(tokens as u32, 0, &yb, tokens * rows, |ob, g| {
            let m = MatOp {
                w: &wm,
                x: &xb,
                x_stride: x_stride as u32,
                y: &yb,
                bias: Some(&bb),
                accumulate: true,
            };
            let ops = ob.mat("w", &m, batched).unwrap();
            // MatVecQ8 and MatMulQ8 come after the op that quantizes their input.
            let mats = if q8 { &ops[1..] } else { &ops[..] };
            assert!(
                mats.iter().all(|op| op.key.kernel == expected),
                "kernel choice"
            );
            g.ops(ops);
        });
        // The integer-dot kernels multiply by x as its 8-bit blocks hold it.
        let x = if q8 { ref_q8(&x) } else { x };
        let (dot, mag) = ref_matmul(&w, &x, rows, cols, tokens);
        let want: Vec<f32> = (0..tokens * rows)
            .map(|i| dot[i] + bias[i % rows] + y0[i])
            .collect();
        // f32 accumulation in a different order than the f64 reference: error grows
        // with the sum of |w x| terms, about cols * 2^-24 relative at worst; 1e-5
        // leaves margin.
        let what = format!(
            "{} {} tokens split={split} textures={textures} layout={layout:?}",
            f.name(),
            tokens
        );
        assert_close(&what, &got, &want, 1e-5, 1e-5, &mag);
    }

    #[test]
    fn matvec_matches_cpu_reference_for_every_format_and_split() {
        // Default options pick the subgroup matvec where the adapter has subgroups
        // (lavapipe does); the downlevel profile keeps the workgroup-memory version.
        // With q8_matvec (CPU-backed devices) the formats with a q8dot reader take the
        // integer-dot matvec instead, reading its weights from a buffer in the file's
        // order (streamed parts, expert slots), or in groups of rows (row_groups) from a
        // buffer or a texture (weight_textures): each profile runs all four ways. The
        // default profile's matvec reads its 8-bit input from a uniform buffer, the
        // downlevel one's (16 KiB uniforms) from a storage buffer (StorageX).
        let default = Harness::new();
        if !default.ctx.profile.subgroups {
            eprintln!("adapter without subgroups: both runs use the workgroup-memory matvec");
        }
        let downlevel = Harness::with(&DeviceOptions {
            downlevel: true,
            ..Default::default()
        });
        assert!(!downlevel.ctx.profile.subgroups);
        let grouped = |textures| Upload {
            textures,
            groups: true,
        };
        let ways = [
            (false, BUFFERS),
            (true, BUFFERS),
            (true, grouped(false)),
            (true, grouped(true)),
        ];
        for mut h in [default, downlevel] {
            for (q8_matvec, how) in ways {
                h.ctx.profile.q8_matvec = q8_matvec;
                h.ctx.profile.weight_textures = how.textures;
                h.ctx.profile.row_groups = how.groups;
                for f in WeightFormat::ALL {
                    check_mat(&mut h, f, 1, false, how);
                    check_mat(&mut h, f, 1, true, how);
                }
            }
        }
    }

    #[test]
    fn matmul_matches_cpu_reference_for_every_format_and_split() {
        // Every prefill kernel, whatever the adapter: the tiled one real GPUs get, the
        // barrier-free one CPU-backed devices get (the profile's cpu_device) and, for
        // the formats with a q8dot reader, its integer-dot twin (q8_matvec) on weights
        // in buffers in the file's order, and in groups of rows in buffers and in
        // textures, each with its lanes sharing the activations through subgroups
        // (matmul_shuffle: a CPU-backed adapter with subgroups of 8 or more) and without.
        let mut h = Harness::new();
        let shared = h.ctx.profile.matmul_shuffle;
        // lavapipe (the CI adapter) has subgroups of 8: the shuffled kernels must run.
        if h.ctx.profile.adapter_name.contains("llvmpipe") {
            assert!(shared, "lavapipe without the shuffled 8-bit matmul");
        } else if !shared {
            eprintln!(
                "WARNING: not a CPU-backed adapter with subgroups of 8 or more: \
                 no run shuffles the activations"
            );
        }
        let grouped = |textures| Upload {
            textures,
            groups: true,
        };
        let runs = [
            (false, false, false, BUFFERS),
            (true, false, false, BUFFERS),
            (true, true, shared, BUFFERS),
            (true, true, false, BUFFERS),
            (true, true, shared, grouped(false)),
            (true, true, shared, grouped(true)),
            (true, true, false, grouped(true)),
        ];
        for (cpu_device, q8_matvec, matmul_shuffle, how) in runs {
            h.ctx.profile.cpu_device = cpu_device;
            h.ctx.profile.q8_matvec = q8_matvec;
            h.ctx.profile.matmul_shuffle = matmul_shuffle;
            h.ctx.profile.weight_textures = how.textures;
            h.ctx.profile.row_groups = how.groups;
            for f in WeightFormat::ALL {
                // 19 tokens: partial last tiles (16 tokens per tile in MatMulRows, 8 in
                // MatMulQ8).
                check_mat(&mut h, f, 19, false, how);
                check_mat(&mut h, f, 19, true, how);
            }
        }
    }

    /// `wm x` for one token through the 8-bit matvec (after its quantize op), which
    /// must be `kernel` for every part (`what` names the case).
    fn q8_matvec(
        h: &mut Harness,
        wm: &WeightMatrix,
        x: &[f32],
        kernel: Kernel,
        what: &str,
    ) -> Vec<f32> {
        let rows = wm.n_rows as usize;
        let (xb, yb) = (h.f32s(x), h.f32s(&vec![0.0; rows]));
        h.run(1, 0, &yb, rows, |ob, g| {
            let m = MatOp {
                w: wm,
                x: &xb,
                x_stride: wm.n_cols,
                y: &yb,
                bias: None,
                accumulate: false,
            };
            let ops = ob.mat("w", &m, false).unwrap();
            assert_eq!(ops[0].key.kernel, Kernel::QuantizeQ8, "{what}");
            assert!(ops[1..].iter().all(|op| op.key.kernel == kernel), "{what}");
            g.ops(ops);
        })
    }

    #[test]
    fn texture_parts_of_every_shape_match_the_reference() {
        // Rows wider than 4 KiB (w_shift above 8), parts split at what a texture holds,
        // and an upload in two staging bands: a Q6_K matrix of 8.8 MB under small
        // texture limits, in the file's order and in groups of rows (whole groups per
        // part: 13 of 64 rows or 208 of 4 in a 1 MiB texture, 832 rows every way).
        let mut h = Harness::new();
        h.ctx.profile.q8_matvec = true;
        let f = WeightFormat::Q6_K;
        let (rows, cols) = (7000usize, 1536usize);
        let bytes = quant::random_blocks(f, rows, cols, 11);
        let w = dequant_rows(f, &bytes, rows, cols);
        let x = Rng(3).vec(cols);
        let (want, mag) = ref_matmul(&w, &ref_q8(&x), rows, cols, 1);
        let dims = [rows as u32, cols as u32];
        // (max_dim, parts, row width of the first part in log2 texels)
        let cases = [(1024, 1, 10), (256, 9, 8)];
        for ((max_dim, n_parts, shift), layout) in cases.into_iter().flat_map(|c| {
            [RowLayout::Rows, RowLayout::Groups(64), RowLayout::Groups(4)].map(|l| (c, l))
        }) {
            let what = format!("max_dim {max_dim} {layout:?}");
            h.ctx.profile.max_texture_dim = max_dim;
            let placement = Placement::Textures { max_dim };
            let mut up = Uploader::new(&h.ctx, u64::MAX);
            let wm = WeightMatrix::upload_placed(
                &h.ctx, &mut up, "w", f, dims, &bytes, placement, layout,
            )
            .unwrap();
            assert_eq!(wm.parts.len(), n_parts, "{what}");
            assert_eq!(wm.layout, layout, "{what}");
            let PartStorage::Texture(t) = &wm.parts[0].storage else {
                panic!("{what}: a buffer part");
            };
            assert_eq!(t.shift, shift, "{what}");
            let limit = u64::from(u32::MAX);
            assert_eq!(
                Some(wm.gpu_bytes()),
                WeightMatrix::gpu_bytes_of(f, dims, limit, placement, layout),
                "{what}"
            );
            let got = q8_matvec(&mut h, &wm, &x, Kernel::MatVecQ8Tex, &what);
            assert_close(&what, &got, &want, 1e-5, 1e-5, &mag);
        }
    }

    #[test]
    fn models_put_rows_in_groups_only_where_the_8_bit_kernels_read_them() {
        // RowLayout::of: groups of its reader's size for mat ops of the formats with a
        // q8dot reader, where the profile says so; the file's order for per-head
        // products (HeadMatVec reads rows), the other formats (the f32 kernels read
        // rows), readers whose size is 1 (Q6_K) and profiles without row groups (GPUs,
        // --f32-activations, --buffer-weights).
        let mut h = Harness::new();
        for allowed in [true, false] {
            h.ctx.profile.row_groups = allowed;
            for f in WeightFormat::ALL {
                let group = q8dot_reader(f).map_or(1, |r| r.row_group);
                let want = match allowed && group > 1 {
                    true => RowLayout::Groups(group),
                    false => RowLayout::Rows,
                };
                let mat = RowLayout::of(&h.ctx.profile, f, MatrixUse::Mat);
                assert_eq!(mat, want, "{}", f.name());
                let heads = RowLayout::of(&h.ctx.profile, f, MatrixUse::Heads);
                assert_eq!(heads, RowLayout::Rows, "{}", f.name());
            }
        }
        // The measured choice (docs/performance.md): 64 rows for every reader that the
        // matvec walks a block at a time, 4 for Q4_K, the file's order for Q6_K.
        let sizes: Vec<String> = WeightFormat::ALL
            .iter()
            .filter_map(|&f| q8dot_reader(f).map(|r| format!("{} {}", f.name(), r.row_group)))
            .collect();
        let want = "Q8_0 64, Q4_0 64, Q4_1 64, Q5_0 64, Q5_1 64, Q4_K 4, Q5_K 64, Q6_K 1, \
                    Q2_K 64, Q3_K 64, IQ4_NL 64, IQ4_XS 64, IQ2_XXS 64, IQ2_XS 64, IQ2_S 64, \
                    IQ3_XXS 64, IQ3_S 64, IQ1_S 64, IQ1_M 64";
        assert_eq!(sizes.join(", "), want);
        // MatParams.flags has 8 bits for a grouped matrix's block bytes.
        for f in WeightFormat::ALL {
            assert!(f.block_bytes() < 256, "{}", f.name());
        }
        // A part too small for a group of rows keeps the file's order (measured in
        // bytes like the memory plan: check_mat runs groups split at one per part).
        let f = WeightFormat::Q4_0;
        let dims = [130u32, 64];
        let rb = f.row_bytes(64).unwrap();
        let bytes = quant::random_blocks(f, 130, 64, 3);
        let limit = 63 * rb + WEIGHT_PAD;
        let mut up = Uploader::new(&h.ctx, limit);
        let (placement, layout) = (Placement::Buffers, RowLayout::Groups(64));
        let wm =
            WeightMatrix::upload_placed(&h.ctx, &mut up, "w", f, dims, &bytes, placement, layout)
                .unwrap();
        assert_eq!(wm.layout, RowLayout::Rows);
        assert_eq!(wm.parts.len(), 3);
        assert_eq!(
            Some(wm.gpu_bytes()),
            WeightMatrix::gpu_bytes_of(f, dims, limit, placement, layout)
        );
    }

    #[test]
    fn rows_in_groups_are_the_files_blocks_interleaved() {
        // The upload's reordering against one written out here: a Q4_0 matrix of 4100
        // x 4096 in a buffer in groups of 64 (9.6 MB: two staging chunks), the last
        // group padded with 60 zero rows, read back byte for byte with the padding.
        let h = Harness::new();
        let f = WeightFormat::Q4_0;
        let (rows, cols) = (4100usize, 4096usize);
        let bytes = quant::random_blocks(f, rows, cols, 21);
        let rb = f.row_bytes(cols as u64).unwrap() as usize;
        let bb = f.block_bytes() as usize;
        let mut up = Uploader::new(&h.ctx, u64::MAX);
        let dims = [rows as u32, cols as u32];
        let (placement, layout) = (Placement::Buffers, RowLayout::Groups(64));
        let wm =
            WeightMatrix::upload_placed(&h.ctx, &mut up, "w", f, dims, &bytes, placement, layout)
                .unwrap();
        assert_eq!((wm.layout, wm.parts.len()), (layout, 1));
        let mut want = Vec::new();
        for g in 0..rows.div_ceil(64) {
            for k in 0..rb / bb {
                for r in g * 64..g * 64 + 64 {
                    match r < rows {
                        true => want.extend_from_slice(&bytes[r * rb + k * bb..][..bb]),
                        false => want.extend(std::iter::repeat_n(0u8, bb)),
                    }
                }
            }
        }
        let PartStorage::Buffer(buffer) = &wm.parts[0].storage else {
            panic!("a texture part");
        };
        let n = (want.len() + WEIGHT_PAD as usize).next_multiple_of(4);
        let back = Readback::new(&h.ctx, "w", n as u64);
        let mut enc = h.ctx.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, 0, back.buffer(), 0, n as u64);
        h.ctx.queue.submit([enc.finish()]);
        let mut got = vec![0u8; n];
        back.read_bytes(&h.ctx, &mut got).unwrap();
        assert!(got[..want.len()] == want[..], "the reordered bytes");
        assert!(
            got[want.len()..].iter().all(|&b| b == 0),
            "the read padding"
        );
    }

    #[test]
    fn models_put_in_textures_what_the_8_bit_kernels_read() {
        // Placement::of: textures for mat ops of the formats with a q8dot reader (every
        // one measured faster so, in its row order), where the profile allows them;
        // buffers for per-head products, the other formats, and profiles without
        // weight textures.
        let mut h = Harness::new();
        let tex = Placement::Textures {
            max_dim: h.ctx.profile.max_texture_dim,
        };
        for allowed in [true, false] {
            h.ctx.profile.weight_textures = allowed;
            for f in WeightFormat::ALL {
                let reader = q8dot_reader(f).is_some();
                let want = if allowed && reader {
                    tex
                } else {
                    Placement::Buffers
                };
                assert_eq!(
                    Placement::of(&h.ctx.profile, f, MatrixUse::Mat),
                    want,
                    "{}",
                    f.name()
                );
                let heads = Placement::of(&h.ctx.profile, f, MatrixUse::Heads);
                assert_eq!(heads, Placement::Buffers, "{}", f.name());
            }
        }
    }

    #[test]
    fn matvec_inputs_too_wide_for_a_uniform_read_a_storage_buffer() {
        // 52,416 values are the most whose 8-bit blocks fit the 64 KiB uniform
        // (65,520 bytes); 53,248 (Llama-405B's ffn_down input) take the StorageX twins.
        // Weights in buffers (Q4_0) and textures (Q6_K), read to the end of the input.
        let mut h = Harness::new();
        h.ctx.profile.q8_matvec = true;
        assert!(
            h.ctx.profile.max_uniform_binding >= 64 << 10,
            "the default profile"
        );
        let tex = Placement::Textures {
            max_dim: h.ctx.profile.max_texture_dim,
        };
        let rows = 3usize;
        for cols in [52416usize, 53248] {
            let x = Rng(cols as u64).vec(cols);
            for (f, placement) in [
                (WeightFormat::Q4_0, Placement::Buffers),
                (WeightFormat::Q6_K, tex),
            ] {
                let cols = cols / f.block_elems() as usize * f.block_elems() as usize;
                let x = &x[..cols];
                let bytes = quant::random_blocks(f, rows, cols, 5);
                let w = dequant_rows(f, &bytes, rows, cols);
                let dims = [rows as u32, cols as u32];
                let mut up = Uploader::new(&h.ctx, u64::MAX);
                let layout = RowLayout::Rows;
                let wm = WeightMatrix::upload_placed(
                    &h.ctx, &mut up, "w", f, dims, &bytes, placement, layout,
                )
                .unwrap();
                let want_kernel = match (placement, cols <= 52416) {
                    (Placement::Buffers, true) => Kernel::MatVecQ8,
                    (Placement::Buffers, false) => Kernel::MatVecQ8StorageX,
                    (_, true) => Kernel::MatVecQ8Tex,
                    (_, false) => Kernel::MatVecQ8TexStorageX,
                };
                let got = q8_matvec(&mut h, &wm, x, want_kernel, &cols.to_string());
                let (want, mag) = ref_matmul(&w, &ref_q8(x), rows, cols, 1);
                assert_close(
                    &format!("{} {cols}", f.name()),
                    &got,
                    &want,
                    1e-5,
                    1e-5,
                    &mag,
                );
            }
        }
    }
}
