//! `restart-all`: SIGKILL every node, then start them all again; acknowledged writes must
//! survive within the fsync policy's promise (judged by the persistence check).

use super::{FaultCtx, Step};
use crate::config::HarnessConfig;
use crate::topology::Topology;

/// SIGKILL every node in state-file order, then restart them in the same order.
pub(crate) struct RestartAll;

impl super::Fault for RestartAll {
    fn supports(&self, cfg: &HarnessConfig) -> Result<(), String> {
        super::needs(cfg, crate::topology::Need::KillRestart)
    }

    fn plan(&self, topo: &Topology, cx: &FaultCtx) -> Vec<String> {
        let kill = cx
            .nodes
            .all
            .iter()
            .map(|n| super::how(topo, crate::topology::FaultOp::Kill, n));
        let restart = cx
            .nodes
            .all
            .iter()
            .map(|n| super::how(topo, crate::topology::FaultOp::Restart, n));
        kill.chain(restart).collect()
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            for n in &cx.nodes.all {
                topo.kill(n).await?;
            }
            cx.act(
                "fault",
                format!(
                    "{} all {} nodes",
                    topo.verb(crate::topology::FaultOp::Kill),
                    cx.nodes.all.len()
                ),
            );
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            let all = cx.nodes.all.clone();
            super::restart_each(topo, cx, &all).await
        })
    }
}
