//! A Redis Sentinel topology: plan it, start it, wait until it is really ready, report on
//! it and tear it down without leaving anything behind.
//!
//! - [`spec`]: which nodes, with which roles and ports.
//! - `conf`: their `redis.conf` / `sentinel.conf`, written for the whole layout before
//!   anything starts (each Sentinel is told its id, its peers and the replicas).
//! - `backend`: the one interface every backend implements, and what each can do
//!   ([`capabilities`]); [`process`] (local `redis-server` binaries on loopback) and
//!   [`docker`] (containers on a private network, partitions) implement it.
//!   `external` reaches a topology the harness did not start ([`Topology::attach`]).
//! - [`auth`]: how to log in to data nodes and Sentinels.
//! - [`keys`]: removing exactly the keys a run wrote.
//! - `node`: what backends share about a node (config files, log tails, stop outcomes).
//! - [`probe`]: readiness and live status over the Redis protocol (backend-independent).
//! - [`state`]: the state file that lets another shell find a running topology.
//! - `error`: [`TopologyError`].

pub mod auth;
mod backend;
mod conf;
mod error;
pub mod keys;
mod node;
mod pace;
pub mod probe;
pub mod spec;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{BackendKind, HarnessConfig, PartitionDirection};
pub use auth::{Credentials, Login};
pub use backend::external::HookRun;
pub use backend::{capabilities, docker, external, process, refusal, Capabilities, FaultOp, Need};
use backend::{Backend, Leftovers};
use conf::Layout;
pub use error::TopologyError;
pub use node::StopOutcome;
pub use probe::NodeStatus;
pub use spec::{NodeKind, NodeSpec};
use state::{NodeRecord, TopologyState, STATE_VERSION};

/// Marker file that tells the harness a directory is one of its topology directories and
/// may be wiped by the next `up`.
const MARKER: &str = ".redis-harness-topology";

/// How often `up` asks the nodes whether they are ready (a probe of every node costs about
/// a millisecond on loopback).
const READY_POLL: Duration = Duration::from_millis(10);

/// How long `down` lets nodes exit on SIGTERM before it SIGKILLs them.
pub const DOWN_GRACE: Duration = Duration::from_secs(5);

/// What a client needs to connect to the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    /// `host:port` of the initial master.
    pub master: String,
    /// `host:port` of every Sentinel.
    pub sentinels: Vec<String>,
    /// Name Sentinels monitor the master under.
    pub master_name: String,
    /// Password, when configured.
    pub password: Option<String>,
    /// ACL user of the data nodes, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Sentinels' password, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel_password: Option<String>,
    /// The console's URL with its token, when a console runs with the topology.
    pub console: Option<String>,
}

impl ConnectionInfo {
    /// Derives the connection info from a state file.
    pub fn from_state(state: &TopologyState) -> Self {
        Self {
            master: state.initial_master().spec.addr(),
            sentinels: state
                .nodes
                .iter()
                .filter(|n| n.spec.kind == NodeKind::Sentinel)
                .map(|n| n.spec.addr())
                .collect(),
            master_name: state.master_name.clone(),
            password: state.password.clone(),
            username: state.username.clone(),
            sentinel_password: state.sentinel_password.clone(),
            console: state.console.as_ref().map(|c| c.url_with_token()),
        }
    }
}

/// Live status of a whole topology.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Topology name.
    pub name: String,
    /// Backend.
    pub backend: BackendKind,
    /// Current master as the Sentinels' majority names it (or the only node in role master).
    pub current_master: Option<String>,
    /// Whether the topology is healthy: one master, all replicas linked to it, all
    /// Sentinels agreeing on it and seeing every replica and each other.
    pub healthy: bool,
    /// What is wrong, when it is not healthy.
    pub problem: Option<String>,
    /// Every node.
    pub nodes: Vec<NodeStatus>,
    /// Connection details.
    pub connection: ConnectionInfo,
}

/// How a teardown went.
#[derive(Debug, Clone, Serialize)]
pub struct TeardownReport {
    /// Per node: name and how it was stopped.
    pub nodes: Vec<(String, StopOutcome)>,
    /// Ports of the topology still accepting connections afterwards (should be empty).
    pub ports_still_open: Vec<u16>,
    /// Docker backend: containers (and the network) still present afterwards (should be
    /// empty).
    pub containers_left: Vec<String>,
    /// Wall time of the teardown in milliseconds.
    pub elapsed_ms: u64,
}

/// A running topology owned by this process. Dropping it kills every node (so a failed
/// `up` or a panicking test leaves nothing behind) unless it was [`Topology::detach`]ed.
#[derive(Debug)]
pub struct Topology {
    cfg: HarnessConfig,
    dir: PathBuf,
    /// The recorded state; `state.nodes` holds every node started so far.
    state: TopologyState,
    backend: Box<dyn Backend>,
    detached: bool,
}

impl Topology {
    /// Starts the topology `cfg` describes and waits until it is ready, or attaches to
    /// it when it is external ([`Topology::attach`]).
    pub async fn open(cfg: &HarnessConfig) -> Result<Topology, TopologyError> {
        if cfg.backend == BackendKind::External {
            Self::attach(cfg).await
        } else {
            Self::up(cfg).await
        }
    }

    /// Attaches to the external topology of `cfg` (`topology.external`): asks its
    /// Sentinels for the master, the replicas and their settings, and returns a handle
    /// whose `down` and drop leave every node running. The topology's counts, quorum and
    /// Sentinel timings in [`Topology::config`] are the discovered ones. Read-only.
    pub async fn attach(cfg: &HarnessConfig) -> Result<Topology, TopologyError> {
        let Some(ext) = cfg.topology.external.clone() else {
            return Err(TopologyError::External(
                "no topology.external in the configuration".into(),
            ));
        };
        let credentials = cfg.credentials();
        let found = external::discover(&ext, &credentials).await?;
        let dir = absolute(&cfg.topology_dir())?;
        prepare_dir(&dir, &cfg.name)?;
        let mut cfg = cfg.clone();
        let t = &mut cfg.topology;
        t.master_name = ext.master_name.clone();
        t.replicas = found.replicas.len() as u32;
        t.sentinels = found.sentinels.len() as u32;
        t.quorum = found.quorum.min(t.sentinels);
        cfg.sentinel.down_after_ms = found.down_after_ms;
        cfg.sentinel.failover_timeout_ms = found.failover_timeout_ms;
        cfg.sentinel.parallel_syncs = found.parallel_syncs;
        cfg.password = ext.password.clone();
        let record = |name: String, kind: NodeKind, (host, port): (String, u16)| NodeRecord {
            spec: NodeSpec {
                name,
                kind,
                host,
                port,
            },
            pid: None,
            dir: dir.clone(),
            config_file: PathBuf::new(),
            log_file: PathBuf::new(),
            container: None,
        };
        let mut nodes = vec![record(
            "master".into(),
            NodeKind::Master,
            found.master.clone(),
        )];
        for (i, r) in found.replicas.iter().enumerate() {
            nodes.push(record(
                format!("replica-{}", i + 1),
                NodeKind::Replica,
                r.clone(),
            ));
        }
        for (i, s) in found.sentinels.iter().enumerate() {
            nodes.push(record(
                format!("sentinel-{}", i + 1),
                NodeKind::Sentinel,
                s.clone(),
            ));
        }
        let version = master_version(&found.master, &credentials.data).await;
        read_settings(&mut cfg, &found.master, &credentials.data).await;
        let mut state = new_state(&cfg, format!("external, {version}"));
        state.username = ext.username.clone();
        state.sentinel_password = ext.sentinel_password.clone();
        state.nodes = nodes;
        Ok(Topology {
            backend: Box::new(external::ExternalBackend::new(ext, credentials)),
            cfg,
            dir,
            state,
            detached: false,
        })
    }

    /// Starts the topology described by `cfg` and waits until it is ready.
    pub async fn up(cfg: &HarnessConfig) -> Result<Topology, TopologyError> {
        if cfg.backend == BackendKind::External {
            return Err(TopologyError::External(external::NOT_OURS.into()));
        }
        let dir = absolute(&cfg.topology_dir())?;
        let mut backend = backend::for_config(cfg);
        let version = backend.preflight(cfg, &dir).await?;
        prepare_dir(&dir, &cfg.name)?;
        let mut topo = Topology {
            cfg: cfg.clone(),
            dir: dir.clone(),
            state: new_state(cfg, version),
            backend,
            detached: false,
        };
        topo.backend.provision(&mut topo.state).await?;
        // Every address is known before the first node starts, so every config (a
        // Sentinel's peers and replicas included) is written up front.
        let layout = Layout::new(topo.backend.plan(cfg)?);
        let view = topo.backend.config_view();
        let records = layout
            .nodes
            .iter()
            .map(|n| node::write_node(cfg, &dir, n, &layout, view))
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        let deadline = started + Duration::from_millis(cfg.readiness_timeout_ms);
        // Two waves, each started at once: the master and the Sentinels, then the
        // replicas as soon as the master answers (a replica that finds no master tries
        // again only a second later). Sentinels that tried a peer before it listened are
        // hurried (see `pace`); the last verdict is taken with their pace put back.
        let credentials = topo.state.credentials();
        let login = credentials.for_kind(NodeKind::Sentinel).clone();
        let (first, replicas): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|r| r.spec.kind != NodeKind::Replica);
        let sentinels: Vec<NodeSpec> = first
            .iter()
            .filter(|r| r.spec.kind == NodeKind::Sentinel)
            .map(|r| r.spec.clone())
            .collect();
        // The console (docker's commander) comes up while the nodes do: it only needs
        // their addresses, which are planned.
        let mut planned = topo.state.clone();
        planned.nodes = first.iter().chain(&replicas).cloned().collect();
        let console = topo.backend.launch_console(&planned);
        let nodes = async {
            let ms = || started.elapsed().as_millis();
            topo.start_group(first).await?;
            tracing::debug!("{} ms: master and Sentinels started", ms());
            topo.wait_answering(0..topo.state.nodes.len(), deadline)
                .await?;
            let hurried = pace::hurry(&sentinels, &login).await?;
            tracing::debug!("{} ms: they answer; Sentinels hurried", ms());
            let from = topo.state.nodes.len();
            topo.start_group(replicas).await?;
            tracing::debug!("{} ms: replicas started", ms());
            topo.wait_answering(from..topo.state.nodes.len(), deadline)
                .await?;
            tracing::debug!("{} ms: replicas answer", ms());
            topo.state
                .nodes
                .sort_by_key(|r| layout.nodes.iter().position(|n| n.name == r.spec.name));
            topo.wait_ready(deadline, started).await?;
            hurried.restore(&login).await?;
            topo.wait_ready(deadline, started).await
        };
        let (ready, (console, launched)) = match console {
            Some(launch) => futures_util::future::join(nodes, launch).await,
            None => (nodes.await, (None, Ok(()))),
        };
        topo.state.console = console;
        ready?;
        launched?;
        topo.state.write(&dir)?;
        let network = topo
            .state
            .network
            .as_ref()
            .map(|n| format!(" ({}, network {n})", topo.backend.kind()))
            .unwrap_or_default();
        tracing::info!(
            "topology '{}' ready in {} ms{network}",
            cfg.name,
            started.elapsed().as_millis()
        );
        Ok(topo)
    }

    /// Starts `records` (all at once where the backend can) and records every node that
    /// got as far as a pid or a container, so a failure cleans them up.
    async fn start_group(&mut self, records: Vec<NodeRecord>) -> Result<(), TopologyError> {
        let (started, result) = self.backend.start_all(records).await;
        self.state.nodes.extend(started);
        result
    }

    /// Waits until the nodes `which` answer PING, failing early when one exits, and with
    /// [`TopologyError::NotReady`] at `deadline`.
    async fn wait_answering(
        &mut self,
        which: std::ops::Range<usize>,
        deadline: Instant,
    ) -> Result<(), TopologyError> {
        let since = Instant::now();
        let credentials = self.state.credentials();
        let mut waiting: Vec<NodeRecord> = self.state.nodes[which].to_vec();
        loop {
            for record in &waiting {
                if let Some(report) = self.backend.exit_report(record).await {
                    return Err(TopologyError::Start {
                        node: record.spec.name.clone(),
                        detail: report,
                    });
                }
            }
            let answers = futures_util::future::join_all(
                waiting
                    .iter()
                    .map(|r| answers_ping(&r.spec, credentials.for_kind(r.spec.kind))),
            )
            .await;
            let mut answers = answers.into_iter();
            waiting.retain(|_| !answers.next().unwrap_or(false));
            let Some(first) = waiting.first() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(TopologyError::NotReady {
                    waited_ms: since.elapsed().as_millis() as u64,
                    problem: format!("{} did not answer PING to start", first.spec.name),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Polls until every node is ready, failing early when a node exits.
    async fn wait_ready(
        &mut self,
        deadline: Instant,
        started: Instant,
    ) -> Result<(), TopologyError> {
        let master_addr = self.state.nodes[0].spec.addr();
        let replicas = self.cfg.topology.replicas as usize;
        let sentinels = self.cfg.topology.sentinels as usize;
        let mut last = String::new();
        loop {
            for n in &self.state.nodes {
                if let Some(report) = self.backend.exit_report(n).await {
                    return Err(TopologyError::Start {
                        node: n.spec.name.clone(),
                        detail: report,
                    });
                }
            }
            let statuses = self.probe().await;
            match probe::health_problem(&statuses, &master_addr, replicas, sentinels) {
                None => return Ok(()),
                Some(p) => {
                    if p != last {
                        tracing::debug!("waiting ({} ms): {p}", started.elapsed().as_millis());
                        last = p;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(TopologyError::NotReady {
                    waited_ms: started.elapsed().as_millis() as u64,
                    problem: last,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    async fn probe(&self) -> Vec<NodeStatus> {
        let nodes: Vec<_> = self
            .state
            .nodes
            .iter()
            .map(|n| (n.spec.clone(), n.pid))
            .collect();
        probe::topology_status(
            &nodes,
            &self.state.credentials(),
            &self.cfg.topology.master_name,
        )
        .await
    }

    /// The recorded state (nodes, pids, directories).
    pub fn state(&self) -> &TopologyState {
        &self.state
    }

    /// The topology directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What this topology's backend can do.
    pub fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
    }

    /// Connection details for clients.
    pub fn connection_info(&self) -> ConnectionInfo {
        ConnectionInfo::from_state(&self.state)
    }

    /// Live status of every node.
    pub async fn status(&self) -> StatusReport {
        status_of(&self.state).await
    }

    /// Stops every node (SIGTERM, then SIGKILL after [`DOWN_GRACE`]) and removes the
    /// state file; node directories (logs, data) stay for inspection until the next `up`.
    /// An external topology is left running (an empty report).
    pub async fn down(mut self) -> Result<TeardownReport, TopologyError> {
        let started = Instant::now();
        self.detached = true;
        if self.backend.kind() == BackendKind::External {
            return Ok(TeardownReport {
                nodes: Vec::new(),
                ports_still_open: Vec::new(),
                containers_left: Vec::new(),
                elapsed_ms: 0,
            });
        }
        let outcomes = self.backend.stop(&self.state, DOWN_GRACE).await?;
        TopologyState::remove(&self.dir)?;
        Ok(teardown_report(self.backend.as_ref(), &self.state, outcomes, started).await)
    }

    /// The record of node `name`.
    pub fn node(&self, name: &str) -> Result<&NodeRecord, TopologyError> {
        self.state
            .nodes
            .iter()
            .find(|r| r.spec.name == name)
            .ok_or_else(|| TopologyError::UnknownNode(name.to_string()))
    }

    fn node_index(&self, name: &str) -> Result<usize, TopologyError> {
        self.state
            .nodes
            .iter()
            .position(|n| n.spec.name == name)
            .ok_or_else(|| TopologyError::UnknownNode(name.to_string()))
    }

    /// Freezes node `name` (process: SIGSTOP; docker: `docker pause`; external: `DEBUG
    /// SLEEP` for `hold`, or `CLIENT PAUSE WRITE`) until [`Topology::resume`].
    pub async fn pause(&self, name: &str, hold: Duration) -> Result<(), TopologyError> {
        self.backend.pause(self.node(name)?, hold).await
    }

    /// How this topology's backend does `op` (`SIGKILL`, `hook kill`, `DEBUG SLEEP`...).
    pub fn verb(&self, op: FaultOp) -> String {
        self.backend.verb(op)
    }

    /// The fault hooks run since the last call (external topologies).
    pub fn take_hook_runs(&self) -> Vec<HookRun> {
        self.backend.hook_runs()
    }

    /// The command `hook` would run for node `name` (placeholders filled), when the
    /// topology is external and the hook is configured: what a dry run shows.
    pub fn hook_command(
        &self,
        hook: crate::config::Hook,
        name: &str,
        peers: &[String],
    ) -> Option<String> {
        let ext = self.cfg.topology.external.as_ref()?;
        external::command(ext, hook, &self.node(name).ok()?.spec, peers)
    }

    /// Whether the harness started this topology (and so may stop it).
    pub fn is_external(&self) -> bool {
        self.backend.kind() == BackendKind::External
    }

    /// Lets a paused node `name` go on (process: SIGCONT; docker: `docker unpause`).
    pub async fn resume(&self, name: &str) -> Result<(), TopologyError> {
        self.backend.resume(self.node(name)?).await
    }

    /// Kills node `name` without grace (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self, name: &str) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        self.backend.kill(&self.state.nodes[i]).await
    }

    /// Cuts node `name` off from `peers` (node names) in `direction`; the host still
    /// reaches it. Docker backend only.
    pub async fn partition(
        &self,
        name: &str,
        peers: &[&str],
        direction: PartitionDirection,
    ) -> Result<(), TopologyError> {
        let record = self.node(name)?;
        let addrs: Vec<String> = peers
            .iter()
            .map(|p| self.node(p).map(|r| r.spec.host.clone()))
            .collect::<Result<_, _>>()?;
        self.backend.partition(record, &addrs, direction).await
    }

    /// Removes the partition rules of node `name`.
    pub async fn heal(&self, name: &str) -> Result<(), TopologyError> {
        self.backend.heal(self.node(name)?).await
    }

    /// Starts node `name` again from its own directory and config (a data node keeps its
    /// data; a Sentinel keeps the state it rewrote into its config) and waits until it
    /// answers.
    pub async fn restart(&mut self, name: &str) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        let before = self.state.nodes[i].clone();
        self.backend.restart(&mut self.state.nodes[i]).await?;
        if self.state.nodes[i] != before {
            self.state.write(&self.dir)?;
        }
        self.wait_answering(i..i + 1, Instant::now() + Duration::from_secs(10))
            .await
            .map_err(|e| match e {
                TopologyError::NotReady { waited_ms, .. } => TopologyError::Start {
                    node: name.to_string(),
                    detail: format!("did not answer PING within {waited_ms} ms of restarting"),
                },
                e => e,
            })
    }

    /// Waits until the topology is healthy around whichever master the Sentinels agree on;
    /// returns the final status (healthy or not) after at most `timeout`.
    pub async fn wait_healthy(&self, timeout: Duration) -> StatusReport {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.status().await;
            if st.healthy || Instant::now() >= deadline {
                return st;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &HarnessConfig {
        &self.cfg
    }

    /// Leaves the topology running after this handle is dropped; `status` and `down` find
    /// it through the state file.
    pub fn detach(mut self) -> TopologyState {
        self.detached = true;
        self.state.clone()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if self.backend.cleanup_blocking(&self.state) {
            let _ = TopologyState::remove(&self.dir);
        }
    }
}

/// Whether the node at `spec` answers PING.
async fn answers_ping(spec: &NodeSpec, login: &Login) -> bool {
    match probe::connect(&spec.host, spec.port, login, probe::PROBE_TIMEOUT).await {
        Ok(mut c) => redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// A fresh state for `cfg`, with no node yet; `redis_version` says what runs the nodes.
fn new_state(cfg: &HarnessConfig, redis_version: String) -> TopologyState {
    TopologyState {
        version: STATE_VERSION,
        name: cfg.name.clone(),
        backend: cfg.backend,
        master_name: cfg.topology.master_name.clone(),
        password: cfg.password.clone(),
        username: None,
        sentinel_password: None,
        redis_version,
        started_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        nodes: Vec::new(),
        network: None,
        console: None,
    }
}

/// The master's persistence and write-safety settings (`CONFIG GET`, read-only) into
/// `cfg`; `appendfsync` becomes `unknown` where CONFIG is not allowed.
async fn read_settings(cfg: &mut HarnessConfig, (host, port): &(String, u16), login: &Login) {
    let got = async {
        let mut c = probe::connect(host, *port, login, probe::PROBE_TIMEOUT)
            .await
            .ok()?;
        let mut values = Vec::new();
        for k in [
            "appendonly",
            "appendfsync",
            "min-replicas-to-write",
            "min-replicas-max-lag",
        ] {
            let v: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(k)
                .query_async(&mut c)
                .await
                .ok()?;
            values.push(v.get(1).cloned()?);
        }
        let [aof, fsync, min, lag]: [String; 4] = values.try_into().ok()?;
        Some((aof, fsync, min, lag))
    };
    match got.await {
        Some((aof, fsync, min, lag)) => {
            cfg.persistence.aof = aof == "yes";
            cfg.persistence.appendfsync = fsync;
            cfg.replication.min_replicas_to_write = min.parse().unwrap_or(0);
            cfg.replication.min_replicas_max_lag = lag.parse().unwrap_or(10);
        }
        None => cfg.persistence.appendfsync = "unknown (CONFIG GET refused)".into(),
    }
}

/// `redis_version` of the master at `addr` (`redis ?` when it does not say).
async fn master_version((host, port): &(String, u16), login: &Login) -> String {
    let version = async {
        let mut c = probe::connect(host, *port, login, probe::PROBE_TIMEOUT)
            .await
            .ok()?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut c)
            .await
            .ok()?;
        probe::parse_info(&info).get("redis_version").cloned()
    };
    format!("redis {}", version.await.unwrap_or_else(|| "?".into()))
}

/// Live status of a topology known from its state file.
pub async fn status_of(state: &TopologyState) -> StatusReport {
    let backend = backend::for_state(state);
    let nodes: Vec<_> = state
        .nodes
        .iter()
        .map(|n| (n.spec.clone(), backend.live_pid(n)))
        .collect();
    let statuses = probe::topology_status(&nodes, &state.credentials(), &state.master_name).await;
    let replicas = nodes
        .iter()
        .filter(|n| n.0.kind == NodeKind::Replica)
        .count();
    let sentinels = nodes
        .iter()
        .filter(|n| n.0.kind == NodeKind::Sentinel)
        .count();
    let current_master = current_master(&statuses);
    let problem = match &current_master {
        None => Some("no agreed master".to_string()),
        Some(m) => probe::health_problem(&statuses, m, replicas, sentinels),
    };
    StatusReport {
        name: state.name.clone(),
        backend: state.backend,
        current_master,
        healthy: problem.is_none(),
        problem,
        nodes: statuses,
        connection: ConnectionInfo::from_state(state),
    }
}

/// The master as most Sentinels name it; without Sentinels, the only data node in role
/// master.
fn current_master(statuses: &[NodeStatus]) -> Option<String> {
    let named = statuses
        .iter()
        .filter_map(|s| s.sentinel.as_ref()?.master.clone());
    if let Some(m) = probe::most_named(named) {
        return Some(m);
    }
    let masters: Vec<_> = statuses.iter().filter(|s| s.role == "master").collect();
    (masters.len() == 1).then(|| masters[0].address.clone())
}

/// Tears down a topology known only from its state directory (the `down` command).
pub async fn down_dir(dir: &Path, name: &str) -> Result<TeardownReport, TopologyError> {
    let state = TopologyState::read(dir)?.ok_or_else(|| TopologyError::NotUp {
        name: name.to_string(),
        dir: dir.to_path_buf(),
    })?;
    let started = Instant::now();
    let mut backend = backend::for_state(&state);
    let outcomes = backend.stop(&state, DOWN_GRACE).await?;
    TopologyState::remove(dir)?;
    Ok(teardown_report(backend.as_ref(), &state, outcomes, started).await)
}

async fn teardown_report(
    backend: &dyn Backend,
    state: &TopologyState,
    outcomes: Vec<StopOutcome>,
    started: Instant,
) -> TeardownReport {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let Leftovers {
        ports_still_open,
        containers_left,
    } = backend.leftovers(state).await;
    TeardownReport {
        nodes: state
            .nodes
            .iter()
            .map(|n| n.spec.name.clone())
            .zip(outcomes)
            .collect(),
        ports_still_open,
        containers_left,
        elapsed_ms,
    }
}

/// Makes `dir` a fresh, empty topology directory. Refuses when a live topology uses it
/// or when it holds anything the harness did not create.
fn prepare_dir(dir: &Path, name: &str) -> Result<(), TopologyError> {
    if let Some(state) = TopologyState::read(dir).unwrap_or(None) {
        let backend = backend::for_state(&state);
        let alive = state.nodes.iter().any(|n| backend.live_pid(n).is_some());
        if alive {
            return Err(TopologyError::AlreadyUp {
                name: name.to_string(),
                state: TopologyState::path(dir),
            });
        }
    }
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(TopologyError::file("read the topology directory", dir))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            return Err(TopologyError::ForeignDirectory(dir.to_path_buf()));
        }
        std::fs::remove_dir_all(dir).map_err(TopologyError::file(
            "wipe the previous topology directory",
            dir,
        ))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(TopologyError::file("create the topology directory", dir))?;
    let marker = dir.join(MARKER);
    std::fs::write(
        &marker,
        "created by redis-harness; wiped by the next `up`\n",
    )
    .map_err(TopologyError::file("write", &marker))?;
    Ok(())
}

/// `p` made absolute against the current directory (as labels and state files record it).
pub fn absolute(p: &Path) -> Result<PathBuf, TopologyError> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(TopologyError::file(
                "resolve against the current directory",
                p,
            ))?
            .join(p)
    })
}
