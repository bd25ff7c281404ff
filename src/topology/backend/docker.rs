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

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testcontainers::bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, KillContainerOptions,
    ListContainersOptions, RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
};
use testcontainers::bollard::image::CreateImageOptions;
use testcontainers::bollard::models::{HostConfig, Mount, MountTypeEnum, PortBinding};
use testcontainers::bollard::network::{CreateNetworkOptions, ListNetworksOptions};
pub use testcontainers::bollard::Docker;

use super::{BoxFuture, Capabilities, Leftovers, Origin};
use crate::config::{BackendKind, HarnessConfig, PartitionDirection};
use crate::topology::node::{log_tail, ConfigView, StopOutcome};
use crate::topology::spec::{self, NodeKind, NodeSpec};
use crate::topology::state::{NodeRecord, TopologyState};
use crate::topology::{absolute, TopologyError};

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
/// Label naming the node.
pub const LABEL_NODE: &str = "org.redis-harness.node";
/// Port of data nodes inside their container.
pub const DATA_PORT: u16 = 6379;
/// Port of Sentinels inside their container.
pub const SENTINEL_PORT: u16 = 26379;

fn err(what: &str, e: impl std::fmt::Display) -> TopologyError {
    TopologyError::Docker(format!("{what}: {e}"))
}

/// A client of the local engine (`DOCKER_HOST` or the default socket).
pub fn client() -> Result<Docker, TopologyError> {
    Docker::connect_with_local_defaults().map_err(|e| engine_missing(&e.to_string()))
}

fn engine_missing(detail: &str) -> TopologyError {
    TopologyError::Docker(format!(
        "no Docker engine answers ({detail}); start dockerd (or set DOCKER_HOST), or use --backend process"
    ))
}

/// Checks that an engine answers.
pub async fn check_engine(d: &Docker) -> Result<(), TopologyError> {
    match tokio::time::timeout(Duration::from_secs(5), d.ping()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(engine_missing(&e.to_string())),
        Err(_) => Err(engine_missing("no answer within 5 s")),
    }
}

/// Makes sure `image` is in the engine, pulling it when a registry is reachable.
pub async fn ensure_image(d: &Docker, image: &str) -> Result<(), TopologyError> {
    if d.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    use futures_util::StreamExt as _;
    let (name, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let mut pull = d.create_image(
        Some(CreateImageOptions {
            from_image: name,
            tag,
            ..Default::default()
        }),
        None,
        None,
    );
    let mut failure = None;
    let pulled = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(step) = pull.next().await {
            if let Err(e) = step {
                failure = Some(e.to_string());
                break;
            }
        }
    })
    .await;
    if pulled.is_ok() && failure.is_none() && d.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    Err(TopologyError::Docker(format!(
        "image {image} is not in the local Docker engine and pulling it failed ({}); without a registry, build the offline image with scripts/build-offline-image.sh and set `docker: {{image: redis-harness/redis:offline}}`",
        failure.unwrap_or_else(|| "timed out".into())
    )))
}

/// The labels every network and container of a topology carries: its name and the
/// absolute run directory.
pub fn topology_labels(name: &str, run_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (LABEL_TOPOLOGY, name.to_string()),
        (LABEL_RUN_DIR, run_dir.display().to_string()),
    ]
}

/// Creates the topology's network (a bridge) carrying `labels` from the start, so a run
/// killed right after this call still leaves nothing `down --all` cannot find. A network
/// of that name left by an earlier run is removed first.
pub async fn create_network(
    d: &Docker,
    name: &str,
    labels: &[(&'static str, String)],
) -> Result<(), TopologyError> {
    if d.inspect_network::<String>(name, None).await.is_ok() {
        d.remove_network(name).await.map_err(|e| {
            TopologyError::Docker(format!(
                "network {name} is left from an earlier run and cannot be removed ({e}); run `redis-harness down --all` first"
            ))
        })?;
    }
    d.create_network(CreateNetworkOptions {
        name,
        check_duplicate: true,
        driver: "bridge",
        labels: labels.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        ..Default::default()
    })
    .await
    .map_err(|e| err(&format!("creating network {name}"), e))?;
    Ok(())
}

/// Networks carrying `label=value`, by name.
pub async fn networks_labelled(
    d: &Docker,
    label: &str,
    value: &str,
) -> Result<Vec<String>, TopologyError> {
    let filter = format!("{label}={value}");
    let mut filters = HashMap::new();
    filters.insert("label", vec![filter.as_str()]);
    let list = d
        .list_networks(Some(ListNetworksOptions { filters }))
        .await
        .map_err(|e| err("listing networks", e))?;
    Ok(list.into_iter().filter_map(|n| n.name).collect())
}

/// Containers carrying `label=value`, running or not: (id, name).
pub async fn containers_labelled(
    d: &Docker,
    label: &str,
    value: &str,
) -> Result<Vec<(String, String)>, TopologyError> {
    let filter = format!("{label}={value}");
    let mut filters = HashMap::new();
    filters.insert("label", vec![filter.as_str()]);
    let list = d
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        }))
        .await
        .map_err(|e| err("listing containers", e))?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
            Some((c.id?, name.trim_start_matches('/').to_string()))
        })
        .collect())
}

/// Starts a node's container on `network` with its directory mounted at `/data`
/// (its config file must already be there) and returns its record (`container` holds the
/// id) with its address. Removing it is the topology's job (`down`, or its drop). Nothing is
/// published on the host unless `publish`, and then only the node's port on `127.0.0.1`
/// (a port the engine picks).
pub async fn start(
    d: &Docker,
    image: &str,
    network: &str,
    labels: &[(&'static str, String)],
    publish: bool,
    mut record: NodeRecord,
    sentinel: bool,
) -> Result<(NodeRecord, IpAddr), TopologyError> {
    let node = record.spec.name.clone();
    let failed = |detail: String| TopologyError::Start {
        node: node.clone(),
        detail,
    };
    let conf = if sentinel {
        "/data/sentinel.conf"
    } else {
        "/data/redis.conf"
    };
    let mut cmd = vec!["redis-server".to_string(), conf.to_string()];
    if sentinel {
        cmd.push("--sentinel".into());
    }
    let port = format!("{}/tcp", if sentinel { SENTINEL_PORT } else { DATA_PORT });
    let mut all_labels: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    all_labels.insert(LABEL_NODE.into(), node.clone());
    let host_config = HostConfig {
        network_mode: Some(network.to_string()),
        mounts: Some(vec![Mount {
            target: Some("/data".into()),
            source: Some(record.dir.display().to_string()),
            typ: Some(MountTypeEnum::BIND),
            ..Default::default()
        }]),
        // Never every port the image EXPOSEs, on every interface.
        publish_all_ports: Some(false),
        port_bindings: publish.then(|| {
            HashMap::from([(
                port.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])
        }),
        ..Default::default()
    };
    let config = Config {
        image: Some(image.to_string()),
        cmd: Some(cmd),
        labels: Some(all_labels),
        exposed_ports: Some(HashMap::from([(port, HashMap::new())])),
        host_config: Some(host_config),
        ..Default::default()
    };
    let name = format!("{network}-{node}");
    let created = d
        .create_container(
            Some(CreateContainerOptions {
                name: name.as_str(),
                platform: None,
            }),
            config,
        )
        .await
        .map_err(|e| failed(format!("container {name} could not be created: {e}")))?;
    record.container = Some(created.id.clone());
    let started = tokio::time::timeout(
        Duration::from_secs(60),
        d.start_container(&created.id, None::<StartContainerOptions<String>>),
    )
    .await;
    match started {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(failed(format!("container {name} did not start: {e}"))),
        Err(_) => {
            return Err(failed(format!(
                "container {name} did not start within 60 s"
            )))
        }
    }
    let ip: IpAddr = container_ip(d, &created.id)
        .await?
        .parse()
        .map_err(|e| err("reading the container address", e))?;
    if publish {
        if let Some(hp) = published_port(d, &created.id).await {
            tracing::info!("{node} is published on 127.0.0.1:{hp}");
        }
    }
    Ok((record, ip))
}

/// The host port a container's node port is published on, when it is.
async fn published_port(d: &Docker, id: &str) -> Option<String> {
    d.inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()?
        .network_settings?
        .ports?
        .into_values()
        .flatten()
        .flatten()
        .find_map(|b| b.host_port)
}

fn id(record: &NodeRecord) -> &str {
    record.container.as_deref().unwrap_or("")
}

/// When the container is no longer running: its state and the end of the node's log.
async fn exit_report(d: &Docker, record: &NodeRecord) -> Option<String> {
    let st = d
        .inspect_container(id(record), None::<InspectContainerOptions>)
        .await
        .ok()?
        .state?;
    if st.running == Some(true) {
        return None;
    }
    Some(format!(
        "container exited (code {}); log:\n{}",
        st.exit_code.unwrap_or(-1),
        log_tail(record, 15)
    ))
}

/// SIGKILL (no grace); the container stays, stopped.
async fn kill(d: &Docker, record: &NodeRecord) -> Result<(), TopologyError> {
    match d
        .kill_container(id(record), Some(KillContainerOptions { signal: "SIGKILL" }))
        .await
    {
        Ok(()) => Ok(()),
        // Already stopped.
        Err(e) if e.to_string().contains("is not running") => Ok(()),
        Err(e) => Err(err(&format!("killing {}", record.spec.name), e)),
    }
}

/// Starts the stopped container again; refuses if it came back on another address
/// (Sentinels and replicas know it by address).
async fn restart(d: &Docker, record: &NodeRecord) -> Result<(), TopologyError> {
    d.start_container(id(record), None::<StartContainerOptions<String>>)
        .await
        .map_err(|e| err(&format!("starting {}", record.spec.name), e))?;
    let now = container_ip(d, id(record)).await?;
    if now != record.spec.host {
        return Err(TopologyError::Start {
            node: record.spec.name.clone(),
            detail: format!(
                "the engine gave it a new address on restart ({now}, was {}); the topology cannot follow",
                record.spec.host
            ),
        });
    }
    Ok(())
}

/// `docker pause` (`true`) or `docker unpause` (`false`).
async fn pause(d: &Docker, record: &NodeRecord, paused: bool) -> Result<(), TopologyError> {
    let r = if paused {
        d.pause_container(id(record)).await
    } else {
        d.unpause_container(id(record)).await
    };
    let what = if paused { "pausing" } else { "unpausing" };
    r.map_err(|e| err(&format!("{what} {}", record.spec.name), e))
}

/// Drops the traffic between this container and `peers` (their addresses) in the
/// given direction; everything else, the host included, still gets through.
async fn partition(
    d: &Docker,
    record: &NodeRecord,
    peers: &[String],
    direction: PartitionDirection,
) -> Result<(), TopologyError> {
    let pid = container_pid(d, id(record)).await?;
    for peer in peers {
        if direction != PartitionDirection::Outbound {
            nsenter_iptables(pid, &["-A", "INPUT", "-s", peer, "-j", "DROP"])?;
        }
        if direction != PartitionDirection::Inbound {
            nsenter_iptables(pid, &["-A", "OUTPUT", "-d", peer, "-j", "DROP"])?;
        }
    }
    Ok(())
}

/// Removes every partition rule.
async fn heal(d: &Docker, record: &NodeRecord) -> Result<(), TopologyError> {
    let pid = container_pid(d, id(record)).await?;
    nsenter_iptables(pid, &["-F", "INPUT"])?;
    nsenter_iptables(pid, &["-F", "OUTPUT"])
}

async fn container_pid(d: &Docker, id: &str) -> Result<i64, TopologyError> {
    d.inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| err("inspecting a container", e))?
        .state
        .and_then(|s| s.pid)
        .filter(|p| *p > 0)
        .ok_or_else(|| TopologyError::Docker(format!("container {id} is not running")))
}

async fn container_ip(d: &Docker, id: &str) -> Result<String, TopologyError> {
    d.inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| err("inspecting a container", e))?
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.into_values().find_map(|e| e.ip_address))
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| TopologyError::Docker(format!("container {id} has no address")))
}

fn nsenter_iptables(pid: i64, args: &[&str]) -> Result<(), TopologyError> {
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "iptables", "-w"])
        .args(args)
        .output()
        .map_err(|e| {
            TopologyError::Docker(format!(
                "partitions need nsenter and iptables on the host, run as root ({e}); apt-get install util-linux iptables"
            ))
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TopologyError::Docker(format!(
            "iptables {} in the container's network namespace failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Stops (SIGTERM, SIGKILL after `grace`) and removes containers by id, then removes
/// `network`; containers already gone count as not running.
pub async fn remove(
    d: &Docker,
    ids: &[Option<String>],
    network: Option<&str>,
    grace: Duration,
) -> Vec<StopOutcome> {
    let stops = ids.iter().map(|id| async move {
        let Some(id) = id else {
            return StopOutcome::NotRunning;
        };
        let running = d
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state?.running)
            .unwrap_or(false);
        if running && !grace.is_zero() {
            let _ = d
                .stop_container(
                    id,
                    Some(StopContainerOptions {
                        t: grace.as_secs().max(1) as i64,
                    }),
                )
                .await;
        }
        let _ = d
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
        match (running, grace.is_zero()) {
            (false, _) => StopOutcome::NotRunning,
            (true, true) => StopOutcome::Killed,
            (true, false) => StopOutcome::Terminated,
        }
    });
    let outcomes = futures_util::future::join_all(stops).await;
    if let Some(n) = network {
        let _ = d.remove_network(n).await;
    }
    outcomes
}

/// What [`remove_all_under`] removed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Container names.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
}

/// Removes every container labelled with `run_dir`, the networks they were on, and every
/// network labelled with `run_dir` even when no container is left on it (the cleanup after
/// a run that crashed before writing its state file).
pub async fn remove_all_under(d: &Docker, run_dir: &Path) -> Result<Removed, TopologyError> {
    let run_dir = run_dir.display().to_string();
    let found = containers_labelled(d, LABEL_RUN_DIR, &run_dir).await?;
    let mut networks = Vec::new();
    for (id, _) in &found {
        if let Ok(c) = d
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            if let Some(n) = c.network_settings.and_then(|n| n.networks) {
                // Networks of older runs carry no labels; ours are named rh-...
                networks.extend(n.into_keys().filter(|n| n.starts_with("rh-")));
            }
        }
    }
    let ids: Vec<Option<String>> = found.iter().map(|(id, _)| Some(id.clone())).collect();
    remove(d, &ids, None, Duration::ZERO).await;
    networks.extend(networks_labelled(d, LABEL_RUN_DIR, &run_dir).await?);
    networks.sort();
    networks.dedup();
    let mut removed = Vec::new();
    for n in networks {
        match d.remove_network(&n).await {
            Ok(()) => removed.push(n),
            Err(e) => tracing::warn!("could not remove network {n}: {e}"),
        }
    }
    Ok(Removed {
        containers: found.into_iter().map(|(_, name)| name).collect(),
        networks: removed,
    })
}

/// Force-removes a topology's containers (the recorded `ids`, plus any container of its
/// network's naming that carries the `run_dir` label: one created but not yet recorded)
/// and then its `network`, from a thread of its own with its own runtime and client, so
/// it works from `Drop` on any runtime, or none, and during a panic. Bounded to 30 s.
pub fn remove_blocking(ids: Vec<String>, network: String, run_dir: String) {
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(d) = client() else { return };
            let cleanup = async {
                let mut ids = ids;
                let prefix = format!("{network}-");
                if let Ok(found) = containers_labelled(&d, LABEL_RUN_DIR, &run_dir).await {
                    ids.extend(
                        found
                            .into_iter()
                            .filter(|(_, name)| name.starts_with(&prefix))
                            .map(|(id, _)| id),
                    );
                }
                ids.sort();
                ids.dedup();
                let ids: Vec<Option<String>> = ids.into_iter().map(Some).collect();
                remove(&d, &ids, Some(&network), Duration::ZERO).await;
            };
            if tokio::time::timeout(Duration::from_secs(30), cleanup)
                .await
                .is_err()
            {
                tracing::warn!("removing the containers of network {network} took over 30 s");
            }
        });
    });
    let _ = worker.join();
}

/// The network name of a topology: `rh-<name>-<hash of its directory>` (unique per run
/// directory, stable across runs).
pub fn network_name(name: &str, dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.display().to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("rh-{name}-{:08x}", h as u32)
}

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
            },
            Origin::State(state) => Self {
                docker: None,
                image: String::new(),
                publish: false,
                name: state.name.clone(),
                run_dir: None,
                network: state.network.clone(),
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

    fn preflight<'a>(
        &'a mut self,
        cfg: &'a HarnessConfig,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<String, TopologyError>> {
        Box::pin(async move {
            let d = client()?;
            check_engine(&d).await?;
            ensure_image(&d, &cfg.docker.image).await?;
            self.docker = Some(d.clone());
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
        // Inside its container a node listens on every interface of its own network
        // namespace; its address is known once the container runs.
        Ok(spec::node_names(cfg)
            .into_iter()
            .map(|(name, kind)| NodeSpec {
                name,
                kind,
                host: "0.0.0.0".into(),
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
            // Labelled from its creation: a run killed from here on leaves nothing that
            // `down --all` cannot find. Once it is recorded, dropping the topology
            // removes it.
            create_network(&d, &network, &self.labels()).await?;
            state.network = Some(network);
            Ok(())
        })
    }

    fn config_view(&self) -> ConfigView {
        // The network is the topology's own; nodes accept its peers and the host.
        ConfigView {
            dir: Some("/data"),
            extra: "protected-mode no\n",
        }
    }

    fn start(&mut self, record: NodeRecord) -> BoxFuture<'_, Result<NodeRecord, TopologyError>> {
        Box::pin(async move {
            let d = self.engine()?;
            let network = self.network.as_deref().unwrap_or_default();
            let name = record.spec.name.clone();
            let sentinel = record.spec.kind == NodeKind::Sentinel;
            tracing::info!("starting {name} as a container on network {network}");
            let (mut record, ip) = start(
                d,
                &self.image,
                network,
                &self.labels(),
                self.publish,
                record,
                sentinel,
            )
            .await?;
            record.spec.host = ip.to_string();
            tracing::info!("{name} is at {}", record.spec.addr());
            Ok(record)
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

    fn pause<'a>(&'a self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
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
            Ok(remove(&d, &ids, state.network.as_deref(), grace).await)
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
            for n in &state.nodes {
                if let Some(id) = &n.container {
                    if d.inspect_container(id, None).await.is_ok() {
                        left.containers_left.push(n.spec.name.clone());
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
