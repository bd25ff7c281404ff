//! A Redis Sentinel topology: plan it, start it, wait until it is really ready, report on
//! it and tear it down without leaving anything behind.
//!
//! - [`spec`]: which nodes, with which roles and ports.
//! - [`conf`]: their `redis.conf` / `sentinel.conf`.
//! - [`process`]: the process backend (local `redis-server` binaries on loopback).
//! - [`docker`]: the docker backend (containers on a private network, partitions).
//! - [`probe`]: readiness and live status over the Redis protocol (backend-independent).
//! - [`state`]: the state file that lets another shell find a running topology.

pub mod conf;
pub mod docker;
pub mod probe;
pub mod process;
pub mod spec;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{BackendKind, HarnessConfig};
pub use probe::NodeStatus;
use process::{ProcessNode, StopOutcome};
pub use spec::{NodeKind, NodeSpec};
use state::{NodeRecord, TopologyState, STATE_VERSION};

/// Marker file that tells the harness a directory is one of its topology directories and
/// may be wiped by the next `up`.
const MARKER: &str = ".redis-harness-topology";

/// How long `down` lets nodes exit on SIGTERM before it SIGKILLs them.
pub const DOWN_GRACE: Duration = Duration::from_secs(5);

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
    /// The operation needs another backend.
    #[error("{what} needs the {needs} backend")]
    NeedsBackend {
        /// The operation.
        what: String,
        /// The backend it needs.
        needs: BackendKind,
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
    /// A run directory is not one the harness created.
    #[error("refusing to wipe {0}: it exists and is not a redis-harness topology directory")]
    ForeignDirectory(PathBuf),
    /// Free ports could not be found.
    #[error("port allocation failed: {0}")]
    Ports(String),
    /// The state file is unreadable.
    #[error("state file: {0}")]
    State(String),
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
    state: TopologyState,
    nodes: Vec<Node>,
    docker: Option<docker::Docker>,
    detached: bool,
}

/// A running node of either backend.
#[derive(Debug)]
enum Node {
    Process(ProcessNode),
    Docker(Box<docker::DockerNode>),
}

impl Node {
    fn record(&self) -> &NodeRecord {
        match self {
            Node::Process(n) => &n.record,
            Node::Docker(n) => &n.record,
        }
    }

    async fn exit_report(&mut self, d: Option<&docker::Docker>) -> Option<String> {
        match (self, d) {
            (Node::Process(n), _) => n.exit_report(),
            (Node::Docker(n), Some(d)) => n.exit_report(d).await,
            (Node::Docker(_), None) => None,
        }
    }
}

/// Creates `node`'s directory under `topo_dir`, writes its config (paths as the node will
/// see them: `conf_dir`; `extra` appended) and returns its record.
fn write_node(
    cfg: &HarnessConfig,
    topo_dir: &Path,
    node: &NodeSpec,
    master: &NodeSpec,
    conf_dir: Option<&Path>,
    extra: &str,
) -> Result<NodeRecord, TopologyError> {
    let node_dir = topo_dir.join(&node.name);
    std::fs::create_dir_all(&node_dir)
        .map_err(TopologyError::file("create the node directory", &node_dir))?;
    let conf_dir = conf_dir.unwrap_or(&node_dir);
    let (file, log, mut text) = if node.kind == NodeKind::Sentinel {
        (
            "sentinel.conf",
            "sentinel.log",
            conf::sentinel_conf(cfg, node, master, conf_dir),
        )
    } else {
        (
            "redis.conf",
            "redis.log",
            conf::redis_conf(cfg, node, master, conf_dir),
        )
    };
    text.push_str(extra);
    let config_file = node_dir.join(file);
    std::fs::write(&config_file, text)
        .map_err(TopologyError::file("write the node config", &config_file))?;
    Ok(NodeRecord {
        spec: node.clone(),
        pid: None,
        log_file: node_dir.join(log),
        dir: node_dir,
        config_file,
        container: None,
    })
}

impl Topology {
    /// Starts the topology described by `cfg` and waits until it is ready.
    pub async fn up(cfg: &HarnessConfig) -> Result<Topology, TopologyError> {
        match cfg.backend {
            BackendKind::Process => Self::up_process(cfg).await,
            BackendKind::Docker => Self::up_docker(cfg).await,
        }
    }

    fn new_state(cfg: &HarnessConfig, version: String) -> TopologyState {
        TopologyState {
            version: STATE_VERSION,
            name: cfg.name.clone(),
            backend: cfg.backend,
            master_name: cfg.topology.master_name.clone(),
            password: cfg.password.clone(),
            redis_version: version,
            started_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            nodes: Vec::new(),
            network: None,
        }
    }

    async fn up_process(cfg: &HarnessConfig) -> Result<Topology, TopologyError> {
        let binary = process::locate_binary(&cfg.redis_server)?;
        let version = process::binary_version(&binary)?;
        let dir = absolute(&cfg.topology_dir())?;
        prepare_dir(&dir, &cfg.name)?;
        let specs = spec::plan_nodes(cfg)?;
        let master = specs[0].clone();
        let mut topo = Topology {
            cfg: cfg.clone(),
            dir: dir.clone(),
            state: Self::new_state(cfg, version),
            nodes: Vec::new(),
            docker: None,
            detached: false,
        };
        let started = Instant::now();
        let deadline = started + Duration::from_millis(cfg.readiness_timeout_ms);
        // Data nodes first, then Sentinels: a Sentinel that finds the replicas already
        // linked learns them from its first INFO instead of ten seconds later.
        for phase in [false, true] {
            for node in specs
                .iter()
                .filter(|n| (n.kind == NodeKind::Sentinel) == phase)
            {
                topo.start_node(&binary, node, &master)?;
            }
            topo.wait_ready(deadline, started, phase).await?;
        }
        topo.state.nodes = topo.nodes.iter().map(|n| n.record().clone()).collect();
        topo.state.write(&dir)?;
        tracing::info!(
            "topology '{}' ready in {} ms",
            cfg.name,
            started.elapsed().as_millis()
        );
        Ok(topo)
    }

    async fn up_docker(cfg: &HarnessConfig) -> Result<Topology, TopologyError> {
        let d = docker::client()?;
        docker::check_engine(&d).await?;
        docker::ensure_image(&d, &cfg.docker.image).await?;
        let dir = absolute(&cfg.topology_dir())?;
        let run_dir = absolute(&cfg.run_dir)?;
        let network = docker::network_name(&cfg.name, &dir);
        let leftovers: Vec<String> =
            docker::containers_labelled(&d, docker::LABEL_RUN_DIR, &run_dir.display().to_string())
                .await?
                .into_iter()
                .map(|(_, name)| name)
                .filter(|n| n.starts_with(&format!("{network}-")))
                .collect();
        if !leftovers.is_empty() {
            return Err(TopologyError::Docker(format!(
                "containers of topology '{}' already exist ({}); run `redis-harness down` (or `down --all` after a crash) first",
                cfg.name,
                leftovers.join(", ")
            )));
        }
        prepare_dir(&dir, &cfg.name)?;
        let mut topo = Topology {
            cfg: cfg.clone(),
            dir: dir.clone(),
            state: Self::new_state(cfg, format!("image {}", cfg.docker.image)),
            nodes: Vec::new(),
            docker: Some(d.clone()),
            detached: false,
        };
        let labels = docker::topology_labels(&cfg.name, &run_dir);
        // Labelled from its creation: a run killed from here on leaves nothing that
        // `down --all` cannot find. Once it is recorded, dropping `topo` removes it.
        docker::create_network(&d, &network, &labels).await?;
        topo.state.network = Some(network.clone());
        let started = Instant::now();
        let deadline = started + Duration::from_millis(cfg.readiness_timeout_ms);
        let mut master: Option<NodeSpec> = None;
        for phase in [false, true] {
            for (name, kind) in spec::node_names(cfg)
                .into_iter()
                .filter(|(_, k)| (*k == NodeKind::Sentinel) == phase)
            {
                let sentinel = kind == NodeKind::Sentinel;
                let port = if sentinel {
                    docker::SENTINEL_PORT
                } else {
                    docker::DATA_PORT
                };
                // Inside the container the node listens on every interface of its own
                // network namespace; its address is known once the container runs.
                let bind = NodeSpec {
                    name: name.clone(),
                    kind,
                    host: "0.0.0.0".into(),
                    port,
                };
                let m = master.clone().unwrap_or_else(|| bind.clone());
                // The network is the topology's own; nodes accept its peers and the host.
                let record = write_node(
                    cfg,
                    &dir,
                    &bind,
                    &m,
                    Some(Path::new("/data")),
                    "protected-mode no\n",
                )?;
                tracing::info!("starting {name} as a container on network {network}");
                let (mut node, ip) = docker::start(
                    &d,
                    &cfg.docker.image,
                    &network,
                    &labels,
                    cfg.docker.publish,
                    record,
                    sentinel,
                )
                .await?;
                node.record.spec.host = ip.to_string();
                tracing::info!("{name} is at {}", node.record.spec.addr());
                if kind == NodeKind::Master {
                    master = Some(node.record.spec.clone());
                }
                topo.nodes.push(Node::Docker(Box::new(node)));
            }
            topo.wait_ready(deadline, started, phase).await?;
        }
        topo.state.nodes = topo.nodes.iter().map(|n| n.record().clone()).collect();
        topo.state.write(&dir)?;
        tracing::info!(
            "topology '{}' ready in {} ms (docker, network {network})",
            cfg.name,
            started.elapsed().as_millis()
        );
        Ok(topo)
    }

    fn start_node(
        &mut self,
        binary: &Path,
        node: &NodeSpec,
        master: &NodeSpec,
    ) -> Result<(), TopologyError> {
        let sentinel = node.kind == NodeKind::Sentinel;
        let record = write_node(&self.cfg, &self.dir, node, master, None, "")?;
        tracing::info!("starting {} on {}", node.name, node.addr());
        self.nodes.push(Node::Process(process::spawn_node(
            binary, record, sentinel,
        )?));
        Ok(())
    }

    /// Polls until the started nodes are ready (data nodes only, or everything when
    /// `with_sentinels`), failing early when a node exits.
    async fn wait_ready(
        &mut self,
        deadline: Instant,
        started: Instant,
        with_sentinels: bool,
    ) -> Result<(), TopologyError> {
        let master_addr = self.nodes[0].record().spec.addr();
        let replicas = self.cfg.topology.replicas as usize;
        let sentinels = if with_sentinels {
            self.cfg.topology.sentinels as usize
        } else {
            0
        };
        let mut last = String::new();
        loop {
            let d = self.docker.clone();
            for n in &mut self.nodes {
                if let Some(report) = n.exit_report(d.as_ref()).await {
                    return Err(TopologyError::Start {
                        node: n.record().spec.name.clone(),
                        detail: report,
                    });
                }
            }
            let statuses = self.probe().await;
            match probe::health_problem(&statuses, &master_addr, replicas, sentinels) {
                None => return Ok(()),
                Some(p) => {
                    if p != last {
                        tracing::debug!("waiting: {p}");
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn probe(&self) -> Vec<NodeStatus> {
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| (n.record().spec.clone(), n.record().pid))
            .collect();
        probe::topology_status(
            &nodes,
            self.cfg.password.as_deref(),
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
    pub async fn down(mut self) -> Result<TeardownReport, TopologyError> {
        let started = Instant::now();
        let nodes = std::mem::take(&mut self.nodes);
        self.detached = true;
        let outcomes = match &self.docker {
            Some(d) => {
                let ids: Vec<Option<String>> =
                    nodes.iter().map(|n| n.record().container.clone()).collect();
                docker::remove(d, &ids, self.state.network.as_deref(), DOWN_GRACE).await
            }
            None => {
                let mut procs: Vec<ProcessNode> = nodes
                    .into_iter()
                    .filter_map(|n| match n {
                        Node::Process(p) => Some(p),
                        Node::Docker(_) => None,
                    })
                    .collect();
                tokio::task::spawn_blocking(move || process::stop_all(&mut procs, DOWN_GRACE))
                    .await
                    .expect("teardown task panicked")
            }
        };
        TopologyState::remove(&self.dir)?;
        Ok(teardown_report(&self.state, outcomes, started).await)
    }

    /// The record of node `name`.
    pub fn node(&self, name: &str) -> Result<&NodeRecord, TopologyError> {
        self.nodes
            .iter()
            .map(Node::record)
            .find(|r| r.spec.name == name)
            .ok_or_else(|| TopologyError::UnknownNode(name.to_string()))
    }

    fn node_index(&self, name: &str) -> Result<usize, TopologyError> {
        self.nodes
            .iter()
            .position(|n| n.record().spec.name == name)
            .ok_or_else(|| TopologyError::UnknownNode(name.to_string()))
    }

    /// Sends `signal` to node `name`. On docker, SIGSTOP / SIGCONT are `docker pause` /
    /// `unpause` and SIGKILL kills the container; other signals are refused.
    pub async fn signal(&self, name: &str, signal: i32) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        match &self.nodes[i] {
            Node::Process(n) => {
                let r = &n.record;
                match r.pid.filter(|pid| process::is_our_process(*pid, r)) {
                    Some(pid) => {
                        process::send_signal(pid, signal);
                        Ok(())
                    }
                    None => Err(TopologyError::UnknownNode(format!("{name} (not running)"))),
                }
            }
            Node::Docker(n) => {
                let d = self.docker.as_ref().expect("docker nodes have a client");
                match signal {
                    libc::SIGSTOP => n.pause(d, true).await,
                    libc::SIGCONT => n.pause(d, false).await,
                    libc::SIGKILL => n.kill(d).await,
                    _ => Err(TopologyError::Docker(format!(
                        "signal {signal} is not supported on containers"
                    ))),
                }
            }
        }
    }

    /// Stops node `name` where it is (SIGSTOP; `docker pause` on docker).
    pub async fn pause(&self, name: &str) -> Result<(), TopologyError> {
        self.signal(name, libc::SIGSTOP).await
    }

    /// Lets a paused node `name` continue (SIGCONT; `docker unpause` on docker).
    pub async fn resume(&self, name: &str) -> Result<(), TopologyError> {
        self.signal(name, libc::SIGCONT).await
    }

    /// Kills node `name` without grace (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self, name: &str) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        match &mut self.nodes[i] {
            Node::Process(n) => {
                process::stop_all(std::slice::from_mut(n), Duration::ZERO);
                Ok(())
            }
            Node::Docker(n) => {
                n.kill(self.docker.as_ref().expect("docker nodes have a client"))
                    .await
            }
        }
    }

    /// Cuts node `name` off from `peers` (node names) in `direction`; the host still
    /// reaches it. Docker backend only.
    pub async fn partition(
        &self,
        name: &str,
        peers: &[&str],
        direction: crate::config::PartitionDirection,
    ) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        let addrs: Vec<String> = peers
            .iter()
            .map(|p| self.node(p).map(|r| r.spec.host.clone()))
            .collect::<Result<_, _>>()?;
        match (&self.nodes[i], &self.docker) {
            (Node::Docker(n), Some(d)) => n.partition(d, &addrs, direction).await,
            _ => Err(TopologyError::NeedsBackend {
                what: "a network partition".into(),
                needs: BackendKind::Docker,
            }),
        }
    }

    /// Removes the partition rules of node `name`.
    pub async fn heal(&self, name: &str) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        match (&self.nodes[i], &self.docker) {
            (Node::Docker(n), Some(d)) => n.heal(d).await,
            _ => Err(TopologyError::NeedsBackend {
                what: "healing a partition".into(),
                needs: BackendKind::Docker,
            }),
        }
    }

    /// Starts node `name` again from its own directory and config (a data node keeps its
    /// data; a Sentinel keeps the state it rewrote into its config) and waits until it
    /// answers.
    pub async fn restart(&mut self, name: &str) -> Result<(), TopologyError> {
        let i = self.node_index(name)?;
        let d = self.docker.clone();
        match &mut self.nodes[i] {
            Node::Process(n) => {
                let binary = process::locate_binary(&self.cfg.redis_server)?;
                let record = n.record.clone();
                process::stop_all(std::slice::from_mut(n), Duration::ZERO);
                let sentinel = record.spec.kind == NodeKind::Sentinel;
                *n = process::spawn_node(&binary, record, sentinel)?;
                self.state.nodes[i] = n.record.clone();
                self.state.write(&self.dir)?;
            }
            Node::Docker(n) => {
                let d = d.as_ref().expect("docker nodes have a client");
                n.kill(d).await?;
                n.restart(d).await?;
            }
        }
        let sentinel = self.nodes[i].record().spec.kind == NodeKind::Sentinel;
        let pw = if sentinel {
            None
        } else {
            self.cfg.password.as_deref()
        };
        let spec = self.nodes[i].record().spec.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(report) = self.nodes[i].exit_report(d.as_ref()).await {
                return Err(TopologyError::Start {
                    node: name.to_string(),
                    detail: report,
                });
            }
            if let Ok(mut c) = probe::connect(&spec.host, spec.port, pw, probe::PROBE_TIMEOUT).await
            {
                if redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(TopologyError::Start {
                    node: name.to_string(),
                    detail: "did not answer PING within 10 s of restarting".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
        if let Some(network) = self.state.network.clone() {
            // Docker: the network exists from early in `up`, possibly with no node yet.
            let ids = self
                .nodes
                .iter()
                .filter_map(|n| n.record().container.clone())
                .collect();
            let run_dir = absolute(&self.cfg.run_dir)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            docker::remove_blocking(ids, network, run_dir);
            let _ = TopologyState::remove(&self.dir);
        } else if !self.nodes.is_empty() {
            for n in &mut self.nodes {
                if let Node::Process(p) = n {
                    process::stop_all(std::slice::from_mut(p), Duration::ZERO);
                }
            }
            let _ = TopologyState::remove(&self.dir);
        }
    }
}

/// Live status of a topology known from its state file.
pub async fn status_of(state: &TopologyState) -> StatusReport {
    let nodes: Vec<_> = state
        .nodes
        .iter()
        .map(|n| {
            let alive = n.pid.is_some_and(|pid| process::is_our_process(pid, n));
            (n.spec.clone(), n.pid.filter(|_| alive))
        })
        .collect();
    let statuses =
        probe::topology_status(&nodes, state.password.as_deref(), &state.master_name).await;
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
    let outcomes = match state.backend {
        BackendKind::Docker => {
            let d = docker::client()?;
            docker::check_engine(&d).await?;
            let ids: Vec<Option<String>> =
                state.nodes.iter().map(|n| n.container.clone()).collect();
            docker::remove(&d, &ids, state.network.as_deref(), DOWN_GRACE).await
        }
        BackendKind::Process => {
            let records = state.nodes.clone();
            tokio::task::spawn_blocking(move || process::stop_records(&records, DOWN_GRACE))
                .await
                .expect("teardown task panicked")
        }
    };
    TopologyState::remove(dir)?;
    Ok(teardown_report(&state, outcomes, started).await)
}

async fn teardown_report(
    state: &TopologyState,
    outcomes: Vec<StopOutcome>,
    started: Instant,
) -> TeardownReport {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let mut ports_still_open = Vec::new();
    let mut containers_left = Vec::new();
    match state.backend {
        // Container addresses vanish with their network; ask the engine instead of
        // sending traffic to an address that is no longer ours.
        BackendKind::Docker => {
            if let Ok(d) = docker::client() {
                for n in &state.nodes {
                    if let Some(id) = &n.container {
                        if d.inspect_container(id, None).await.is_ok() {
                            containers_left.push(n.spec.name.clone());
                        }
                    }
                }
                if let Some(net) = &state.network {
                    if d.inspect_network::<String>(net, None).await.is_ok() {
                        containers_left.push(format!("network {net}"));
                    }
                }
            }
        }
        BackendKind::Process => {
            for n in &state.nodes {
                let addr = n.spec.addr();
                let open = tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(&addr),
                )
                .await
                .is_ok_and(|r| r.is_ok());
                if open {
                    ports_still_open.push(n.spec.port);
                }
            }
        }
    }
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
        let alive = state
            .nodes
            .iter()
            .any(|n| n.pid.is_some_and(|pid| process::is_our_process(pid, n)));
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
