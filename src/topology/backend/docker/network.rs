//! The topology's network and labels, and removing what a topology left (by id, or by
//! the run-directory label after a crash).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::container::{
    InspectContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};
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
