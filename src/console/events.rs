//! TODO(events): being written.
