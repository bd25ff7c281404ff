//! Stop a process and let it continue: `pause-master` (long enough for a failover) and
//! `pause-sentinel` (long enough for TILT).

use std::time::Duration;

use super::{needs_replica, needs_sentinels, FaultCtx, Nodes, Step};
use crate::config::HarnessConfig;
use crate::topology::{NodeSpec, Topology};

/// Pause the master for `pause_ms` (default `3 * down_after_ms`), then resume it.
pub(crate) struct PauseMaster {
    pause_ms: u64,
}

impl PauseMaster {
    /// Reads the pause from `drill.pause_ms`.
    pub(crate) fn new(cfg: &HarnessConfig) -> Self {
        let d = cfg.drill.pause_ms;
        Self {
            pause_ms: if d > 0 {
                d
            } else {
                3 * cfg.sentinel.down_after_ms as u64
            },
        }
    }
}

impl super::Fault for PauseMaster {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_sentinels(&cfg.topology)?;
        needs_replica(&cfg.topology)
    }

    fn rejoin_target<'n>(&self, nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        Some(&nodes.master)
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.pause("master").await?;
            cx.act("fault", format!("SIGSTOP master for {} ms", self.pause_ms));
            tokio::time::sleep(Duration::from_millis(self.pause_ms)).await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.resume("master").await?;
            cx.act("restore", "SIGCONT master".into());
            Ok(())
        })
    }
}

/// Pause the first Sentinel for `pause_ms` (default 4 s: TILT needs more than 2 s), then
/// resume it and give it a second to leave TILT.
pub(crate) struct PauseSentinel {
    pause_ms: u64,
}

impl PauseSentinel {
    /// Reads the pause from `drill.pause_ms`.
    pub(crate) fn new(cfg: &HarnessConfig) -> Self {
        let d = cfg.drill.pause_ms;
        Self {
            pause_ms: if d > 0 { d } else { 4000 },
        }
    }
}

impl super::Fault for PauseSentinel {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_sentinels(&cfg.topology)
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let name = cx.nodes.sentinels[0].name.clone();
            topo.pause(&name).await?;
            cx.act("fault", format!("SIGSTOP {name} for {} ms", self.pause_ms));
            tokio::time::sleep(Duration::from_millis(self.pause_ms)).await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let name = cx.nodes.sentinels[0].name.clone();
            topo.resume(&name).await?;
            cx.act("restore", format!("SIGCONT {name}"));
            tokio::time::sleep(Duration::from_millis(1000)).await;
            Ok(())
        })
    }
}
