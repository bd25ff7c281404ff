//! TODO(keys): being written.
