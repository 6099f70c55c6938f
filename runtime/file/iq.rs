//! The grid i-quants: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M.
//!
//! Each stores, per group of 8 (IQ1, IQ2) or 4 (IQ3) weights, an index into a fixed grid
//! of values (iq_grids.rs), a sign per weight (IQ2, IQ3) and a scale per 16 or 32
//! weights. The functions mirror ggml-quants.c `dequantize_row_iq*` for one 256-weight
//! block; as for the other formats (quant.rs) every product is exact in f32, so the
//! order of the multiplications cannot change a bit:
//! - IQ2: d (11 significant bits) * (0.5 + s) (5) * 0.25 * grid (8, 25, 43: 6) — 22 bits;
//! - IQ3: d * (0.5 + s) * 0.5 * grid (<= 62: 6), or d * (1 + 2s) (5) * grid (<= 15: 4);
//! - IQ1: d * (2s + 1) (4) * (grid + delta) (-1.125 ... 1.125, in eighths: 4) — 19 bits.
//!
//! Signs: IQ2_XXS, IQ2_XS and IQ3_XXS keep 7 sign bits per 8 weights and ggml's
//! `ksigns_iq2xs` table gives the 8th as their parity (an even number of minus signs);
//! [`ksigns`] computes that instead of keeping the table. IQ2_S and IQ3_S store all 8.

use bytemuck::{Pod, Zeroable};

use super::iq_grids::{IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID};
use super::quant::{f16_to_f32, QK_K};

/// ggml's IQ1S_DELTA: IQ1 values are the grid's -1, 0, 1 shifted by this, either way.
pub const IQ1S_DELTA: f32 = 0.125;

/// `block_iq2_xxs`: per 32 weights two u32 (as four u16): the first holds four 8-bit grid
/// indices, the second four 7-bit sign indices and, in its top 4 bits, the scale s;
/// x = (d * (0.5 + s) * 0.25) * grid * sign.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq2Xxs {
    pub d: u16,
    pub qs: [u16; QK_K / 8],
}

/// `block_iq2_xs`: per 8 weights a u16 (9-bit grid index, 7-bit sign index); per 32
/// weights a byte of two 4-bit scales, one per 16.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq2Xs {
    pub d: u16,
    pub qs: [u16; QK_K / 8],
    pub scales: [u8; QK_K / 32],
}

/// `block_iq2_s`: 10-bit grid indices (low 8 bits in qs[0..32], top 2 in qh), 8 sign bits
/// per 8 weights in qs[32..64], scales as IQ2_XS.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq2S {
    pub d: u16,
    pub qs: [u8; QK_K / 4],
    pub qh: [u8; QK_K / 32],
    pub scales: [u8; QK_K / 32],
}

/// `block_iq3_xxs`: 64 8-bit indices into a grid of 4 values (qs[0..64]), then per 32
/// weights a u32 of four 7-bit sign indices and a 4-bit scale s;
/// x = (d * (0.5 + s) * 0.5) * grid * sign.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq3Xxs {
    pub d: u16,
    pub qs: [u8; 3 * QK_K / 8],
}

/// `block_iq3_s`: 9-bit indices into a grid of 4 values (low 8 bits in qs, the 9th in qh),
/// 8 sign bits per 8 weights, a 4-bit scale s per 32 weights; x = (d * (1 + 2s)) * grid * sign.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq3S {
    pub d: u16,
    pub qs: [u8; QK_K / 4],
    pub qh: [u8; QK_K / 32],
    pub signs: [u8; QK_K / 8],
    pub scales: [u8; QK_K / 64],
}

/// `block_iq1_s`: 11-bit indices into a grid of 8 values -1, 0, 1 (low 8 bits in qs, top
/// 3 in qh); per 32 weights a u16 qh with the four top-index bits, a 3-bit scale s (bits
/// 12..14) and the delta's sign (bit 15); x = (d * (2s + 1)) * (grid + delta).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq1S {
    pub d: u16,
    pub qs: [u8; QK_K / 8],
    pub qh: [u16; QK_K / 32],
}

/// `block_iq1_m`: indices as IQ1_S's but with the top 3 bits and the delta sign in a
/// nibble per 8 weights (qh), a 3-bit scale per 16 weights, and the f16 d spread over the
/// top nibbles of the four u16 of `scales`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq1M {
    pub qs: [u8; QK_K / 8],
    pub qh: [u8; QK_K / 16],
    pub scales: [u8; QK_K / 32],
}

const _: () = assert!(size_of::<BlockIq2Xxs>() == 66);
const _: () = assert!(size_of::<BlockIq2Xs>() == 74);
const _: () = assert!(size_of::<BlockIq2S>() == 82);
const _: () = assert!(size_of::<BlockIq3Xxs>() == 98);
const _: () = assert!(size_of::<BlockIq3S>() == 110);
const _: () = assert!(size_of::<BlockIq1S>() == 50);
const _: () = assert!(size_of::<BlockIq1M>() == 56);

/// ggml's `ksigns_iq2xs[i]`: the 7 stored sign bits plus an 8th that makes the count even.
pub fn ksigns(i: u32) -> u8 {
    let i = i & 0x7f;
    (i | ((i.count_ones() & 1) << 7)) as u8
}

/// The 8 int8 values of grid entry `w` (byte j is value j).
fn grid8(w: u64) -> [f32; 8] {
    w.to_le_bytes().map(|b| f32::from(b as i8))
}

/// The 4 int8 values of an IQ3 grid entry.
fn grid4(w: u32) -> [f32; 4] {
    w.to_le_bytes().map(|b| f32::from(b as i8))
}

fn sign(signs: u8, j: usize) -> f32 {
    if signs & (1 << j) != 0 {
        -1.0
    } else {
        1.0
    }
}

/// The scale of 16 IQ2_XS / IQ2_S weights from its 4 bits: d * (0.5 + s) * 0.25.
fn iq2_scale(d: f32, s: u8) -> f32 {
    d * (0.5 + f32::from(s)) * 0.25
}

pub fn dequantize_iq2_xxs(x: &BlockIq2Xxs, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    for (q, y) in x.qs.chunks_exact(4).zip(y.chunks_exact_mut(32)) {
        let idx = u32::from(q[0]) | (u32::from(q[1]) << 16);
        let aux = u32::from(q[2]) | (u32::from(q[3]) << 16);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.25;
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let grid = grid8(IQ2XXS_GRID[((idx >> (8 * l)) & 0xff) as usize]);
            let signs = ksigns(aux >> (7 * l));
            for j in 0..8 {
                y[j] = db * grid[j] * sign(signs, j);
            }
        }
    }
}

pub fn dequantize_iq2_xs(x: &BlockIq2Xs, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    for (ib, (q, y)) in x.qs.chunks_exact(4).zip(y.chunks_exact_mut(32)).enumerate() {
        let db = [
            iq2_scale(d, x.scales[ib] & 0xf),
            iq2_scale(d, x.scales[ib] >> 4),
        ];
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let grid = grid8(IQ2XS_GRID[usize::from(q[l] & 511)]);
            let signs = ksigns(u32::from(q[l] >> 9));
            for j in 0..8 {
                y[j] = db[l / 2] * grid[j] * sign(signs, j);
            }
        }
    }
}

pub fn dequantize_iq2_s(x: &BlockIq2S, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    let (qs, signs) = x.qs.split_at(QK_K / 8);
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let db = [
            iq2_scale(d, x.scales[ib] & 0xf),
            iq2_scale(d, x.scales[ib] >> 4),
        ];
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let k = 4 * ib + l;
            let index = usize::from(qs[k]) | ((usize::from(x.qh[ib]) << (8 - 2 * l)) & 0x300);
            let grid = grid8(IQ2S_GRID[index]);
            for j in 0..8 {
                y[j] = db[l / 2] * grid[j] * sign(signs[k], j);
            }
        }
    }
}

pub fn dequantize_iq3_xxs(x: &BlockIq3Xxs, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    let (qs, scales_and_signs) = x.qs.split_at(QK_K / 4);
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let a = &scales_and_signs[4 * ib..4 * ib + 4];
        let aux = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let signs = ksigns(aux >> (7 * l));
            let g1 = grid4(IQ3XXS_GRID[usize::from(qs[8 * ib + 2 * l])]);
            let g2 = grid4(IQ3XXS_GRID[usize::from(qs[8 * ib + 2 * l + 1])]);
            for j in 0..4 {
                y[j] = db * g1[j] * sign(signs, j);
                y[j + 4] = db * g2[j] * sign(signs, j + 4);
            }
        }
    }
}

pub fn dequantize_iq3_s(x: &BlockIq3S, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let s = (x.scales[ib / 2] >> (4 * (ib % 2))) & 0xf;
        let db = d * (1 + 2 * i32::from(s)) as f32;
        let qh = usize::from(x.qh[ib]);
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let q1 = usize::from(x.qs[8 * ib + 2 * l]) | ((qh << (8 - 2 * l)) & 256);
            let q2 = usize::from(x.qs[8 * ib + 2 * l + 1]) | ((qh << (7 - 2 * l)) & 256);
            let (g1, g2) = (grid4(IQ3S_GRID[q1]), grid4(IQ3S_GRID[q2]));
            let signs = x.signs[4 * ib + l];
            for j in 0..4 {
                y[j] = db * g1[j] * sign(signs, j);
                y[j + 4] = db * g2[j] * sign(signs, j + 4);
            }
        }
    }
}

pub fn dequantize_iq1_s(x: &BlockIq1S, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let qh = x.qh[ib];
        let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
        let delta = if qh & 0x8000 != 0 {
            -IQ1S_DELTA
        } else {
            IQ1S_DELTA
        };
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            let index = usize::from(x.qs[4 * ib + l]) | (usize::from((qh >> (3 * l)) & 7) << 8);
            let grid = grid8(IQ1S_GRID[index]);
            for j in 0..8 {
                y[j] = dl * (grid[j] + delta);
            }
        }
    }
}

/// IQ1_M's f16 d: nibble k of it is the top nibble of scales u16 k.
pub fn iq1_m_d(scales: &[u8; QK_K / 32]) -> f32 {
    let sc = |k: usize| u16::from_le_bytes([scales[2 * k], scales[2 * k + 1]]);
    let bits = (sc(0) >> 12) | ((sc(1) >> 8) & 0x00f0) | ((sc(2) >> 4) & 0x0f00) | (sc(3) & 0xf000);
    f16_to_f32(bits)
}

pub fn dequantize_iq1_m(x: &BlockIq1M, y: &mut [f32; QK_K]) {
    let d = iq1_m_d(&x.scales);
    for (ib, y) in y.chunks_exact_mut(32).enumerate() {
        let sc = u16::from_le_bytes([x.scales[2 * (ib / 2)], x.scales[2 * (ib / 2) + 1]]);
        let shift = 6 * (ib % 2);
        let dl = [
            d * (2 * ((sc >> shift) & 7) + 1) as f32,
            d * (2 * ((sc >> (shift + 3)) & 7) + 1) as f32,
        ];
        for (l, y) in y.chunks_exact_mut(8).enumerate() {
            // Nibble l % 2 of qh[2 * ib + l / 2]: 3 index bits, then the delta's sign.
            let nibble = (x.qh[2 * ib + l / 2] >> (4 * (l % 2))) & 0xf;
            let index = usize::from(x.qs[4 * ib + l]) | (usize::from(nibble & 7) << 8);
            let delta = if nibble & 8 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            };
            let grid = grid8(IQ1S_GRID[index]);
            for j in 0..8 {
                y[j] = dl[l / 2] * (grid[j] + delta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shaders/iq_grids.wgsl's neg_bytes negates a byte as ~v + 1 and lets no carry
    /// cross a byte: that holds only while the signed grids hold no zero value.
    #[test]
    fn signed_grids_hold_no_zero_byte() {
        let pairs = [&IQ2XXS_GRID[..], &IQ2XS_GRID[..], &IQ2S_GRID[..]];
        for w in pairs.into_iter().flatten() {
            assert!(w.to_le_bytes().iter().all(|&b| b != 0), "{w:#x}");
        }
        for w in IQ3XXS_GRID.iter().chain(&IQ3S_GRID) {
            assert!(w.to_le_bytes().iter().all(|&b| b != 0), "{w:#x}");
        }
    }

    /// ggml-common.h's ksigns_iq2xs, first and last rows.
    #[test]
    fn ksigns_is_ggmls_table() {
        let head = [0x00, 0x81, 0x82, 0x03, 0x84, 0x05, 0x06, 0x87];
        let tail = [0x78, 0xf9, 0xfa, 0x7b, 0xfc, 0x7d, 0x7e, 0xff];
        for i in 0..8 {
            assert_eq!(ksigns(i), head[i as usize]);
            assert_eq!(ksigns(120 + i), tail[i as usize]);
        }
    }
}
