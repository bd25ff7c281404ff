//! A user's own client program: started with the topology in its environment (the
//! README's "Your own client"), in its own process group, stopped with SIGTERM (SIGKILL
//! after a grace period) when the drill ends; its history file is checked by `protocol`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::protocol::{self, Rules};
use super::{ClientError, Ctx, Stopped};
use crate::drill::clock::Clock;

/// How long a client has to exit after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// How a client's process ended.
#[derive(Debug, Clone)]
struct Exit {
    status: Option<ExitStatus>,
    /// It exited before the harness told it to stop.
    on_its_own: bool,
    /// It needed SIGKILL.
    killed: bool,
    /// CLOCK_MONOTONIC when it ended.
    at_ns: i64,
}

/// A running external client.
pub(crate) struct External {
    name: String,
    prefix: String,
    history: PathBuf,
    log: PathBuf,
    clock: Clock,
    started_ns: i64,
    stop: Option<oneshot::Sender<()>>,
    exited: tokio::sync::watch::Receiver<Option<Exit>>,
    task: JoinHandle<()>,
    /// The process group, until it was stopped the orderly way.
    group: Option<u32>,
}

impl Drop for External {
    /// A drill that ends without stopping its clients (an error, Ctrl-C, a panic) kills
    /// their whole process groups at once: nothing outlives the harness.
    fn drop(&mut self) {
        signal_group(self.group.take(), libc::SIGKILL);
    }
}

/// The program of `command`, found on PATH or as a path.
pub(crate) fn program(name: &str, command: &str) -> Result<(PathBuf, Vec<String>), ClientError> {
    let err = |problem: String| ClientError {
        client: name.to_string(),
        problem,
    };
    let mut argv = shell_words::split(command)
        .map_err(|e| err(format!("cannot split the command {command:?}: {e}")))?;
    if argv.is_empty() {
        return Err(err("the command is empty".into()));
    }
    let first = argv.remove(0);
    let path = which::which(&first).map_err(|_| {
        err(format!(
            "program {first:?} not found (on PATH or as a path from {})",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "the current directory".into())
        ))
    })?;
    Ok((path, argv))
}

fn tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n    ");
    if tail.is_empty() {
        format!("its log {} is empty", path.display())
    } else {
        format!("the end of its log {}:\n    {tail}", path.display())
    }
}

/// Whether any process of the group `pid` leads is left.
fn group_alive(pid: Option<u32>) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the group exists.
    pid.is_some_and(|p| unsafe { libc::kill(-(p as libc::pid_t), 0) } == 0)
}

fn signal_group(pid: Option<u32>, sig: libc::c_int) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) on the process group the child leads; no memory is involved.
        unsafe { libc::kill(-(pid as libc::pid_t), sig) };
    }
}

impl External {
    /// Starts `command` as client `name`.
    pub(crate) fn start(name: &str, command: &str, ctx: &Ctx) -> Result<Self, ClientError> {
        let err = |problem: String| ClientError {
            client: name.to_string(),
            problem,
        };
        let (path, args) = program(name, command)?;
        std::fs::create_dir_all(&ctx.dir)
            .map_err(|e| err(format!("cannot create {}: {e}", ctx.dir.display())))?;
        let history = ctx.dir.join(format!("{name}.history.jsonl"));
        let log = ctx.dir.join(format!("{name}.log"));
        let file = |p: &Path| {
            std::fs::File::create(p).map_err(|e| err(format!("cannot create {}: {e}", p.display())))
        };
        file(&history)?;
        let out = file(&log)?;
        let errs = out
            .try_clone()
            .map_err(|e| err(format!("cannot share {}: {e}", log.display())))?;
        let prefix = ctx.prefix(name);
        let sentinels: Vec<String> = ctx
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        let mut cmd = Command::new(&path);
        cmd.args(&args)
            .env("REDIS_HARNESS_CLIENT", name)
            .env("REDIS_HARNESS_SENTINELS", sentinels.join(","))
            .env("REDIS_HARNESS_MASTER_NAME", &ctx.master_name)
            .env("REDIS_HARNESS_KEY_PREFIX", &prefix)
            .env("REDIS_HARNESS_HISTORY", &history)
            .env(
                "REDIS_HARNESS_WRITE_RATE",
                (ctx.drill.write_rate * ctx.drill.writers).to_string(),
            )
            .env(
                "REDIS_HARNESS_OP_TIMEOUT_MS",
                ctx.drill.op_timeout_ms.to_string(),
            )
            .env_remove("REDIS_HARNESS_USERNAME")
            .env_remove("REDIS_HARNESS_PASSWORD")
            .env_remove("REDIS_HARNESS_SENTINEL_PASSWORD")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(errs)
            .process_group(0)
            .kill_on_drop(true);
        let c = &ctx.credentials;
        for (var, value) in [
            ("REDIS_HARNESS_USERNAME", &c.data.username),
            ("REDIS_HARNESS_PASSWORD", &c.data.password),
            ("REDIS_HARNESS_SENTINEL_PASSWORD", &c.sentinel.password),
        ] {
            if let Some(v) = value {
                cmd.env(var, v);
            }
        }
        let started_ns = Clock::monotonic_ns();
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot start {}: {e}", path.display())))?;
        let group = child.id();
        let (stop, stop_rx) = oneshot::channel();
        let (exit_tx, exited) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(supervise(child, stop_rx, exit_tx));
        Ok(Self {
            name: name.to_string(),
            prefix,
            history,
            log,
            clock: ctx.clock,
            started_ns,
            stop: Some(stop),
            exited,
            task,
            group,
        })
    }

    /// Fails when the program has exited or has not recorded an operation yet.
    pub(crate) fn check_running(&mut self) -> Result<(), ClientError> {
        let err = |problem: String| ClientError {
            client: self.name.clone(),
            problem,
        };
        if let Some(exit) = self.exited.borrow().clone() {
            return Err(err(format!(
                "exited ({}) {:.1} s after it was started, before the fault; {}",
                status_text(exit.status),
                (exit.at_ns - self.started_ns) as f64 / 1e9,
                tail(&self.log)
            )));
        }
        let written = std::fs::metadata(&self.history)
            .map(|m| m.len())
            .unwrap_or(0);
        if written == 0 {
            return Err(err(format!(
                "wrote no history line to {} before the fault ({:.1} s after it was started; \
                 raise drill.pre_fault_ms if it needs longer to start); {}",
                self.history.display(),
                (Clock::monotonic_ns() - self.started_ns) as f64 / 1e9,
                tail(&self.log)
            )));
        }
        Ok(())
    }

    /// Stops the program (SIGTERM, SIGKILL after [`GRACE`]) and checks its history.
    pub(crate) async fn stop(mut self) -> Stopped {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        self.group = None;
        let exit = self.exited.borrow().clone();
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let (killed, stopped_ns) = match &exit {
            Some(e) => {
                if e.on_its_own {
                    problems.push(format!(
                        "exited on its own ({}) {:.1} s after it was started, before the drill ended; {}",
                        status_text(e.status),
                        (e.at_ns - self.started_ns) as f64 / 1e9,
                        tail(&self.log)
                    ));
                }
                if e.killed {
                    notes.push(format!(
                        "did not exit within {} s of SIGTERM and was killed",
                        GRACE.as_secs()
                    ));
                }
                (e.killed, e.at_ns)
            }
            None => (true, Clock::monotonic_ns()),
        };
        let text = match std::fs::read_to_string(&self.history) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!(
                    "cannot read its history {}: {e}",
                    self.history.display()
                ));
                return Stopped {
                    problems,
                    notes,
                    rejected: true,
                    ..Stopped::default()
                };
            }
        };
        let rules = Rules {
            prefix: &self.prefix,
            clock: self.clock,
            window_ns: (self.started_ns, stopped_ns),
            killed,
        };
        match protocol::check(&text, &rules) {
            Ok(c) => {
                if c.cut_off {
                    notes.push("its last line was cut off by SIGKILL and not counted".into());
                }
                if c.ops.is_empty() {
                    problems.push(format!(
                        "its history {} has no operation",
                        self.history.display()
                    ));
                }
                Stopped {
                    ops: c.ops,
                    keys: c.keys.into_iter().collect(),
                    problems,
                    notes,
                    rejected: false,
                }
            }
            Err(e) => {
                problems.push(format!(
                    "history {} rejected, nothing of it counted: {e}",
                    self.history.display()
                ));
                Stopped {
                    problems,
                    notes,
                    rejected: true,
                    ..Stopped::default()
                }
            }
        }
    }
}

fn status_text(s: Option<ExitStatus>) -> String {
    match s {
        Some(s) => s.to_string(),
        None => "status unknown".into(),
    }
}

/// Waits for the child to exit on its own, or for the order to stop it.
async fn supervise(
    mut child: Child,
    stop: oneshot::Receiver<()>,
    exited: tokio::sync::watch::Sender<Option<Exit>>,
) {
    let pid = child.id();
    let exit = tokio::select! {
        status = child.wait() => {
            // Whatever it left behind in its group goes too.
            signal_group(pid, libc::SIGKILL);
            Exit { status: status.ok(), on_its_own: true, killed: false, at_ns: Clock::monotonic_ns() }
        }
        _ = stop => {
            signal_group(pid, libc::SIGTERM);
            let deadline = tokio::time::Instant::now() + GRACE;
            let status = tokio::time::timeout_at(deadline, child.wait()).await;
            // The leader may be a wrapper (sh, uv run, cargo run): the rest of its group
            // gets the rest of the grace too.
            while group_alive(pid) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let killed = status.is_err() || group_alive(pid);
            signal_group(pid, libc::SIGKILL);
            let status = match status {
                Ok(s) => s.ok(),
                Err(_) => child.wait().await.ok(),
            };
            Exit { status, on_its_own: false, killed, at_ns: Clock::monotonic_ns() }
        }
    };
    let _ = exited.send(Some(exit));
}
