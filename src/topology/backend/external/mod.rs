//! The external backend: a topology the harness did not start (pre-production mode). Its
//! nodes are discovered through the Sentinels (`discover`); faults the Redis protocol can
//! inject are injected over it (`DEBUG SLEEP`, `CLIENT PAUSE`), the others through the
//! user's hooks (`hooks`). It never starts or stops a node on its own.

mod discover;
pub(crate) mod hooks;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{BoxFuture, Capabilities, FaultOp, Leftovers, Need};
use crate::config::{BackendKind, ExternalSection, HarnessConfig, Hook, PauseMethod};
use crate::topology::auth::Credentials;
use crate::topology::node::{ConfigView, StopOutcome};
use crate::topology::probe;
use crate::topology::spec::NodeSpec;
use crate::topology::state::{NodeRecord, TopologyState};
use crate::topology::TopologyError;
pub(crate) use discover::discover;
pub use hooks::HookRun;

/// What an external topology can take: kills and partitions only through hooks.
pub(crate) fn capabilities(ext: &ExternalSection) -> Capabilities {
    let has = |h: Hook| ext.hooks.get(h).is_some();
    Capabilities {
        kill_restart: has(Hook::Kill) && has(Hook::Restore),
        pause: true,
        partition: has(Hook::Partition) && has(Hook::Heal),
    }
}

/// Why `ext` cannot do what `need` asks, naming the missing hooks.
pub(crate) fn refusal(ext: &ExternalSection, need: Need) -> Option<String> {
    let hooks: &[Hook] = match need {
        Need::KillRestart => &[Hook::Kill, Hook::Restore],
        Need::Partition => &[Hook::Partition, Hook::Heal],
        Need::PauseSentinel => {
            return Some(
                "an external Sentinel cannot be frozen over the protocol (Sentinels have no DEBUG SLEEP)"
                    .into(),
            )
        }
        Need::Pause => return None,
    };
    let missing: Vec<&str> = hooks
        .iter()
        .filter(|h| ext.hooks.get(**h).is_none())
        .map(|h| h.name())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "on an external topology it needs the hooks {} (topology.external.hooks); missing: {}",
            hooks
                .iter()
                .map(|h| h.name())
                .collect::<Vec<_>>()
                .join(" and "),
            missing.join(", ")
        )
    })
}

/// A topology reached through its Sentinels.
pub(crate) struct ExternalBackend {
    ext: ExternalSection,
    credentials: Credentials,
    /// A `DEBUG SLEEP` in flight (pause-master), ended by `resume`.
    sleeping: Mutex<Option<tokio::task::JoinHandle<redis::RedisResult<()>>>>,
    /// Every hook run so far, for the report.
    runs: std::sync::Arc<Mutex<Vec<HookRun>>>,
    /// Held by the hook that runs: hooks run one at a time, in order, each to its end (a
    /// drill that stops waiting for one, on an abort, does not cut it off; the restore
    /// that follows waits for it).
    running: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The peers of the last partition, for `heal`.
    peers: Mutex<Vec<String>>,
}

impl std::fmt::Debug for ExternalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalBackend")
            .field("ext", &self.ext)
            .finish()
    }
}

/// The message every start or stop of an external topology gets.
pub(crate) const NOT_OURS: &str =
    "the harness does not start or stop an external topology (topology.external); it only drills and measures it";

impl ExternalBackend {
    /// A backend for `ext`, logging in with `credentials`.
    pub(crate) fn new(ext: ExternalSection, credentials: Credentials) -> Self {
        Self {
            ext,
            credentials,
            sleeping: Mutex::new(None),
            runs: Default::default(),
            running: Default::default(),
            peers: Mutex::new(Vec::new()),
        }
    }

    /// The backend of `cfg`, which must have `topology.external`.
    pub(crate) fn for_config(cfg: &HarnessConfig) -> Self {
        Self::new(
            cfg.topology.external.clone().unwrap_or_default(),
            cfg.credentials(),
        )
    }

    /// Runs `hook` for `record`; `Err` unless it exits 0 within the timeout.
    async fn hook(
        &self,
        hook: Hook,
        record: &NodeRecord,
        peers: &[String],
    ) -> Result<(), TopologyError> {
        let command =
            command(&self.ext, hook, &record.spec, peers).ok_or_else(|| TopologyError::Hook {
                hook: hook.name(),
                node: record.spec.name.clone(),
                detail: "not configured (topology.external.hooks)".into(),
            })?;
        let timeout = Duration::from_millis(self.ext.hook_timeout_ms);
        tracing::info!("hook {}: {command}", hook.name());
        let (runs, running) = (self.runs.clone(), self.running.clone());
        let node = record.spec.name.clone();
        let task = tokio::spawn(async move {
            let _turn = running.lock().await;
            let run = hooks::run(hook, &node, command, timeout).await;
            let result = (
                run.ok(),
                format!("{}; output: {}", run.summary(), one_line(&run.output)),
            );
            runs.lock().expect("not poisoned").push(run);
            result
        });
        let (ok, detail) = task.await.map_err(|e| TopologyError::Hook {
            hook: hook.name(),
            node: record.spec.name.clone(),
            detail: format!("the hook's task failed: {e}"),
        })?;
        if ok {
            Ok(())
        } else {
            Err(TopologyError::Hook {
                hook: hook.name(),
                node: record.spec.name.clone(),
                detail,
            })
        }
    }

    /// Waits until `record` answers PING (`up`) or stops answering (`!up`), at most the hook
    /// timeout; `Err` naming the hook whose effect did not follow.
    async fn wait_for(
        &self,
        hook: Hook,
        record: &NodeRecord,
        up: bool,
    ) -> Result<(), TopologyError> {
        let login = self.credentials.for_kind(record.spec.kind);
        let limit = Duration::from_millis(self.ext.hook_timeout_ms);
        let started = Instant::now();
        loop {
            let answers = match probe::connect(
                &record.spec.host,
                record.spec.port,
                login,
                Duration::from_millis(300),
            )
            .await
            {
                Ok(mut c) => redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if answers == up {
                return Ok(());
            }
            if started.elapsed() >= limit {
                return Err(TopologyError::Hook {
                    hook: hook.name(),
                    node: record.spec.name.clone(),
                    detail: format!(
                        "it exited 0 but {} at {} {} after {} ms",
                        record.spec.name,
                        record.spec.addr(),
                        if up {
                            "still does not answer PING"
                        } else {
                            "still answers PING"
                        },
                        limit.as_millis()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `hook`'s command in `ext` for `spec`, filled in; `None` when it is not configured.
pub(crate) fn command(
    ext: &ExternalSection,
    hook: Hook,
    spec: &NodeSpec,
    peers: &[String],
) -> Option<String> {
    let t = ext.hooks.get(hook)?;
    Some(hooks::fill(t, spec, &name_in(&ext.nodes, spec), peers))
}

/// The name `nodes` gives `spec`'s address (what `{node}` is), else its host.
pub(crate) fn name_in(nodes: &BTreeMap<String, String>, spec: &NodeSpec) -> String {
    let addr = spec.addr();
    nodes
        .iter()
        .find(|(_, a)| **a == addr)
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| spec.host.clone())
}

/// `text` on one line, shortened.
fn one_line(text: &str) -> String {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().count() > 300 {
        format!("{}...", t.chars().take(300).collect::<String>())
    } else if t.is_empty() {
        "(none)".into()
    } else {
        t
    }
}

fn not_ours<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, TopologyError>> {
    Box::pin(async { Err(TopologyError::External(NOT_OURS.into())) })
}

impl super::Backend for ExternalBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::External
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(&self.ext)
    }

    fn preflight<'a>(
        &'a mut self,
        _cfg: &'a HarnessConfig,
        _dir: &'a Path,
    ) -> BoxFuture<'a, Result<String, TopologyError>> {
        not_ours()
    }

    fn plan(&self, _cfg: &HarnessConfig) -> Result<Vec<NodeSpec>, TopologyError> {
        Err(TopologyError::External(NOT_OURS.into()))
    }

    fn config_view(&self) -> ConfigView {
        ConfigView {
            dir: None,
            bind: None,
            extra: "",
        }
    }

    fn start(&mut self, _record: NodeRecord) -> BoxFuture<'_, Result<NodeRecord, TopologyError>> {
        not_ours()
    }

    fn exit_report<'a>(&'a mut self, _record: &'a NodeRecord) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }

    fn verb(&self, op: FaultOp) -> String {
        let hook = |h: Hook| format!("hook {}", h.name());
        match (op, self.ext.pause) {
            (FaultOp::Kill, _) => hook(Hook::Kill),
            (FaultOp::Restart, _) => hook(Hook::Restore),
            (FaultOp::Partition, _) => hook(Hook::Partition),
            (FaultOp::Heal, _) => hook(Hook::Heal),
            (FaultOp::Pause, PauseMethod::DebugSleep) => "DEBUG SLEEP".into(),
            (FaultOp::Resume, PauseMethod::DebugSleep) => "end of DEBUG SLEEP on".into(),
            (FaultOp::Pause, PauseMethod::ClientPauseWrite) => "CLIENT PAUSE WRITE".into(),
            (FaultOp::Resume, PauseMethod::ClientPauseWrite) => "CLIENT UNPAUSE".into(),
        }
    }

    fn kill<'a>(&'a mut self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            self.hook(Hook::Kill, record, &[]).await?;
            self.wait_for(Hook::Kill, record, false).await
        })
    }

    fn restart<'a>(
        &'a mut self,
        record: &'a mut NodeRecord,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            self.hook(Hook::Restore, record, &[]).await?;
            self.wait_for(Hook::Restore, record, true).await
        })
    }

    fn pause<'a>(
        &'a self,
        record: &'a NodeRecord,
        hold: Duration,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            let spec = &record.spec;
            let login = self.credentials.for_kind(spec.kind);
            let failed = |e: redis::RedisError| {
                TopologyError::External(format!("pausing {} at {}: {e}", spec.name, spec.addr()))
            };
            match self.ext.pause {
                PauseMethod::DebugSleep => {
                    // Its own connection: DEBUG SLEEP answers only when the sleep is over.
                    let mut c = probe::connect_with(
                        &spec.host,
                        spec.port,
                        login,
                        Duration::from_secs(2),
                        hold + Duration::from_secs(10),
                    )
                    .await
                    .map_err(failed)?;
                    let secs = format!("{:.3}", hold.as_secs_f64());
                    let task = tokio::spawn(async move {
                        redis::cmd("DEBUG")
                            .arg("SLEEP")
                            .arg(secs)
                            .query_async::<()>(&mut c)
                            .await
                    });
                    // A refusal comes back at once; a sleep does not.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if task.is_finished() {
                        let r = task.await.map_err(|e| {
                            TopologyError::External(format!("DEBUG SLEEP on {}: {e}", spec.name))
                        })?;
                        r.map_err(failed)?;
                        return Err(TopologyError::External(format!(
                            "DEBUG SLEEP on {} returned at once instead of sleeping",
                            spec.name
                        )));
                    }
                    *self.sleeping.lock().expect("not poisoned") = Some(task);
                }
                PauseMethod::ClientPauseWrite => {
                    let mut c =
                        probe::connect(&spec.host, spec.port, login, Duration::from_secs(2))
                            .await
                            .map_err(failed)?;
                    redis::cmd("CLIENT")
                        .arg("PAUSE")
                        .arg(hold.as_millis() as u64)
                        .arg("WRITE")
                        .query_async::<()>(&mut c)
                        .await
                        .map_err(failed)?;
                }
            }
            Ok(())
        })
    }

    fn resume<'a>(&'a self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            let spec = &record.spec;
            match self.ext.pause {
                PauseMethod::DebugSleep => {
                    let task = self.sleeping.lock().expect("not poisoned").take();
                    if let Some(task) = task {
                        // The sleep ends on its own; its answer (or the link's error) is
                        // only logged: the node may have been demoted meanwhile.
                        match task.await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::info!("DEBUG SLEEP on {}: {e}", spec.name),
                            Err(e) => tracing::info!("DEBUG SLEEP on {}: {e}", spec.name),
                        }
                    }
                    Ok(())
                }
                PauseMethod::ClientPauseWrite => {
                    let login = self.credentials.for_kind(spec.kind);
                    let mut c =
                        probe::connect(&spec.host, spec.port, login, Duration::from_secs(2))
                            .await
                            .map_err(|e| {
                                TopologyError::External(format!(
                                    "CLIENT UNPAUSE on {}: {e}",
                                    spec.name
                                ))
                            })?;
                    redis::cmd("CLIENT")
                        .arg("UNPAUSE")
                        .query_async::<()>(&mut c)
                        .await
                        .map_err(|e| {
                            TopologyError::External(format!("CLIENT UNPAUSE on {}: {e}", spec.name))
                        })
                }
            }
        })
    }

    fn partition<'a>(
        &'a self,
        record: &'a NodeRecord,
        peers: &'a [String],
        _direction: crate::config::PartitionDirection,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            *self.peers.lock().expect("not poisoned") = peers.to_vec();
            self.hook(Hook::Partition, record, peers).await
        })
    }

    fn heal<'a>(&'a self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            let peers = self.peers.lock().expect("not poisoned").clone();
            self.hook(Hook::Heal, record, &peers).await
        })
    }

    fn hook_runs(&self) -> Vec<HookRun> {
        std::mem::take(&mut *self.runs.lock().expect("not poisoned"))
    }

    fn stop<'a>(
        &'a mut self,
        _state: &'a TopologyState,
        _grace: Duration,
    ) -> BoxFuture<'a, Result<Vec<StopOutcome>, TopologyError>> {
        not_ours()
    }

    fn leftovers<'a>(&'a self, _state: &'a TopologyState) -> BoxFuture<'a, Leftovers> {
        Box::pin(async { Leftovers::default() })
    }

    fn cleanup_blocking(&mut self, _state: &TopologyState) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::external::Hooks;

    #[test]
    fn missing_hooks_are_named_before_anything_runs() {
        let mut ext = ExternalSection {
            hooks: Hooks {
                kill: Some("docker kill {node}".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            refusal(&ext, Need::KillRestart).unwrap(),
            "on an external topology it needs the hooks kill and restore (topology.external.hooks); missing: restore"
        );
        assert!(refusal(&ext, Need::Pause).is_none());
        assert!(refusal(&ext, Need::Partition)
            .unwrap()
            .ends_with("missing: partition, heal"));
        ext.hooks.restore = Some("docker start {node}".into());
        assert!(refusal(&ext, Need::KillRestart).is_none());
        assert!(capabilities(&ext).kill_restart && !capabilities(&ext).partition);
    }

    #[test]
    fn a_node_is_named_by_the_map_or_by_its_host() {
        let nodes: BTreeMap<String, String> =
            [("redis-0".to_string(), "10.1.0.5:6379".to_string())].into();
        let spec = |host: &str| NodeSpec {
            name: "master".into(),
            kind: crate::topology::NodeKind::Master,
            host: host.into(),
            port: 6379,
        };
        assert_eq!(name_in(&nodes, &spec("10.1.0.5")), "redis-0");
        assert_eq!(name_in(&nodes, &spec("10.1.0.6")), "10.1.0.6");
    }
}
