//! TODO(topology): being written.
