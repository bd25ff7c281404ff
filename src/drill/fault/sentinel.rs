//! Faults aimed at the Sentinels: `sentinel-failover` (a graceful, coordinated failover)
//! and `kill-sentinels` (too few Sentinels left for a quorum, then the master dies: no
//! failover may happen).

use std::time::Duration;

use super::{how, needs, needs_replica, needs_sentinels, FaultCtx, Nodes, Step};
use crate::config::HarnessConfig;
use crate::drill::DrillError;
use crate::topology::{probe, FaultOp, Need, NodeSpec, Topology};

/// `SENTINEL FAILOVER` on the first Sentinel; nothing to restore.
pub(crate) struct SentinelFailover;

impl super::Fault for SentinelFailover {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_sentinels(&cfg.topology)?;
        needs_replica(&cfg.topology)
    }

    fn rejoin_target<'n>(&self, nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        Some(&nodes.master)
    }

    fn inject<'a>(&'a self, _topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let s0 = cx.nodes.sentinels[0].clone();
            let master_name = cx.cfg.topology.master_name.clone();
            let login = cx.cfg.credentials().sentinel;
            let mut c = probe::connect(&s0.host, s0.port, &login, Duration::from_secs(2))
                .await
                .map_err(|source| DrillError::Sentinel {
                    sentinel: s0.name.clone(),
                    addr: s0.addr(),
                    source,
                })?;
            let r: redis::RedisResult<()> = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(&master_name)
                .query_async(&mut c)
                .await;
            cx.act(
                "fault",
                format!(
                    "SENTINEL FAILOVER {master_name} on {}: {}",
                    s0.name,
                    r.map(|_| "OK".to_string())
                        .unwrap_or_else(|e| e.to_string())
                ),
            );
            cx.observe_failover().await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, _topo: &'a mut Topology, _cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async { Ok(()) })
    }

    fn plan(&self, _topo: &Topology, cx: &FaultCtx) -> Vec<String> {
        let s0 = &cx.nodes.sentinels[0];
        vec![
            format!(
                "SENTINEL FAILOVER {} on {} ({})",
                cx.cfg.topology.master_name,
                s0.name,
                s0.addr()
            ),
            format!(
                "wait up to {} ms for the Sentinels to name a new master",
                cx.timeout.as_millis()
            ),
            "wait for the old master to rejoin as a replica".into(),
        ]
    }
}

/// SIGKILL `sentinels - quorum + 1` Sentinels, then the master; watch the rest for
/// `3 * down_after_ms + 2 s`, then restart the master and the Sentinels.
pub(crate) struct KillSentinels {
    watch_for: Duration,
}

impl KillSentinels {
    /// Reads the watch time from the Sentinel settings.
    pub(crate) fn new(cfg: &HarnessConfig) -> Self {
        Self {
            watch_for: Duration::from_millis(3 * cfg.sentinel.down_after_ms as u64 + 2000),
        }
    }

    /// How many Sentinels to kill so that fewer than the quorum remain.
    fn victims(cfg: &HarnessConfig) -> usize {
        (cfg.topology.sentinels - cfg.topology.quorum + 1) as usize
    }
}

impl super::Fault for KillSentinels {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_sentinels(&cfg.topology)?;
        needs(cfg, Need::KillRestart)
    }

    fn plan(&self, topo: &Topology, cx: &FaultCtx) -> Vec<String> {
        let k = Self::victims(&cx.cfg);
        let mut steps: Vec<String> = cx
            .nodes
            .sentinels
            .iter()
            .take(k)
            .map(|s| how(topo, FaultOp::Kill, &s.name))
            .collect();
        steps.push(how(topo, FaultOp::Kill, "master"));
        steps.push(format!(
            "watch the remaining Sentinels for {} ms: none may fail over",
            self.watch_for.as_millis()
        ));
        steps.push(how(topo, FaultOp::Restart, "master"));
        steps.extend(
            cx.nodes
                .sentinels
                .iter()
                .take(k)
                .map(|s| how(topo, FaultOp::Restart, &s.name)),
        );
        steps
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let k = Self::victims(&cx.cfg);
            for sn in cx.nodes.sentinels.iter().take(k) {
                topo.kill(&sn.name).await?;
            }
            topo.kill("master").await?;
            cx.act(
                "fault",
                format!(
                    "{} {k} of {} Sentinels (quorum {}), then the master",
                    topo.verb(FaultOp::Kill),
                    cx.nodes.sentinels.len(),
                    cx.cfg.topology.quorum
                ),
            );
            let new = cx
                .new_master(&cx.nodes.sentinels[k..], self.watch_for)
                .await;
            cx.act(
                "observed",
                format!(
                    "after {} ms the remaining Sentinels name {}",
                    self.watch_for.as_millis(),
                    new.as_deref().unwrap_or("the old master")
                ),
            );
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            // Every node is tried, whatever failed before it.
            let names = std::iter::once("master".to_string()).chain(
                cx.nodes
                    .sentinels
                    .iter()
                    .take(Self::victims(&cx.cfg))
                    .map(|s| s.name.clone()),
            );
            let names: Vec<String> = names.collect();
            super::restart_each(topo, cx, &names).await
        })
    }
}
