//! Kill one data node and restart it: `kill-master` (a failover must follow) and
//! `kill-replica` (none may).

use std::time::Duration;

use super::{how, needs, needs_replica, needs_sentinels, FaultCtx, Nodes, Step};
use crate::config::HarnessConfig;
use crate::topology::{FaultOp, Need, NodeSpec, Topology};

/// Kill the master; once the Sentinels name a new one, restart it.
pub(crate) struct KillMaster;

impl super::Fault for KillMaster {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_sentinels(&cfg.topology)?;
        needs_replica(&cfg.topology)?;
        needs(cfg, Need::KillRestart)
    }

    fn rejoin_target<'n>(&self, nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        Some(&nodes.master)
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.kill("master").await?;
            cx.act("fault", format!("{} master", topo.verb(FaultOp::Kill)));
            cx.observe_failover().await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.restart("master").await?;
            cx.act(
                "restore",
                format!("{}: the old master is back", topo.verb(FaultOp::Restart)),
            );
            Ok(())
        })
    }

    fn plan(&self, topo: &Topology, cx: &FaultCtx) -> Vec<String> {
        vec![
            how(topo, FaultOp::Kill, "master"),
            format!(
                "wait up to {} ms for the Sentinels to name a new master",
                cx.timeout.as_millis()
            ),
            how(topo, FaultOp::Restart, "master"),
            "wait for the old master to rejoin as a replica".into(),
        ]
    }
}

/// Kill `replica-1` for longer than `down-after-milliseconds`, then restart it.
pub(crate) struct KillReplica {
    down_for: Duration,
}

impl KillReplica {
    /// Kept down for `down_after_ms` + 1 s.
    pub(crate) fn new(cfg: &HarnessConfig) -> Self {
        Self {
            down_for: Duration::from_millis(cfg.sentinel.down_after_ms as u64 + 1000),
        }
    }
}

impl super::Fault for KillReplica {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_replica(&cfg.topology)?;
        needs(cfg, Need::KillRestart)
    }

    fn rejoin_target<'n>(&self, nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        nodes.replicas.first()
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.kill("replica-1").await?;
            cx.act("fault", format!("{} replica-1", topo.verb(FaultOp::Kill)));
            tokio::time::sleep(self.down_for).await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.restart("replica-1").await?;
            cx.act(
                "restore",
                format!("{} replica-1", topo.verb(FaultOp::Restart)),
            );
            Ok(())
        })
    }

    fn plan(&self, topo: &Topology, _cx: &FaultCtx) -> Vec<String> {
        vec![
            how(topo, FaultOp::Kill, "replica-1"),
            format!("keep it down {} ms", self.down_for.as_millis()),
            how(topo, FaultOp::Restart, "replica-1"),
            "wait for it to rejoin as a replica".into(),
        ]
    }
}
