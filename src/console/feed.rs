//! What the console shows and who feeds it.

/// The console's shared state.
#[derive(Clone, Default)]
pub(crate) struct Feed;
