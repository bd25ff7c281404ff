//! The process backend: local `redis-server` processes on loopback, one directory each.
//!
//! Each node runs in its own process group, so a Ctrl-C in the terminal reaches only the
//! harness, which then tears the nodes down itself. Processes are recognised by their
//! command line (which names the node's config file) before any signal is sent, so a
//! recycled pid is never killed by mistake.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BoxFuture, Capabilities, Leftovers, Origin};
use crate::config::{BackendKind, HarnessConfig};
use crate::topology::node::StopOutcome;
use crate::topology::node::{log_tail, ConfigView};
use crate::topology::spec::{self, NodeKind, NodeSpec};
use crate::topology::state::{NodeRecord, TopologyState};
use crate::topology::TopologyError;

/// Processes can be killed, restarted and paused (SIGSTOP / SIGCONT), not partitioned.
pub const CAPABILITIES: Capabilities = Capabilities {
    kill_restart: true,
    pause: true,
    partition: false,
};

/// How to install redis-server, quoted in "binary not found" errors.
pub const INSTALL_HINT: &str = "install it with `apt-get install redis-server` (Debian/Ubuntu; \
or run scripts/setup.sh), `brew install redis` (macOS), or set `redis_server:` in harness.yaml \
to the binary's path";

/// Finds the `redis-server` binary: a path is checked as given, a bare name is looked up
/// on `PATH`. A file that is there but cannot be run (a directory, no execute permission)
/// is reported as such, naming it, rather than as missing.
pub fn locate_binary(binary: &Path) -> Result<PathBuf, TopologyError> {
    let not_found = || TopologyError::BinaryNotFound {
        binary: binary.to_path_buf(),
        hint: INSTALL_HINT,
    };
    if binary.as_os_str().is_empty() {
        return Err(not_found());
    }
    if binary.components().count() > 1 {
        return match executable_problem(binary) {
            Ok(None) => Ok(binary.to_path_buf()),
            Ok(Some(problem)) => Err(TopologyError::BinaryNotExecutable {
                binary: binary.to_path_buf(),
                problem,
            }),
            Err(_) => Err(not_found()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut unusable = None;
    for candidate in std::env::split_paths(&path).map(|dir| dir.join(binary)) {
        match executable_problem(&candidate) {
            Ok(None) => return Ok(candidate),
            Ok(Some(problem)) => {
                unusable.get_or_insert((candidate, problem));
            }
            Err(_) => {}
        }
    }
    Err(match unusable {
        Some((binary, problem)) => TopologyError::BinaryNotExecutable { binary, problem },
        None => not_found(),
    })
}

/// `Ok(None)` when `p` is an executable file, `Ok(Some(why not))` when it exists but is
/// not, `Err` when it does not exist (or cannot be looked at).
fn executable_problem(p: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt;
    let m = p.metadata()?;
    let mode = m.permissions().mode();
    Ok(if m.is_dir() {
        Some("it is a directory".into())
    } else if !m.is_file() {
        Some("it is not a regular file".into())
    } else if mode & 0o111 == 0 {
        Some(format!("mode {:o}, no execute permission", mode & 0o7777))
    } else {
        None
    })
}

/// `redis-server --version`, e.g. `Redis server v=7.0.15 ...`.
pub fn binary_version(binary: &Path) -> Result<String, TopologyError> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(TopologyError::file("run", binary))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !text.contains("v=") {
        return Err(TopologyError::Start {
            node: "-".into(),
            detail: format!(
                "{} --version did not look like redis-server: {text}",
                binary.display()
            ),
        });
    }
    Ok(text)
}

/// Starts one node: `redis-server <config> [--sentinel]` in its own process group, with
/// stdout/stderr captured to `stdout.log` in its directory. Returns its record (with the
/// pid) and the child to reap.
pub fn spawn_node(
    binary: &Path,
    mut record: NodeRecord,
) -> Result<(NodeRecord, Child), TopologyError> {
    let log = record.dir.join("stdout.log");
    let out =
        File::create(&log).map_err(TopologyError::file("create the node's output log", &log))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(binary);
    cmd.arg(&record.config_file);
    if record.spec.kind == NodeKind::Sentinel {
        cmd.arg("--sentinel");
    }
    cmd.current_dir(&record.dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let child = cmd.spawn().map_err(|e| TopologyError::Start {
        node: record.spec.name.clone(),
        detail: format!("cannot run {}: {e}", binary.display()),
    })?;
    record.pid = Some(child.id());
    Ok((record, child))
}

/// Whether `pid` is a live (not zombie) node process of `record`.
///
/// redis-server rewrites its command line to `redis-server host:port`, so the process is
/// recognised by its working directory (the node's own directory) together with either
/// its original arguments (the config file) or its rewritten title (the port).
pub fn is_our_process(pid: u32, record: &NodeRecord) -> bool {
    let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else {
        return false;
    };
    if cwd != record.dir {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let cmdline = String::from_utf8_lossy(&cmdline);
    let config = record.config_file.to_string_lossy();
    let title = format!(":{}", record.spec.port);
    let matches = cmdline
        .split(['\0', ' '])
        .any(|arg| arg == config || arg.ends_with(&title));
    matches && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Sends `signal` to a process. Errors (already gone) are ignored.
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Stops nodes known from their records: SIGTERM to all, then SIGKILL to whatever is
/// still alive after `grace` (at once when `grace` is zero), and waits until every one is
/// gone.
pub fn stop_records(records: &[NodeRecord], grace: Duration) -> Vec<StopOutcome> {
    let live = |r: &NodeRecord| r.pid.filter(|pid| is_our_process(*pid, r));
    let mut outcomes: Vec<StopOutcome> = records
        .iter()
        .map(|r| match live(r) {
            Some(pid) => {
                let sig = if grace.is_zero() {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                };
                send_signal(pid, sig);
                if grace.is_zero() {
                    StopOutcome::Killed
                } else {
                    StopOutcome::Terminated
                }
            }
            None => StopOutcome::NotRunning,
        })
        .collect();
    // Redis refuses a SIGTERM while it writes its initial AOF (a replica just after its
    // first sync): "Writing initial AOF, can't exit". It is asked again every 100 ms, so
    // it exits as soon as it can rather than being killed at the end of the grace.
    let deadline = Instant::now() + grace;
    let mut asked = Instant::now();
    while Instant::now() < deadline && records.iter().any(|r| live(r).is_some()) {
        std::thread::sleep(Duration::from_millis(20));
        if asked.elapsed() >= Duration::from_millis(100) {
            asked = Instant::now();
            records
                .iter()
                .filter_map(live)
                .for_each(|pid| send_signal(pid, libc::SIGTERM));
        }
    }
    for (r, outcome) in records.iter().zip(outcomes.iter_mut()) {
        if let Some(pid) = live(r) {
            send_signal(pid, libc::SIGKILL);
            *outcome = StopOutcome::Killed;
        }
    }
    // SIGKILL cannot be ignored; wait (bounded) until the kernel has removed them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && records.iter().any(|r| live(r).is_some()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    outcomes
}

/// The process backend: finds the binary, spawns and signals the nodes, and reaps the
/// children it started.
#[derive(Debug)]
pub(crate) struct ProcessBackend {
    /// `redis_server` as configured (located again on restart).
    redis_server: PathBuf,
    /// The binary found by the preflight.
    binary: Option<PathBuf>,
    /// Children started here, by node name, reaped when they are stopped.
    children: HashMap<String, Child>,
}

impl ProcessBackend {
    pub(crate) fn new(origin: Origin<'_>) -> Self {
        let redis_server = match origin {
            Origin::Config(cfg) => cfg.redis_server.clone(),
            Origin::State(_) => PathBuf::from("redis-server"),
        };
        Self {
            redis_server,
            binary: None,
            children: HashMap::new(),
        }
    }

    fn binary(&mut self) -> Result<PathBuf, TopologyError> {
        match &self.binary {
            Some(b) => Ok(b.clone()),
            None => {
                let b = locate_binary(&self.redis_server)?;
                self.binary = Some(b.clone());
                Ok(b)
            }
        }
    }

    /// SIGKILLs (or SIGTERMs, given a `grace`) `records`, waits until they are gone and
    /// reaps their children so no zombie is left behind.
    fn stop_and_reap(&mut self, records: &[NodeRecord], grace: Duration) -> Vec<StopOutcome> {
        let outcomes = stop_records(records, grace);
        for r in records {
            if let Some(mut child) = self.children.remove(&r.spec.name) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        outcomes
    }

    /// Sends `signal` to the node's process, if it is still ours.
    fn signal(&self, record: &NodeRecord, signal: i32) -> Result<(), TopologyError> {
        match record.pid.filter(|pid| is_our_process(*pid, record)) {
            Some(pid) => {
                send_signal(pid, signal);
                Ok(())
            }
            None => Err(TopologyError::NotRunning(record.spec.name.clone())),
        }
    }
}

impl super::Backend for ProcessBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Process
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn preflight<'a>(
        &'a mut self,
        _cfg: &'a HarnessConfig,
        _dir: &'a Path,
    ) -> BoxFuture<'a, Result<String, TopologyError>> {
        Box::pin(async move {
            // The backend was built from this config: `redis_server` is already its.
            let binary = self.binary()?;
            binary_version(&binary)
        })
    }

    fn plan(&self, cfg: &HarnessConfig) -> Result<Vec<NodeSpec>, TopologyError> {
        spec::plan_nodes(cfg)
    }

    fn config_view(&self) -> ConfigView {
        ConfigView {
            dir: None,
            bind: None,
            extra: "",
        }
    }

    fn start(&mut self, record: NodeRecord) -> BoxFuture<'_, Result<NodeRecord, TopologyError>> {
        Box::pin(async move {
            let binary = self.binary()?;
            tracing::info!("starting {} on {}", record.spec.name, record.spec.addr());
            let (record, child) = spawn_node(&binary, record)?;
            self.children.insert(record.spec.name.clone(), child);
            Ok(record)
        })
    }

    fn exit_report<'a>(&'a mut self, record: &'a NodeRecord) -> BoxFuture<'a, Option<String>> {
        let report = self.children.get_mut(&record.spec.name).and_then(|child| {
            let status = child.try_wait().ok().flatten()?;
            Some(format!(
                "exited with {status}; last log lines:\n{}",
                log_tail(record, 15)
            ))
        });
        Box::pin(async move { report })
    }

    fn live_pid(&self, record: &NodeRecord) -> Option<u32> {
        record.pid.filter(|pid| is_our_process(*pid, record))
    }

    fn kill<'a>(&'a mut self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        self.stop_and_reap(std::slice::from_ref(record), Duration::ZERO);
        Box::pin(async { Ok(()) })
    }

    fn restart<'a>(
        &'a mut self,
        record: &'a mut NodeRecord,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        Box::pin(async move {
            let binary = locate_binary(&self.redis_server)?;
            self.stop_and_reap(std::slice::from_ref(record), Duration::ZERO);
            let (started, child) = spawn_node(&binary, record.clone())?;
            self.children.insert(started.spec.name.clone(), child);
            *record = started;
            Ok(())
        })
    }

    fn pause<'a>(
        &'a self,
        record: &'a NodeRecord,
        _hold: Duration,
    ) -> BoxFuture<'a, Result<(), TopologyError>> {
        let r = self.signal(record, libc::SIGSTOP);
        Box::pin(async move { r })
    }

    fn resume<'a>(&'a self, record: &'a NodeRecord) -> BoxFuture<'a, Result<(), TopologyError>> {
        let r = self.signal(record, libc::SIGCONT);
        Box::pin(async move { r })
    }

    fn stop<'a>(
        &'a mut self,
        state: &'a TopologyState,
        grace: Duration,
    ) -> BoxFuture<'a, Result<Vec<StopOutcome>, TopologyError>> {
        let records = state.nodes.clone();
        let mut children = std::mem::take(&mut self.children);
        Box::pin(async move {
            let outcomes = tokio::task::spawn_blocking(move || {
                let outcomes = stop_records(&records, grace);
                for (_, mut child) in children.drain() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                outcomes
            })
            .await
            .expect("teardown task panicked");
            Ok(outcomes)
        })
    }

    fn leftovers<'a>(&'a self, state: &'a TopologyState) -> BoxFuture<'a, Leftovers> {
        Box::pin(async move {
            let mut left = Leftovers::default();
            for n in &state.nodes {
                let addr = n.spec.addr();
                let open = tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(&addr),
                )
                .await
                .is_ok_and(|r| r.is_ok());
                if open {
                    left.ports_still_open.push(n.spec.port);
                }
            }
            left
        })
    }

    fn cleanup_blocking(&mut self, state: &TopologyState) -> bool {
        if state.nodes.is_empty() {
            return false;
        }
        self.stop_and_reap(&state.nodes, Duration::ZERO);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_path_that_is_not_executable_is_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let p = file_with_mode(tmp.path(), "redis-server", 0o644);
        let e = locate_binary(&p).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("exists but is not executable"), "{e}");
        assert!(e.contains("mode 644"), "{e}");
        assert!(!e.contains("not found"), "{e}");
    }

    #[test]
    fn a_directory_is_not_a_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let e = locate_binary(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("it is a directory"), "{e}");
        assert!(e.contains(&tmp.path().display().to_string()), "{e}");
    }

    #[test]
    fn an_executable_path_is_accepted_and_a_missing_one_is_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let p = file_with_mode(tmp.path(), "redis-server", 0o755);
        assert_eq!(locate_binary(&p).unwrap(), p);
        let missing = tmp.path().join("nope");
        let e = locate_binary(&missing).unwrap_err().to_string();
        assert!(e.contains("binary not found"), "{e}");
        assert!(e.contains(&missing.display().to_string()), "{e}");
    }

    #[test]
    fn an_empty_name_is_not_found_rather_than_a_directory_on_path() {
        let e = locate_binary(Path::new("")).unwrap_err();
        assert!(matches!(e, TopologyError::BinaryNotFound { .. }), "{e}");
    }

    #[tokio::test]
    async fn pausing_a_node_that_is_not_running_names_it() {
        use crate::topology::backend::Backend as _;
        let tmp = tempfile::tempdir().unwrap();
        let record = NodeRecord {
            spec: NodeSpec {
                name: "replica-1".into(),
                kind: NodeKind::Replica,
                host: "127.0.0.1".into(),
                port: 1,
            },
            pid: None,
            dir: tmp.path().to_path_buf(),
            config_file: tmp.path().join("redis.conf"),
            log_file: tmp.path().join("redis.log"),
            container: None,
        };
        let b = ProcessBackend::new(Origin::State(&TopologyState {
            version: crate::topology::state::STATE_VERSION,
            name: "t".into(),
            backend: BackendKind::Process,
            master_name: "m".into(),
            password: None,
            username: None,
            sentinel_password: None,
            redis_version: String::new(),
            started_unix_ms: 0,
            nodes: vec![record.clone()],
            network: None,
            console: None,
        }));
        for e in [
            b.pause(&record, Duration::ZERO).await.unwrap_err(),
            b.resume(&record).await.unwrap_err(),
        ] {
            assert_eq!(e.to_string(), "node replica-1 is not running");
        }
        assert_eq!(b.live_pid(&record), None);
    }
}
