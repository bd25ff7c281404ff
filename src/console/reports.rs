//! TODO(reports): being written.
