//! What virtual users request: Zipf-skewed member ids, the route templates, a tiny
//! lock-free random source.

use std::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);

/// A uniform random `u64` (SplitMix64 over a shared atomic counter: lock-free and good
/// enough to pick requests).
pub fn random() -> u64 {
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1).
pub fn unit() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

/// Zipf distribution over ranks `1..=n` with exponent `s` (rank 1 most popular).
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Precomputes the distribution (`n` at least 1).
    pub fn new(n: usize, s: f64) -> Self {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    /// Draws a rank in `1..=n`.
    pub fn sample(&self) -> usize {
        let u = unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_low_ranks_and_stays_in_range() {
        let z = Zipf::new(1000, 1.1);
        let mut counts = vec![0u32; 1001];
        for _ in 0..50_000 {
            let r = z.sample();
            assert!((1..=1000).contains(&r));
            counts[r] += 1;
        }
        assert!(
            counts[1] > counts[10] && counts[10] > counts[500],
            "{} {} {}",
            counts[1],
            counts[10],
            counts[500]
        );
    }
}
