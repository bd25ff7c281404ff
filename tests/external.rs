//! Pre-production mode against a real topology treated as external: each test starts one
//! (process backend), then drives the CLI only through its Sentinel addresses and hooks
//! (`kill -9` of a pid read from files this test writes, `redis-server CONF
//! --daemonize yes` to restore), never through the state file. Every process under the
//! test's directory is killed when it ends, those the restore hook started included.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use redis_harness::topology::{probe, Login, NodeKind, Topology};
use serde_json::Value;

/// A running topology the tests treat as external, and the files its hooks use.
struct Target {
    dir: tempfile::TempDir,
    topo: Option<Topology>,
    sentinels: Vec<String>,
    master: String,
    replicas: Vec<String>,
}

impl Drop for Target {
    fn drop(&mut self) {
        // Nodes the restore hook started belong to no handle: kill everything whose
        // working directory is under the test's directory, then drop the handle.
        for pid in processes_under(self.dir.path()) {
            // SAFETY: kill(2) on a process of this test's own topology.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        drop(self.topo.take());
    }
}

impl Target {
    async fn start(name: &str) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let cfg = test_config(&dir.path().join("own"), name);
        let topo = Topology::up(&cfg)
            .await
            .expect("the target topology starts");
        let pids = dir.path().join("pids");
        let confs = dir.path().join("confs");
        std::fs::create_dir_all(&pids).unwrap();
        std::fs::create_dir_all(&confs).unwrap();
        let (mut sentinels, mut replicas, mut master) = (Vec::new(), Vec::new(), String::new());
        for n in &topo.state().nodes {
            let addr = n.spec.addr();
            match n.spec.kind {
                NodeKind::Sentinel => {
                    sentinels.push(addr);
                    continue;
                }
                NodeKind::Master => master = addr,
                NodeKind::Replica => replicas.push(addr),
            }
            // What an operator would know: each node's pid (from INFO) and config file.
            let info = info(&n.spec.addr(), "server").await;
            let pid = field(&info, "process_id");
            std::fs::write(pids.join(n.spec.port.to_string()), pid).unwrap();
            std::os::unix::fs::symlink(&n.config_file, confs.join(format!("{}.conf", n.spec.port)))
                .unwrap();
        }
        Target {
            dir,
            topo: Some(topo),
            sentinels,
            master,
            replicas,
        }
    }

    fn pids(&self) -> PathBuf {
        self.dir.path().join("pids")
    }

    /// An external config for this topology with `hooks` (YAML lines under `hooks:`)
    /// and `extra` top-level YAML.
    fn config(&self, hooks: &[&str], extra: &str) -> PathBuf {
        let mut y = format!(
            "name: ext\nrun_dir: {}\ntopology:\n  external:\n    sentinels: [{}]\n    master_name: mymaster\n",
            self.dir.path().join("run").display(),
            self.sentinels.join(", ")
        );
        if !hooks.is_empty() {
            y.push_str("    hooks:\n");
            for h in hooks {
                y.push_str(&format!("      {h}\n"));
            }
        }
        y.push_str("drill:\n  pre_fault_ms: 1000\n  post_recovery_ms: 1000\n  clients: [sentinel-events]\n");
        y.push_str(extra);
        let path = self.dir.path().join("external.yaml");
        std::fs::write(&path, y).unwrap();
        path
    }

    fn kill_hook(&self) -> String {
        format!(
            "kill: kill -9 \"$(cat {}/{{port}})\"",
            self.pids().display()
        )
    }

    fn restore_hook(&self) -> String {
        format!(
            "restore: redis-server {}/{{port}}.conf --daemonize yes --pidfile {}/{{port}}",
            self.dir.path().join("confs").display(),
            self.pids().display()
        )
    }

    /// The master the Sentinels name now.
    async fn named_master(&self) -> String {
        let mut c = con(&self.sentinels[0]).await;
        let (host, port): (String, String) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg("mymaster")
            .query_async(&mut c)
            .await
            .unwrap();
        format!("{host}:{port}")
    }

    /// Every data node's role and the master's key count: what "touching nothing" keeps.
    async fn fingerprint(&self) -> (Vec<String>, u64, String) {
        let mut roles = Vec::new();
        for a in std::iter::once(&self.master).chain(&self.replicas) {
            roles.push(format!(
                "{a} {}",
                field(&info(a, "replication").await, "role")
            ));
        }
        let keys = dbsize(&self.master).await;
        (roles, keys, self.named_master().await)
    }
}

async fn info(addr: &str, section: &str) -> String {
    let mut c = con(addr).await;
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .unwrap()
}

/// A connection to the data node or Sentinel at `addr` (no AUTH).
async fn con(addr: &str) -> redis::aio::MultiplexedConnection {
    let (h, p) = addr.rsplit_once(':').unwrap();
    probe::connect(
        h,
        p.parse().unwrap(),
        &Login::none(),
        Duration::from_secs(2),
    )
    .await
    .unwrap_or_else(|e| panic!("{addr}: {e}"))
}

fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .trim()
        .to_string()
}

async fn dbsize(addr: &str) -> u64 {
    let mut c = con(addr).await;
    redis::cmd("DBSIZE").query_async(&mut c).await.unwrap()
}

/// Keys under the drill prefix on `addr` (SCAN, as the harness does).
async fn drill_keys(addr: &str) -> Vec<String> {
    let mut c = con(addr).await;
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("harness:drill:*")
            .query_async(&mut c)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

fn run(config: &Path, args: &[&str]) -> Output {
    cli().arg("-c").arg(config).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the exit code (when given) and that stdout or stderr says `needle`.
fn expect(o: &Output, code: Option<i32>, needle: &str) {
    if code.is_some() {
        assert_eq!(o.status.code(), code, "{}", text(o));
    }
    assert!(text(o).contains(needle), "wanted {needle:?} in {}", text(o));
}

/// Runs drill `kind` with `--confirm mymaster`; its output and JSON report.
fn drill(t: &Target, config: &Path, kind: &str) -> (Output, Value) {
    let json = t.dir.path().join(format!("{kind}.json"));
    let o = run(
        config,
        &[
            "drill",
            kind,
            "--confirm",
            "mymaster",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let rep = std::fs::read_to_string(&json)
        .map(|r| serde_json::from_str(&r).unwrap())
        .unwrap_or(Value::Null);
    (o, rep)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_master_through_hooks_is_measured_and_leaves_no_drill_key() {
    let t = Target::start("ext-kill").await;
    let cfg = t.config(&[&t.kill_hook(), &t.restore_hook()], "");
    let (o, r) = drill(&t, &cfg, "kill-master");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run = &r["runs"][0];
    let preflight = run["preflight"].as_array().unwrap();
    assert!(preflight.len() >= 6, "{preflight:?}");
    assert!(
        preflight.iter().all(|c| c["passed"] == true),
        "{preflight:?}"
    );
    let hooks: Vec<&str> = run["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["exit_code"], 0, "{h}");
            h["hook"].as_str().unwrap()
        })
        .collect();
    assert_eq!(hooks, ["kill", "restore"]);
    assert_eq!(run["old_master"], t.master.as_str());
    assert_ne!(
        run["new_master"],
        t.master.as_str(),
        "a replica was promoted"
    );
    let c = &run["clients"][0]["figures"];
    assert!(c["acked_writes"].as_u64().unwrap() > 50, "{c}");
    let cleanup = &run["cleanup"];
    assert!(cleanup["found"].as_u64().unwrap() >= 1, "{cleanup}");
    assert_eq!(cleanup["removed"], cleanup["found"], "{cleanup}");
    assert_eq!(cleanup["left"], 0, "{cleanup}");
    assert!(run["key_prefix"]
        .as_str()
        .unwrap()
        .starts_with("harness:drill:"));
    let now = t.named_master().await;
    assert!(drill_keys(&now).await.is_empty(), "no drill key is left");
    // The old master is back (started by the restore hook) and follows the new one.
    let role = field(&info(&t.master, "replication").await, "role");
    assert_eq!(role, "slave");
}

#[tokio::test(flavor = "multi_thread")]
async fn sentinel_failover_needs_no_hook() {
    let t = Target::start("ext-failover").await;
    let cfg = t.config(&[], "");
    let (o, rep) = drill(&t, &cfg, "sentinel-failover");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run = &rep["runs"][0];
    assert!(run.get("hooks").is_none(), "{run}");
    assert_ne!(
        t.named_master().await,
        t.master,
        "the Sentinels moved the master"
    );
    assert_eq!(run["cleanup"]["left"], 0);
    expect(&o, None, "keys found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_and_a_missing_confirmation_touch_nothing() {
    let t = Target::start("ext-dry").await;
    let cfg = t.config(&[&t.kill_hook(), &t.restore_hook()], "");
    let before = t.fingerprint().await;
    let o = run(&cfg, &["drill", "kill-master", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let port = t.master.rsplit_once(':').unwrap().1;
    assert!(out.contains("DRY RUN"), "{out}");
    assert!(
        out.contains("one master that every Sentinel names"),
        "{out}"
    );
    assert!(
        out.contains(&format!("/pids/{port})\"")),
        "the kill hook is shown filled in for the master: {out}"
    );
    assert!(out.contains("harness:drill:<run-id>:"), "{out}");
    let o = run(&cfg, &["drill", "kill-master"]);
    expect(&o, Some(1), "--confirm mymaster");
    let o = run(&cfg, &["drill", "kill-master", "--confirm", "othername"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Give a fault that slipped through the time to show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        t.fingerprint().await,
        before,
        "roles, keys and master unchanged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_preflight_stops_before_anything() {
    let t = Target::start("ext-preflight").await;
    let cfg = t.config(&[&t.kill_hook(), &t.restore_hook()], "");
    let stopped = &t.replicas[1];
    let port = stopped.rsplit_once(':').unwrap().1;
    let pid = std::fs::read_to_string(t.pids().join(port)).unwrap();
    // SAFETY: kill(2) on this test's own replica.
    unsafe {
        libc::kill(pid.trim().parse().unwrap(), libc::SIGKILL);
    }
    let keys = dbsize(&t.master).await;
    let o = run(&cfg, &["drill", "kill-master", "--confirm", "mymaster"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("FAIL replicas linked")
            && err.contains(&format!("{stopped} is not answering")),
        "{err}"
    );
    assert!(err.contains("nothing was touched"), "{err}");
    assert_eq!(t.named_master().await, t.master);
    assert_eq!(dbsize(&t.master).await, keys, "no key was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abort_restores_the_fault_at_once() {
    let t = Target::start("ext-abort").await;
    // Healing takes at least down-after (1000 ms): 400 ms is sure to pass first.
    let cfg = t.config(
        &[&t.kill_hook(), &t.restore_hook()],
        "  abort:\n    heal_timeout_ms: 400\n",
    );
    let (o, rep) = drill(&t, &cfg, "kill-master");
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let run = &rep["runs"][0];
    let aborted = run["aborted"].as_str().unwrap();
    assert!(aborted.contains("heal_timeout_ms 400"), "{aborted}");
    let hooks: Vec<&str> = run["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hook"].as_str().unwrap())
        .collect();
    assert_eq!(hooks, ["kill", "restore"], "restored right after the abort");
    assert_eq!(run["cleanup"]["left"], 0);
    let port = t.master.rsplit_once(':').unwrap().1;
    assert!(
        testkit::ping(port.parse().unwrap()),
        "the old master runs again"
    );
    // Restored within down-after (1000 ms): the Sentinels never failed it over. A run
    // that waited for the failover instead of aborting would have moved the master.
    assert_eq!(
        t.named_master().await,
        t.master,
        "restored before any failover"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_hook_is_refused_and_up_down_status_say_what_they_do() {
    let t = Target::start("ext-hooks").await;
    let cfg = t.config(&[&t.kill_hook()], "");
    let before = t.fingerprint().await;
    let o = run(&cfg, &["drill", "kill-master", "--confirm", "mymaster"]);
    expect(&o, Some(1), "missing: restore");
    let o = run(&cfg, &["drill", "partition", "--confirm", "mymaster"]);
    expect(&o, None, "missing: partition, heal");
    let o = run(&cfg, &["status"]);
    expect(&o, Some(0), "healthy: yes");
    let o = run(&cfg, &["up"]);
    expect(&o, Some(1), "does not start or stop");
    let o = run(&cfg, &["down"]);
    expect(&o, Some(0), "nothing was stopped");
    assert_eq!(t.fingerprint().await, before, "nothing was touched");
}
