//! Rotary position embedding of head rows, optionally after an RMSNorm of each row's
//! first dims, into f32 rows (queries) or straight into the KV cache at each token's
//! position (keys; values go through with no rotation): shaders/rope.wgsl.

use bytemuck::{Pod, Zeroable};

use super::attention::MAX_LATENT_DIM;
use super::{Binding, Grid, Kernel, KernelSpec, Op, OpBuilder, WeightReader};
use crate::error::{Error, Result};
use crate::gpu::pipelines::{KvType, PipelineKey, REDUCE};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct RopeParams {
    head_dim: u32,
    n_heads: u32,
    src_stride: u32,
    n_rot: u32,
    dst_stride: u32,
    flags: u32,
    eps: f32,
    mscale: f32,
    src_head: u32,
    src_off: u32,
    dst_head: u32,
    dst_off: u32,
    rot0: u32,
    norm_n: u32,
    _pad: [u32; 2],
}

const FLAG_NEOX: u32 = 1;
const FLAG_NORM: u32 = 2;
const FLAG_DST_AT_POS: u32 = 4;

const CONSTS: &[(&str, u32)] = &[
    ("FLAG_NEOX", FLAG_NEOX),
    ("FLAG_NORM", FLAG_NORM),
    ("FLAG_DST_AT_POS", FLAG_DST_AT_POS),
    // The row a workgroup holds in workgroup memory.
    ("MAX_ROW", MAX_LATENT_DIM),
];

pub(super) const ROPE_TO_F32: KernelSpec = KernelSpec {
    bindings: {
        use Binding::{Read, ReadWrite, Uniform};
        // params, step, src, dst, norm weight, inv_freq
        &[Uniform, Uniform, Read, ReadWrite, Read, Read]
    },
    weights: WeightReader::None,
    kv: false,
    subgroups: false,
    prelude: "alias dst_t = f32;\n",
    consts: CONSTS,
    headers: &[REDUCE],
    body: include_str!("../../../shaders/rope.wgsl"),
};
pub(super) const ROPE_TO_CACHE: KernelSpec = KernelSpec {
    kv: true,
    prelude: "alias dst_t = kv_t;\n",
    ..ROPE_TO_F32
};

/// Rotary embedding (and optional norm) of `n_heads` rows of `head_dim` per token.
pub struct RopeOp<'b> {
    pub src: &'b wgpu::Buffer, // [n_tokens, src_stride] f32
    pub src_stride: u32,
    pub dst: &'b wgpu::Buffer, // [n_tokens or ctx, dst_stride] f32 or kv
    pub dst_stride: u32,
    /// Some(kv): dst is a KV cache of that type, written at each token's position.
    pub to_cache: Option<KvType>,
    pub n_heads: u32,
    pub head_dim: u32,
    pub n_rot: u32,
    pub neox: bool,
    pub inv_freq: Option<&'b wgpu::Buffer>, // [n_rot / 2]
    /// Factor on cos and sin (YaRN); 1 otherwise.
    pub mscale: f32,
    /// ([norm_n] weight, eps, norm_n): RMSNorm of the row's first norm_n values.
    pub norm: Option<(&'b wgpu::Buffer, f32, u32)>,
    /// Where rows sit when heads are not packed back to back (MLA): see [`RowLayout`].
    pub layout: RowLayout,
}

/// Placement of the rows rope reads and writes, and where rotation starts in them.
#[derive(Clone, Copy, Debug)]
pub struct RowLayout {
    pub src_head: u32,
    pub src_off: u32,
    pub dst_head: u32,
    pub dst_off: u32,
    pub rot0: u32,
}

impl RowLayout {
    /// Heads packed back to back in both buffers, rotation from each head's start.
    pub fn packed(head_dim: u32) -> RowLayout {
        RowLayout {
            src_head: head_dim,
            src_off: 0,
            dst_head: head_dim,
            dst_off: 0,
            rot0: 0,
        }
    }
}

impl OpBuilder<'_> {
    pub fn rope(&mut self, name: &str, r: &RopeOp<'_>) -> Result<Op> {
        let l = r.layout;
        let norm_n = r.norm.map_or(0, |(_, _, n)| n);
        if r.head_dim > MAX_LATENT_DIM
            || r.n_rot % 2 != 0
            || l.rot0 + r.n_rot > r.head_dim
            || norm_n > r.head_dim
        {
            return Err(Error::Invalid(format!(
                "{name}: rows of {} / rope dims {} from {} / norm {norm_n} (at most {MAX_LATENT_DIM}, even, inside the row)",
                r.head_dim, r.n_rot, l.rot0
            )));
        }
        let mut flags = 0;
        if r.neox {
            flags |= FLAG_NEOX;
        }
        let mut eps = 0.0;
        if let Some((_, e, _)) = r.norm {
            flags |= FLAG_NORM;
            eps = e;
        }
        let key = match r.to_cache {
            Some(kv) => {
                flags |= FLAG_DST_AT_POS;
                PipelineKey::with_kv(Kernel::RopeToCache, kv)
            }
            None => PipelineKey::new(Kernel::RopeToF32),
        };
        let params = RopeParams {
            head_dim: r.head_dim,
            n_heads: r.n_heads,
            src_stride: r.src_stride,
            n_rot: r.n_rot,
            dst_stride: r.dst_stride,
            flags,
            eps,
            mscale: r.mscale,
            src_head: l.src_head,
            src_off: l.src_off,
            dst_head: l.dst_head,
            dst_off: l.dst_off,
            rot0: l.rot0,
            norm_n,
            _pad: [0; 2],
        };
        let norm = r.norm.map(|(w, _, _)| w).unwrap_or(self.dummy);
        let inv_freq = r.inv_freq.unwrap_or(self.dummy);
        let grid = Grid::TokenRows {
            per_token: r.n_heads,
        };
        self.op(
            name.to_string(),
            key,
            &params,
            &[r.src, r.dst, norm, inv_freq],
            grid,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, kv_types, Harness, Rng};
    use super::*;
    use crate::gpu::buffers;

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
        let kv_types = kv_types(&h);
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

    #[test]
    fn rope_places_rows_for_mla_with_partial_norm_and_yarn_magnitude() {
        let mut h = Harness::new();
        // Query layout: 3 heads of [nope 16 | rope 8] -> rows of [latent 32 | rope 8].
        let (tokens, heads, nope, rot, lat, pos0) =
            (3usize, 3usize, 16usize, 8usize, 32usize, 9u32);
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
}
