//! Matrix products `y (+)= W x (+ bias)`: matvec for one token (decode), matmul for many
//! (prefill), in f32 through the format's dequantizing reader. On CPU-backed devices the
//! formats with an integer-dot reader take the 8-bit kernels of [`super::mat_q8`]
//! instead; [`OpBuilder::mat`] chooses. Params and bindings: shaders/mat_common.wgsl.

use bytemuck::{Pod, Zeroable};

use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::{Error, Result};
use crate::gpu::buffers::{self, WeightMatrix};
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
    pub _pad: u32,
}

const FLAG_BIAS: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;

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
        let kernel = match (batched, profile.subgroups) {
            (false, _) if q8.is_some() => Kernel::MatVecQ8,
            (true, _) if q8.is_some() => Kernel::MatMulQ8,
            (true, _) if profile.cpu_device => Kernel::MatMulRows,
            (true, _) => Kernel::MatMul,
            (false, true) => Kernel::MatVecSubgroup,
            (false, false) => Kernel::MatVec,
        };
        let key = PipelineKey::with_format(kernel, m.w.format);
        let mut flags = 0;
        if m.bias.is_some() {
            flags |= FLAG_BIAS;
        }
        if m.accumulate {
            flags |= FLAG_ACCUMULATE;
        }
        for (i, part) in m.w.parts.iter().enumerate() {
            let params = MatParams {
                n_rows: part.n_rows,
                n_cols: m.w.n_cols,
                row_bytes: m.w.row_bytes,
                out_row0: part.row0,
                y_stride: m.w.n_rows,
                x_stride: m.x_stride,
                flags,
                _pad: 0,
            };
            let grid = match kernel {
                Kernel::MatMulQ8 | Kernel::MatVecQ8 => super::mat_q8::grid(kernel, part.n_rows),
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
            let w = match part.source {
                None => part.binding(),
                Some(src) => {
                    let st = self.stream.as_mut().ok_or_else(|| {
                        Error::Internal(format!("streamed {name} without a stream ring"))
                    })?;
                    let u = st.units.len();
                    st.units.push(src);
                    unit = Some(u);
                    let ring: &[wgpu::Buffer; 2] = st.ring;
                    wgpu::BufferBinding {
                        buffer: &ring[u % 2],
                        offset: 0,
                        size: wgpu::BufferSize::new(part.size),
                    }
                }
            };
            let bufs = [
                w,
                q8.as_ref().unwrap_or(m.x).as_entire_buffer_binding(),
                m.y.as_entire_buffer_binding(),
                bias.as_entire_buffer_binding(),
            ];
            let mut op = self.op_bound(format!("{name}[{i}]"), key, &params, &bufs, grid)?;
            op.unit = unit;
            ops.push(op);
        }
        if q8.is_some() {
            self.quantized = Some((m.x.clone(), m.w.n_cols, batched));
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
        let key = PipelineKey::with_format(kernel, w.format);
        let part = &w.parts[0];
        let grid = Grid::Fixed {
            x: w.n_rows.div_ceil(rows_per_wg),
        };
        let bufs = [
            part.binding(),
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
            _pad: 0,
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
    use crate::gpu::buffers::{Uploader, WEIGHT_PAD};
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

    /// The kernel [`OpBuilder::mat`] must pick for this profile and format.
    fn expected_kernel(h: &Harness, f: WeightFormat, batched: bool) -> Kernel {
        let q8 = h.ctx.profile.q8_matvec && q8dot_reader(f).is_some();
        match (batched, h.ctx.profile.subgroups) {
            (false, _) if q8 => Kernel::MatVecQ8,
            (true, _) if q8 => Kernel::MatMulQ8,
            (true, _) if h.ctx.profile.cpu_device => Kernel::MatMulRows,
            (true, _) => Kernel::MatMul,
            (false, true) => Kernel::MatVecSubgroup,
            (false, false) => Kernel::MatVec,
        }
    }

    fn check_mat(h: &mut Harness, f: WeightFormat, tokens: usize, split: bool) {
        // Unsplit: more than two of the 8-bit kernels' 64-row workgroups, the last one
        // short.
        let rows = if split { 37usize } else { 133 };
        let cols = odd_cols(f);
        let bytes = quant::random_blocks(f, rows, cols, 7 + f.ggml_type() as u64);
        let w = dequant_rows(f, &bytes, rows, cols);
        let rb = f.row_bytes(cols as u64).unwrap();
        // Split: at most 5 rows per part -> 8 parts, the last one short.
        let limit = if split { 5 * rb + WEIGHT_PAD } else { u64::MAX };
        let mut up = Uploader::new(&h.ctx, limit);
        let dims = [rows as u32, cols as u32];
        let wm = WeightMatrix::upload(&h.ctx, &mut up, "w", f, dims, &bytes).unwrap();
        assert_eq!(wm.parts.len(), if split { 8 } else { 1 });
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
        let expected = expected_kernel(h, f, batched);
        let q8 = matches!(expected, Kernel::MatVecQ8 | Kernel::MatMulQ8);
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
        let what = format!("{} {} tokens split={split}", f.name(), tokens);
        assert_close(&what, &got, &want, 1e-5, 1e-5, &mag);
    }

    #[test]
    fn matvec_matches_cpu_reference_for_every_format_and_split() {
        // Default options pick the subgroup matvec where the adapter has subgroups
        // (lavapipe does); the downlevel profile keeps the workgroup-memory version.
        // With q8_matvec (CPU-backed devices) the formats with a q8dot reader take the
        // integer-dot matvec instead: each profile runs both ways.
        let default = Harness::new();
        if !default.ctx.profile.subgroups {
            eprintln!("adapter without subgroups: both runs use the workgroup-memory matvec");
        }
        let downlevel = Harness::with(&DeviceOptions {
            downlevel: true,
            ..Default::default()
        });
        assert!(!downlevel.ctx.profile.subgroups);
        for mut h in [default, downlevel] {
            for q8_matvec in [false, true] {
                h.ctx.profile.q8_matvec = q8_matvec;
                for f in WeightFormat::ALL {
                    check_mat(&mut h, f, 1, false);
                    check_mat(&mut h, f, 1, true);
                }
            }
        }
    }

    #[test]
    fn matmul_matches_cpu_reference_for_every_format_and_split() {
        // Every prefill kernel, whatever the adapter: the tiled one real GPUs get, the
        // barrier-free one CPU-backed devices get (the profile's cpu_device) and, for
        // the formats with a q8dot reader, its integer-dot twin (q8_matvec).
        let mut h = Harness::new();
        for (cpu_device, q8_matvec) in [(false, false), (true, false), (true, true)] {
            h.ctx.profile.cpu_device = cpu_device;
            h.ctx.profile.q8_matvec = q8_matvec;
            for f in WeightFormat::ALL {
                // 19 tokens: partial last tiles (16 tokens per tile in MatMulRows, 8 in
                // MatMulQ8).
                check_mat(&mut h, f, 19, false);
                check_mat(&mut h, f, 19, true);
            }
        }
    }
}
