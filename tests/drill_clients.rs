//! Drill clients of the user's own: the example redis-py and redis-rs clients judged in a
//! real drill beside the built-in models, and every way a client program can go wrong
//! (missing, exits at once, never writes, writes garbage) reported naming the client,
//! with everything torn down.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use redis_harness::config::HarnessConfig;
use redis_harness::drill::clients::{ClientSpec, Model};
use redis_harness::drill::{self, DrillKind, DrillRun, Rng};

fn drill_config(dir: &Path, name: &str, clients: Vec<ClientSpec>) -> HarnessConfig {
    let mut cfg = test_config(dir, name);
    cfg.drill.pre_fault_ms = 2000;
    cfg.drill.post_recovery_ms = 1000;
    cfg.drill.clients = clients;
    cfg
}

fn external(name: &str, command: &str) -> ClientSpec {
    ClientSpec::External {
        name: name.into(),
        command: command.into(),
    }
}

/// The redis-rs example, built by `cargo test` beside this test.
fn rust_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("drill_client");
    assert!(
        path.exists(),
        "{} is missing: cargo test builds the examples",
        path.display()
    );
    path
}

/// Fails, rather than skips, without redis-py: `scripts/setup.sh` installs it.
fn require_redis_py() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with redis-py is needed: pip install -r examples/clients/python/requirements.txt (scripts/setup.sh does)"
    );
}

fn pid_gone(pidfile: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(pidfile) else {
        return true;
    };
    let pid = pid.trim();
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

async fn run_err(cfg: &HarnessConfig) -> String {
    let e = drill::run_once(cfg, DrillKind::KillMaster, 1, &mut Rng::new(5), false)
        .await
        .expect_err("the drill stops");
    assert!(
        processes_under(&cfg.run_dir).is_empty(),
        "the topology was torn down"
    );
    e.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_clients_are_judged_beside_the_models_in_a_real_failover() {
    require_redis_py();
    let tmp = tempfile::tempdir().unwrap();
    let python = format!(
        "python3 {}/examples/clients/python/drill_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let cfg = drill_config(
        tmp.path(),
        "ext",
        vec![
            ClientSpec::Model(Model::SentinelEvents),
            external("redis-py", &python),
            external("redis-rs", &rust_example().display().to_string()),
        ],
    );
    let r: DrillRun = drill::run_once(&cfg, DrillKind::KillMaster, 1, &mut Rng::new(5), true)
        .await
        .expect("drill runs");
    assert!(processes_under(tmp.path()).is_empty());
    for c in ["redis-py", "redis-rs"] {
        let failed: Vec<&drill::Check> = r
            .checks
            .iter()
            .filter(|x| x.name.starts_with(c) && !x.passed)
            .collect();
        assert!(failed.is_empty(), "{c}: {failed:#?}");
        let run = r.client(c).unwrap();
        assert!(run.figures.acked_writes > 50, "{c}: {:?}", run.figures);
        assert!(
            run.analysis.writes_recovered,
            "{c} writes again after the failover"
        );
        let h = run.history.as_ref().unwrap();
        assert!(
            h.ops.iter().any(|o| o.invoke_us > h.fault_us),
            "{c} recorded through the fault"
        );
        assert!(
            run.figures.failed_ops + run.figures.unknown_ops > 0,
            "{c} saw the master go: {:?}",
            run.figures
        );
    }
    assert!(r.passed(), "{:#?}", r.checks);
    // Each history stays on disk for inspection.
    let dir = tmp.path().join("ext-kill-master-1").join("clients");
    assert!(dir.join("redis-py.history.jsonl").exists());
}

#[tokio::test]
async fn a_missing_program_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = drill_config(
        tmp.path(),
        "miss",
        vec![external("myapp", "no-such-program-here --flag")],
    );
    let e = drill::check_supported(&cfg, DrillKind::KillMaster).unwrap_err();
    assert!(
        e.to_string()
            .contains("drill client myapp: program \"no-such-program-here\" not found"),
        "{e}"
    );
    let e = drill::run_once(&cfg, DrillKind::KillMaster, 1, &mut Rng::new(1), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("myapp"), "{e}");
    assert!(
        !tmp.path().join("miss-kill-master-1").exists(),
        "nothing was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_exits_at_once_stops_the_drill_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = drill_config(
        tmp.path(),
        "exits",
        vec![
            ClientSpec::Model(Model::SentinelEvents),
            external("quitter", "sh -c 'echo cannot connect >&2; exit 3'"),
        ],
    );
    let e = run_err(&cfg).await;
    assert!(
        e.contains("drill client quitter: exited (exit status: 3)"),
        "{e}"
    );
    assert!(e.contains("cannot connect"), "its log is quoted: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_writes_a_line_stops_the_drill_and_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("silent.pid");
    let cfg = drill_config(
        tmp.path(),
        "silent",
        vec![external(
            "silent",
            &format!("sh -c 'echo $$ > {}; exec sleep 600'", pidfile.display()),
        )],
    );
    let e = run_err(&cfg).await;
    assert!(
        e.contains("drill client silent: wrote no history line"),
        "{e}"
    );
    assert!(pidfile.exists());
    for _ in 0..50 {
        if pid_gone(&pidfile) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(pid_gone(&pidfile), "the client was stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_history_counts_nothing_and_fails_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    // One good line, then garbage, then it waits to be stopped.
    let script = tmp.path().join("liar.sh");
    std::fs::write(
        &script,
        r#"t=$(python3 -c 'import time; print(time.monotonic_ns())')
printf '{"key":"%sa","value":"a","invoke_ns":%s,"complete_ns":%s,"outcome":"ok"}\nthis is not json\n' "$REDIS_HARNESS_KEY_PREFIX" "$t" "$t" >> "$REDIS_HARNESS_HISTORY"
exec sleep 600
"#,
    )
    .unwrap();
    let cfg = drill_config(
        tmp.path(),
        "garbage",
        vec![
            ClientSpec::Model(Model::SentinelEvents),
            external("liar", &format!("sh {}", script.display())),
        ],
    );
    let r = drill::run_once(&cfg, DrillKind::KillReplica, 1, &mut Rng::new(5), false)
        .await
        .expect("the drill runs; the client's history is judged afterwards");
    assert!(processes_under(tmp.path()).is_empty());
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "liar: client ran as the protocol says")
        .unwrap_or_else(|| panic!("{:#?}", r.checks));
    assert!(!c.passed);
    assert!(
        c.detail.contains("line 2: not a history record"),
        "{}",
        c.detail
    );
    assert_eq!(
        r.client("liar").unwrap().figures.acked_writes,
        0,
        "nothing of a rejected history counts"
    );
    assert!(!r.passed());
    assert!(r.client("sentinel-events").unwrap().figures.acked_writes > 0);
}
