//! A weight matrix per attention head, each head multiplying its own slice of the input
//! (MLA's k_b absorption and v_b expansion; the transposed product for the key half of a
//! legacy attn_kv_b). Params and bindings: shaders/head_common.wgsl.

use bytemuck::{Pod, Zeroable};

use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::{Error, Result};
use crate::gpu::buffers::{self, RowLayout, WeightMatrix};
use crate::gpu::pipelines::PipelineKey;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct HeadParams {
    rows: u32,
    n_cols: u32,
    row_bytes: u32,
    head_rows: u32,
    row_off: u32,
    x_stride: u32,
    x_head: u32,
    x_off: u32,
    y_stride: u32,
    y_head: u32,
    y_off: u32,
    _pad: u32,
}

/// Invocations per workgroup, one output each (a row, or 8 columns when transposed).
const WG: u32 = 64;

const HEAD_COMMON: &str = include_str!("../../../shaders/head_common.wgsl");

pub(super) const HEAD_MATVEC: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, W, x, y
        &[Uniform, Uniform, Read, Read, ReadWrite]
    },
    weights: WeightReader::Dequantize,
    kv: false,
    subgroups: false,
    prelude: "",
    consts: &[("WG", WG)],
    headers: &[HEAD_COMMON],
    body: include_str!("../../../shaders/head_matvec.wgsl"),
};
pub(super) const HEAD_MATVEC_T: KernelSpec = KernelSpec {
    body: include_str!("../../../shaders/head_matvec_t.wgsl"),
    ..HEAD_MATVEC
};

/// One weight matrix per head (a 3-D tensor or a run of rows of one), each head
/// multiplying its own slice of the input: see shaders/head_common.wgsl.
pub struct HeadOp<'b> {
    pub w: &'b WeightMatrix,
    /// Multiply by the transpose of each head's rows (head_matvec_t.wgsl).
    pub transposed: bool,
    pub n_heads: u32,
    /// Rows of one head that take part, from `row_off`; heads start `head_rows` apart.
    pub rows: u32,
    pub head_rows: u32,
    pub row_off: u32,
    pub x: &'b wgpu::Buffer,
    /// (floats per token, floats between heads, offset)
    pub x_layout: [u32; 3],
    pub y: &'b wgpu::Buffer,
    pub y_layout: [u32; 3],
}

impl OpBuilder<'_> {
    /// Per-head products (see [`HeadOp`]); the matrix must be in one binding.
    pub fn head_matvec(&mut self, name: &str, h: &HeadOp<'_>) -> Result<Op> {
        if h.w.layout != RowLayout::Rows {
            return Err(Error::Internal(format!(
                "{name}: a per-head matrix's rows in groups (HeadMatVec reads the file's order)"
            )));
        }
        let [part] = h.w.parts.as_slice() else {
            return Err(Error::Limit {
                what: format!("{name}: per-head matrix in one GPU binding"),
                needed: h.w.gpu_bytes(),
                limit: h.w.parts[0].size,
                unit: "bytes",
            });
        };
        let last_row =
            u64::from(h.n_heads - 1) * u64::from(h.head_rows) + u64::from(h.row_off + h.rows);
        if last_row > u64::from(h.w.n_rows) || h.w.n_cols % 8 != 0 {
            return Err(Error::Invalid(format!(
                "{name}: {} heads of {} rows from {} do not fit {} x {}",
                h.n_heads, h.rows, h.row_off, h.w.n_rows, h.w.n_cols
            )));
        }
        let params = HeadParams {
            rows: h.rows,
            n_cols: h.w.n_cols,
            row_bytes: h.w.row_bytes,
            head_rows: h.head_rows,
            row_off: h.row_off,
            x_stride: h.x_layout[0],
            x_head: h.x_layout[1],
            x_off: h.x_layout[2],
            y_stride: h.y_layout[0],
            y_head: h.y_layout[1],
            y_off: h.y_layout[2],
            _pad: 0,
        };
        let (kernel, outputs) = if h.transposed {
            (Kernel::HeadMatVecT, h.w.n_cols / 8)
        } else {
            (Kernel::HeadMatVec, h.rows)
        };
        let key = PipelineKey::with_format(kernel, h.w.format);
        let grid = Grid::HeadsTokens {
            x: outputs.div_ceil(WG),
            heads: h.n_heads,
        };
        let params = buffers::uniform(self.ctx, name, &params);
        let bufs = [
            part.buffer_binding(name)?,
            h.x.as_entire_buffer_binding(),
            h.y.as_entire_buffer_binding(),
        ];
        self.op_bound(name.to_string(), key, &params, &bufs, grid)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, dequant_rows, odd_cols, Harness, Rng};
    use super::*;
    use crate::file::quant::{self, WeightFormat};
    use crate::gpu::buffers::Uploader;

    /// Reference per-head product: y[t][h*y_head + o] for o < outputs.
    #[allow(clippy::too_many_arguments)]
    fn ref_head_matvec(
        w: &[f32],
        cols: usize,
        x: &[f32],
        (tokens, heads, rows, head_rows, row_off): (usize, usize, usize, usize, usize),
        [xs, xh, xo]: [usize; 3],
        transposed: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let outputs = if transposed { cols } else { rows };
        let mut y = vec![0.0; tokens * heads * outputs];
        let mut mag = vec![0.0; y.len()];
        for t in 0..tokens {
            for h in 0..heads {
                for o in 0..outputs {
                    let (mut s, mut m) = (0f64, 0f64);
                    let n_in = if transposed { rows } else { cols };
                    for i in 0..n_in {
                        let (r, c) = if transposed { (i, o) } else { (o, i) };
                        let wv = w[(h * head_rows + row_off + r) * cols + c];
                        let p = f64::from(wv) * f64::from(x[t * xs + h * xh + xo + i]);
                        s += p;
                        m += p.abs();
                    }
                    y[(t * heads + h) * outputs + o] = s as f32;
                    mag[(t * heads + h) * outputs + o] = m as f32;
                }
            }
        }
        (y, mag)
    }

    #[test]
    fn head_matvec_matches_reference_plain_and_transposed_for_every_format() {
        let mut h = Harness::new();
        let (tokens, heads) = (3usize, 3usize);
        for f in WeightFormat::ALL {
            let cols = odd_cols(f);
            // Per head: 5 key rows then 7 value rows (a legacy attn_kv_b's layout).
            let (nope, v) = (5usize, 7usize);
            let head_rows = nope + v;
            let n_rows = heads * head_rows;
            let bytes = quant::random_blocks(f, n_rows, cols, 11 + f.ggml_type() as u64);
            let w = dequant_rows(f, &bytes, n_rows, cols);
            let mut up = Uploader::new(&h.ctx, u64::MAX);
            let dims = [n_rows as u32, cols as u32];
            let wm = WeightMatrix::upload(&h.ctx, &mut up, "w", f, dims, &bytes).unwrap();
            let mut rng = Rng(5);
            for transposed in [false, true] {
                // Plain: the value rows (row_off = nope) times a cols-wide input per
                // head; transposed: the key rows times a nope-wide input, cols outputs
                // per head.
                let (rows, row_off, n_in) = if transposed {
                    (nope, 0, nope)
                } else {
                    (v, nope, cols)
                };
                let (xh, xo) = (n_in + 3, 2);
                let xs = heads * xh + 1;
                let x = rng.vec(tokens * xs);
                let xb = h.f32s(&x);
                let outputs = if transposed { cols } else { rows };
                let n_out = tokens * heads * outputs;
                let yb = buffers::storage(&h.ctx, "y", (n_out * 4) as u64);
                let got = h.run(tokens as u32, 0, &yb, n_out, |ob, g| {
                    let op = HeadOp {
                        w: &wm,
                        transposed,
                        n_heads: heads as u32,
                        rows: rows as u32,
                        head_rows: head_rows as u32,
                        row_off: row_off as u32,
                        x: &xb,
                        x_layout: [xs as u32, xh as u32, xo as u32],
                        y: &yb,
                        y_layout: [(heads * outputs) as u32, outputs as u32, 0],
                    };
                    g.op(ob.head_matvec("head", &op).unwrap());
                });
                let shape = (tokens, heads, rows, head_rows, row_off);
                let (want, mag) = ref_head_matvec(&w, cols, &x, shape, [xs, xh, xo], transposed);
                // f32 sums in another order than the f64 reference (see mat.rs).
                let what = format!("head_matvec {} transposed={transposed}", f.name());
                assert_close(&what, &got, &want, 1e-5, 1e-5, &mag);
            }
        }
    }
}
