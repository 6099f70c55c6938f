//! GGML weight formats: block sizes, byte layouts and the exact CPU dequantize.
//!
//! `dequantize` is the reference every WGSL format shader is tested against, so it follows
//! llama.cpp's `dequantize_row_*` (ggml-quants.c) line by line: same bit unpacking, same f32
//! operation order (e.g. Q4_K computes `d1 = d * sc; m1 = dmin * m; y = d1 * q - m1`), and
//! no fused multiply-add, so results are bit-identical to gguf-py's numpy dequantize (checked
//! by the fixture test at the bottom of this file).
//!
//! Why bit-exactness is achievable on the GPU too: every product in these formats is exact in
//! f32. The f16 scale has 11 significant bits and the integer factors are small (Q6_K, the
//! widest: |sc| <= 128 is 7 bits, |q| <= 32 is 5 bits), so `d * sc * q` needs at most 23 of
//! f32's 24 bits, in any order, and f16 subnormals are f32 normals. The only rounding is the
//! final `+ m` / `- m1` of Q4_1, Q5_1, Q4_K and Q5_K, which is one correctly rounded f32 op
//! with or without FMA. A shader that works in f32 can therefore match this file exactly.
//!
//! Block layouts are `#[repr(C)]` structs with const size asserts. f16 fields are kept as raw
//! `u16` bits (little-endian in the file) so the structs are plain bytes (`bytemuck::Pod`) and
//! can be read from unaligned slices of the mmap with `pod_read_unaligned`.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::iq;
pub use super::iq::IQ1S_DELTA;

/// A weight storage format edgeseek can dequantize (on the CPU here, in WGSL on the GPU).
///
/// Variant names are llama.cpp's spelling, which is also what users see in model file names.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4_K,
    Q5_K,
    Q6_K,
    Q2_K,
    Q3_K,
    IQ4_NL,
    IQ4_XS,
    IQ2_XXS,
    IQ2_XS,
    IQ2_S,
    IQ3_XXS,
    IQ3_S,
    IQ1_S,
    IQ1_M,
}

/// Elements per block of the "legacy" formats (Q4_0 .. Q8_0); ggml's `QK4_0` etc.
const QK: usize = 32;
/// Elements per super-block of the k-quants; ggml's `QK_K`.
pub(super) const QK_K: usize = 256;

impl WeightFormat {
    pub const ALL: [WeightFormat; 22] = [
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::BF16,
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4_K,
        WeightFormat::Q5_K,
        WeightFormat::Q6_K,
        WeightFormat::Q2_K,
        WeightFormat::Q3_K,
        WeightFormat::IQ4_NL,
        WeightFormat::IQ4_XS,
        WeightFormat::IQ2_XXS,
        WeightFormat::IQ2_XS,
        WeightFormat::IQ2_S,
        WeightFormat::IQ3_XXS,
        WeightFormat::IQ3_S,
        WeightFormat::IQ1_S,
        WeightFormat::IQ1_M,
    ];

    /// The format stored under a ggml type id (`enum ggml_type` in ggml.h), if supported.
    pub fn from_ggml_type(t: u32) -> Option<WeightFormat> {
        WeightFormat::ALL.into_iter().find(|f| f.ggml_type() == t)
    }

    /// The ggml type id (`enum ggml_type` in ggml.h) written in GGUF tensor infos.
    pub fn ggml_type(self) -> u32 {
        match self {
            WeightFormat::F32 => 0,
            WeightFormat::F16 => 1,
            WeightFormat::Q4_0 => 2,
            WeightFormat::Q4_1 => 3,
            WeightFormat::Q5_0 => 6,
            WeightFormat::Q5_1 => 7,
            WeightFormat::Q8_0 => 8,
            WeightFormat::Q2_K => 10,
            WeightFormat::Q3_K => 11,
            WeightFormat::Q4_K => 12,
            WeightFormat::Q5_K => 13,
            WeightFormat::Q6_K => 14,
            WeightFormat::IQ4_NL => 20,
            WeightFormat::IQ4_XS => 23,
            WeightFormat::IQ2_XXS => 16,
            WeightFormat::IQ2_XS => 17,
            WeightFormat::IQ2_S => 22,
            WeightFormat::IQ3_XXS => 18,
            WeightFormat::IQ3_S => 21,
            WeightFormat::IQ1_S => 19,
            WeightFormat::IQ1_M => 29,
            WeightFormat::BF16 => 30,
        }
    }

    /// The name as llama.cpp prints it ("Q4_K", "BF16").
    pub fn name(self) -> &'static str {
        ggml_type_name(self.ggml_type())
    }

    /// Elements per block: 1 for the float formats, 32 for legacy quants, 256 for k-quants.
    pub fn block_elems(self) -> u32 {
        match self {
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::BF16 => 1,
            WeightFormat::Q8_0
            | WeightFormat::Q4_0
            | WeightFormat::Q4_1
            | WeightFormat::Q5_0
            | WeightFormat::Q5_1
            | WeightFormat::IQ4_NL => QK as u32,
            WeightFormat::Q4_K
            | WeightFormat::Q5_K
            | WeightFormat::Q6_K
            | WeightFormat::Q2_K
            | WeightFormat::Q3_K
            | WeightFormat::IQ4_XS
            | WeightFormat::IQ2_XXS
            | WeightFormat::IQ2_XS
            | WeightFormat::IQ2_S
            | WeightFormat::IQ3_XXS
            | WeightFormat::IQ3_S
            | WeightFormat::IQ1_S
            | WeightFormat::IQ1_M => QK_K as u32,
        }
    }

    /// Bytes per block (ggml's `type_size`).
    pub fn block_bytes(self) -> u32 {
        let size = match self {
            WeightFormat::F32 => 4,
            WeightFormat::F16 | WeightFormat::BF16 => 2,
            WeightFormat::Q8_0 => size_of::<BlockQ8_0>(),
            WeightFormat::Q4_0 => size_of::<BlockQ4_0>(),
            WeightFormat::Q4_1 => size_of::<BlockQ4_1>(),
            WeightFormat::Q5_0 => size_of::<BlockQ5_0>(),
            WeightFormat::Q5_1 => size_of::<BlockQ5_1>(),
            WeightFormat::Q4_K => size_of::<BlockQ4K>(),
            WeightFormat::Q5_K => size_of::<BlockQ5K>(),
            WeightFormat::Q6_K => size_of::<BlockQ6K>(),
            WeightFormat::Q2_K => size_of::<BlockQ2K>(),
            WeightFormat::Q3_K => size_of::<BlockQ3K>(),
            WeightFormat::IQ4_NL => size_of::<BlockIq4Nl>(),
            WeightFormat::IQ4_XS => size_of::<BlockIq4Xs>(),
            WeightFormat::IQ2_XXS => size_of::<iq::BlockIq2Xxs>(),
            WeightFormat::IQ2_XS => size_of::<iq::BlockIq2Xs>(),
            WeightFormat::IQ2_S => size_of::<iq::BlockIq2S>(),
            WeightFormat::IQ3_XXS => size_of::<iq::BlockIq3Xxs>(),
            WeightFormat::IQ3_S => size_of::<iq::BlockIq3S>(),
            WeightFormat::IQ1_S => size_of::<iq::BlockIq1S>(),
            WeightFormat::IQ1_M => size_of::<iq::BlockIq1M>(),
        };
        size as u32
    }

    /// Bytes of one row of `n_cols` elements; `None` if `n_cols` is not a whole number of
    /// blocks (ggml cannot store that) or the size overflows `u64`.
    pub fn row_bytes(self, n_cols: u64) -> Option<u64> {
        let elems = u64::from(self.block_elems());
        if n_cols % elems != 0 {
            return None;
        }
        (n_cols / elems).checked_mul(u64::from(self.block_bytes()))
    }

    /// The format's lookup table of quant values, where it has one: the one source the
    /// CPU dequantize here and the WGSL readers (declared by the shader composer) use.
    pub fn lookup_table(self) -> Option<(&'static str, &'static [i8])> {
        match self {
            WeightFormat::IQ4_NL | WeightFormat::IQ4_XS => Some(("KVALUES_IQ4NL", &KVALUES_IQ4NL)),
            _ => None,
        }
    }

    /// The grid of a grid i-quant (IQ1_*, IQ2_*, IQ3_*): the one source (iq_grids.rs) the
    /// CPU dequantize and the WGSL readers (declared by the shader composer) index.
    pub fn grid(self) -> Option<IqGrid> {
        use super::iq_grids as g;
        Some(match self {
            WeightFormat::IQ2_XXS => IqGrid::Pairs("IQ2XXS_GRID", &g::IQ2XXS_GRID),
            WeightFormat::IQ2_XS => IqGrid::Pairs("IQ2XS_GRID", &g::IQ2XS_GRID),
            WeightFormat::IQ2_S => IqGrid::Pairs("IQ2S_GRID", &g::IQ2S_GRID),
            WeightFormat::IQ3_XXS => IqGrid::Words("IQ3XXS_GRID", &g::IQ3XXS_GRID),
            WeightFormat::IQ3_S => IqGrid::Words("IQ3S_GRID", &g::IQ3S_GRID),
            WeightFormat::IQ1_S | WeightFormat::IQ1_M => IqGrid::Pairs("IQ1S_GRID", &g::IQ1S_GRID),
            _ => return None,
        })
    }

    /// Byte offsets of the f16 scale fields inside one block (empty for the float formats).
    /// The random block generator (tests, kernel bench) uses this to make blocks with
    /// finite, moderate scales.
    pub(super) fn f16_fields(self) -> &'static [usize] {
        match self {
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::BF16 => &[],
            // d first
            WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q5_0 => &[0],
            // d, then m / dmin
            WeightFormat::Q4_1 | WeightFormat::Q5_1 | WeightFormat::Q4_K | WeightFormat::Q5_K => {
                &[0, 2]
            }
            // Q6_K keeps d last, after ql, qh and scales.
            WeightFormat::Q6_K => &[208],
            // d, dmin after scales[16] and qs[64]
            WeightFormat::Q2_K => &[80, 82],
            // d after hmask[32], qs[64] and scales[12]
            WeightFormat::Q3_K => &[108],
            // d first
            WeightFormat::IQ4_NL | WeightFormat::IQ4_XS => &[0],
            // d first
            WeightFormat::IQ2_XXS
            | WeightFormat::IQ2_XS
            | WeightFormat::IQ2_S
            | WeightFormat::IQ3_XXS
            | WeightFormat::IQ3_S
            | WeightFormat::IQ1_S => &[0],
            // d is spread over the top nibbles of the scales (random_blocks sets it)
            WeightFormat::IQ1_M => &[],
        }
    }
}

/// A grid i-quant's lookup grid: its name and entries, each a little-endian word of int8
/// values (value j in byte j).
#[derive(Clone, Copy, Debug)]
pub enum IqGrid {
    /// Entries of 4 values (the IQ3 grids).
    Words(&'static str, &'static [u32]),
    /// Entries of 8 values (the IQ1 and IQ2 grids).
    Pairs(&'static str, &'static [u64]),
}

/// The name of any ggml type id as llama.cpp prints it (`ggml_type_name`), including types
/// edgeseek does not support, so "unsupported weight type" errors can say what they found.
pub fn ggml_type_name(t: u32) -> &'static str {
    match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        // 4 and 5 were Q4_2 and Q4_3, removed from ggml in 2023.
        4 => "Q4_2",
        5 => "Q4_3",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        // 31..=33 and 36..=38 were the repacked Q4_0/IQ4_NL layouts, removed from files in 2024.
        31 => "Q4_0_4_4",
        32 => "Q4_0_4_8",
        33 => "Q4_0_8_8",
        34 => "TQ1_0",
        35 => "TQ2_0",
        36 => "IQ4_NL_4_4",
        37 => "IQ4_NL_4_8",
        38 => "IQ4_NL_8_8",
        39 => "MXFP4",
        40 => "NVFP4",
        41 => "Q1_0",
        _ => "unknown",
    }
}

// ---- Block layouts (ggml-common.h). f16 fields are raw bits. ----

/// `block_q8_0`: x = qs * d.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: u16,       // f16 scale
    pub qs: [i8; QK], // quants
}

/// `block_q4_0`: x = (q - 8) * d; low nibbles are elements 0..16, high nibbles 16..32.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: u16,           // f16 scale
    pub qs: [u8; QK / 2], // nibbles
}

/// `block_q4_1`: x = q * d + m; nibble order as Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: u16,           // f16 scale
    pub m: u16,           // f16 min
    pub qs: [u8; QK / 2], // nibbles
}

/// `block_q5_0`: x = (q - 16) * d; q = nibble | (bit j of qh) << 4.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: u16,           // f16 scale
    pub qh: [u8; 4],      // 5th bits, a little-endian u32: bit j belongs to element j
    pub qs: [u8; QK / 2], // low nibbles, order as Q4_0
}

/// `block_q5_1`: x = q * d + m; bits as Q5_0.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5_1 {
    pub d: u16,           // f16 scale
    pub m: u16,           // f16 min
    pub qh: [u8; 4],      // 5th bits, as Q5_0
    pub qs: [u8; QK / 2], // low nibbles
}

/// `block_q4_K`: 8 sub-blocks of 32, each with a 6-bit scale and min (see `scale_min_k4`);
/// x = (d * sc) * q - (dmin * m).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4K {
    pub d: u16,             // f16 super-block scale for the 6-bit scales
    pub dmin: u16,          // f16 super-block scale for the 6-bit mins
    pub scales: [u8; 12],   // 8 scales + 8 mins, 6 bits each
    pub qs: [u8; QK_K / 2], // nibbles: each 32 bytes hold sub-block 2i (low) and 2i+1 (high)
}

/// `block_q5_K`: as Q4_K plus a fifth bit per element from `qh`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5K {
    pub d: u16,             // f16
    pub dmin: u16,          // f16
    pub scales: [u8; 12],   // as Q4_K
    pub qh: [u8; QK_K / 8], // bit i of qh[l] is the 5th bit of element 32*i + l
    pub qs: [u8; QK_K / 2], // low nibbles, as Q4_K
}

/// `block_q6_K`: 16 sub-blocks of 16 with int8 scales; x = (d * sc) * (q - 32), q 6 bits.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],      // low 4 bits
    pub qh: [u8; QK_K / 4],      // high 2 bits
    pub scales: [i8; QK_K / 16], // 8-bit sub-block scales
    pub d: u16,                  // f16 super-block scale, stored last
}

/// `block_q2_K`: 16 sub-blocks of 16, each with a 4-bit scale and a 4-bit min;
/// x = (d * sc) * q - (dmin * m), q 2 bits.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ2K {
    pub scales: [u8; QK_K / 16], // low nibble scale, high nibble min, per 16 weights
    pub qs: [u8; QK_K / 4],      // 2-bit quants: each 32 bytes hold four 32-weight runs
    pub d: u16,                  // f16 super-block scale for the scales
    pub dmin: u16,               // f16 super-block scale for the mins
}

/// `block_q3_K`: 16 sub-blocks of 16 with 6-bit signed scales;
/// x = (d * (sc - 32)) * (q - 4 * !hbit), q 2 bits plus a high bit from `hmask`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ3K {
    pub hmask: [u8; QK_K / 8], // high bits: bit 4n+j of hmask[l] for run j of half n
    pub qs: [u8; QK_K / 4],    // low 2 bits, laid out as Q2_K's
    pub scales: [u8; 12],      // 16 scales of 6 bits (see `scale_q3_k`)
    pub d: u16,                // f16 super-block scale
}

/// The 16 non-uniform 4-bit levels of IQ4_NL and IQ4_XS (ggml-common.h `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// `block_iq4_nl`: as Q4_0's layout, but each nibble picks a level of `KVALUES_IQ4NL`;
/// x = d * kvalues[q].
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq4Nl {
    pub d: u16,           // f16 scale
    pub qs: [u8; QK / 2], // nibbles, order as Q4_0
}

/// `block_iq4_xs`: 8 sub-blocks of 32 with 6-bit scales, nibbles as IQ4_NL's;
/// x = (d * (ls - 32)) * kvalues[q].
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockIq4Xs {
    pub d: u16,                    // f16 super-block scale
    pub scales_h: u16,             // top 2 bits of each sub-block scale (bits 2ib..2ib+1)
    pub scales_l: [u8; QK_K / 64], // low 4 bits: nibble ib % 2 of byte ib / 2
    pub qs: [u8; QK_K / 2],        // per sub-block 16 bytes: low nibbles 0..16, high 16..32
}

const _: () = assert!(size_of::<BlockIq4Nl>() == 18);
const _: () = assert!(size_of::<BlockIq4Xs>() == 136);
const _: () = assert!(size_of::<BlockQ2K>() == 84);
const _: () = assert!(size_of::<BlockQ3K>() == 110);
const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ6K>() == 210);

pub(super) fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// Dequantizes whole blocks: `bytes` holds `out.len() / block_elems` blocks (one row, or
/// several rows back to back). Callers check sizes; here they are only debug-asserted.
pub fn dequantize(format: WeightFormat, bytes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(
        format.row_bytes(out.len() as u64),
        Some(bytes.len() as u64),
        "{} dequantize: {} bytes for {} elements",
        format.name(),
        bytes.len(),
        out.len()
    );
    match format {
        WeightFormat::F32 => {
            for (y, x) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *y = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
            }
        }
        WeightFormat::F16 => {
            for (y, x) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *y = f16_to_f32(u16::from_le_bytes([x[0], x[1]]));
            }
        }
        WeightFormat::BF16 => {
            // bf16 is the top half of an f32 (ggml_compute_bf16_to_fp32).
            for (y, x) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *y = f32::from_bits(u32::from(u16::from_le_bytes([x[0], x[1]])) << 16);
            }
        }
        WeightFormat::Q8_0 => blocks(bytes, out, dequantize_q8_0),
        WeightFormat::Q4_0 => blocks(bytes, out, dequantize_q4_0),
        WeightFormat::Q4_1 => blocks(bytes, out, dequantize_q4_1),
        WeightFormat::Q5_0 => blocks(bytes, out, dequantize_q5_0),
        WeightFormat::Q5_1 => blocks(bytes, out, dequantize_q5_1),
        WeightFormat::Q4_K => blocks(bytes, out, dequantize_q4_k),
        WeightFormat::Q5_K => blocks(bytes, out, dequantize_q5_k),
        WeightFormat::Q6_K => blocks(bytes, out, dequantize_q6_k),
        WeightFormat::Q2_K => blocks(bytes, out, dequantize_q2_k),
        WeightFormat::Q3_K => blocks(bytes, out, dequantize_q3_k),
        WeightFormat::IQ4_NL => blocks(bytes, out, dequantize_iq4_nl),
        WeightFormat::IQ4_XS => blocks(bytes, out, dequantize_iq4_xs),
        WeightFormat::IQ2_XXS => blocks(bytes, out, iq::dequantize_iq2_xxs),
        WeightFormat::IQ2_XS => blocks(bytes, out, iq::dequantize_iq2_xs),
        WeightFormat::IQ2_S => blocks(bytes, out, iq::dequantize_iq2_s),
        WeightFormat::IQ3_XXS => blocks(bytes, out, iq::dequantize_iq3_xxs),
        WeightFormat::IQ3_S => blocks(bytes, out, iq::dequantize_iq3_s),
        WeightFormat::IQ1_S => blocks(bytes, out, iq::dequantize_iq1_s),
        WeightFormat::IQ1_M => blocks(bytes, out, iq::dequantize_iq1_m),
    }
}

/// Runs `f` over every block; `B` is read unaligned because mmap offsets and block sizes
/// (34, 18, ...) give no alignment guarantee.
fn blocks<B: Pod, const N: usize>(bytes: &[u8], out: &mut [f32], f: fn(&B, &mut [f32; N])) {
    for (x, y) in bytes
        .chunks_exact(size_of::<B>())
        .zip(out.chunks_exact_mut(N))
    {
        let block: B = bytemuck::pod_read_unaligned(x);
        f(
            &block,
            y.try_into().expect("chunks_exact_mut yields N elements"),
        );
    }
}

// The functions below mirror ggml-quants.c `dequantize_row_*` for a single block; integer
// quants are formed exactly as there and converted to f32 once, then multiplied in the same
// order, so every rounding step matches.

fn dequantize_q8_0(x: &BlockQ8_0, y: &mut [f32; QK]) {
    let d = f16_to_f32(x.d);
    for (y, &q) in y.iter_mut().zip(&x.qs) {
        *y = f32::from(q) * d;
    }
}

fn dequantize_q4_0(x: &BlockQ4_0, y: &mut [f32; QK]) {
    let d = f16_to_f32(x.d);
    for j in 0..QK / 2 {
        let x0 = i32::from(x.qs[j] & 0x0F) - 8;
        let x1 = i32::from(x.qs[j] >> 4) - 8;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

fn dequantize_q4_1(x: &BlockQ4_1, y: &mut [f32; QK]) {
    let d = f16_to_f32(x.d);
    let m = f16_to_f32(x.m);
    for j in 0..QK / 2 {
        let x0 = i32::from(x.qs[j] & 0x0F);
        let x1 = i32::from(x.qs[j] >> 4);
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

fn dequantize_q5_0(x: &BlockQ5_0, y: &mut [f32; QK]) {
    let d = f16_to_f32(x.d);
    let qh = u32::from_le_bytes(x.qh);
    for j in 0..QK / 2 {
        let xh_0 = ((qh >> j) << 4) & 0x10; // bit j -> element j
        let xh_1 = (qh >> (j + 12)) & 0x10; // bit j + 16 -> element j + 16
        let x0 = ((u32::from(x.qs[j] & 0x0F) | xh_0) as i32) - 16;
        let x1 = ((u32::from(x.qs[j] >> 4) | xh_1) as i32) - 16;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

fn dequantize_q5_1(x: &BlockQ5_1, y: &mut [f32; QK]) {
    let d = f16_to_f32(x.d);
    let m = f16_to_f32(x.m);
    let qh = u32::from_le_bytes(x.qh);
    for j in 0..QK / 2 {
        let xh_0 = ((qh >> j) << 4) & 0x10;
        let xh_1 = (qh >> (j + 12)) & 0x10;
        let x0 = u32::from(x.qs[j] & 0x0F) | xh_0;
        let x1 = u32::from(x.qs[j] >> 4) | xh_1;
        y[j] = x0 as f32 * d + m;
        y[j + QK / 2] = x1 as f32 * d + m;
    }
}

/// ggml's `get_scale_min_k4`: the j-th (scale, min) pair of a Q4_K/Q5_K block. Pairs 0..4
/// are the low 6 bits of bytes 0..4 / 4..8; pairs 4..8 take their low 4 bits from bytes
/// 8..12 and their top 2 bits from the spare top bits of bytes 0..8.
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let d = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (d, m)
    }
}

/// Scales and mins of the two 32-weight sub-blocks of 64-weight chunk `c` of a Q4_K or
/// Q5_K block, multiplied out as ggml does: [d * sc1, dmin * m1, d * sc2, dmin * m2].
fn chunk_scales(c: usize, d: f32, min: f32, scales: &[u8; 12]) -> [f32; 4] {
    let (sc1, m1) = scale_min_k4(2 * c, scales);
    let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
    [
        d * f32::from(sc1),
        min * f32::from(m1),
        d * f32::from(sc2),
        min * f32::from(m2),
    ]
}

fn dequantize_q4_k(x: &BlockQ4K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    let min = f16_to_f32(x.dmin);
    // Each 64-element chunk uses 32 bytes of qs: low nibbles first, then high nibbles.
    for (c, (q, y)) in
        x.qs.chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
    {
        let [d1, m1, d2, m2] = chunk_scales(c, d, min, &x.scales);
        for l in 0..32 {
            y[l] = d1 * f32::from(q[l] & 0x0F) - m1;
            y[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
        }
    }
}

fn dequantize_q5_k(x: &BlockQ5K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    let min = f16_to_f32(x.dmin);
    for (c, (ql, y)) in
        x.qs.chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
    {
        let [d1, m1, d2, m2] = chunk_scales(c, d, min, &x.scales);
        // ggml's u1/u2 masks: chunk c reads bits 2c and 2c+1 of qh[l].
        let u1 = 1u8 << (2 * c);
        let u2 = 2u8 << (2 * c);
        for l in 0..32 {
            let h1 = if x.qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if x.qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * f32::from((ql[l] & 0x0F) + h1) - m1;
            y[l + 32] = d2 * f32::from((ql[l] >> 4) + h2) - m2;
        }
    }
}

fn dequantize_q6_k(x: &BlockQ6K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    // Two halves of 128 elements; each uses 64 bytes of ql, 32 of qh and 8 scales.
    for n in 0..2 {
        let ql = &x.ql[64 * n..64 * n + 64];
        let qh = &x.qh[32 * n..32 * n + 32];
        let sc = &x.scales[8 * n..8 * n + 8];
        let y = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i8 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            // C evaluates `d * sc[is] * q1` left to right: (d * sc) * q.
            y[l] = d * f32::from(sc[is]) * f32::from(q1);
            y[l + 32] = d * f32::from(sc[is + 2]) * f32::from(q2);
            y[l + 64] = d * f32::from(sc[is + 4]) * f32::from(q3);
            y[l + 96] = d * f32::from(sc[is + 6]) * f32::from(q4);
        }
    }
}

/// Q2_K and Q3_K lay their 2-bit quants out alike: each half of 128 weights uses 32
/// bytes of qs, run j (32 weights) taking bits 2j..2j+1 of them; a scale serves 16.
fn dequantize_q2_k(x: &BlockQ2K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    let min = f16_to_f32(x.dmin);
    for (e, y) in y.iter_mut().enumerate() {
        let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
        let sc = x.scales[e / 16];
        let dl = d * f32::from(sc & 0x0F);
        let ml = min * f32::from(sc >> 4);
        let q = (x.qs[32 * n + l] >> (2 * j)) & 3;
        *y = dl * f32::from(q) - ml;
    }
}

/// Scale `is` (0..16) of a Q3_K block, as ggml's kmask shuffle of the 12 bytes unpacks it:
/// low 4 bits from byte is % 8 (its high nibble for is >= 8), high 2 bits from byte
/// 8 + is % 4 (bits 2 * (is / 4)); stored plus 32.
fn scale_q3_k(scales: &[u8; 12], is: usize) -> i32 {
    let lo = (scales[is % 8] >> (4 * (is / 8))) & 0x0F;
    let hi = (scales[8 + is % 4] >> (2 * (is / 4))) & 3;
    i32::from(lo | (hi << 4)) - 32
}

fn dequantize_q3_k(x: &BlockQ3K, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    for (e, y) in y.iter_mut().enumerate() {
        let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
        let dl = d * scale_q3_k(&x.scales, e / 16) as f32;
        let low = i32::from((x.qs[32 * n + l] >> (2 * j)) & 3);
        let high = x.hmask[l] & (1 << (4 * n + j)) != 0;
        let q = low - if high { 0 } else { 4 };
        *y = dl * q as f32;
    }
}

fn dequantize_iq4_nl(x: &BlockIq4Nl, y: &mut [f32; QK]) {
    let d = f16_to_f32(x.d);
    for j in 0..QK / 2 {
        y[j] = d * f32::from(KVALUES_IQ4NL[usize::from(x.qs[j] & 0x0F)]);
        y[j + QK / 2] = d * f32::from(KVALUES_IQ4NL[usize::from(x.qs[j] >> 4)]);
    }
}

fn dequantize_iq4_xs(x: &BlockIq4Xs, y: &mut [f32; QK_K]) {
    let d = f16_to_f32(x.d);
    for (ib, (qs, y)) in
        x.qs.chunks_exact(16)
            .zip(y.chunks_exact_mut(32))
            .enumerate()
    {
        let lo = (x.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let hi = ((x.scales_h >> (2 * ib)) & 3) as u8;
        let dl = d * (i32::from(lo | (hi << 4)) - 32) as f32;
        for j in 0..16 {
            y[j] = dl * f32::from(KVALUES_IQ4NL[usize::from(qs[j] & 0x0F)]);
            y[j + 16] = dl * f32::from(KVALUES_IQ4NL[usize::from(qs[j] >> 4)]);
        }
    }
}

pub use super::test_blocks::random_blocks;

#[cfg(test)]
#[path = "quant_tests.rs"]
mod tests;
