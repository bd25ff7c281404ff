//! The drill's single monotonic clock.

use std::time::Instant;

/// Microseconds since the drill started; every record of a drill uses it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    /// Starts the clock now.
    pub(crate) fn start() -> Self {
        Self(Instant::now())
    }

    /// Microseconds since the start.
    pub(crate) fn now_us(&self) -> i64 {
        self.0.elapsed().as_micros() as i64
    }
}
