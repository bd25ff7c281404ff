//! What every backend shares about a node: its directory and config file, the end of its
//! logs for error messages, and how it was stopped.

use std::path::Path;

use super::conf::{self, Layout};
use super::spec::{NodeKind, NodeSpec};
use super::state::NodeRecord;
use super::TopologyError;
use crate::config::HarnessConfig;

/// How a node was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopOutcome {
    /// It was not running.
    NotRunning,
    /// It exited after SIGTERM within the grace period.
    Terminated,
    /// It had to be SIGKILLed.
    Killed,
}

/// How a backend's nodes see their own files and addresses: the directory their config
/// names (`None`: the node directory on the host), the address they bind (`None`: their
/// planned address) and lines appended to every config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConfigView {
    /// Directory as the node sees it.
    pub dir: Option<&'static str>,
    /// Address the node binds, when not its planned one (a container binds every
    /// interface of its own network namespace).
    pub bind: Option<&'static str>,
    /// Lines appended to every config file.
    pub extra: &'static str,
}

/// Creates `node`'s directory under `topo_dir`, writes its config (paths and bind address
/// as the node will see them, per `view`) and returns its record.
pub(crate) fn write_node(
    cfg: &HarnessConfig,
    topo_dir: &Path,
    node: &NodeSpec,
    layout: &Layout,
    view: ConfigView,
) -> Result<NodeRecord, TopologyError> {
    let node_dir = topo_dir.join(&node.name);
    std::fs::create_dir_all(&node_dir)
        .map_err(TopologyError::file("create the node directory", &node_dir))?;
    let conf_dir = view.dir.map(Path::new).unwrap_or(&node_dir);
    let bind = view.bind.unwrap_or(&node.host);
    let (file, log, mut text) = if node.kind == NodeKind::Sentinel {
        (
            "sentinel.conf",
            "sentinel.log",
            conf::sentinel_conf(cfg, node, layout, conf_dir, bind),
        )
    } else {
        (
            "redis.conf",
            "redis.log",
            conf::redis_conf(cfg, node, layout.master(), conf_dir, bind),
        )
    };
    text.push_str(view.extra);
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

/// The last `n` lines of a node's captured stdout and its log file.
pub(super) fn log_tail(record: &NodeRecord, n: usize) -> String {
    let mut lines = Vec::new();
    for path in [record.dir.join("stdout.log"), record.log_file.clone()] {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let start = all.len().saturating_sub(n);
            lines.extend(all[start..].iter().map(|l| format!("    {l}")));
        }
    }
    if lines.is_empty() {
        "    (no output)".into()
    } else {
        lines.join("\n")
    }
}
