//! One container per node: create and start it, read its exit, kill, restart and pause it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use testcontainers::bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, KillContainerOptions,
    NetworkingConfig, StartContainerOptions,
};
use testcontainers::bollard::models::{
    EndpointIpamConfig, EndpointSettings, HostConfig, Mount, MountTypeEnum, PortBinding,
};
use testcontainers::bollard::Docker;

use crate::topology::node::log_tail;
use crate::topology::spec::NodeKind;
use crate::topology::state::NodeRecord;
use crate::topology::TopologyError;

use super::engine::err;
use super::{DATA_PORT, LABEL_NODE, SENTINEL_PORT};

/// Starts a node's container on `network` at its planned address (`record.spec.host`),
/// with its directory mounted at `/data` (its config file must already be there). Returns
/// its record, with the container id once one was created (whatever happens next:
/// removing it is the topology's job, `down` or its drop), and whether it started.
/// Nothing is published on the host unless `publish`, and then only the node's port on
/// `127.0.0.1` (a port the engine picks).
pub async fn start(
    d: &Docker,
    image: &str,
    network: &str,
    labels: &[(&'static str, String)],
    publish: bool,
    mut record: NodeRecord,
) -> (NodeRecord, Result<(), TopologyError>) {
    let result = create_and_start(d, image, network, labels, publish, &mut record).await;
    (record, result)
}

async fn create_and_start(
    d: &Docker,
    image: &str,
    network: &str,
    labels: &[(&'static str, String)],
    publish: bool,
    record: &mut NodeRecord,
) -> Result<(), TopologyError> {
    let node = record.spec.name.clone();
    let sentinel = record.spec.kind == NodeKind::Sentinel;
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
    let planned = record.spec.host.clone();
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(planned.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let config = Config {
        image: Some(image.to_string()),
        cmd: Some(cmd),
        labels: Some(all_labels),
        exposed_ports: Some(HashMap::from([(port, HashMap::new())])),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: HashMap::from([(network.to_string(), endpoint)]),
        }),
        ..Default::default()
    };
    let name = format!("{network}-{node}");
    let id = create(d, &name, config).await.map_err(failed)?;
    record.container = Some(id.clone());
    let started = tokio::time::timeout(
        Duration::from_secs(60),
        d.start_container(&id, None::<StartContainerOptions<String>>),
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
    let ip: IpAddr = container_ip(d, &id)
        .await?
        .parse()
        .map_err(|e| err("reading the container address", e))?;
    if ip.to_string() != planned {
        return Err(failed(format!(
            "container {name} got address {ip}, not the planned {planned}"
        )));
    }
    if publish {
        if let Some(hp) = published_port(d, &id).await {
            tracing::info!("{node} is published on 127.0.0.1:{hp}");
        }
    }
    Ok(())
}

/// Creates container `name` from `config` and returns its id; the error says why not.
pub(super) async fn create(
    d: &Docker,
    name: &str,
    config: Config<String>,
) -> Result<String, String> {
    d.create_container(
        Some(CreateContainerOptions {
            name,
            platform: None,
        }),
        config,
    )
    .await
    .map(|c| c.id)
    .map_err(|e| format!("container {name} could not be created: {e}"))
}

/// Whether container `id` runs (false when the engine cannot say).
pub(super) async fn is_running(d: &Docker, id: &str) -> bool {
    d.inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|c| c.state?.running)
        .unwrap_or(false)
}

/// The host port a container's node port is published on, when it is.
pub(super) async fn published_port(d: &Docker, id: &str) -> Option<String> {
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

pub(super) fn id(record: &NodeRecord) -> &str {
    record.container.as_deref().unwrap_or("")
}

/// When the container is no longer running: its state and the end of the node's log.
pub(super) async fn exit_report(d: &Docker, record: &NodeRecord) -> Option<String> {
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
pub(super) async fn kill(d: &Docker, record: &NodeRecord) -> Result<(), TopologyError> {
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
pub(super) async fn restart(d: &Docker, record: &NodeRecord) -> Result<(), TopologyError> {
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
pub(super) async fn pause(
    d: &Docker,
    record: &NodeRecord,
    paused: bool,
) -> Result<(), TopologyError> {
    let r = if paused {
        d.pause_container(id(record)).await
    } else {
        d.unpause_container(id(record)).await
    };
    let what = if paused { "pausing" } else { "unpausing" };
    r.map_err(|e| err(&format!("{what} {}", record.spec.name), e))
}

pub(super) async fn container_pid(d: &Docker, id: &str) -> Result<i64, TopologyError> {
    d.inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| err("inspecting a container", e))?
        .state
        .and_then(|s| s.pid)
        .filter(|p| *p > 0)
        .ok_or_else(|| TopologyError::Docker(format!("container {id} is not running")))
}

pub(super) async fn container_ip(d: &Docker, id: &str) -> Result<String, TopologyError> {
    d.inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| err("inspecting a container", e))?
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.into_values().find_map(|e| e.ip_address))
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| TopologyError::Docker(format!("container {id} has no address")))
}
