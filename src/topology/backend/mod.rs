//! The one seam between a topology and what runs its nodes.
//!
//! [`Topology`](super::Topology) runs the common flow (prepare the directory, provision
//! what the nodes share, plan every address, write every config, start the master and the
//! Sentinels, then the replicas once the master answers, wait, start the console where
//! the backend runs one, write the state file) and every fault and teardown through the
//! `Backend` trait; each backend supplies only what differs.
//!
//! - [`process`]: local `redis-server` processes on loopback.
//! - [`docker`]: containers on a private network per topology.
//! - [`external`]: a topology the harness did not start, reached through its Sentinels;
//!   faults through the protocol or the user's hooks.
//!
//! A new backend is a module implementing `Backend` plus one arm in `construct`, one in
//! [`capabilities`] and one in [`refusal`].

pub mod docker;
pub mod external;
pub mod process;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::node::{ConfigView, StopOutcome};
use super::spec::NodeSpec;
use super::state::{ConsoleRecord, NodeRecord, TopologyState};
use super::TopologyError;
use crate::config::{BackendKind, HarnessConfig, PartitionDirection};

/// A boxed, sendable future: what keeps [`Backend`] object-safe.
pub(crate) use futures_util::future::BoxFuture;

/// A console being started ([`Backend::launch_console`]): its record, once it exists, and
/// whether it came up.
pub(crate) type ConsoleLaunch =
    BoxFuture<'static, (Option<ConsoleRecord>, Result<(), TopologyError>)>;

/// Which faults a backend can inject; ask before anything starts (e.g. a drill checks
/// that its fault is possible on the configured backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Kill a node without grace and start it again.
    pub kill_restart: bool,
    /// Freeze a node and let it go on (SIGSTOP / `docker pause`).
    pub pause: bool,
    /// Cut a node off from chosen peers while clients still reach it.
    pub partition: bool,
}

/// What the backend of `cfg` can do, without starting or contacting anything.
pub fn capabilities(cfg: &HarnessConfig) -> Capabilities {
    match cfg.backend {
        BackendKind::Process => process::CAPABILITIES,
        BackendKind::Docker => docker::CAPABILITIES,
        BackendKind::External => match &cfg.topology.external {
            Some(ext) => external::capabilities(ext),
            None => Capabilities {
                kill_restart: false,
                pause: false,
                partition: false,
            },
        },
    }
}

/// What a fault needs from the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Kill a node and start it again.
    KillRestart,
    /// Freeze a data node.
    Pause,
    /// Freeze a Sentinel.
    PauseSentinel,
    /// Cut a node off from its peers.
    Partition,
}

/// Why the backend of `cfg` cannot do what `need` asks (`None`: it can), without starting
/// or contacting anything.
pub fn refusal(cfg: &HarnessConfig, need: Need) -> Option<String> {
    match (cfg.backend, need) {
        (BackendKind::External, _) => match &cfg.topology.external {
            Some(ext) => external::refusal(ext, need),
            None => Some("backend external needs topology.external".into()),
        },
        (BackendKind::Process, Need::Partition) => Some(format!(
            "partitions need the docker backend (network cuts between containers); the {} backend runs every node on one loopback",
            cfg.backend
        )),
        _ => None,
    }
}

/// A fault operation, to say how a backend does it ([`Topology::verb`](crate::topology::Topology::verb)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Kill without grace.
    Kill,
    /// Start a killed node again.
    Restart,
    /// Freeze.
    Pause,
    /// Let a frozen node go on.
    Resume,
    /// Cut off.
    Partition,
    /// Undo a cut.
    Heal,
}

/// What a teardown left behind (both should be empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct Leftovers {
    /// Ports of the topology still accepting connections.
    pub ports_still_open: Vec<u16>,
    /// Containers and networks still present.
    pub containers_left: Vec<String>,
}

/// Where a backend takes its settings from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// A topology about to be started from this configuration.
    Config(&'a HarnessConfig),
    /// A running topology known only from its state file.
    State(&'a TopologyState),
}

/// The backend for `kind`. Cheap: nothing is contacted until it is used.
fn construct(kind: BackendKind, origin: Origin<'_>) -> Box<dyn Backend> {
    match (kind, origin) {
        (BackendKind::Process, _) => Box::new(process::ProcessBackend::new(origin)),
        (BackendKind::Docker, _) => Box::new(docker::DockerBackend::new(origin)),
        (BackendKind::External, Origin::Config(cfg)) => {
            Box::new(external::ExternalBackend::for_config(cfg))
        }
        (BackendKind::External, Origin::State(state)) => Box::new(external::ExternalBackend::new(
            Default::default(),
            state.credentials(),
        )),
    }
}

/// The backend that will start the topology `cfg` describes.
pub(crate) fn for_config(cfg: &HarnessConfig) -> Box<dyn Backend> {
    construct(cfg.backend, Origin::Config(cfg))
}

/// The backend of a topology known from its state file (`status`, `down` from another
/// shell).
pub(crate) fn for_state(state: &TopologyState) -> Box<dyn Backend> {
    construct(state.backend, Origin::State(state))
}

/// Runs a topology's nodes. Methods that take a node take its record; the record list
/// itself ([`TopologyState::nodes`]) is the topology's.
///
/// An operation the backend cannot do returns [`TopologyError::NeedsBackend`] or
/// [`TopologyError::Unsupported`] (the defaults here), matching [`Backend::capabilities`].
pub(crate) trait Backend: std::fmt::Debug + Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// How it does `op`, as the drill's timeline says it (`SIGKILL`, `hook kill`, ...).
    fn verb(&self, op: FaultOp) -> String {
        match op {
            FaultOp::Kill => "SIGKILL",
            FaultOp::Restart => "restarted",
            FaultOp::Pause => "SIGSTOP",
            FaultOp::Resume => "SIGCONT",
            FaultOp::Partition => "partition",
            FaultOp::Heal => "healed",
        }
        .into()
    }

    /// The hooks run since the last call, in order (external backend).
    fn hook_runs(&self) -> Vec<external::HookRun> {
        Vec::new()
    }

    /// Checks everything needed to start in `dir` (binary, engine, image, leftovers of an
    /// earlier run) before anything is touched; returns what runs the nodes, as the state
    /// file records it.
    fn preflight<'a>(
        &'a mut self,
        cfg: &'a HarnessConfig,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<String, TopologyError>>;

    /// The nodes to start, master first, then replicas, then Sentinels, each at the
    /// address it will be reached at (called after [`Backend::provision`]): every config
    /// is written from these before the first node starts.
    fn plan(&self, cfg: &HarnessConfig) -> Result<Vec<NodeSpec>, TopologyError>;

    /// Sets up what the nodes share before they are planned and started, and records it
    /// in `state` (so a failed start cleans it up). Nothing by default.
    fn provision<'a>(
        &'a mut self,
        _state: &'a mut TopologyState,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async { Ok(()) })
    }

    /// Starts the topology's console, when the backend runs one itself (docker: the
    /// commander container), once every node of `state` is started: a future that owns
    /// what it needs, so it runs while the nodes become ready. It yields the console's
    /// record as soon as it exists (to be recorded and cleaned up with the nodes whatever
    /// happens) and whether the console came up. `None` by default.
    fn launch_console(&self, _state: &TopologyState) -> Option<ConsoleLaunch> {
        None
    }

    /// How nodes see their directory in their config files.
    fn config_view(&self) -> ConfigView;

    /// Starts one node whose directory and config are written; returns its record with
    /// what identifies the running node (pid, container).
    fn start(&mut self, record: NodeRecord) -> BoxFuture<'_, Result<NodeRecord, TopologyError>>;

    /// Starts several nodes, at once where the backend can; returns the records of those
    /// that got as far as a pid or a container (to be cleaned up whatever happens) and the
    /// first error. One after another by default.
    fn start_all(
        &mut self,
        records: Vec<NodeRecord>,
    ) -> BoxFuture<'_, (Vec<NodeRecord>, Result<(), TopologyError>)> {
        Box::pin(async move {
            let mut started = Vec::new();
            for r in records {
                match self.start(r).await {
                    Ok(r) => started.push(r),
                    Err(e) => return (started, Err(e)),
                }
            }
            (started, Ok(()))
        })
    }

    /// When the node started here is no longer running: why, with the end of its log.
    fn exit_report<'a>(&'a mut self, record: &'a NodeRecord) -> BoxFuture<'a, Option<String>>;

    /// The pid of a node, when it is a live process of this backend (for status reports
    /// and to tell whether a recorded topology is still up).
    fn live_pid(&self, _record: &NodeRecord) -> Option<u32> {
        None
    }

    /// Kills the node without grace and waits until it is gone.
    fn kill<'a>(&'a mut self, _record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        unsupported("killing a node", self.kind())
    }

    /// Starts a killed node again from its own directory and config, updating `record`.
    fn restart<'a>(
        &'a mut self,
        _record: &'a mut NodeRecord,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        unsupported("restarting a node", self.kind())
    }

    /// Freezes the node; `hold` is how long the drill means to keep it frozen (a backend
    /// that cannot freeze indefinitely freezes it that long).
    fn pause<'a>(
        &'a self,
        _record: &'a NodeRecord,
        _hold: Duration,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        unsupported("pausing a node", self.kind())
    }

    /// Lets a frozen node go on.
    fn resume<'a>(&'a self, _record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        unsupported("resuming a node", self.kind())
    }

    /// Cuts the node off from `peers` (their addresses) in `direction`.
    fn partition<'a>(
        &'a self,
        _record: &'a NodeRecord,
        _peers: &'a [String],
        _direction: PartitionDirection,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        needs_docker("a network partition")
    }

    /// Removes the node's partition rules.
    fn heal<'a>(&'a self, _record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        needs_docker("healing a partition")
    }

    /// Stops every node of `state` (graceful for `grace`, then forced) and its console, and
    /// removes what the backend set up for them.
    fn stop<'a>(
        &'a mut self,
        state: &'a TopologyState,
        grace: Duration,
    ) -> BoxFuture<'a, Result<Vec<StopOutcome>, TopologyError>>;

    /// What is left of `state`'s topology after a teardown.
    fn leftovers<'a>(&'a self, state: &'a TopologyState) -> BoxFuture<'a, Leftovers>;

    /// Kills and removes everything started so far, blocking, from any context (a drop,
    /// a panic); `true` when there was something to remove.
    fn cleanup_blocking(&mut self, state: &TopologyState) -> bool;
}

fn unsupported<'a>(what: &str, backend: BackendKind) -> BoxFuture<'a, Result<(), TopologyError>> {
    let e = TopologyError::Unsupported {
        what: what.to_string(),
        backend,
    };
    Box::pin(async move { Err(e) })
}

fn needs_docker<'a>(what: &str) -> BoxFuture<'a, Result<(), TopologyError>> {
    let e = TopologyError::NeedsBackend {
        what: what.to_string(),
        needs: BackendKind::Docker,
    };
    Box::pin(async move { Err(e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_docker_partitions_and_both_pause() {
        let mut cfg = HarnessConfig::default();
        let p = capabilities(&cfg);
        cfg.backend = BackendKind::Docker;
        let d = capabilities(&cfg);
        assert!(p.pause && p.kill_restart && !p.partition);
        assert!(d.pause && d.kill_restart && d.partition);
    }

    #[tokio::test]
    async fn a_process_topology_refuses_partitions_naming_the_backend_it_needs() {
        let cfg = HarnessConfig::default();
        let b = for_config(&cfg);
        let record = NodeRecord {
            spec: NodeSpec {
                name: "master".into(),
                kind: super::super::NodeKind::Master,
                host: "127.0.0.1".into(),
                port: 1,
            },
            pid: None,
            dir: "/nonexistent".into(),
            config_file: "/nonexistent/redis.conf".into(),
            log_file: "/nonexistent/redis.log".into(),
            container: None,
        };
        let e = b
            .partition(&record, &[], PartitionDirection::Both)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a network partition needs the docker backend"
        );
        let e = b.heal(&record).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "healing a partition needs the docker backend"
        );
    }
}
