//! Choosing the next token from logits, in llama.cpp's order: repetition penalty,
//! top-k, top-p, min-p, temperature, then a seeded draw. Temperature 0 is greedy.
//! Candidates live in a buffer reused across tokens: no allocation per token.

use crate::error::{Error, Result};

/// Sampling settings. The defaults follow DeepSeek's advice for R1 models
/// (temperature 0.6, top-p 0.95).
#[derive(Clone, Debug)]
pub struct SamplerOptions {
    /// 0: always the most likely token.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the fewest most likely tokens whose probabilities add up to p; 1 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one; 0 keeps all.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recently seen tokens; 1 is off.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        SamplerOptions {
            temperature: 0.6,
            top_k: 0,
            top_p: 0.95,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerOptions {
    /// Greedy decoding: the argmax after the repetition penalty.
    pub fn greedy() -> Self {
        SamplerOptions {
            temperature: 0.0,
            ..Default::default()
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Invalid(format!("sampler: {what}")));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(&format!("temperature {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(&format!("top-p {} (0 < p <= 1)", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(&format!("min-p {} (0 <= p <= 1)", self.min_p));
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return bad(&format!("repeat penalty {}", self.repeat_penalty));
        }
        Ok(())
    }
}

/// A candidate token: id, logit (after penalties and temperature), probability.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    pub id: u32,
    pub logit: f32,
    pub p: f32,
}

pub struct Sampler {
    opts: SamplerOptions,
    rng: u64,
    cands: Vec<Candidate>,
}

impl Sampler {
    pub fn new(opts: SamplerOptions) -> Result<Sampler> {
        opts.check()?;
        // xorshift64* must not start from 0.
        let rng = opts.seed ^ 0x9E37_79B9_7F4A_7C15;
        Ok(Sampler {
            opts,
            rng,
            cands: Vec::new(),
        })
    }

    /// The next token given the logits and the tokens so far (for the penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        if self.opts.temperature == 0.0 {
            self.penalized(logits, history);
            return self
                .cands
                .iter()
                .max_by(|a, b| a.logit.total_cmp(&b.logit).then(b.id.cmp(&a.id)))
                .map_or(0, |c| c.id);
        }
        self.filter(logits, history);
        let total: f32 = self.cands.iter().map(|c| c.p).sum();
        let mut r = self.next_f32() * total;
        for c in &self.cands {
            r -= c.p;
            if r <= 0.0 {
                return c.id;
            }
        }
        self.cands.last().map_or(0, |c| c.id)
    }

    /// The candidates sampling draws from, most likely first, probabilities
    /// renormalised (the unit tests check each filter on it).
    #[cfg(test)]
    fn candidates(&mut self, logits: &[f32], history: &[u32]) -> &[Candidate] {
        self.filter(logits, history);
        &self.cands
    }

    fn penalized(&mut self, logits: &[f32], history: &[u32]) {
        self.cands.clear();
        self.cands
            .extend(logits.iter().enumerate().map(|(i, &l)| Candidate {
                id: i as u32,
                logit: l,
                p: 0.0,
            }));
        let pen = self.opts.repeat_penalty;
        if pen != 1.0 {
            let recent = &history[history.len().saturating_sub(self.opts.repeat_last_n)..];
            for (i, &id) in recent.iter().enumerate() {
                // Each token is penalised once however often it repeats, as llama.cpp.
                if recent[..i].contains(&id) {
                    continue;
                }
                if let Some(c) = self.cands.get_mut(id as usize) {
                    c.logit = if c.logit > 0.0 {
                        c.logit / pen
                    } else {
                        c.logit * pen
                    };
                }
            }
        }
    }

    fn filter(&mut self, logits: &[f32], history: &[u32]) {
        self.penalized(logits, history);
        let by_logit =
            |a: &Candidate, b: &Candidate| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id));
        let k = self.opts.top_k;
        if k > 0 && k < self.cands.len() {
            self.cands.select_nth_unstable_by(k - 1, by_logit);
            self.cands.truncate(k);
        }
        self.cands.sort_unstable_by(by_logit);
        softmax(&mut self.cands, 1.0);
        if self.opts.top_p < 1.0 {
            let mut cum = 0.0;
            let keep = self.cands.iter().position(|c| {
                cum += c.p;
                cum >= self.opts.top_p
            });
            self.cands
                .truncate(keep.map_or(self.cands.len(), |i| i + 1));
        }
        if self.opts.min_p > 0.0 {
            let floor = self.opts.min_p * self.cands[0].p;
            let keep = self
                .cands
                .iter()
                .take_while(|c| c.p >= floor)
                .count()
                .max(1);
            self.cands.truncate(keep);
        }
        softmax(
            &mut self.cands,
            self.opts.temperature.max(f32::MIN_POSITIVE),
        );
    }

    fn next_f32(&mut self) -> f32 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Sets each candidate's logit to logit / t and p to its softmax (candidates sorted,
/// the first is the largest).
fn softmax(cands: &mut [Candidate], t: f32) {
    let Some(first) = cands.first() else { return };
    let max = first.logit / t;
    let mut total = 0.0;
    for c in cands.iter_mut() {
        c.logit /= t;
        c.p = (c.logit - max).exp();
        total += c.p;
    }
    for c in cands.iter_mut() {
        c.p /= total;
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

#[cfg(test)]
mod tests {
    use super::*;

    // Probabilities of these logits: 0.6439, 0.2369, 0.0871, 0.0321 (softmax).
    const LOGITS: [f32; 4] = [1.0, 3.0, 0.0, 2.0];

    fn ids(c: &[Candidate]) -> Vec<u32> {
        c.iter().map(|c| c.id).collect()
    }

    fn sampler(f: impl FnOnce(&mut SamplerOptions)) -> Sampler {
        let mut o = SamplerOptions {
            temperature: 1.0,
            top_p: 1.0,
            ..Default::default()
        };
        f(&mut o);
        Sampler::new(o).unwrap()
    }

    #[test]
    fn top_k_keeps_exactly_the_k_most_likely() {
        let mut s = sampler(|o| o.top_k = 2);
        assert_eq!(ids(s.candidates(&LOGITS, &[])), [1, 3]);
    }

    #[test]
    fn top_p_keeps_the_smallest_prefix_reaching_p() {
        // 0.6439 < 0.85 <= 0.6439 + 0.2369
        let mut s = sampler(|o| o.top_p = 0.85);
        assert_eq!(ids(s.candidates(&LOGITS, &[])), [1, 3]);
        let mut s = sampler(|o| o.top_p = 0.6);
        assert_eq!(ids(s.candidates(&LOGITS, &[])), [1]);
    }

    #[test]
    fn min_p_drops_tokens_below_a_share_of_the_best() {
        // 0.0871 / 0.6439 = 0.135: kept at 0.13, dropped at 0.14.
        let mut s = sampler(|o| o.min_p = 0.13);
        assert_eq!(ids(s.candidates(&LOGITS, &[])), [1, 3, 0]);
        let mut s = sampler(|o| o.min_p = 0.14);
        assert_eq!(ids(s.candidates(&LOGITS, &[])), [1, 3]);
    }

    #[test]
    fn candidate_probabilities_are_renormalised() {
        let mut s = sampler(|o| o.top_k = 2);
        let c = s.candidates(&LOGITS, &[]);
        assert!((c[0].p + c[1].p - 1.0).abs() < 1e-6);
        assert!((c[0].p - 1.0 / (1.0 + (-1f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits_once() {
        let logits = [2.0, -1.0, 1.5];
        let mut s = Sampler::new(SamplerOptions {
            repeat_penalty: 2.0,
            ..SamplerOptions::greedy()
        })
        .unwrap();
        // Token 0 seen twice: 2.0 / 2 = 1.0 (once, not twice), so token 2 (1.5) wins.
        assert_eq!(s.sample(&logits, &[0, 1, 0]), 2);
        s.penalized(&logits, &[0, 1, 0]);
        assert_eq!(s.cands[1].logit, -2.0);
    }

    #[test]
    fn temperature_zero_is_greedy() {
        let mut s = Sampler::new(SamplerOptions::greedy()).unwrap();
        for _ in 0..5 {
            assert_eq!(s.sample(&LOGITS, &[]), argmax(&LOGITS));
        }
    }

    #[test]
    fn same_seed_same_tokens() {
        let run = |seed| {
            let mut s = Sampler::new(SamplerOptions {
                temperature: 1.5,
                top_p: 1.0,
                seed,
                ..Default::default()
            })
            .unwrap();
            (0..64).map(|_| s.sample(&LOGITS, &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(
            run(7),
            run(8),
            "64 draws over 4 tokens: different seeds differ"
        );
        // And every candidate is drawn at some point at a high temperature.
        let drawn = run(7);
        assert!((0..4).all(|id| drawn.contains(&id)));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(Sampler::new(SamplerOptions {
            top_p: 0.0,
            ..Default::default()
        })
        .is_err());
        assert!(Sampler::new(SamplerOptions {
            temperature: f32::NAN,
            ..Default::default()
        })
        .is_err());
        assert!(Sampler::new(SamplerOptions {
            min_p: 1.5,
            ..Default::default()
        })
        .is_err());
    }
}
