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
//! port the image EXPOSEs published on 0.0.0.0 and [::]), and mapped ports are bound with
//! no host address, i.e. on every interface; neither can be turned off. The network is
//! created here too, so it carries the topology's labels from its first moment.
//!
//! Faults: kill (SIGKILL, no grace), pause (`docker pause`), and partitions: iptables rules
//! inside a container's network namespace (entered with `nsenter` from the host), which cut
//! it off from chosen peers while the host still reaches it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, KillContainerOptions,
    ListContainersOptions, RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
};
use testcontainers::bollard::image::CreateImageOptions;
use testcontainers::bollard::models::{HostConfig, Mount, MountTypeEnum, PortBinding};
use testcontainers::bollard::network::{CreateNetworkOptions, ListNetworksOptions};
pub use testcontainers::bollard::Docker;

use super::process::{log_tail, StopOutcome};
use super::state::NodeRecord;
use super::TopologyError;
use crate::config::PartitionDirection;

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

/// One node's container. Removing it is the topology's job (`down`, or its drop).
#[derive(Debug)]
pub struct DockerNode {
    /// What the state file records about it (`container` holds the id).
    pub record: NodeRecord,
}

/// Starts a node's container on `network` with its directory mounted at `/data`
/// (its config file must already be there) and returns it with its address. Nothing is
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
) -> Result<(DockerNode, IpAddr), TopologyError> {
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
    Ok((DockerNode { record }, ip))
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

impl DockerNode {
    fn id(&self) -> &str {
        self.record.container.as_deref().unwrap_or("")
    }

    /// When the container is no longer running: its state and the end of the node's log.
    pub async fn exit_report(&self, d: &Docker) -> Option<String> {
        let st = d
            .inspect_container(self.id(), None::<InspectContainerOptions>)
            .await
            .ok()?
            .state?;
        if st.running == Some(true) {
            return None;
        }
        Some(format!(
            "container exited (code {}); log:\n{}",
            st.exit_code.unwrap_or(-1),
            log_tail(&self.record, 15)
        ))
    }

    /// SIGKILL (no grace); the container stays, stopped.
    pub async fn kill(&self, d: &Docker) -> Result<(), TopologyError> {
        match d
            .kill_container(self.id(), Some(KillContainerOptions { signal: "SIGKILL" }))
            .await
        {
            Ok(()) => Ok(()),
            // Already stopped.
            Err(e) if e.to_string().contains("is not running") => Ok(()),
            Err(e) => Err(err(&format!("killing {}", self.record.spec.name), e)),
        }
    }

    /// Starts the stopped container again; refuses if it came back on another address
    /// (Sentinels and replicas know it by address).
    pub async fn restart(&self, d: &Docker) -> Result<(), TopologyError> {
        d.start_container(self.id(), None::<StartContainerOptions<String>>)
            .await
            .map_err(|e| err(&format!("starting {}", self.record.spec.name), e))?;
        let now = container_ip(d, self.id()).await?;
        if now != self.record.spec.host {
            return Err(TopologyError::Start {
                node: self.record.spec.name.clone(),
                detail: format!(
                    "the engine gave it a new address on restart ({now}, was {}); the topology cannot follow",
                    self.record.spec.host
                ),
            });
        }
        Ok(())
    }

    /// `docker pause` (`true`) or `docker unpause` (`false`).
    pub async fn pause(&self, d: &Docker, paused: bool) -> Result<(), TopologyError> {
        let r = if paused {
            d.pause_container(self.id()).await
        } else {
            d.unpause_container(self.id()).await
        };
        r.map_err(|e| err(&format!("pausing {}", self.record.spec.name), e))
    }

    /// Drops the traffic between this container and `peers` (their addresses) in the
    /// given direction; everything else, the host included, still gets through.
    pub async fn partition(
        &self,
        d: &Docker,
        peers: &[String],
        direction: PartitionDirection,
    ) -> Result<(), TopologyError> {
        let pid = container_pid(d, self.id()).await?;
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
    pub async fn heal(&self, d: &Docker) -> Result<(), TopologyError> {
        let pid = container_pid(d, self.id()).await?;
        nsenter_iptables(pid, &["-F", "INPUT"])?;
        nsenter_iptables(pid, &["-F", "OUTPUT"])
    }
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
