//! Faults: what a drill does to the topology. Each [`DrillKind`] has one [`Fault`] type
//! that says which backends and topology shapes it supports (checked before anything
//! starts), injects the fault and restores what it broke, recording its actions on the
//! drill clock. Adding a fault is adding a file and one line in [`fault_for`].
//!
//! - `kill`: kill-master, kill-replica.
//! - `pause`: pause-master, pause-sentinel.
//! - `sentinel`: sentinel-failover, kill-sentinels.
//! - `restart_all`: restart-all.
//! - `partition`: partition (docker backend).

mod kill;
mod partition;
mod pause;
mod restart_all;
mod sentinel;

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::clock::Clock;
use super::judge::Action;
use super::{wait, DrillError, DrillKind};
use crate::config::{HarnessConfig, Hook, TopologySection};
use crate::topology::{FaultOp, NodeSpec, Topology};

/// The fault of `kind`, with its timing taken from `cfg`.
pub(crate) fn fault_for(kind: DrillKind, cfg: &HarnessConfig) -> Box<dyn Fault> {
    match kind {
        DrillKind::KillMaster => Box::new(kill::KillMaster),
        DrillKind::PauseMaster => Box::new(pause::PauseMaster::new(cfg)),
        DrillKind::SentinelFailover => Box::new(sentinel::SentinelFailover),
        DrillKind::KillReplica => Box::new(kill::KillReplica::new(cfg)),
        DrillKind::KillSentinels => Box::new(sentinel::KillSentinels::new(cfg)),
        DrillKind::RestartAll => Box::new(restart_all::RestartAll),
        DrillKind::PauseSentinel => Box::new(pause::PauseSentinel::new(cfg)),
        DrillKind::Partition => Box::new(partition::Partition::new(cfg)),
    }
}

/// What a fault's future yields.
pub(crate) type Step<'a> = BoxFuture<'a, Result<(), DrillError>>;

/// One kind of fault.
pub(crate) trait Fault: Send + Sync {
    /// `Err(reason)` when `cfg`'s backend or topology cannot take this fault.
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String>;

    /// The node that must answer as a connected replica once the fault is restored.
    fn rejoin_target<'n>(&self, _nodes: &'n Nodes) -> Option<&'n NodeSpec> {
        None
    }

    /// Injects the fault and waits for what it should cause.
    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a>;

    /// Undoes the fault (restarts, resumes, heals). Also called when `inject` failed or
    /// was abandoned part-way, so it must cope with a fault only partly injected.
    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a>;

    /// Whether a failover must follow (the checks expect one); the kind's rule unless the
    /// way the fault is injected says otherwise.
    fn expects_failover(&self, kind: DrillKind) -> bool {
        kind.expects_failover()
    }

    /// Checks on the live topology that the fault can be injected the way it will be
    /// (e.g. that an external master allows `DEBUG SLEEP`); read-only. `Err(reason)`.
    fn check<'a>(&'a self, _topo: &'a Topology) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// The steps it will take on `topo`, in words, hooks filled in (a dry run's plan).
    fn plan(&self, topo: &Topology, cx: &FaultCtx) -> Vec<String>;
}

/// Restarts every node of `names`, each tried whatever failed before it; records what
/// came back and fails naming every node that did not.
pub(crate) async fn restart_each(
    topo: &mut Topology,
    cx: &mut FaultCtx,
    names: &[String],
) -> Result<(), DrillError> {
    let mut failed = Vec::new();
    for n in names {
        if let Err(e) = topo.restart(n).await {
            failed.push(format!("{n}: {e}"));
        }
    }
    let back = names.len() - failed.len();
    cx.act(
        "restore",
        format!(
            "{} {back} of {} nodes",
            topo.verb(FaultOp::Restart),
            names.len()
        ),
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(DrillError::Restore(failed.join("; ")))
    }
}

/// `Err` when the backend of `cfg` cannot do what `need` asks.
pub(crate) fn needs(cfg: &HarnessConfig, need: crate::topology::Need) -> Result<(), String> {
    match crate::topology::refusal(cfg, need) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// How `topo` does `op` to node `name`, hook command included when there is one.
pub(crate) fn how(topo: &Topology, op: FaultOp, name: &str) -> String {
    let hook = match op {
        FaultOp::Kill => Some(Hook::Kill),
        FaultOp::Restart => Some(Hook::Restore),
        FaultOp::Partition => Some(Hook::Partition),
        FaultOp::Heal => Some(Hook::Heal),
        FaultOp::Pause | FaultOp::Resume => None,
    };
    let addr = topo.node(name).map(|n| n.spec.addr()).unwrap_or_default();
    match hook.and_then(|h| topo.hook_command(h, name, &[])) {
        Some(cmd) => format!("{} {name} ({addr}): `{cmd}`", topo.verb(op)),
        None => format!("{} {name} ({addr})", topo.verb(op)),
    }
}

/// `Err` unless the topology has Sentinels.
pub(crate) fn needs_sentinels(t: &TopologySection) -> Result<(), String> {
    if t.sentinels == 0 {
        return Err("it needs Sentinels (topology.sentinels is 0)".into());
    }
    Ok(())
}

/// `Err` unless the topology has a replica.
pub(crate) fn needs_replica(t: &TopologySection) -> Result<(), String> {
    if t.replicas == 0 {
        return Err("it needs at least one replica (topology.replicas is 0)".into());
    }
    Ok(())
}

/// The topology's nodes as the drill started.
#[derive(Debug, Clone)]
pub(crate) struct Nodes {
    /// The master.
    pub master: NodeSpec,
    /// Its replicas.
    pub replicas: Vec<NodeSpec>,
    /// The Sentinels.
    pub sentinels: Vec<NodeSpec>,
    /// Every node's name, in state-file order.
    pub all: Vec<String>,
}

/// What a fault works with: the nodes, the settings, and the journal of its actions.
#[derive(Debug)]
pub(crate) struct FaultCtx {
    /// The nodes.
    pub nodes: Nodes,
    /// The topology's configuration.
    pub cfg: HarnessConfig,
    /// How long to wait for a failover.
    pub timeout: Duration,
    /// The drill clock.
    pub clock: Clock,
    /// What the fault did, on the drill clock.
    pub actions: Vec<Action>,
    /// Told about every action as it happens.
    pub watch: Option<std::sync::Arc<dyn super::Watch>>,
}

impl FaultCtx {
    /// Records an action now.
    pub(super) fn act(&mut self, what: &str, detail: String) {
        if let Some(w) = &self.watch {
            w.action(what, &detail);
        }
        self.actions.push(Action {
            t_us: self.clock.now_us(),
            what: what.to_string(),
            detail,
        });
    }

    /// `host:port` of the master before the fault.
    pub(super) fn old_master(&self) -> String {
        self.nodes.master.addr()
    }

    /// Waits up to `within` for `sentinels` to name a master other than the old one.
    pub(super) async fn new_master(
        &self,
        sentinels: &[NodeSpec],
        within: Duration,
    ) -> Option<String> {
        wait::new_master(
            sentinels,
            &self.cfg.credentials().sentinel,
            &self.cfg.topology.master_name,
            &self.old_master(),
            within,
        )
        .await
    }

    /// Waits for every Sentinel to name a new master and records what they named.
    pub(super) async fn observe_failover(&mut self) {
        let new = self.new_master(&self.nodes.sentinels, self.timeout).await;
        self.act(
            "observed",
            format!(
                "Sentinels name {}",
                new.as_deref().unwrap_or("no new master")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendKind;

    fn cfg(replicas: u32, sentinels: u32, backend: BackendKind) -> HarnessConfig {
        let mut c = HarnessConfig::default();
        c.topology.replicas = replicas;
        c.topology.sentinels = sentinels;
        c.topology.quorum = sentinels.min(2);
        c.backend = backend;
        c
    }

    fn supported(kind: DrillKind, c: &HarnessConfig) -> Result<(), String> {
        fault_for(kind, c).supports(c)
    }

    #[test]
    fn shapes_each_fault_needs() {
        let full = cfg(2, 3, BackendKind::Process);
        for kind in DrillKind::PROCESS {
            assert_eq!(supported(kind, &full), Ok(()), "{kind}");
        }
        let lone = cfg(0, 0, BackendKind::Process);
        let runs_alone: Vec<DrillKind> = DrillKind::PROCESS
            .into_iter()
            .filter(|k| supported(*k, &lone).is_ok())
            .collect();
        assert_eq!(runs_alone, [DrillKind::RestartAll]);
        assert_eq!(
            supported(DrillKind::KillReplica, &lone).unwrap_err(),
            "it needs at least one replica (topology.replicas is 0)"
        );
        assert_eq!(
            supported(DrillKind::KillMaster, &lone).unwrap_err(),
            "it needs Sentinels (topology.sentinels is 0)",
            "Sentinels are named before replicas"
        );
        let no_replicas = cfg(0, 3, BackendKind::Process);
        assert!(supported(DrillKind::KillSentinels, &no_replicas).is_ok());
        assert!(supported(DrillKind::PauseSentinel, &no_replicas).is_ok());
        assert!(supported(DrillKind::SentinelFailover, &no_replicas).is_err());
    }

    #[test]
    fn partitions_need_docker_then_a_majority_side() {
        let e = supported(DrillKind::Partition, &cfg(2, 3, BackendKind::Process)).unwrap_err();
        assert!(e.starts_with("partitions need the docker backend"), "{e}");
        assert!(supported(DrillKind::Partition, &cfg(2, 3, BackendKind::Docker)).is_ok());
        assert_eq!(
            supported(DrillKind::Partition, &cfg(0, 3, BackendKind::Docker)).unwrap_err(),
            "it needs replicas and Sentinels to cut the master off from"
        );
    }
}
