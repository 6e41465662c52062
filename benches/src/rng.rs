//! A small deterministic PRNG (SplitMix64) and the account distributions. Seeded, so a run can be
//! repeated exactly; no dependency for something this small.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Uniform,
    /// Zipf with exponent 1: a few hot accounts take most transfers (a payment hub, a merchant).
    Zipfian,
}

/// Picks account indexes `0..n` by the chosen distribution.
pub struct AccountPicker {
    n: u64,
    /// Zipfian only: cumulative weights.
    cdf: Vec<f64>,
}

impl AccountPicker {
    pub fn new(distribution: Distribution, n: u64) -> AccountPicker {
        let cdf = match distribution {
            Distribution::Uniform => Vec::new(),
            Distribution::Zipfian => {
                let mut sum = 0.0;
                let mut cdf: Vec<f64> = (1..=n)
                    .map(|k| {
                        sum += 1.0 / k as f64;
                        sum
                    })
                    .collect();
                cdf.iter_mut().for_each(|c| *c /= sum);
                cdf
            }
        };
        AccountPicker { n, cdf }
    }

    pub fn pick(&self, rng: &mut Rng) -> u64 {
        if self.cdf.is_empty() {
            return rng.below(self.n);
        }
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1) as u64
    }

    /// Two different accounts.
    pub fn pick_pair(&self, rng: &mut Rng) -> (u64, u64) {
        let a = self.pick(rng);
        loop {
            let b = self.pick(rng);
            if b != a {
                return (a, b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_prefers_low_indexes_and_uniform_does_not() {
        let mut rng = Rng::new(7);
        let zipf = AccountPicker::new(Distribution::Zipfian, 1_000);
        let hits = (0..100_000).filter(|_| zipf.pick(&mut rng) == 0).count();
        // P(0) = 1 / H(1000) ≈ 0.1336.
        assert!((12_000..15_000).contains(&hits), "{hits}");
        let uniform = AccountPicker::new(Distribution::Uniform, 1_000);
        let hits = (0..100_000).filter(|_| uniform.pick(&mut rng) == 0).count();
        assert!((50..200).contains(&hits), "{hits}");
    }

    #[test]
    fn pairs_are_distinct_and_in_range() {
        let mut rng = Rng::new(1);
        let p = AccountPicker::new(Distribution::Zipfian, 2);
        for _ in 0..1_000 {
            let (a, b) = p.pick_pair(&mut rng);
            assert!(a != b && a < 2 && b < 2);
        }
    }
}
