//! The docker backend: every node a container started with testcontainers on a private
//! network per topology, its directory (config, data, log) bind-mounted at `/data`, and
//! labelled so `down` (and `down --all` after a crash) finds it. Nodes listen on their
//! container address, which the host reaches directly, so clients on the host use exactly
//! what Sentinel announces.
//!
//! Faults: kill (SIGKILL, no grace), pause (`docker pause`), and partitions: iptables rules
//! inside a container's network namespace (entered with `nsenter` from the host), which cut
//! it off from chosen peers while the host still reaches it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::container::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
    StartContainerOptions, StopContainerOptions,
};
use testcontainers::bollard::image::CreateImageOptions;
pub use testcontainers::bollard::Docker;
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

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

/// One node's container.
pub struct DockerNode {
    /// What the state file records about it (`container` holds the id).
    pub record: NodeRecord,
    container: Option<ContainerAsync<GenericImage>>,
}

impl std::fmt::Debug for DockerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerNode")
            .field("record", &self.record)
            .finish()
    }
}

/// Starts a node's container on `network` with its directory mounted at `/data`
/// (its config file must already be there) and returns it with its address.
pub async fn start(
    image: &str,
    network: &str,
    labels: &[(&str, String)],
    mut record: NodeRecord,
    sentinel: bool,
) -> Result<(DockerNode, IpAddr), TopologyError> {
    let (name, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let conf = if sentinel {
        "/data/sentinel.conf"
    } else {
        "/data/redis.conf"
    };
    let mut cmd = vec!["redis-server", conf];
    if sentinel {
        cmd.push("--sentinel");
    }
    let mut req = GenericImage::new(name, tag)
        .with_network(network)
        .with_container_name(format!("{network}-{}", record.spec.name))
        .with_mount(Mount::bind_mount(record.dir.display().to_string(), "/data"))
        .with_cmd(cmd)
        .with_startup_timeout(Duration::from_secs(60))
        .with_label(LABEL_NODE, record.spec.name.clone());
    for (k, v) in labels {
        req = req.with_label(*k, v.clone());
    }
    let container = req.start().await.map_err(|e| TopologyError::Start {
        node: record.spec.name.clone(),
        detail: format!("container did not start: {e}"),
    })?;
    let ip = container
        .get_bridge_ip_address()
        .await
        .map_err(|e| err("reading the container address", e))?;
    record.container = Some(container.id().to_string());
    Ok((
        DockerNode {
            record,
            container: Some(container),
        },
        ip,
    ))
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

    /// Leaves the container running after this handle is dropped.
    pub fn detach(&mut self) {
        if let Some(c) = self.container.take() {
            std::mem::forget(c);
        }
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

/// Removes every container labelled with `run_dir` and the networks they were on (the
/// cleanup after a run that crashed before writing its state file). Returns their names.
pub async fn remove_all_under(d: &Docker, run_dir: &Path) -> Result<Vec<String>, TopologyError> {
    let found = containers_labelled(d, LABEL_RUN_DIR, &run_dir.display().to_string()).await?;
    let mut networks = Vec::new();
    for (id, _) in &found {
        if let Ok(c) = d
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            if let Some(n) = c.network_settings.and_then(|n| n.networks) {
                networks.extend(n.into_keys());
            }
        }
    }
    let ids: Vec<Option<String>> = found.iter().map(|(id, _)| Some(id.clone())).collect();
    remove(d, &ids, None, Duration::ZERO).await;
    networks.sort();
    networks.dedup();
    for n in networks.iter().filter(|n| n.starts_with("rh-")) {
        let _ = d.remove_network(n).await;
    }
    Ok(found.into_iter().map(|(_, name)| name).collect())
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
