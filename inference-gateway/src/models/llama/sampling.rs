//! Picking the next token from logits: greedy, or temperature with top-p (nucleus) from a
//! seeded generator, so the same seed gives the same tokens.

use crate::kernels::argmax_cpu;

/// How to pick tokens. `temperature == 0` is greedy (top_p and seed are then unused).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; 0 (or less) always picks the most likely token.
    pub temperature: f32,
    /// Nucleus mass in (0, 1]: draws only from the most likely tokens that together reach it.
    pub top_p: f32,
    /// Seed of the generator: the same seed and request give the same tokens.
    pub seed: u64,
}

impl Sampling {
    /// Always the most likely token.
    pub const GREEDY: Self = Self { temperature: 0.0, top_p: 1.0, seed: 0 };
}

/// SplitMix64: a tiny, well-mixed generator; reproducibility per seed is all we need here.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks tokens by [`Sampling`] with its own seeded generator, one per generation.
pub struct Sampler {
    params: Sampling,
    rng: SplitMix64,
}

impl Sampler {
    /// A sampler seeded with `params.seed`.
    pub fn new(params: Sampling) -> Self {
        Self { params, rng: SplitMix64(params.seed) }
    }

    /// Whether every pick is the argmax (temperature 0), so the logits need not be read back.
    pub fn is_greedy(&self) -> bool {
        self.params.temperature <= 0.0
    }

    /// The next token: the argmax when greedy; otherwise a draw from softmax(logits / T)
    /// restricted to the smallest set of most likely tokens whose mass reaches top_p.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() || logits.is_empty() {
            return argmax_cpu(logits);
        }
        let t = f64::from(self.params.temperature);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f64)> =
            logits.iter().enumerate().map(|(i, &l)| (i as u32, (f64::from(l - max) / t).exp())).collect();
        let total: f64 = probs.iter().map(|p| p.1).sum();
        // Ties broken by id so the order, and so the draw, is fully determined.
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top_p = f64::from(self.params.top_p.clamp(0.0, 1.0));
        let mut kept = 0;
        let mut mass = 0.0;
        for (_, p) in &probs {
            mass += p / total;
            kept += 1;
            if mass >= top_p {
                break;
            }
        }
        let kept = &probs[..kept.max(1)];
        let kept_total: f64 = kept.iter().map(|p| p.1).sum();
        let mut r = self.rng.next_f64() * kept_total;
        for (id, p) in kept {
            if r < *p {
                return *id;
            }
            r -= p;
        }
        kept[kept.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_temperature_is_argmax() {
        let mut s = Sampler::new(Sampling { temperature: 0.0, top_p: 0.5, seed: 9 });
        assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0]), 1);
    }

    #[test]
    fn same_seed_same_draws_and_top_p_cuts_the_tail() {
        let logits = [2.0, 1.9, 1.8, -5.0, 0.5];
        let params = Sampling { temperature: 1.0, top_p: 1.0, seed: 42 };
        let draws = |p: Sampling| {
            let mut s = Sampler::new(p);
            (0..200).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draws(params), draws(params));
        assert_ne!(draws(params), draws(Sampling { seed: 43, ..params }));
        // With top_p 0.5 only the two most likely (0.33 + 0.30 of the mass) can be drawn.
        let nucleus = draws(Sampling { top_p: 0.5, ..params });
        assert!(nucleus.iter().all(|&t| t == 0 || t == 1), "{nucleus:?}");
        assert!(nucleus.contains(&0) && nucleus.contains(&1));
        // A tiny top_p keeps only the most likely token.
        assert!(draws(Sampling { top_p: 0.01, ..params }).iter().all(|&t| t == 0));
    }
}
