//! Random quantized blocks for tests (the dequantize, kernel and portability tests).

use half::f16;

use super::quant::WeightFormat;

/// Deterministic xorshift64* generator for test data (no `rand` dependency).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so nearby seeds (and 0) give unrelated, nonzero states.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        XorShift((z ^ (z >> 31)) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform magnitude in [lo, hi) with a random sign.
    fn signed(&mut self, lo: f32, hi: f32) -> f32 {
        let v = lo + (hi - lo) * self.unit();
        if self.next_u64() & 1 == 0 {
            v
        } else {
            -v
        }
    }
}

/// Random quantized data for tests: `n_rows` rows of `n_cols` elements in `format`, laid out
/// as in a GGUF tensor. Quant bytes are uniformly random; f16 scales are finite, in
/// ±[0.001, 2]; float formats hold values in ±[0, 2]. Panics if `n_cols` is not a multiple
/// of the block size (a test bug).
pub fn random_blocks(format: WeightFormat, n_rows: usize, n_cols: usize, seed: u64) -> Vec<u8> {
    let row_bytes = format.row_bytes(n_cols as u64).unwrap_or_else(|| {
        panic!(
            "{n_cols} columns is not a whole number of {} blocks",
            format.name()
        )
    });
    let mut rng = XorShift::new(seed);
    let n_bytes = row_bytes as usize * n_rows;
    let mut out = Vec::with_capacity(n_bytes);
    match format {
        WeightFormat::F32 => {
            for _ in 0..n_rows * n_cols {
                out.extend_from_slice(&rng.signed(0.0, 2.0).to_le_bytes());
            }
        }
        WeightFormat::F16 => {
            for _ in 0..n_rows * n_cols {
                out.extend_from_slice(&f16::from_f32(rng.signed(0.0, 2.0)).to_le_bytes());
            }
        }
        WeightFormat::BF16 => {
            for _ in 0..n_rows * n_cols {
                let bits = (rng.signed(0.0, 2.0).to_bits() >> 16) as u16;
                out.extend_from_slice(&bits.to_le_bytes());
            }
        }
        _ => {
            let block_bytes = format.block_bytes() as usize;
            while out.len() < n_bytes {
                let start = out.len();
                out.extend((0..block_bytes).map(|_| rng.next_u64() as u8));
                for &at in format.f16_fields() {
                    let scale = f16::from_f32(rng.signed(0.001, 2.0)).to_le_bytes();
                    out[start + at..start + at + 2].copy_from_slice(&scale);
                }
                if format == WeightFormat::IQ1_M {
                    // d's nibble k is the top nibble of the k-th u16 of scales (bytes 48..56).
                    let d = f16::from_f32(rng.signed(0.001, 2.0)).to_bits();
                    for k in 0..4 {
                        let hi = start + 48 + 2 * k + 1;
                        out[hi] = (out[hi] & 0x0f) | ((((d >> (4 * k)) & 0xf) as u8) << 4);
                    }
                }
            }
        }
    }
    debug_assert_eq!(out.len(), n_bytes);
    out
}
