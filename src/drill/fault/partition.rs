//! `partition` (docker backend): cut the master off from the replicas and Sentinels while
//! clients still reach it, hold until the majority side has failed over and a little
//! longer, then heal.

use std::time::Duration;

use super::{FaultCtx, Nodes, Step};
use crate::config::{HarnessConfig, PartitionDirection};
use crate::topology::{NodeSpec, Topology};

/// Partition the master from its peers in `direction`; heal `hold` after the Sentinels
/// name a new master (or give up waiting).
pub(crate) struct Partition {
    direction: PartitionDirection,
    hold: Duration,
}

impl Partition {
    /// Reads the direction from `drill.partition` and the hold from `drill.pause_ms`
    /// (default 2 s).
    pub(crate) fn new(cfg: &HarnessConfig) -> Self {
        let d = &cfg.drill;
        Self {
            direction: d.partition,
            hold: Duration::from_millis(if d.pause_ms > 0 { d.pause_ms } else { 2000 }),
        }
    }
}

/// What the master is cut off from: the replicas, then the Sentinels.
fn peers(nodes: &Nodes) -> impl Iterator<Item = &NodeSpec> {
    nodes.replicas.iter().chain(nodes.sentinels.iter())
}

impl super::Fault for Partition {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        super::needs(cfg, crate::topology::Need::Partition)?;
        if cfg.topology.sentinels == 0 || cfg.topology.replicas == 0 {
            return Err("it needs replicas and Sentinels to cut the master off from".into());
        }
        Ok(())
    }

    fn rejoin_target<'n>(&self, nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        Some(&nodes.master)
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let peers: Vec<&str> = peers(&cx.nodes).map(|n| n.name.as_str()).collect();
            topo.partition("master", &peers, self.direction).await?;
            let detail = format!(
                "partition ({}): master cut off from {}; clients still reach it",
                self.direction,
                peers.join(", ")
            );
            cx.act("fault", detail);
            cx.observe_failover().await;
            // Hold the partition a little longer, as a real one would not end on cue.
            tokio::time::sleep(self.hold).await;
            Ok(())
        })
    }

    fn plan(&self, topo: &Topology, cx: &FaultCtx) -> Vec<String> {
        // As `Topology::partition` hands them over: the peers' hosts.
        let peers: Vec<String> = peers(&cx.nodes).map(|n| n.host.clone()).collect();
        let cut = match topo.hook_command(crate::config::Hook::Partition, "master", &peers) {
            Some(cmd) => format!("hook partition master: `{cmd}`"),
            None => format!(
                "partition ({}): cut the master off from {}",
                self.direction,
                peers.join(", ")
            ),
        };
        vec![
            cut,
            format!(
                "wait up to {} ms for the Sentinels to name a new master, then {} ms more",
                cx.timeout.as_millis(),
                self.hold.as_millis()
            ),
            match topo.hook_command(crate::config::Hook::Heal, "master", &peers) {
                Some(cmd) => format!("hook heal master: `{cmd}`"),
                None => super::how(topo, crate::topology::FaultOp::Heal, "master"),
            },
            "wait for the old master to rejoin as a replica".into(),
        ]
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            topo.heal("master").await?;
            cx.act(
                "restore",
                format!(
                    "healed the partition after {} ms more",
                    self.hold.as_millis()
                ),
            );
            Ok(())
        })
    }
}
