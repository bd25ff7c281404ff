//! The built-in client models: how a client finds the master and follows a failover. Each
//! runs the same writers and readers (`workload`) on its own link, so their figures differ
//! only by how they follow the master.

use std::sync::Arc;

use membership::{Follow, RedisLink, RedisTarget};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::workload::{self, Workload};
use super::{Ctx, Stopped};
use crate::drill::history::Tally;

/// A built-in client model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Follows the Sentinels' events: moves to a promoted replica as soon as it answers
    /// ROLE `master` (`+selected-slave` / `+promoted-slave`), and to any master a
    /// `+switch-master` announces; re-resolves after errors too. The harness's own link
    /// and the membership API's.
    SentinelEvents,
    /// Follows `+switch-master` announcements only (and errors): the same link as
    /// `sentinel-events` before it learnt to move at promotion.
    SwitchMaster,
    /// Asks the Sentinels for the master when it connects, and again only after an error
    /// or a `READONLY` reply (redis-py's `Sentinel.master_for` works this way).
    ReresolveOnError,
    /// Asks once at the start and keeps that address: an application given the master's
    /// address.
    FixedAddress,
}

impl Model {
    /// Every model.
    pub const ALL: [Model; 4] = [
        Model::SentinelEvents,
        Model::SwitchMaster,
        Model::ReresolveOnError,
        Model::FixedAddress,
    ];

    /// The models a drill runs unless told otherwise.
    pub const DEFAULT: [Model; 3] = [
        Model::SentinelEvents,
        Model::ReresolveOnError,
        Model::FixedAddress,
    ];

    /// The name in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::SentinelEvents => "sentinel-events",
            Model::SwitchMaster => "switch-master",
            Model::ReresolveOnError => "reresolve-on-error",
            Model::FixedAddress => "fixed-address",
        }
    }

    /// How it follows the master, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Model::SentinelEvents => "moves at promotion (ROLE-checked) or +switch-master",
            Model::SwitchMaster => "moves at +switch-master",
            Model::ReresolveOnError => "asks the Sentinels again after an error",
            Model::FixedAddress => "keeps the address it was given",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown client model {s:?} (expected {}, or a client of your own as {{name, command}})",
                    Model::ALL.map(Model::name).join(", ")
                )
            })
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A link that asks the Sentinels for the master (ROLE-checked) whenever it connects;
/// the master itself on a topology without Sentinels.
pub(crate) fn resolving_link(ctx: &Ctx) -> Arc<RedisLink> {
    let target = if ctx.sentinels.is_empty() {
        RedisTarget::Standalone {
            host: ctx.master.0.clone(),
            port: ctx.master.1,
        }
    } else {
        RedisTarget::Sentinel {
            sentinels: ctx.sentinels.clone(),
            master_name: ctx.master_name.clone(),
        }
    };
    RedisLink::with(target, ctx.credentials.redis_auth(), 0, ctx.op_timeout())
}

/// A running built-in model.
pub(crate) struct Running {
    workload: Option<Workload>,
    watcher: Option<JoinHandle<()>>,
    /// The set its writers add to.
    key: String,
}

impl Drop for Running {
    /// A drill that ends early (an error before the fault) leaves no subscription behind.
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

impl Running {
    /// Builds `model`'s link and starts its writers and readers.
    pub(crate) async fn start(model: Model, ctx: &Ctx, tally: Arc<Tally>) -> Self {
        let link = resolving_link(ctx);
        let (link, watcher) = match model {
            Model::SentinelEvents => {
                let w = link.watch_sentinels(Follow::Promotion, || {});
                (link, w)
            }
            Model::SwitchMaster => {
                let w = link.watch_sentinels(Follow::Announcement, || {});
                (link, w)
            }
            Model::ReresolveOnError => (link, None),
            Model::FixedAddress => {
                // Resolve once, then pin the address (the configured master if the
                // Sentinels cannot be asked right now).
                let _ =
                    link.run(|mut c| async move {
                        redis::cmd("PING").query_async::<String>(&mut c).await
                    })
                    .await;
                let (host, port) = link
                    .address()
                    .and_then(|a| {
                        let (h, p) = a.rsplit_once(':')?;
                        Some((h.to_string(), p.parse().ok()?))
                    })
                    .unwrap_or_else(|| ctx.master.clone());
                let pinned = RedisLink::with(
                    RedisTarget::Standalone { host, port },
                    ctx.credentials.redis_auth(),
                    0,
                    ctx.op_timeout(),
                );
                (pinned, None)
            }
        };
        let key = workload::set_key(&ctx.prefix(model.name()));
        Self {
            workload: Some(Workload::start(
                link,
                ctx.clock,
                &ctx.drill,
                tally,
                key.clone(),
            )),
            watcher,
            key,
        }
    }

    /// Stops the workload and the link's watcher.
    pub(crate) async fn stop(mut self) -> Stopped {
        let ops = match self.workload.take() {
            Some(w) => w.stop().await,
            None => Vec::new(),
        };
        Stopped {
            ops,
            keys: vec![self.key.clone()],
            ..Stopped::default()
        }
    }
}
