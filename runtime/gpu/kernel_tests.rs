//! Every kernel against a plain-Rust reference, on odd sizes, on the split path, for
//! every weight format. Runs on whatever adapter wgpu finds (lavapipe in CI); fails,
//! never skips, without one.

use super::buffers::{self, Readback, Uploader, WeightMatrix, WEIGHT_PAD};
use super::context::{DeviceOptions, GpuContext};
use super::graph::{Buffer, Graph};
use super::kernels::{q8_bytes, AttnOp, HeadOp, MatOp, OpBuilder, RopeOp, RowLayout, StepParams};
use super::pipelines::{q8dot_source, Kernel, KvType, PipelineCache};
use crate::file::quant::{self, WeightFormat};

fn gpu(opts: &DeviceOptions) -> GpuContext {
    GpuContext::new(opts).unwrap_or_else(|e| panic!("{e}"))
}

/// A tiny deterministic generator for test inputs (values in [-1, 1)).
struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

/// Runs `build`'s ops for one step of `n_tokens` at `pos0` and reads `n_out` floats of `out`.
struct Harness {
    ctx: GpuContext,
    pipelines: PipelineCache,
    step: Buffer,
    dummy: Buffer,
    q8: Buffer,
}

impl Harness {
    fn new() -> Self {
        Self::with(&DeviceOptions::default())
    }

    fn with(opts: &DeviceOptions) -> Self {
        let ctx = gpu(opts);
        let pipelines = PipelineCache::new(&ctx.device);
        let step = buffers::uniform(&ctx, "step", &StepParams::default());
        let dummy = buffers::storage(&ctx, "dummy", 16);
        let q8 = buffers::storage(&ctx, "q8", 64 * q8_bytes(4096));
        Harness {
            ctx,
            pipelines,
            step,
            dummy,
            q8,
        }
    }

    fn run(
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
        let mut no_moe = |_, _: &mut wgpu::CommandEncoder| -> crate::error::Result<()> {
            unreachable!("kernel tests have no MoE layers")
        };
        g.submit(
            &self.ctx,
            &self.step,
            step,
            (out, (n_out * 4) as u64),
            &rb,
            &mut no_moe,
        )
        .unwrap();
        let mut v = vec![0.0; n_out];
        rb.read_f32(&self.ctx, &mut v).unwrap();
        v
    }

    fn f32s(&self, data: &[f32]) -> Buffer {
        buffers::upload_f32(&self.ctx, "in", data)
    }
}

/// Columns per row for a format: an odd number of blocks, and more than one
/// matvec lane's stride so the lane loop wraps.
fn odd_cols(f: WeightFormat) -> usize {
    match f.block_elems() {
        256 => 768,
        _ => 288,
    }
}

fn dequant_rows(f: WeightFormat, bytes: &[u8], rows: usize, cols: usize) -> Vec<f32> {
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
fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32, scale: &[f32]) {
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

/// Reference y[t][r] = bias[r] + acc[t][r] + sum_k w[r][k] x[t][k] in f64, plus
/// sum |w x| per output for the tolerance.
fn ref_matmul(
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

fn check_mat(h: &mut Harness, f: WeightFormat, tokens: usize, split: bool) {
    // Unsplit: more than two of the 8-bit kernels' 64-row workgroups, the last one short.
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
    let q8 = h.ctx.profile.q8_matvec && q8dot_source(f).is_some();
    let expected = match (batched, h.ctx.profile.subgroups) {
        (false, _) if q8 => Kernel::MatVecQ8,
        (true, _) if q8 => Kernel::MatMulQ8,
        (true, _) if h.ctx.profile.cpu_device => Kernel::MatMulRows,
        (true, _) => Kernel::MatMul,
        (false, true) => Kernel::MatVecSubgroup,
        (false, false) => Kernel::MatVec,
    };
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
    // f32 accumulation in a different order than the f64 reference: error grows with
    // the sum of |w x| terms, about cols * 2^-24 relative at worst; 1e-5 leaves margin.
    let what = format!("{} {} tokens split={split}", f.name(), tokens);
    assert_close(&what, &got, &want, 1e-5, 1e-5, &mag);
}

/// x as quantize_q8.wgsl leaves it: per 32 values, q = round_ties_even(x * 127 / amax)
/// and x' = q * amax / 127.
fn ref_q8(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for block in x.chunks(32) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        out.extend(block.iter().map(|v| (v * id).round_ties_even() * d));
    }
    out
}

#[test]
fn matvec_matches_cpu_reference_for_every_format_and_split() {
    // Default options pick the subgroup matvec where the adapter has subgroups (lavapipe
    // does); the downlevel profile keeps the workgroup-memory version. With q8_matvec
    // (CPU-backed devices) the formats with a q8dot reader take the integer-dot matvec
    // instead: each profile runs both ways.
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

#[test]
fn matmul_matches_cpu_reference_for_every_format_and_split() {
    // Every prefill kernel, whatever the adapter: the tiled one real GPUs get, the
    // barrier-free one CPU-backed devices get (the profile's cpu_device) and, for the
    // formats with a q8dot reader, its integer-dot twin (q8_matvec).
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

#[test]
fn embed_gathers_dequantized_rows_for_every_format_and_split() {
    let mut h = Harness::new();
    for f in WeightFormat::ALL {
        let (rows, cols) = (29usize, odd_cols(f));
        let bytes = quant::random_blocks(f, rows, cols, 3);
        let w = dequant_rows(f, &bytes, rows, cols);
        let rb = f.row_bytes(cols as u64).unwrap();
        let mut up = Uploader::new(&h.ctx, 4 * rb + WEIGHT_PAD);
        let dims = [rows as u32, cols as u32];
        let table = WeightMatrix::upload(&h.ctx, &mut up, "embd", f, dims, &bytes).unwrap();
        let ids: Vec<u32> = vec![0, 28, 5, 4, 17, 5, 3];
        let tok = buffers::upload_bytes(&h.ctx, "tokens", bytemuck::cast_slice(&ids), 0);
        let out = buffers::storage(&h.ctx, "out", (ids.len() * cols * 4) as u64);
        let got = h.run(ids.len() as u32, 0, &out, ids.len() * cols, |ob, g| {
            g.ops(ob.embed(&table, &tok, &out).unwrap());
        });
        let want: Vec<f32> = ids
            .iter()
            .flat_map(|&i| w[i as usize * cols..(i as usize + 1) * cols].to_vec())
            .collect();
        // Dequantization is exact arithmetic on the same inputs, but the GPU may fuse
        // d * q - m into one FMA: allow one rounding of the largest term.
        let scale: Vec<f32> = want.iter().map(|v| v.abs().max(1.0)).collect();
        assert_close(f.name(), &got, &want, 0.0, 2e-7, &scale);
    }
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
    let mut want = vec![0.0; tokens * n];
    for t in 0..tokens {
        let row = &x[t * n..(t + 1) * n];
        let ms = row
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            / n as f64;
        let scale = 1.0 / (ms + 1e-5).sqrt();
        for i in 0..n {
            want[t * n + i] = (f64::from(row[i]) * scale * f64::from(w[i])) as f32;
        }
    }
    // A 200-term f32 sum of squares then a few roundings: 1e-5 relative.
    let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
    assert_close("rms_norm", &got, &want, 1e-6, 1e-5, &scale);
}

#[test]
fn silu_mul_matches_reference() {
    let mut h = Harness::new();
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

/// Reference rope of one head row at `pos`, optionally rms-normed first.
fn ref_rope(
    row: &[f32],
    pos: u32,
    n_rot: usize,
    neox: bool,
    inv_freq: &[f32],
    norm: Option<(&[f32], f32)>,
) -> Vec<f32> {
    ref_rope_at(row, pos, (0, n_rot), neox, inv_freq, norm, 1.0)
}

/// Reference rope of dims rot0 .. rot0 + n_rot of a row, cos and sin scaled by
/// `mscale`, after an RMSNorm of the first `w.len()` values.
fn ref_rope_at(
    row: &[f32],
    pos: u32,
    (rot0, n_rot): (usize, usize),
    neox: bool,
    inv_freq: &[f32],
    norm: Option<(&[f32], f32)>,
    mscale: f64,
) -> Vec<f32> {
    let mut x: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
    if let Some((w, eps)) = norm {
        let n = w.len();
        let ms = x[..n].iter().map(|v| v * v).sum::<f64>() / n as f64;
        let s = 1.0 / (ms + f64::from(eps)).sqrt();
        for (i, v) in x[..n].iter_mut().enumerate() {
            *v *= s * f64::from(w[i]);
        }
    }
    let mut y = x.clone();
    for (j, &freq) in inv_freq.iter().enumerate().take(n_rot / 2) {
        let (a, b) = if neox {
            (rot0 + j, rot0 + j + n_rot / 2)
        } else {
            (rot0 + 2 * j, rot0 + 2 * j + 1)
        };
        let th = f64::from(pos) * f64::from(freq);
        let (c, sn) = (th.cos() * mscale, th.sin() * mscale);
        y[a] = x[a] * c - x[b] * sn;
        y[b] = x[a] * sn + x[b] * c;
    }
    y.iter().map(|&v| v as f32).collect()
}

#[test]
fn rope_matches_reference_for_both_pairings_norm_and_cache_types() {
    let mut h = Harness::new();
    let (tokens, heads, hd, n_rot, pos0) = (3usize, 3usize, 96usize, 64usize, 41u32);
    let mut rng = Rng(17);
    let src = rng.vec(tokens * heads * hd);
    let inv_freq: Vec<f32> = (0..n_rot / 2)
        .map(|i| 10000f64.powf(-2.0 * i as f64 / n_rot as f64) as f32)
        .collect();
    let norm_w = rng.vec(hd);
    let (sb, fb, nb) = (h.f32s(&src), h.f32s(&inv_freq), h.f32s(&norm_w));
    let stride = heads * hd;
    let kv_types: &[KvType] = if h.ctx.profile.f16 {
        &[KvType::F32, KvType::F16]
    } else {
        &[KvType::F32]
    };
    for neox in [false, true] {
        for with_norm in [false, true] {
            let norm = if with_norm {
                Some((&nb, 1e-6, hd as u32))
            } else {
                None
            };
            let mut want = Vec::new();
            for t in 0..tokens {
                for hh in 0..heads {
                    let row = &src[t * stride + hh * hd..t * stride + (hh + 1) * hd];
                    let norm_ref = with_norm.then_some((&norm_w[..], 1e-6));
                    want.extend(ref_rope(
                        row,
                        pos0 + t as u32,
                        n_rot,
                        neox,
                        &inv_freq,
                        norm_ref,
                    ));
                }
            }
            // Angles up to 43 rad in f32 and GPU sin/cos: 2e-5 absolute on unit inputs.
            let what = format!("rope neox={neox} norm={with_norm}");
            let dst = buffers::storage(&h.ctx, "q", (tokens * stride * 4) as u64);
            let got = h.run(tokens as u32, pos0, &dst, tokens * stride, |ob, g| {
                let r = RopeOp {
                    src: &sb,
                    src_stride: stride as u32,
                    dst: &dst,
                    dst_stride: stride as u32,
                    to_cache: None,
                    n_heads: heads as u32,
                    head_dim: hd as u32,
                    n_rot: n_rot as u32,
                    neox,
                    inv_freq: Some(&fb),
                    mscale: 1.0,
                    norm,
                    layout: RowLayout::packed(hd as u32),
                };
                g.op(ob.rope("rope", &r).unwrap());
            });
            let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
            assert_close(&what, &got, &want, 2e-5, 1e-5, &scale);

            // Into a cache at positions pos0.., read back through an f32 copy of it.
            for &kv in kv_types {
                let ctx_len = pos0 as usize + tokens;
                let cache =
                    buffers::storage(&h.ctx, "cache", (ctx_len * stride) as u64 * kv.bytes());
                let n_words = ctx_len * stride * kv.bytes() as usize / 4;
                let raw = h.run(tokens as u32, pos0, &cache, n_words, |ob, g| {
                    let r = RopeOp {
                        src: &sb,
                        src_stride: stride as u32,
                        dst: &cache,
                        dst_stride: stride as u32,
                        to_cache: Some(kv),
                        n_heads: heads as u32,
                        head_dim: hd as u32,
                        n_rot: n_rot as u32,
                        neox,
                        inv_freq: Some(&fb),
                        mscale: 1.0,
                        norm,
                        layout: RowLayout::packed(hd as u32),
                    };
                    g.op(ob.rope("rope_cache", &r).unwrap());
                });
                let values: Vec<f32> = match kv {
                    KvType::F32 => raw,
                    KvType::F16 => bytemuck::cast_slice::<f32, half::f16>(&raw)
                        .iter()
                        .map(|v| v.to_f32())
                        .collect(),
                };
                let got = &values[pos0 as usize * stride..];
                // f16 storage: half an ulp of f16 (2^-11 relative) on top.
                let rtol = if kv == KvType::F16 { 1e-3 } else { 1e-5 };
                assert_close(
                    &format!("{what} cache {kv:?}"),
                    got,
                    &want,
                    2e-5,
                    rtol,
                    &scale,
                );
            }
        }
    }
}

/// Reference causal attention for tokens at pos0.. over caches of pos0 + tokens rows.
/// `[tokens, pos0, heads, kv_heads, head_dim]` of a reference attention call.
type AttnShape = [usize; 5];

fn ref_attention(q: &[f32], k: &[f32], v: &[f32], shape: AttnShape) -> Vec<f32> {
    let [tokens, pos0, heads, kv_heads, hd] = shape;
    let dims = [hd, hd, kv_heads * hd, kv_heads * hd];
    ref_attention_dims(
        q,
        k,
        v,
        [tokens, pos0, heads, kv_heads],
        dims,
        1.0 / (hd as f64).sqrt(),
    )
}

/// As [`ref_attention`] with key width `hd`, value width `hdv`, cache strides `ks`, `vs`
/// (values of KV head kh start at kh * hdv in their row) and a q·k `scale`.
fn ref_attention_dims(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    [tokens, pos0, heads, kv_heads]: [usize; 4],
    [hd, hdv, ks, vs]: [usize; 4],
    scale: f64,
) -> Vec<f32> {
    let mut out = vec![0.0; tokens * heads * hdv];
    for t in 0..tokens {
        for h in 0..heads {
            let kh = h / (heads / kv_heads);
            let qrow = &q[(t * heads + h) * hd..(t * heads + h + 1) * hd];
            let n = pos0 + t + 1;
            let scores: Vec<f64> = (0..n)
                .map(|j| {
                    let krow = &k[j * ks + kh * hd..j * ks + (kh + 1) * hd];
                    qrow.iter()
                        .zip(krow)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            for d in 0..hdv {
                let acc: f64 = (0..n)
                    .map(|j| e[j] * f64::from(v[j * vs + kh * hdv + d]))
                    .sum();
                out[(t * heads + h) * hdv + d] = (acc / sum) as f32;
            }
        }
    }
    out
}

#[test]
fn attention_matches_reference_causal_gqa_across_tiles() {
    // 70 + 5 keys: more than one 64-key tile; 6 heads over 2 KV heads. On a CPU-backed
    // device (lavapipe) this takes the barrier-free prefill kernel; the other cases
    // check both kernels whatever the adapter.
    let mut h = Harness::new();
    let cpu_device = h.ctx.profile.cpu_device;
    check_attention(&mut h, 5, 70);
    // 37 queries: two full 16-query workgroups of AttentionRows and a partial one,
    // with causal limits inside each; and one query (decode).
    for rows in [false, true] {
        h.ctx.profile.cpu_device = rows;
        check_attention(&mut h, 37, 3);
        check_attention(&mut h, 1, 100);
    }
    h.ctx.profile.cpu_device = cpu_device;
}

fn check_attention(h: &mut Harness, tokens: usize, pos0: usize) {
    let (heads, kv_heads, hd) = (6usize, 2usize, 80usize);
    let n_keys = pos0 + tokens;
    let mut rng = Rng(23);
    let q: Vec<f32> = rng
        .vec(tokens * heads * hd)
        .iter()
        .map(|v| v * 3.0)
        .collect();
    let k = rng.vec(n_keys * kv_heads * hd);
    let v = rng.vec(n_keys * kv_heads * hd);
    let kv_types: &[KvType] = if h.ctx.profile.f16 {
        &[KvType::F32, KvType::F16]
    } else {
        &[KvType::F32]
    };
    for &kv in kv_types {
        // The cache holds what the kernel reads: f16-rounded values for an f16 cache.
        let round = |x: &[f32]| -> Vec<f32> {
            match kv {
                KvType::F32 => x.to_vec(),
                KvType::F16 => x.iter().map(|&a| half::f16::from_f32(a).to_f32()).collect(),
            }
        };
        let (kr, vr) = (round(&k), round(&v));
        let upload = |x: &[f32]| match kv {
            KvType::F32 => h.f32s(x),
            KvType::F16 => {
                let hv: Vec<half::f16> = x.iter().map(|&a| half::f16::from_f32(a)).collect();
                buffers::upload_bytes(&h.ctx, "cache", bytemuck::cast_slice(&hv), 0)
            }
        };
        let (qb, kb, vb) = (h.f32s(&q), upload(&kr), upload(&vr));
        let out = buffers::storage(&h.ctx, "out", (tokens * heads * hd * 4) as u64);
        let mut kernel = Kernel::Attention;
        let got = h.run(
            tokens as u32,
            pos0 as u32,
            &out,
            tokens * heads * hd,
            |ob, g| {
                let a = AttnOp {
                    q: &qb,
                    k: &kb,
                    v: &vb,
                    out: &out,
                    kv,
                    n_heads: heads as u32,
                    n_kv_heads: kv_heads as u32,
                    head_dim: hd as u32,
                    head_dim_v: hd as u32,
                    k_stride: (kv_heads * hd) as u32,
                    v_stride: (kv_heads * hd) as u32,
                    scale: 1.0 / (hd as f32).sqrt(),
                };
                let op = ob.attention("attn", &a).unwrap();
                kernel = op.key.kernel;
                g.op(op);
            },
        );
        let rows = h.ctx.profile.cpu_device && tokens > 1;
        let expected = if rows {
            Kernel::AttentionRows
        } else {
            Kernel::Attention
        };
        assert_eq!(kernel, expected, "{tokens} queries");
        let want = ref_attention(&q, &kr, &vr, [tokens, pos0, heads, kv_heads, hd]);
        // Online softmax in f32 over up to 101 keys: 1e-5 absolute on outputs of
        // magnitude < 1.
        let scale = vec![1.0; want.len()];
        let what = format!("{expected:?} {kv:?} {tokens} queries at {pos0}");
        assert_close(&what, &got, &want, 0.0, 1e-5, &scale);
    }
}

#[test]
fn rope_places_rows_for_mla_with_partial_norm_and_yarn_magnitude() {
    let mut h = Harness::new();
    // Query layout: 3 heads of [nope 16 | rope 8] -> rows of [latent 32 | rope 8].
    let (tokens, heads, nope, rot, lat, pos0) = (3usize, 3usize, 16usize, 8usize, 32usize, 9u32);
    let (src_head, dst_head) = (nope + rot, lat + rot);
    let mut rng = Rng(31);
    let src = rng.vec(tokens * heads * src_head);
    let inv_freq: Vec<f32> = (0..rot / 2).map(|i| 0.9f32.powi(i as i32 * 3)).collect();
    let (sb, fb) = (h.f32s(&src), h.f32s(&inv_freq));
    let mscale = 1.25f32;
    let q_stride = heads * dst_head;
    let dst = h.f32s(&vec![7.0; tokens * q_stride]);
    let got = h.run(tokens as u32, pos0, &dst, tokens * q_stride, |ob, g| {
        let r = RopeOp {
            src: &sb,
            src_stride: (heads * src_head) as u32,
            dst: &dst,
            dst_stride: q_stride as u32,
            to_cache: None,
            n_heads: heads as u32,
            head_dim: rot as u32,
            n_rot: rot as u32,
            neox: false,
            inv_freq: Some(&fb),
            mscale,
            norm: None,
            layout: RowLayout {
                src_head: src_head as u32,
                src_off: nope as u32,
                dst_head: dst_head as u32,
                dst_off: lat as u32,
                rot0: 0,
            },
        };
        g.op(ob.rope("rope_q", &r).unwrap());
    });
    let mut want = vec![7.0; tokens * q_stride];
    for t in 0..tokens {
        for hh in 0..heads {
            let s0 = (t * heads + hh) * src_head + nope;
            let roped = ref_rope_at(
                &src[s0..s0 + rot],
                pos0 + t as u32,
                (0, rot),
                false,
                &inv_freq,
                None,
                f64::from(mscale),
            );
            let d0 = t * q_stride + hh * dst_head + lat;
            want[d0..d0 + rot].copy_from_slice(&roped);
        }
    }
    let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
    assert_close("mla rope_q", &got, &want, 2e-5, 1e-5, &scale);

    // Cache rows: RMSNorm of the latent, rope of the tail, at positions pos0...
    let row = lat + rot;
    let kv_src = rng.vec(tokens * row);
    let norm_w = rng.vec(lat);
    let (kb, nb) = (h.f32s(&kv_src), h.f32s(&norm_w));
    let ctx_len = pos0 as usize + tokens;
    let cache = buffers::storage(&h.ctx, "cache", (ctx_len * row * 4) as u64);
    let got = h.run(tokens as u32, pos0, &cache, ctx_len * row, |ob, g| {
        let r = RopeOp {
            src: &kb,
            src_stride: row as u32,
            dst: &cache,
            dst_stride: row as u32,
            to_cache: Some(KvType::F32),
            n_heads: 1,
            head_dim: row as u32,
            n_rot: rot as u32,
            neox: false,
            inv_freq: Some(&fb),
            mscale,
            norm: Some((&nb, 1e-6, lat as u32)),
            layout: RowLayout {
                rot0: lat as u32,
                ..RowLayout::packed(row as u32)
            },
        };
        g.op(ob.rope("kv_store", &r).unwrap());
    });
    let mut want = Vec::new();
    for t in 0..tokens {
        let r = &kv_src[t * row..(t + 1) * row];
        want.extend(ref_rope_at(
            r,
            pos0 + t as u32,
            (lat, rot),
            false,
            &inv_freq,
            Some((&norm_w, 1e-6)),
            f64::from(mscale),
        ));
    }
    let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
    assert_close(
        "mla kv_store",
        &got[pos0 as usize * row..],
        &want,
        2e-5,
        1e-5,
        &scale,
    );
}

#[test]
fn wide_attention_matches_reference_for_mla_latent_heads() {
    let mut h = Harness::new();
    // MQA over rows of [latent 288 | rope 40]: keys 328 wide (> 256: the wide kernel),
    // values the first 288 of the same rows; 70 + 4 keys span two tiles.
    let (tokens, pos0, heads, lat, rot) = (4usize, 70usize, 3usize, 288usize, 40usize);
    let row = lat + rot;
    let n_keys = pos0 + tokens;
    let mut rng = Rng(41);
    let q: Vec<f32> = rng
        .vec(tokens * heads * row)
        .iter()
        .map(|v| v * 0.3)
        .collect();
    let cache = rng.vec(n_keys * row);
    let scale = 0.11f32;
    let (qb, cb) = (h.f32s(&q), h.f32s(&cache));
    let out = buffers::storage(&h.ctx, "out", (tokens * heads * lat * 4) as u64);
    let got = h.run(
        tokens as u32,
        pos0 as u32,
        &out,
        tokens * heads * lat,
        |ob, g| {
            let a = AttnOp {
                q: &qb,
                k: &cb,
                v: &cb,
                out: &out,
                kv: KvType::F32,
                n_heads: heads as u32,
                n_kv_heads: 1,
                head_dim: row as u32,
                head_dim_v: lat as u32,
                k_stride: row as u32,
                v_stride: row as u32,
                scale,
            };
            let op = ob.attention("attn", &a).unwrap();
            assert_eq!(op.key.kernel, Kernel::AttentionWide);
            g.op(op);
        },
    );
    let want = ref_attention_dims(
        &q,
        &cache,
        &cache,
        [tokens, pos0, heads, 1],
        [row, lat, row, row],
        f64::from(scale),
    );
    let ones = vec![1.0; want.len()];
    assert_close("wide attention", &got, &want, 0.0, 1e-5, &ones);
}

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
        let wm = WeightMatrix::upload(
            &h.ctx,
            &mut up,
            "w",
            f,
            [n_rows as u32, cols as u32],
            &bytes,
        )
        .unwrap();
        let mut rng = Rng(5);
        for transposed in [false, true] {
            // Plain: the value rows (row_off = nope) times a cols-wide input per head;
            // transposed: the key rows times a nope-wide input, cols outputs per head.
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
            // f32 sums in another order than the f64 reference (see check_mat).
            let what = format!("head_matvec {} transposed={transposed}", f.name());
            assert_close(&what, &got, &want, 1e-5, 1e-5, &mag);
        }
    }
}

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
