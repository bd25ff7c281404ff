//! [`TopologyError`]: everything that can go wrong planning, starting, faulting, probing or
//! tearing down a topology, on any backend.

use std::path::{Path, PathBuf};

use crate::config::BackendKind;

/// Errors of topology operations.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The redis-server binary is missing.
    #[error("redis-server binary not found: {binary}; {hint}")]
    BinaryNotFound {
        /// What was looked for.
        binary: PathBuf,
        /// How to install it.
        hint: &'static str,
    },
    /// The redis-server binary exists but cannot be run.
    #[error("redis-server binary {} exists but is not executable ({problem}); `chmod +x` it or set `redis_server:` in harness.yaml to an executable", binary.display())]
    BinaryNotExecutable {
        /// The file that was found.
        binary: PathBuf,
        /// What is wrong with it (a directory, no execute permission).
        problem: String,
    },
    /// A file-system operation on a path failed.
    #[error("cannot {action} {}: {error}", path.display())]
    File {
        /// What was attempted, e.g. "create the topology directory".
        action: &'static str,
        /// The path it was attempted on.
        path: PathBuf,
        /// The operating system's answer.
        error: std::io::Error,
    },
    /// The docker backend failed: no engine, no image, an engine call refused.
    #[error("docker backend: {0}")]
    Docker(String),
    /// The topology's console (docker: the commander container) did not come up.
    #[error("console (commander) failed to start: {0}")]
    Console(String),
    /// The operation needs another backend.
    #[error("{what} needs the {needs} backend")]
    NeedsBackend {
        /// The operation.
        what: String,
        /// The backend it needs.
        needs: BackendKind,
    },
    /// The backend cannot do this operation at all (see [`super::backend::capabilities`]).
    #[error("{what} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        what: String,
        /// The backend asked to do it.
        backend: BackendKind,
    },
    /// A topology with this name is already running.
    #[error(
        "topology '{name}' is already up (state file {state}); run `redis-harness down` first"
    )]
    AlreadyUp {
        /// Topology name.
        name: String,
        /// Its state file.
        state: PathBuf,
    },
    /// No running topology was found.
    #[error("no topology '{name}' is up (no state file in {dir})")]
    NotUp {
        /// Topology name.
        name: String,
        /// Directory searched.
        dir: PathBuf,
    },
    /// A node could not be started or exited during start-up.
    #[error("node {node} failed to start: {detail}")]
    Start {
        /// Node name.
        node: String,
        /// What happened, with the end of its log.
        detail: String,
    },
    /// Readiness was not reached in time.
    #[error("topology not ready after {waited_ms} ms: {problem}")]
    NotReady {
        /// How long it waited.
        waited_ms: u64,
        /// The last readiness problem seen.
        problem: String,
    },
    /// No node of that name.
    #[error("no node {0} in this topology")]
    UnknownNode(String),
    /// The node exists but its process or container is not running.
    #[error("node {0} is not running")]
    NotRunning(String),
    /// A run directory is not one the harness created.
    #[error("refusing to wipe {0}: it exists and is not a redis-harness topology directory")]
    ForeignDirectory(PathBuf),
    /// Free ports could not be found.
    #[error("port allocation failed: {0}")]
    Ports(String),
    /// The state file is unreadable.
    #[error("state file: {0}")]
    State(String),
    /// An external topology could not be reached or read through its Sentinels, or the
    /// harness was asked to start or stop one.
    #[error("external topology: {0}")]
    External(String),
    /// A fault hook failed (non-zero exit, timeout) or did not have its effect.
    #[error("hook {hook} for {node} failed: {detail}")]
    Hook {
        /// `kill`, `restore`, `partition`, `heal`.
        hook: &'static str,
        /// The node it aimed at.
        node: String,
        /// What happened (exit, output, or the effect that did not follow).
        detail: String,
    },
    /// File-system error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl TopologyError {
    /// A [`TopologyError::File`] naming `path` and what was attempted on it.
    pub fn file<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |error| TopologyError::File {
            action,
            path: path.to_path_buf(),
            error,
        }
    }
}
