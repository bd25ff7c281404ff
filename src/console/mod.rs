//! The console (the design's "commander"): a web UI the harness serves for watching a
//! topology through a drill. Server-rendered HTML, a little vanilla JavaScript, live
//! updates over server-sent events; no build step.
//!
//! It watches any topology through its Sentinels alone (addresses, master name,
//! passwords), so it works on every backend. It is read-only unless started with
//! `--allow-write`, needs its token on every request, and listens on loopback unless told
//! otherwise.
//!
//! - `feed`: what the console shows and who feeds it: the watched target, the event log
//!   (Sentinel pub/sub, role changes, the drill's actions), the drill's write counts.
//! - `watch`: the pollers that fill the feed: topology snapshots and Sentinel events.
//! - `topology`: the snapshot (nodes, Sentinels' views, disagreements) and its page.
//! - `events`: the events page.
//! - `keys`: the SCAN browser; `view`: size-capped value viewers (our LZ4 cache entries
//!   decoded).
//! - `command`: the command line and its read-only allow-list.
//! - `reports`: the report directory, listed and viewable.
//! - `auth`: the token.
//! - `page`: layout and navigation.
//! - `server`: routes, SSE, start and stop; `pages`: the handlers of the Keys, key view
//!   and Command pages.

mod auth;
mod command;
mod events;
mod feed;
mod keys;
mod page;
mod pages;
mod reports;
mod server;
mod topology;
mod view;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use auth::new_token;

pub(crate) use feed::{Feed, Kind};
pub(crate) use server::Console;

/// Errors starting the console.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    /// The address could not be bound.
    #[error("console cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The reports directory is not a directory.
    #[error("console reports directory {0} is not a readable directory")]
    Reports(PathBuf),
}

/// How the console is served.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Address to listen on (loopback by default).
    pub(crate) bind: IpAddr,
    /// Port (0: any free one).
    pub(crate) port: u16,
    /// The token; a random one when `None`.
    pub(crate) token: Option<String>,
    /// Allow commands outside the read-only allow-list and the failover button.
    pub(crate) allow_write: bool,
    /// Directory of JSON/HTML reports for the Reports page.
    pub(crate) reports: Option<PathBuf>,
    /// How often the topology is polled.
    pub(crate) refresh: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8081,
            token: None,
            allow_write: false,
            reports: None,
            refresh: Duration::from_millis(250),
        }
    }
}

/// What the console watches: a topology known by its Sentinels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Name shown in the page title.
    pub(crate) name: String,
    /// `host:port` of every Sentinel.
    pub(crate) sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under.
    pub(crate) master_name: String,
    /// Password of the data nodes.
    pub(crate) password: Option<String>,
    /// Password of the Sentinels.
    pub(crate) sentinel_password: Option<String>,
    /// Names to show for addresses (`host:port` → node name), when known.
    pub(crate) names: Vec<(String, String)>,
}

impl Target {
    /// The target of a topology known from its state file.
    pub(crate) fn from_state(state: &crate::topology::state::TopologyState) -> Self {
        let info = crate::topology::ConnectionInfo::from_state(state);
        Self {
            name: state.name.clone(),
            sentinels: info.sentinels,
            master_name: info.master_name,
            password: info.password,
            sentinel_password: None,
            names: state
                .nodes
                .iter()
                .map(|n| (n.spec.addr(), n.spec.name.clone()))
                .collect(),
        }
    }

    /// The name to show for `addr`: the node's name when known, else the address.
    pub(crate) fn name_of(&self, addr: &str) -> String {
        self.names
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| addr.to_string())
    }
}
