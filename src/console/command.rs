//! TODO(command): being written.
