//! Freeze a node and let it go on: `pause-master` (long enough for a failover) and
//! `pause-sentinel` (long enough for TILT).

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{how, needs, needs_replica, needs_sentinels, FaultCtx, Nodes, Step};
use crate::config::{BackendKind, HarnessConfig, PauseMethod};
use crate::drill::DrillKind;
use crate::topology::{probe, FaultOp, Need, NodeSpec, Topology};

/// Pause the master for `pause_ms` (default `3 * down_after_ms`), then resume it.
pub(crate) struct PauseMaster {
    pause_ms: u64,
    /// How an external master is frozen (`None`: not external).
    external: Option<PauseMethod>,
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
            external: cfg.topology.external.as_ref().map(|e| e.pause),
        }
    }
}

impl super::Fault for PauseMaster {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        needs_sentinels(&cfg.topology)?;
        needs_replica(&cfg.topology)?;
        needs(cfg, Need::Pause)
    }

    fn rejoin_target<'n>(&self, nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        self.expects_failover(DrillKind::PauseMaster)
            .then_some(&nodes.master)
    }

    fn expects_failover(&self, kind: DrillKind) -> bool {
        // CLIENT PAUSE WRITE leaves PING answered: the Sentinels see the master up.
        self.external != Some(PauseMethod::ClientPauseWrite) && kind.expects_failover()
    }

    fn check<'a>(&'a self, topo: &'a Topology) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if topo.config().backend != BackendKind::External
                || self.external != Some(PauseMethod::DebugSleep)
            {
                return Ok(());
            }
            let m = &topo.node("master").map_err(|e| e.to_string())?.spec;
            let creds = topo.state().credentials();
            let mut c = probe::connect(&m.host, m.port, &creds.data, probe::PROBE_TIMEOUT)
                .await
                .map_err(|e| format!("cannot reach the master at {}: {e}", m.addr()))?;
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(0)
                .query_async::<()>(&mut c)
                .await
                .map_err(|e| {
                    format!(
                        "the master at {} refuses DEBUG SLEEP ({e}): the server needs enable-debug-command yes (or local, from a local client) and the user +debug; or set topology.external.pause: client-pause-write to stall writes instead (no failover follows)",
                        m.addr()
                    )
                })
        })
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let hold = Duration::from_millis(self.pause_ms);
            topo.pause("master", hold).await?;
            let note = if self.external == Some(PauseMethod::ClientPauseWrite) {
                ": writes stall, PING and reads are answered, no failover expected"
            } else {
                ""
            };
            cx.act(
                "fault",
                format!(
                    "{} master for {} ms{note}",
                    topo.verb(FaultOp::Pause),
                    self.pause_ms
                ),
            );
            tokio::time::sleep(hold).await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.resume("master").await?;
            cx.act("restore", format!("{} master", topo.verb(FaultOp::Resume)));
            Ok(())
        })
    }

    fn plan(&self, topo: &Topology, _cx: &FaultCtx) -> Vec<String> {
        vec![
            format!(
                "{} for {} ms",
                how(topo, FaultOp::Pause, "master"),
                self.pause_ms
            ),
            how(topo, FaultOp::Resume, "master"),
        ]
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
        needs_sentinels(&cfg.topology)?;
        needs(cfg, Need::PauseSentinel)
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let name = cx.nodes.sentinels[0].name.clone();
            topo.pause(&name, Duration::from_millis(self.pause_ms))
                .await?;
            cx.act(
                "fault",
                format!(
                    "{} {name} for {} ms",
                    topo.verb(FaultOp::Pause),
                    self.pause_ms
                ),
            );
            tokio::time::sleep(Duration::from_millis(self.pause_ms)).await;
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let name = cx.nodes.sentinels[0].name.clone();
            topo.resume(&name).await?;
            cx.act("restore", format!("{} {name}", topo.verb(FaultOp::Resume)));
            tokio::time::sleep(Duration::from_millis(1000)).await;
            Ok(())
        })
    }

    fn plan(&self, topo: &Topology, cx: &FaultCtx) -> Vec<String> {
        let name = &cx.nodes.sentinels[0].name;
        vec![
            format!(
                "{} for {} ms",
                how(topo, FaultOp::Pause, name),
                self.pause_ms
            ),
            how(topo, FaultOp::Resume, name),
        ]
    }
}
