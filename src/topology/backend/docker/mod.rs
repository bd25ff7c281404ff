//! The docker backend: every node a container on a private network per topology, its
//! directory (config, data, log) bind-mounted at `/data`, network and containers labelled
//! so `down` (and `down --all` after a crash) finds them. Nodes listen on their container
//! address, which the host reaches directly, so clients on the host use exactly what
//! Sentinel announces; nothing is published on the host unless `docker.publish` asks for
//! it, and then only on `127.0.0.1`.
//!
//! The engine is driven through the bollard client that testcontainers ships. Containers
//! are created with bollard directly rather than through testcontainers' runner: in
//! testcontainers 0.23 a request without mapped ports gets `PublishAllPorts: true` (every
//! port the image EXPOSEs published on 0.0.0.0 and `[::]`), and mapped ports are bound with
//! no host address, i.e. on every interface; neither can be turned off. The network is
//! created here too, so it carries the topology's labels from its first moment.
//!
//! Faults: kill (SIGKILL, no grace), pause (`docker pause`), and partitions: iptables rules
//! inside a container's network namespace (entered with `nsenter` from the host), which cut
//! it off from chosen peers while the host still reaches it.
//!
//! Once the Sentinels are ready, the commander (the harness's console, `docker.console`)
//! joins the network as one more labelled container, published on `127.0.0.1` only.
//!
//! - `engine`: client, engine check, image.
//! - `network`: network, labels, removal.
//! - `container`: a node's container and its faults but partitions.
//! - `partition`: cutting a container off from peers, and healing.
//! - `commander`: the console's container.

mod commander;
mod container;
mod engine;
mod network;
mod partition;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use testcontainers::bollard::Docker;

use super::{BoxFuture, Capabilities, ConsoleLaunch, Leftovers, Origin};
use crate::config::{BackendKind, HarnessConfig, PartitionDirection};
use crate::topology::node::{ConfigView, StopOutcome};
use crate::topology::spec::{self, NodeKind, NodeSpec};
use crate::topology::state::{NodeRecord, TopologyState};
use crate::topology::{absolute, TopologyError};

use commander::Commander;
pub use commander::{COMMANDER, CONSOLE_PORT};
pub use container::*;
pub use engine::*;
pub use network::*;
use partition::*;

/// Containers can be killed, restarted, paused and partitioned.
pub const CAPABILITIES: Capabilities = Capabilities {
    kill_restart: true,
    pause: true,
    partition: true,
};

/// Label naming the topology.
pub const LABEL_TOPOLOGY: &str = "org.redis-harness.topology";

/// Label holding the absolute run directory (what `down --all` matches).
pub const LABEL_RUN_DIR: &str = "org.redis-harness.run-dir";

/// Label naming the node (`commander` for the console).
pub const LABEL_NODE: &str = "org.redis-harness.node";

/// Label of the console image: the harness version its binary was built from
/// (`scripts/build-offline-image.sh` sets it, with `org.redis-harness.binary-sha256`).
pub const LABEL_VERSION: &str = "org.redis-harness.version";

/// Port of data nodes inside their container.
pub const DATA_PORT: u16 = 6379;

/// Port of Sentinels inside their container.
pub const SENTINEL_PORT: u16 = 26379;

/// The docker backend: one engine client, one network per topology, a container per node.
#[derive(Debug)]
pub(crate) struct DockerBackend {
    /// The engine; connected by the preflight, or on first use for a recorded topology.
    docker: Option<Docker>,
    /// Image the nodes run.
    image: String,
    /// Publish node ports on `127.0.0.1`.
    publish: bool,
    /// Topology name (labels).
    name: String,
    /// Absolute run directory (labels, and what a cleanup matches).
    run_dir: Option<PathBuf>,
    /// The topology's network.
    network: Option<String>,
    /// The console container to start once the Sentinels are ready, if any.
    commander: Option<Commander>,
    /// Range the network's subnet is taken from (`docker.subnets`).
    pool: Option<Subnet>,
    /// The network's subnet, once it exists; nodes get its addresses from the second on.
    subnet: Option<Subnet>,
}

impl DockerBackend {
    pub(crate) fn new(origin: Origin<'_>) -> Self {
        match origin {
            Origin::Config(cfg) => Self {
                docker: None,
                image: cfg.docker.image.clone(),
                publish: cfg.docker.publish,
                name: cfg.name.clone(),
                run_dir: None,
                network: None,
                commander: Commander::from_config(cfg),
                pool: Subnet::parse(&cfg.docker.subnets).ok(),
                subnet: None,
            },
            Origin::State(state) => Self {
                docker: None,
                image: String::new(),
                publish: false,
                name: state.name.clone(),
                run_dir: None,
                network: state.network.clone(),
                commander: None,
                pool: None,
                subnet: None,
            },
        }
    }

    /// The engine client of a started topology.
    fn engine(&self) -> Result<&Docker, TopologyError> {
        self.docker
            .as_ref()
            .ok_or_else(|| TopologyError::Docker("no engine client: nothing was started".into()))
    }

    /// The engine client, connecting (and checking that the engine answers) if needed.
    async fn connect(&mut self) -> Result<Docker, TopologyError> {
        if let Some(d) = &self.docker {
            return Ok(d.clone());
        }
        let d = client()?;
        check_engine(&d).await?;
        self.docker = Some(d.clone());
        Ok(d)
    }

    fn labels(&self) -> Vec<(&'static str, String)> {
        let run_dir = self.run_dir.clone().unwrap_or_default();
        topology_labels(&self.name, &run_dir)
    }
}

impl super::Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn preflight<'a>(
        &'a mut self,
        cfg: &'a HarnessConfig,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<String, TopologyError>> {
        Box::pin(async move {
            let d = self.connect().await?;
            ensure_image(&d, &cfg.docker.image).await?;
            if let Some(c) = &self.commander {
                c.check_image(&d).await?;
            }
            let run_dir = absolute(&cfg.run_dir)?;
            let network = network_name(&cfg.name, dir);
            let leftovers: Vec<String> =
                containers_labelled(&d, LABEL_RUN_DIR, &run_dir.display().to_string())
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
            self.run_dir = Some(run_dir);
            self.network = Some(network);
            Ok(format!("image {}", cfg.docker.image))
        })
    }

    fn plan(&self, cfg: &HarnessConfig) -> Result<Vec<NodeSpec>, TopologyError> {
        // Addresses on the topology's own subnet, chosen here (the gateway is the first),
        // so every container can start at once with its config complete.
        let subnet = self
            .subnet
            .ok_or_else(|| TopologyError::Docker("no network provisioned".into()))?;
        Ok(spec::node_names(cfg)
            .into_iter()
            .zip(2..)
            .map(|((name, kind), i)| NodeSpec {
                name,
                kind,
                host: subnet.nth(i).to_string(),
                port: if kind == NodeKind::Sentinel {
                    SENTINEL_PORT
                } else {
                    DATA_PORT
                },
            })
            .collect())
    }

    fn provision<'a>(
        &'a mut self,
        state: &'a mut TopologyState,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            let d = self.engine()?.clone();
            let network = self
                .network
                .clone()
                .ok_or_else(|| TopologyError::Docker("no network planned".into()))?;
            let pool = self.pool.ok_or_else(|| {
                TopologyError::Docker("docker.subnets is not an IPv4 range".into())
            })?;
            // Labelled from its creation: a run killed from here on leaves nothing that
            // `down --all` cannot find. Once it is recorded, dropping the topology
            // removes it.
            self.subnet = Some(create_network(&d, &network, &self.labels(), pool).await?);
            state.network = Some(network);
            Ok(())
        })
    }

    fn launch_console(&self, state: &TopologyState) -> Option<ConsoleLaunch> {
        let commander = self.commander.clone()?;
        let d = self.docker.clone();
        let network = self.network.clone().unwrap_or_default();
        let labels = self.labels();
        let state = state.clone();
        Some(Box::pin(async move {
            match d {
                Some(d) => commander.launch(d, network, labels, state).await,
                None => (
                    None,
                    Err(TopologyError::Docker(
                        "no engine client: nothing was started".into(),
                    )),
                ),
            }
        }))
    }

    fn config_view(&self) -> ConfigView {
        // The network is the topology's own; nodes accept its peers and the host.
        ConfigView {
            dir: Some("/data"),
            bind: Some("0.0.0.0"),
            extra: "protected-mode no\n",
        }
    }

    fn start(&mut self, record: NodeRecord) -> BoxFuture<'_, Result<NodeRecord, TopologyError>> {
        Box::pin(async move {
            let (mut started, result) = self.start_all(vec![record]).await;
            result?;
            started
                .pop()
                .ok_or_else(|| TopologyError::Docker("no container was started".into()))
        })
    }

    fn start_all(
        &mut self,
        records: Vec<NodeRecord>,
    ) -> BoxFuture<'_, (Vec<NodeRecord>, Result<(), TopologyError>)> {
        Box::pin(async move {
            let d = match self.engine() {
                Ok(d) => d.clone(),
                Err(e) => return (Vec::new(), Err(e)),
            };
            let network = self.network.clone().unwrap_or_default();
            let labels = self.labels();
            // Every address is planned: the containers are created and started at once.
            let starts = records.into_iter().map(|record| {
                tracing::info!(
                    "starting {} as a container at {} on network {network}",
                    record.spec.name,
                    record.spec.addr()
                );
                start(&d, &self.image, &network, &labels, self.publish, record)
            });
            let mut started = Vec::new();
            let mut first_error = Ok(());
            for (record, result) in futures_util::future::join_all(starts).await {
                if record.container.is_some() {
                    started.push(record);
                }
                if let (Err(e), Ok(())) = (result, &first_error) {
                    first_error = Err(e);
                }
            }
            (started, first_error)
        })
    }

    fn exit_report<'a>(&'a mut self, record: &'a NodeRecord) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            match &self.docker {
                Some(d) => exit_report(d, record).await,
                None => None,
            }
        })
    }

    fn kill<'a>(&'a mut self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move { kill(self.engine()?, record).await })
    }

    fn restart<'a>(
        &'a mut self,
        record: &'a mut NodeRecord,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            let d = self.engine()?;
            kill(d, record).await?;
            restart(d, record).await
        })
    }

    fn pause<'a>(
        &'a self,
        record: &'a NodeRecord,
        _hold: Duration,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move { pause(self.engine()?, record, true).await })
    }

    fn resume<'a>(&'a self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move { pause(self.engine()?, record, false).await })
    }

    fn partition<'a>(
        &'a self,
        record: &'a NodeRecord,
        peers: &'a [String],
        direction: PartitionDirection,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move { partition(self.engine()?, record, peers, direction).await })
    }

    fn heal<'a>(&'a self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move { heal(self.engine()?, record).await })
    }

    fn stop<'a>(
        &'a mut self,
        state: &'a TopologyState,
        grace: Duration,
    ) -> BoxFuture<'a, Result<Vec<StopOutcome>, TopologyError>> {
        Box::pin(async move {
            let d = self.connect().await?;
            let ids: Vec<Option<String>> =
                state.nodes.iter().map(|n| n.container.clone()).collect();
            // The console keeps nothing: removed at once, beside the nodes' graceful stop;
            // the network once both are gone.
            let (_, outcomes) = futures_util::future::join(
                remove(&d, &[console_container(state)], None, Duration::ZERO),
                remove(&d, &ids, None, grace),
            )
            .await;
            if let Some(n) = &state.network {
                let _ = d.remove_network(n).await;
            }
            Ok(outcomes)
        })
    }

    fn leftovers<'a>(&'a self, state: &'a TopologyState) -> BoxFuture<'a, Leftovers> {
        // Container addresses vanish with their network; ask the engine instead of
        // sending traffic to an address that is no longer ours.
        Box::pin(async move {
            let mut left = Leftovers::default();
            let Some(d) = self.docker.clone().or_else(|| client().ok()) else {
                return left;
            };
            let nodes = state
                .nodes
                .iter()
                .map(|n| (n.spec.name.as_str(), n.container.clone()));
            let console = std::iter::once((COMMANDER, console_container(state)));
            for (name, id) in nodes.chain(console) {
                if let Some(id) = id {
                    if d.inspect_container(&id, None).await.is_ok() {
                        left.containers_left.push(name.to_string());
                    }
                }
            }
            if let Some(net) = &state.network {
                if d.inspect_network::<String>(net, None).await.is_ok() {
                    left.containers_left.push(format!("network {net}"));
                }
            }
            left
        })
    }

    fn cleanup_blocking(&mut self, state: &TopologyState) -> bool {
        // The network exists from early in `up`, possibly with no node yet.
        let Some(network) = state.network.clone() else {
            return false;
        };
        let ids = state
            .nodes
            .iter()
            .filter_map(|n| n.container.clone())
            .chain(console_container(state))
            .collect();
        let run_dir = self
            .run_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        remove_blocking(ids, network, run_dir);
        true
    }
}

/// The commander's container id, when one was started.
fn console_container(state: &TopologyState) -> Option<String> {
    state.console.as_ref()?.container.clone()
}
