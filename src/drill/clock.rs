//! The drill's single monotonic clock, and where CLOCK_MONOTONIC (the clock external
//! clients time their operations with) falls on it.

use std::time::Instant;

/// Microseconds since the drill started; every record of a drill uses it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    /// CLOCK_MONOTONIC at `start`, in ns.
    start_ns: i64,
}

impl Clock {
    /// Starts the clock now.
    pub(crate) fn start() -> Self {
        Self {
            start: Instant::now(),
            start_ns: Self::monotonic_ns(),
        }
    }

    /// Microseconds since the start.
    pub(crate) fn now_us(&self) -> i64 {
        self.start.elapsed().as_micros() as i64
    }

    /// CLOCK_MONOTONIC now, in ns.
    pub(crate) fn monotonic_ns() -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// A CLOCK_MONOTONIC time in ns as microseconds on this clock.
    pub(crate) fn us_of_monotonic_ns(&self, ns: i64) -> i64 {
        (ns - self.start_ns).div_euclid(1000)
    }
}
