//! The system under test on a running topology: the membership API in Sentinel mode (its
//! SQLite database in the topology's directory), for drills, load runs and `verify`.
//!
//! - [`redis_target`]: how the API reaches a topology.
//! - [`ApiServer`]: one instance served in-process.
//! - [`fleet`]: several instances as separate processes on the same topology and database.
//! - [`Api`]: either of them, as `verify` and `load` use it.
//! - [`StackError`] says why the API did not start.

pub(crate) mod fleet;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use membership::RedisTarget;

use crate::topology::state::TopologyState;
use crate::topology::{NodeKind, Topology};

/// How long [`ApiServer::start`] waits for the API to listen (and [`fleet`] for each
/// instance to answer).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors starting the membership API on a topology.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A setting handed to the API breaks its rule (the message names the variable).
    #[error("membership API config: {0}")]
    Config(#[from] membership::ConfigError),
    /// The API stopped with an error before it listened.
    #[error("membership API failed to start: {0}")]
    Start(#[from] membership::StartError),
    /// The API ended before it listened, without an error of its own.
    #[error("membership API failed to start: it ended before listening ({0})")]
    Ended(String),
    /// The API did not listen in time.
    #[error("membership API failed to start: did not start within {} s", .waited.as_secs())]
    NotListening {
        /// How long it was given.
        waited: Duration,
    },
    /// The instances could not be prepared (this program's path, ports, log files).
    #[error("membership API instances: {0}")]
    Fleet(String),
    /// An instance's process could not be started.
    #[error("membership API instance {instance} (port {port}): cannot start {}: {source}", .program.display())]
    Spawn {
        /// Instance number, from 1.
        instance: usize,
        /// Its port.
        port: u16,
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An instance's process ended before it answered.
    #[error("membership API instance {instance} (port {port}) exited ({status}) before it answered; {log}")]
    Exited {
        /// Instance number, from 1.
        instance: usize,
        /// Its port.
        port: u16,
        /// How it ended.
        status: String,
        /// The last lines of its log (stderr).
        log: String,
    },
    /// An instance did not answer in time.
    #[error("membership API instance {instance} (port {port}) did not answer GET {} within {} s; {log}", fleet::READY_PATH, .waited.as_secs())]
    Silent {
        /// Instance number, from 1.
        instance: usize,
        /// Its port.
        port: u16,
        /// How long it was given.
        waited: Duration,
        /// The last lines of its log (stderr).
        log: String,
    },
}

/// How the API reaches a topology: its Sentinels (Sentinel mode), or its master when it
/// has none.
pub(crate) fn redis_target(state: &TopologyState) -> RedisTarget {
    let sentinels: Vec<(String, u16)> = state
        .nodes
        .iter()
        .filter(|n| n.spec.kind == NodeKind::Sentinel)
        .map(|n| (n.spec.host.clone(), n.spec.port))
        .collect();
    if sentinels.is_empty() {
        let m = &state.initial_master().spec;
        RedisTarget::Standalone {
            host: m.host.clone(),
            port: m.port,
        }
    } else {
        RedisTarget::Sentinel {
            sentinels,
            master_name: state.master_name.clone(),
        }
    }
}

/// A running membership API; stop it with [`ApiServer::stop`] (dropping it aborts it).
pub(crate) struct ApiServer {
    base: String,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), membership::StartError>>>,
}

impl ApiServer {
    /// Starts the API on a free loopback port against `topo`'s Sentinels (or its master
    /// when it has none), generating `members` members into a fresh database, and waits
    /// until it listens (the cache warm-up of the critical routes is done by then).
    /// `key_prefix`: the prefix of every key the API writes (default `membership:`).
    pub(crate) async fn start(
        topo: &Topology,
        members: u64,
        key_prefix: Option<&str>,
    ) -> Result<Self, StackError> {
        let vars: HashMap<&str, String> = [
            (
                "DATABASE_URL",
                format!("sqlite://{}", topo.dir().join("membership.db").display()),
            ),
            ("MEMBERSHIP_MEMBERS", members.to_string()),
            ("HOST", "127.0.0.1".into()),
            ("PORT", "0".into()),
            ("CACHE_WARMUP", "true".into()),
        ]
        .into_iter()
        .collect();
        let mut api_cfg = membership::ApiConfig::from_lookup(|k| vars.get(k).cloned())?;
        api_cfg.redis = redis_target(topo.state());
        api_cfg.redis_auth = topo.state().credentials().redis_auth();
        if let Some(p) = key_prefix {
            api_cfg.key_prefix = p.to_string();
        }
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(membership::serve(
            api_cfg,
            move |a| {
                let _ = addr_tx.send(a);
            },
            async move {
                let _ = stop_rx.changed().await;
            },
        ));
        match tokio::time::timeout(START_TIMEOUT, addr_rx).await {
            Ok(Ok(addr)) => Ok(Self {
                base: format!("http://{addr}"),
                stop,
                task: Some(task),
            }),
            // The API ended before listening: its own error says why.
            Ok(Err(_)) => Err(match task.await {
                Ok(Err(e)) => StackError::Start(e),
                Ok(Ok(())) => StackError::Ended("it returned without serving".into()),
                Err(e) => StackError::Ended(e.to_string()),
            }),
            // Still not listening: stop it rather than wait on a task that may never end.
            Err(_) => {
                task.abort();
                Err(StackError::NotListening {
                    waited: START_TIMEOUT,
                })
            }
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Base URLs of every instance.
    pub(crate) fn hosts(&self) -> Vec<String> {
        vec![self.base.clone()]
    }

    /// Stops serving (in-flight requests finish, bounded by the API's shutdown grace).
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The API a run loads: one instance in-process, or several as separate processes.
pub(crate) enum Api {
    /// One instance, served by this process.
    InProcess(ApiServer),
    /// Several instances, each its own process.
    Fleet(fleet::ApiFleet),
}

impl Api {
    /// Starts `instances` instances on `topo` (see [`ApiServer::start`]): in-process for
    /// one, [`fleet::ApiFleet`] for more.
    pub(crate) async fn start(
        topo: &Topology,
        members: u64,
        key_prefix: Option<&str>,
        instances: usize,
    ) -> Result<Self, StackError> {
        Ok(if instances <= 1 {
            Self::InProcess(ApiServer::start(topo, members, key_prefix).await?)
        } else {
            Self::Fleet(fleet::ApiFleet::start(topo, members, key_prefix, instances).await?)
        })
    }

    /// Base URLs of every instance.
    pub(crate) fn hosts(&self) -> Vec<String> {
        match self {
            Self::InProcess(a) => a.hosts(),
            Self::Fleet(f) => f.hosts(),
        }
    }

    /// Stops every instance.
    pub(crate) async fn stop(self) {
        match self {
            Self::InProcess(a) => a.stop().await,
            Self::Fleet(f) => f.stop().await,
        }
    }
}
