//! The topology's network and labels, and removing what a topology left (by id, or by
//! the run-directory label after a crash).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::container::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use testcontainers::bollard::models::{Ipam, IpamConfig};
use testcontainers::bollard::network::{CreateNetworkOptions, ListNetworksOptions};
use testcontainers::bollard::Docker;

use crate::topology::node::StopOutcome;
use crate::topology::TopologyError;

use super::container::is_running;
use super::engine::{client, err};
use super::{LABEL_RUN_DIR, LABEL_TOPOLOGY};

/// The labels every network and container of a topology carries: its name and the
/// absolute run directory.
pub fn topology_labels(name: &str, run_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (LABEL_TOPOLOGY, name.to_string()),
        (LABEL_RUN_DIR, run_dir.display().to_string()),
    ]
}

/// An IPv4 subnet, `base/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// First address (host bits zero).
    pub base: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` (host bits must be zero).
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a.b.c.d/prefix"))?;
        let base: Ipv4Addr = ip
            .parse()
            .map_err(|e| format!("{ip:?} is not an IPv4 address ({e})"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{prefix:?} is not a prefix length 0..=32"))?;
        let s = Subnet { base, prefix };
        if u32::from(base) & !s.mask() != 0 {
            return Err(format!("{text} has host bits set"));
        }
        Ok(s)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    fn last(&self) -> u32 {
        u32::from(self.base) | !self.mask()
    }

    /// Whether the two share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        u32::from(self.base) <= other.last() && u32::from(other.base) <= self.last()
    }

    /// The `i`-th address inside it (0 is the base).
    pub fn nth(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + i)
    }

    /// The /24 subnets inside it, starting at the `start`-th and wrapping around.
    pub fn slash24s(&self, start: u32) -> Vec<Subnet> {
        let count = 1u32 << (24 - u32::from(self.prefix.min(24)));
        (0..count)
            .map(|k| Subnet {
                base: Ipv4Addr::from(u32::from(self.base) + (((start % count + k) % count) << 8)),
                prefix: 24,
            })
            .collect()
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// IPv4 subnets of every network the engine has.
async fn subnets_in_use(d: &Docker) -> Result<Vec<Subnet>, TopologyError> {
    let list = d
        .list_networks(None::<ListNetworksOptions<String>>)
        .await
        .map_err(|e| err("listing networks", e))?;
    Ok(list
        .into_iter()
        .filter_map(|n| n.ipam?.config)
        .flatten()
        .filter_map(|c| Subnet::parse(&c.subnet?).ok())
        .collect())
}

/// Creates the topology's network (a bridge) on a /24 of `pool` that no other network of
/// the engine uses (so every address can be chosen before the first container starts),
/// carrying `labels` from the start, so a run killed right after this call still leaves
/// nothing `down --all` cannot find. A network of that name left by an earlier run is
/// removed first. Returns the subnet: its gateway is its first address, nodes are planned
/// from the second, and the engine's own choices come from its upper half.
pub async fn create_network(
    d: &Docker,
    name: &str,
    labels: &[(&'static str, String)],
    pool: Subnet,
) -> Result<Subnet, TopologyError> {
    if d.inspect_network::<String>(name, None).await.is_ok() {
        d.remove_network(name).await.map_err(|e| {
            TopologyError::Docker(format!(
                "network {name} is left from an earlier run and cannot be removed ({e}); run `redis-harness down --all` first"
            ))
        })?;
    }
    // Topologies started at the same moment start their search at different places, and
    // one that loses a race to the same subnet moves on to the next.
    let mut seed = [0u8; 4];
    getrandom::fill(&mut seed).expect("the operating system's random source answers");
    let mut last_error = None;
    for _attempt in 0..4 {
        let used = subnets_in_use(d).await?;
        let Some(subnet) = pool
            .slash24s(u32::from_le_bytes(seed))
            .into_iter()
            .find(|s| !used.iter().any(|u| u.overlaps(s)))
        else {
            return Err(TopologyError::Docker(format!(
                "no free /24 left in docker.subnets {pool}: every one overlaps a network of the engine; remove old networks or choose another range"
            )));
        };
        let created = d
            .create_network(CreateNetworkOptions {
                name,
                check_duplicate: true,
                driver: "bridge",
                ipam: Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        gateway: Some(subnet.nth(1).to_string()),
                        // The engine hands out addresses itself (the commander) only
                        // from the upper half; the nodes' planned ones are below.
                        ip_range: Some(format!("{}/25", subnet.nth(128))),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                labels: labels.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => return Ok(subnet),
            Err(e) if e.to_string().contains("overlap") => last_error = Some(e),
            Err(e) => return Err(err(&format!("creating network {name}"), e)),
        }
    }
    Err(err(
        &format!("creating network {name} (every free subnet was taken meanwhile)"),
        last_error.expect("an attempt failed"),
    ))
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
        let running = is_running(d, id).await;
        if running && !grace.is_zero() {
            // SIGTERM, asked again every 200 ms: Redis refuses one while it writes its
            // initial AOF (a replica just after its first sync), and exits on the next.
            let deadline = tokio::time::Instant::now() + grace;
            for ask in 0.. {
                if ask % 4 == 0 {
                    let _ = d
                        .kill_container(id, Some(KillContainerOptions { signal: "SIGTERM" }))
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                if !is_running(d, id).await || tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_overlap_and_split() {
        let pool = Subnet::parse("172.29.0.0/16").unwrap();
        assert_eq!(pool.to_string(), "172.29.0.0/16");
        assert!(Subnet::parse("172.29.0.1/16")
            .unwrap_err()
            .contains("host bits"));
        assert!(Subnet::parse("172.29.0.0").is_err());
        assert!(Subnet::parse("172.29.0.0/33").is_err());
        let all = pool.slash24s(300);
        assert_eq!(all.len(), 256);
        assert_eq!(all[0].to_string(), "172.29.44.0/24");
        assert_eq!(all[255].to_string(), "172.29.43.0/24");
        let a = Subnet::parse("172.29.44.0/24").unwrap();
        assert!(a.overlaps(&pool) && pool.overlaps(&a));
        assert!(!a.overlaps(&Subnet::parse("172.29.45.0/24").unwrap()));
        assert!(!a.overlaps(&Subnet::parse("172.17.0.0/16").unwrap()));
        assert_eq!(a.nth(2).to_string(), "172.29.44.2");
        // A /24 pool is one subnet.
        assert_eq!(a.slash24s(7), vec![a]);
    }
}
