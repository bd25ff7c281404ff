//! Routes, SSE, start and stop.

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// The token every request must carry.
    pub(crate) token: std::sync::Arc<String>,
}

/// A running console.
pub(crate) struct Console;
