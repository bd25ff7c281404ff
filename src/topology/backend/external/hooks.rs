//! Runs the user's fault hooks: `sh -c` with the node's placeholders filled in
//! (shell-quoted), in a process group of its own, bounded by a timeout after which the
//! whole group is killed; the exit status and the end of the output are kept for the report.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

use crate::config::Hook;
use crate::topology::spec::{NodeKind, NodeSpec};

/// The most output kept per hook run (its end).
const KEEP_OUTPUT: usize = 4096;

/// One hook run, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    /// `kill`, `restore`, `partition` or `heal`.
    pub hook: String,
    /// The node it aimed at (the harness's name for it).
    pub node: String,
    /// The command as run, placeholders filled in.
    pub command: String,
    /// Exit code (`None`: killed by a signal or by the timeout).
    pub exit_code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Wall time in milliseconds.
    pub ms: u64,
    /// The end of its stdout and stderr, interleaved as written.
    pub output: String,
}

impl HookRun {
    /// Whether it exited 0 in time.
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// One line: what ran and how it ended.
    pub fn summary(&self) -> String {
        let end = match (self.timed_out, self.exit_code) {
            (true, _) => "timed out".to_string(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "killed by a signal".to_string(),
        };
        format!(
            "hook {} `{}`: {end} in {} ms",
            self.hook, self.command, self.ms
        )
    }
}

/// What a placeholder of `node` becomes: `{node}` its given name, `{host}`, `{port}`,
/// `{role}` (`master`, `replica`, `sentinel`) and, for `partition`/`heal`, `{peers}`
/// (the peers' hosts, each quoted, space-separated). One pass over the template: a
/// filled-in value is never scanned again. Quoting protects the local `sh` only; a
/// command that hands a value to another shell (`ssh {host} cmd {node}`) is parsed again
/// there.
pub(crate) fn fill(template: &str, node: &NodeSpec, name: &str, peers: &[String]) -> String {
    let role = match node.kind {
        NodeKind::Master => "master",
        NodeKind::Replica => "replica",
        NodeKind::Sentinel => "sentinel",
    };
    let q = |s: &str| shell_words::quote(s).into_owned();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let value = [
            ("{node}", q(name)),
            ("{host}", q(&node.host)),
            ("{port}", node.port.to_string()),
            ("{role}", role.to_string()),
            (
                "{peers}",
                peers.iter().map(|p| q(p)).collect::<Vec<_>>().join(" "),
            ),
        ]
        .into_iter()
        .find(|(k, _)| tail.starts_with(k));
        match value {
            Some((k, v)) => {
                out.push_str(&v);
                rest = &tail[k.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs `command` (filled in) for `node`; kills its group after `timeout`.
pub(crate) async fn run(hook: Hook, node: &str, command: String, timeout: Duration) -> HookRun {
    let started = Instant::now();
    let mut run = HookRun {
        hook: hook.name().to_string(),
        node: node.to_string(),
        command,
        exit_code: None,
        timed_out: false,
        ms: 0,
        output: String::new(),
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            run.output = format!("cannot create a pipe for its output: {e}");
            return run;
        }
    };
    let spawned = writer.try_clone().and_then(|w2| {
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&run.command)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(w2)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            run.output = format!("cannot start sh: {e}");
            return run;
        }
    };
    let group = child.id();
    // The pipe's write ends live only in the hook's processes now. Its output is read as it
    // comes (a full pipe would stall the hook); once `sh` exits, a daemon it left behind
    // may still hold the pipe, so the hook's run ends shortly after, while the pipe is
    // drained to its end in the background (the daemon must not meet a closed pipe);
    // only the first 64 KiB are kept.
    let collected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut reading = {
        let collected = std::sync::Arc::clone(&collected);
        let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into());
        tokio::spawn(async move {
            let Ok(mut rx) = rx else { return };
            let mut chunk = [0u8; 4096];
            while let Ok(n) = rx.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut kept = collected.lock().expect("not poisoned");
                if kept.len() < 64 << 10 {
                    kept.extend_from_slice(&chunk[..n]);
                }
            }
        })
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            run.exit_code = status.ok().and_then(|s| s.code());
            let _ = tokio::time::timeout(Duration::from_millis(200), &mut reading).await;
        }
        Err(_) => {
            run.timed_out = true;
            if let Some(pid) = group {
                // SAFETY: kill(2) on the hook's own process group.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
            let _ = tokio::time::timeout(Duration::from_millis(200), &mut reading).await;
        }
    }
    let buf = std::mem::take(&mut *collected.lock().expect("not poisoned"));
    run.output = tail(&buf);
    if run.timed_out {
        run.output = format!("killed after {} ms\n{}", timeout.as_millis(), run.output)
            .trim_end()
            .to_string();
    }
    run.ms = started.elapsed().as_millis() as u64;
    run
}

/// The last [`KEEP_OUTPUT`] bytes of `buf`, as text.
fn tail(buf: &[u8]) -> String {
    let from = buf.len().saturating_sub(KEEP_OUTPUT);
    let text = String::from_utf8_lossy(&buf[from..]).trim_end().to_string();
    if from > 0 {
        format!("[... {from} bytes before]\n{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeSpec {
        NodeSpec {
            name: "replica-1".into(),
            kind: NodeKind::Replica,
            host: "10.0.0.7".into(),
            port: 6380,
        }
    }

    #[test]
    fn placeholders_are_filled_and_quoted() {
        let n = node();
        assert_eq!(
            fill(
                "ssh {host} systemctl kill redis@{port} # {role} {node}",
                &n,
                "redis 1",
                &[]
            ),
            "ssh 10.0.0.7 systemctl kill redis@6380 # replica 'redis 1'"
        );
        assert_eq!(
            fill(
                "cut {node} {peers}",
                &n,
                "x;rm -rf /",
                &["a".into(), "b c".into()]
            ),
            "cut 'x;rm -rf /' a 'b c'"
        );
        // A value holding a placeholder is not filled in again (no quoting broken).
        assert_eq!(
            fill(
                "block {node} {peers} ${x}",
                &n,
                ";{peers}",
                &["x;reboot".into()]
            ),
            "block ';{peers}' 'x;reboot' ${x}"
        );
    }

    #[tokio::test]
    async fn a_hook_reports_its_exit_and_output() {
        let r = run(
            Hook::Kill,
            "master",
            "echo out; echo err >&2; exit 3".into(),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.exit_code, Some(3));
        assert!(!r.ok());
        assert_eq!(r.output, "out\nerr");
        let ok = run(Hook::Heal, "master", "true".into(), Duration::from_secs(10)).await;
        assert!(ok.ok(), "{ok:?}");
        // A daemon left holding the output does not hold the hook.
        let t = Instant::now();
        let bg = run(
            Hook::Restore,
            "m",
            "sleep 2 & echo started".into(),
            Duration::from_secs(10),
        )
        .await;
        assert!(bg.ok() && bg.output == "started", "{bg:?}");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "returned when sh exited"
        );
        // Let the background sleep end before the test does.
        tokio::time::sleep(Duration::from_millis(2200)).await;
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let r = run(Hook::Restore, "master", cmd, Duration::from_millis(300)).await;
        assert!(r.timed_out && !r.ok(), "{r:?}");
        assert!(r.ms < 5000, "the timeout ended it: {r:?}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            !marker.exists(),
            "the hook's background child was killed too"
        );
    }
}
