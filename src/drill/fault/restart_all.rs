//! `restart-all`: SIGKILL every node, then start them all again; acknowledged writes must
//! survive within the fsync policy's promise (judged by the persistence check).

use super::{FaultCtx, Step};
use crate::config::HarnessConfig;
use crate::topology::Topology;

/// SIGKILL every node in state-file order, then restart them in the same order.
pub(crate) struct RestartAll;

impl super::Fault for RestartAll {
    fn supports(&self, _cfg: &HarnessConfig) -> Result<(), String> {
        Ok(())
    }

    fn inject<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            for n in &cx.nodes.all {
                topo.kill(n).await?;
            }
            cx.act("fault", format!("SIGKILL all {} nodes", cx.nodes.all.len()));
            Ok(())
        })
    }

    fn restore<'a>(&'a self, topo: &'a mut Topology, cx: &'a mut FaultCtx) -> Step<'a> {
        Box::pin(async move {
            for n in &cx.nodes.all {
                topo.restart(n).await?;
            }
            cx.act("restore", "restarted every node".into());
            Ok(())
        })
    }
}
