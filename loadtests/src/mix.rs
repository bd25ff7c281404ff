//! What virtual users request: Zipf-skewed member ids, the route templates, a tiny
//! lock-free random source.

use std::sync::atomic::{AtomicU64, Ordering};

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;

/// SplitMix64's state increment.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

static STATE: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);

/// A uniform random `u64`: SplitMix64 whose state is a shared atomic counter, so
/// lock-free; each call takes the state and returns the one output that follows it.
/// Good enough to pick requests.
pub(crate) fn random() -> u64 {
    output(STATE.fetch_add(GAMMA, Ordering::Relaxed))
}

/// The SplitMix64 output that follows `state`.
fn output(state: u64) -> u64 {
    SplitMix64::seed_from_u64(state).next_u64()
}

/// Uniform in [0, 1).
pub(crate) fn unit() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

/// Zipf distribution over ranks `1..=n` with exponent `s` (rank 1 most popular).
#[derive(Debug, Clone)]
pub(crate) struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Precomputes the distribution (`n` at least 1).
    pub(crate) fn new(n: usize, s: f64) -> Self {
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
    pub(crate) fn sample(&self) -> usize {
        let u = unit();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same stream as the hand-written SplitMix64 this replaced.
    #[test]
    fn the_stream_is_splitmix64_of_the_counter() {
        let s0 = 0x2545_F491_4F6C_DD1D;
        assert_eq!(output(s0), 0xc0e1_6b16_3a85_a4dc);
        assert_eq!(output(s0.wrapping_add(GAMMA)), 0x890a_cd8d_d443_c47c);
    }

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
