//! Choosing the next token from logits. Greedy (temperature 0) and plain temperature
//! sampling with a seed for now; top-k/top-p/min-p and penalties come with the
//! text-generation API.

use crate::error::{Error, Result};

pub struct Sampler {
    temperature: f32,
    rng: u64,
    probs: Vec<f32>, // reused between tokens: no allocation per token
}

impl Sampler {
    pub fn new(temperature: f32, seed: u64) -> Result<Sampler> {
        if !(temperature >= 0.0) || !temperature.is_finite() {
            return Err(Error::Invalid(format!("temperature {temperature}")));
        }
        // xorshift64* must not start from 0.
        Ok(Sampler {
            temperature,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            probs: Vec::new(),
        })
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        self.probs.clear();
        self.probs
            .extend(logits.iter().map(|&l| ((l - max) / self.temperature).exp()));
        let total: f32 = self.probs.iter().sum();
        let mut r = self.next_f32() * total;
        for (i, p) in self.probs.iter().enumerate() {
            r -= p;
            if r <= 0.0 {
                return i as u32;
            }
        }
        argmax(logits)
    }

    fn next_f32(&mut self) -> f32 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Index of the largest logit (the first one on ties, as llama.cpp's greedy sampler).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The `k` largest logits as (id, logit), descending.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    idx.select_nth_unstable_by(k - 1, by_logit);
    idx.truncate(k);
    idx.sort_by(by_logit);
    idx.into_iter().map(|i| (i, logits[i as usize])).collect()
}
