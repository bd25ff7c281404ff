//! The planned shape of a topology: which nodes, their roles and their addresses.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::TopologyError;
use crate::config::HarnessConfig;

/// What a node was started as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// The initial master.
    Master,
    /// A replica of the initial master.
    Replica,
    /// A Sentinel monitoring the master.
    Sentinel,
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeKind::Master => "master",
            NodeKind::Replica => "replica",
            NodeKind::Sentinel => "sentinel",
        })
    }
}

/// One planned node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Unique name within the topology: `master`, `replica-1`, `sentinel-1` ...
    pub name: String,
    /// Role it starts with.
    pub kind: NodeKind,
    /// Address it listens on.
    pub host: String,
    /// Port it listens on.
    pub port: u16,
}

impl NodeSpec {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Names and kinds of a topology's nodes, master first, then replicas, then Sentinels.
pub fn node_names(cfg: &HarnessConfig) -> Vec<(String, NodeKind)> {
    let mut v = vec![("master".to_string(), NodeKind::Master)];
    v.extend((1..=cfg.topology.replicas).map(|i| (format!("replica-{i}"), NodeKind::Replica)));
    v.extend((1..=cfg.topology.sentinels).map(|i| (format!("sentinel-{i}"), NodeKind::Sentinel)));
    v
}

/// Plans the nodes of a topology, choosing ports (from `ports.base`, or free ones).
pub fn plan_nodes(cfg: &HarnessConfig) -> Result<Vec<NodeSpec>, TopologyError> {
    let count = cfg.node_count() as usize;
    let ports: Vec<u16> = match cfg.ports.base {
        Some(base) => (0..count).map(|i| (base as usize + i) as u16).collect(),
        None => free_ports(&cfg.ports.bind, count)?,
    };
    let nodes = node_names(cfg)
        .into_iter()
        .zip(ports)
        .map(|((name, kind), port)| NodeSpec {
            name,
            kind,
            host: cfg.ports.bind.clone(),
            port,
        })
        .collect();
    Ok(nodes)
}

/// Ports already handed out by this process, so that topologies started concurrently
/// in one process (tests, `--repeat` runs) never receive the same port.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Asks the OS for `count` distinct free ports on `bind`.
///
/// A port is free when the OS hands it out for port 0; it is then released, so another
/// process could take it before the node binds it. Nodes that fail to bind report it in
/// their log, which the start-up error quotes.
pub fn free_ports(bind: &str, count: usize) -> Result<Vec<u16>, TopologyError> {
    let mut taken = handed_out().lock().expect("port registry poisoned");
    let mut out = Vec::with_capacity(count);
    let mut attempts = 0;
    while out.len() < count {
        attempts += 1;
        if attempts > count * 50 {
            return Err(TopologyError::Ports(format!(
                "could not find {count} free ports on {bind}"
            )));
        }
        let addr: SocketAddr = format!("{bind}:0")
            .parse()
            .map_err(|e| TopologyError::Ports(format!("bad bind address {bind}: {e}")))?;
        let listener = TcpListener::bind(addr)
            .map_err(|e| TopologyError::Ports(format!("cannot bind {addr}: {e}")))?;
        let port = listener.local_addr().map_err(TopologyError::Io)?.port();
        if taken.insert(port) {
            out.push(port);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_master_replicas_sentinels_with_distinct_ports() {
        let cfg = HarnessConfig::default();
        let nodes = plan_nodes(&cfg).unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "master",
                "replica-1",
                "replica-2",
                "sentinel-1",
                "sentinel-2",
                "sentinel-3"
            ]
        );
        let ports: HashSet<_> = nodes.iter().map(|n| n.port).collect();
        assert_eq!(ports.len(), nodes.len());
    }

    #[test]
    fn base_port_is_sequential() {
        let mut cfg = HarnessConfig::default();
        cfg.ports.base = Some(17000);
        let ports: Vec<_> = plan_nodes(&cfg).unwrap().iter().map(|n| n.port).collect();
        assert_eq!(ports, [17000, 17001, 17002, 17003, 17004, 17005]);
    }
}
