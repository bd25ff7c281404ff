//! A circuit breaker around Redis: after `threshold` consecutive failures it opens for
//! `cooldown`, during which requests skip Redis entirely; then one probe is let through
//! (half-open) and its outcome closes or re-opens it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Breaker state as reported by `cache/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum BreakerState {
    /// Redis is used.
    Closed,
    /// Redis is skipped until the cooldown ends.
    Open,
    /// One probe is in flight.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
    opened_total: u64,
}

/// The breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                failures: 0,
                open_until: None,
                probing: false,
                opened_total: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call to Redis may go ahead now.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut s = self.lock();
        match s.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if s.probing => false,
            Some(_) => {
                s.probing = true;
                true
            }
        }
    }

    /// Records a successful call: closes the breaker.
    pub fn success(&self) {
        let mut s = self.lock();
        s.failures = 0;
        s.open_until = None;
        s.probing = false;
    }

    /// Records a failed call: opens the breaker after `threshold` in a row, or at once
    /// when a half-open probe fails.
    pub fn failure(&self) {
        self.failure_at(Instant::now())
    }

    fn failure_at(&self, now: Instant) {
        let mut s = self.lock();
        s.failures += 1;
        if s.probing || s.failures >= self.threshold {
            if s.open_until.is_none() || s.probing {
                s.opened_total += 1;
            }
            s.open_until = Some(now + self.cooldown);
            s.probing = false;
        }
    }

    /// Current state.
    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(_) if s.probing => BreakerState::HalfOpen,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// How many times it has opened.
    pub fn opened_total(&self) -> u64 {
        self.lock().opened_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on an injected clock: `t0` and offsets from it, no sleeping.
    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let cooldown = Duration::from_millis(30);
        let b = Breaker::new(3, cooldown);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(b.allow_at(t0));
        b.failure_at(t0);
        b.failure_at(t0);
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        b.failure_at(t0);
        assert_eq!(b.state_at(t0), BreakerState::Open);
        assert!(!b.allow_at(t0));
        assert!(
            !b.allow_at(at(29)),
            "still open just before the cooldown ends"
        );
        assert_eq!(b.state_at(at(29)), BreakerState::Open);
        assert!(b.allow_at(at(40)), "one probe after the cooldown");
        assert!(!b.allow_at(at(40)), "only one probe at a time");
        b.failure_at(at(40));
        assert_eq!(
            b.state_at(at(40)),
            BreakerState::Open,
            "failed probe re-opens"
        );
        assert!(!b.allow_at(at(69)), "for a whole new cooldown");
        assert!(b.allow_at(at(80)));
        b.success();
        assert_eq!(b.state_at(at(80)), BreakerState::Closed);
        assert!(b.allow_at(at(80)));
        assert_eq!(b.opened_total(), 2);
    }
}
