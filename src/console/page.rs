//! TODO(page): being written.
