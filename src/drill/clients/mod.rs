//! The drill's clients: who writes and reads through the fault, each in its own key space
//! with its own history, judged side by side.
//!
//! - `model`: the built-in client models — how each finds the master and follows a
//!   failover (a new model is a variant there).
//! - `workload`: the writers and readers a built-in model runs.
//! - `external`: a user's own client program, started with the topology in its environment.
//! - `protocol`: the JSON-lines history an external client writes, and its checker.
//! - `readback`: the final read of what a client wrote, after healing.

mod external;
pub(crate) mod model;
mod protocol;
mod readback;
pub(crate) mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::Clock;
use super::history::{Op, Tally};
use crate::config::DrillSection;
pub use model::Model;

/// One entry of `drill.clients`: a built-in model, or a user's own client program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSpec", into = "RawSpec")]
pub enum ClientSpec {
    /// A built-in client model, named after the model.
    Model(Model),
    /// A program that writes through the fault and records its own history.
    External {
        /// Its name in reports and key space (`[a-z0-9_-]`, not a model's name).
        name: String,
        /// The command line (split like a shell would, but run without one).
        command: String,
    },
}

/// How `drill.clients` entries are written in YAML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a client model's name (sentinel-events, switch-master, reresolve-on-error, fixed-address) or a client of your own as {name, command} (no other keys)"
)]
enum RawSpec {
    Name(String),
    External(RawExternal),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternal {
    name: String,
    command: String,
}

impl TryFrom<RawSpec> for ClientSpec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Self, String> {
        match raw {
            RawSpec::Name(n) => n.parse().map(ClientSpec::Model),
            RawSpec::External(RawExternal { name, command }) => {
                Ok(ClientSpec::External { name, command })
            }
        }
    }
}

impl From<ClientSpec> for RawSpec {
    fn from(s: ClientSpec) -> Self {
        match s {
            ClientSpec::Model(m) => RawSpec::Name(m.name().into()),
            ClientSpec::External { name, command } => {
                RawSpec::External(RawExternal { name, command })
            }
        }
    }
}

impl ClientSpec {
    /// The name in reports, gates and key space.
    pub fn name(&self) -> &str {
        match self {
            ClientSpec::Model(m) => m.name(),
            ClientSpec::External { name, .. } => name,
        }
    }

    /// How it connects, in words (reports).
    pub fn describe(&self) -> String {
        match self {
            ClientSpec::Model(m) => m.describe().into(),
            ClientSpec::External { command, .. } => format!("external: {command}"),
        }
    }

    /// Parses a `--client` argument: a model's name, or `NAME=COMMAND`.
    pub fn parse_arg(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((name, command)) => Ok(ClientSpec::External {
                name: name.trim().into(),
                command: command.trim().into(),
            }),
            None => s.trim().parse().map(ClientSpec::Model),
        }
    }

    /// The default set: every model the issue of "what will our application lose" needs.
    pub fn defaults() -> Vec<ClientSpec> {
        Model::DEFAULT
            .iter()
            .copied()
            .map(ClientSpec::Model)
            .collect()
    }
}

/// Problems with `drill.clients`, one line each (empty when fine).
pub(crate) fn validate(clients: &[ClientSpec]) -> Vec<String> {
    let mut p = Vec::new();
    if clients.is_empty() {
        p.push("drill.clients: name at least one client (default: every built-in model)".into());
    }
    let mut seen = std::collections::HashSet::new();
    for c in clients {
        if !seen.insert(c.name()) {
            p.push(format!(
                "drill.clients: {:?} appears twice; every client needs its own name",
                c.name()
            ));
        }
        if let ClientSpec::External { name, command } = c {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                p.push(format!(
                    "drill.clients: client name {name:?} must be non-empty and use only a-z, 0-9, '-' and '_'"
                ));
            }
            if name.parse::<Model>().is_ok() {
                p.push(format!(
                    "drill.clients: {name:?} is a built-in model's name; give your client another"
                ));
            }
            match shell_words::split(command) {
                Ok(argv) if !argv.is_empty() => {}
                Ok(_) => p.push(format!(
                    "drill.clients: client {name:?} has an empty command"
                )),
                Err(e) => p.push(format!(
                    "drill.clients: client {name:?}: cannot split its command {command:?}: {e}"
                )),
            }
        }
    }
    p
}

/// A problem with a client that stops the drill before the fault.
#[derive(Debug, thiserror::Error)]
#[error("drill client {client}: {problem}")]
pub struct ClientError {
    /// The client's name.
    pub client: String,
    /// What went wrong, with where to look.
    pub problem: String,
}

/// What a client needs to know about the topology and the drill.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Every Sentinel's `host:port` (empty: a standalone master).
    pub sentinels: Vec<(String, u16)>,
    /// The master at the start.
    pub master: (String, u16),
    /// The name the Sentinels monitor.
    pub master_name: String,
    /// How to log in to the data nodes and the Sentinels.
    pub credentials: crate::topology::Credentials,
    /// The run's key prefix (`<key_prefix>drill:<run-id>:`); each client writes under
    /// `<run prefix><client>:`.
    pub run_prefix: String,
    /// The drill clock.
    pub clock: Clock,
    /// The drill settings.
    pub drill: DrillSection,
    /// Where external clients' histories and logs go.
    pub dir: PathBuf,
}

impl Ctx {
    /// The per-operation timeout.
    pub(crate) fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.drill.op_timeout_ms)
    }

    /// The key prefix of client `name`.
    pub(crate) fn prefix(&self, name: &str) -> String {
        format!("{}{name}:", self.run_prefix)
    }
}

/// A started client.
pub(crate) enum Running {
    /// A built-in model's workload.
    Model(model::Running),
    /// A user's program.
    External(external::External),
}

/// What a client left once stopped.
#[derive(Debug, Default)]
pub(crate) struct Stopped {
    /// Its operations, in invoke order (empty when its history was rejected).
    pub ops: Vec<Op>,
    /// The keys its writes went to (for the final read).
    pub keys: Vec<String>,
    /// Why its history was rejected, or what went wrong while it ran.
    pub problems: Vec<String>,
    /// Notes that do not fail it (e.g. a last line cut off by SIGKILL).
    pub notes: Vec<String>,
    /// Its history was rejected: nothing of it counts, and nothing is read back.
    pub rejected: bool,
}

impl Running {
    /// Starts `spec`; a built-in model counts its writes in `tally`.
    pub(crate) async fn start(
        spec: &ClientSpec,
        ctx: &Ctx,
        tally: Arc<Tally>,
    ) -> Result<Self, ClientError> {
        match spec {
            ClientSpec::Model(m) => Ok(Running::Model(model::Running::start(*m, ctx, tally).await)),
            ClientSpec::External { name, command } => {
                external::External::start(name, command, ctx).map(Running::External)
            }
        }
    }

    /// Refuses to go on to the fault with a client that is not running or has not
    /// recorded anything yet.
    pub(crate) fn check_running(&mut self) -> Result<(), ClientError> {
        match self {
            Running::Model(_) => Ok(()),
            Running::External(e) => e.check_running(),
        }
    }

    /// Stops it and collects its history.
    pub(crate) async fn stop(self) -> Stopped {
        match self {
            Running::Model(m) => m.stop().await,
            Running::External(e) => e.stop().await,
        }
    }
}

/// Checks, before anything starts, that every external client's program can be found.
pub(crate) fn check_programs(clients: &[ClientSpec]) -> Result<(), ClientError> {
    for c in clients {
        if let ClientSpec::External { name, command } = c {
            external::program(name, command)?;
        }
    }
    Ok(())
}

/// Reads back, after healing, every value `stopped` wrote (`None`: the read failed, or
/// its history was rejected); keys of a type no write of the protocol makes become
/// problems of the client.
pub(crate) async fn final_read(stopped: &mut Stopped, ctx: &Ctx) -> Option<Vec<String>> {
    if stopped.rejected {
        return None;
    }
    let link = model::resolving_link(ctx);
    let read = readback::values(&link, &stopped.keys, Duration::from_secs(10)).await?;
    stopped.problems.extend(read.odd.into_iter().map(|(key, kind)| {
        format!(
            "key {key:?} holds a {kind}; a write's value must be a string, a set member or a list element"
        )
    }));
    Some(read.values)
}
