//! Latency percentiles over recorded samples.

use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub p1_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p100_ms: f64,
}

pub fn percentiles(samples: &mut [Duration]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_secs_f64() * 1e3
    };
    Percentiles { p1_ms: at(0.01), p50_ms: at(0.50), p99_ms: at(0.99), p100_ms: at(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = percentiles(&mut samples);
        assert_eq!((p.p1_ms, p.p50_ms, p.p99_ms, p.p100_ms), (1.0, 50.0, 99.0, 100.0));
        assert_eq!(percentiles(&mut []).p100_ms, 0.0);
    }
}
