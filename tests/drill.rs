//! Every drill kind once on real processes with short Sentinel timings, plus the checker
//! on live loss, the refusal of unsupported kinds, and gates through the CLI.

mod common;

use common::*;
use redis_harness::config::HarnessConfig;
use redis_harness::drill::{self, DrillKind, DrillRun, Rng};

fn drill_config(dir: &std::path::Path, name: &str) -> HarnessConfig {
    let mut cfg = test_config(dir, name);
    cfg.drill.pre_fault_ms = 1000;
    cfg.drill.post_recovery_ms = 1000;
    cfg
}

async fn run(cfg: &HarnessConfig, kind: DrillKind) -> DrillRun {
    let r = drill::run_once(cfg, kind, 1, &mut Rng::new(7), true)
        .await
        .expect("drill runs");
    assert!(
        processes_under(&cfg.run_dir).is_empty(),
        "{kind} left processes behind"
    );
    r
}

/// The `sentinel-events` model's side of `r`.
fn se(r: &DrillRun) -> &drill::ClientRun {
    r.client("sentinel-events")
        .expect("the sentinel-events model ran")
}

fn check<'a>(r: &'a DrillRun, name: &str) -> &'a drill::Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {:?}", r.checks))
}

fn assert_failover(r: &DrillRun) {
    assert!(r.passed(), "{:#?}", r.checks);
    let promoted = check(r, "failover promoted a former replica");
    assert!(promoted.passed, "{promoted:?}");
    assert!(r.figures.promotion_ms.is_some());
    assert_ne!(
        r.new_master.as_deref(),
        Some(r.old_master.as_str()),
        "the master changed"
    );
    assert!(r.clients.iter().all(|c| c.figures.acked_writes > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_master_fails_over_to_a_replica_and_the_old_master_rejoins() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&drill_config(tmp.path(), "km"), DrillKind::KillMaster).await;
    assert_failover(&r);
    assert!(
        r.figures.detection_ms.unwrap() >= 1000.0,
        "odown needs down-after (1000 ms)"
    );
    assert!(r.figures.promotion_ms.unwrap() >= r.figures.detection_ms.unwrap());
    assert!(check(&r, "old master rejoined as a replica").passed);
    assert!(r.figures.rejoin_ms.is_some());
    assert!(
        se(&r).figures.write_unavailable_ms.unwrap() >= 1000.0,
        "writes stop until the failover"
    );
    // Every model ran beside the others, in its own key space.
    let names: Vec<&str> = r.clients.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["sentinel-events", "reresolve-on-error", "fixed-address"]
    );
    for c in ["sentinel-events", "reresolve-on-error"] {
        assert!(
            r.client(c).unwrap().analysis.writes_recovered,
            "{c} follows the failover"
        );
    }
    // The pinned client keeps writing to the old master, which is a replica by now.
    let fixed = r.client("fixed-address").unwrap().history.as_ref().unwrap();
    assert!(
        fixed.ops.iter().any(|o| o
            .error
            .as_deref()
            .is_some_and(|e| e.to_lowercase().contains("readonly"))),
        "fixed-address ends on the demoted old master"
    );
    assert!(r
        .timeline
        .iter()
        .any(|t| t.source == "sentinel-events" && t.event == "writes acknowledged again"));
    for e in [
        "+sdown",
        "+odown",
        "+elected-leader",
        "+promoted-slave",
        "+switch-master",
    ] {
        assert!(
            r.timeline.iter().any(|t| t.event == e),
            "timeline lacks {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_master_with_wait_and_min_replicas_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = drill_config(tmp.path(), "safe");
    cfg.replication.min_replicas_to_write = 1;
    cfg.drill.wait_replicas = 1;
    let r = run(&cfg, DrillKind::KillMaster).await;
    assert_failover(&r);
    assert_eq!(
        se(&r).figures.lost_acked_writes,
        Some(0),
        "{:?}",
        se(&r).analysis.lost_examples
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_master_fails_over_and_the_resumed_master_steps_down() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&drill_config(tmp.path(), "pm"), DrillKind::PauseMaster).await;
    assert_failover(&r);
    assert!(check(&r, "old master rejoined as a replica").passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_promotes_without_detection_and_losses_stop_at_the_switch() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&drill_config(tmp.path(), "sf"), DrillKind::SentinelFailover).await;
    assert_failover(&r);
    assert!(
        r.figures.detection_ms.is_none(),
        "no +odown in a manual failover"
    );
    // SENTINEL FAILOVER does not fence the old master: writes it acknowledges between the
    // promotion and the client's switch can be lost. None may be lost once the client has
    // switched. The writers share one client, so the switch shows in the history itself:
    // an acknowledged write sent after +switch-master that survived went to the new
    // master (the old one's later writes are all discarded when it resyncs), and every
    // write sent after that one completed went there too. No wall-clock slack.
    let h = se(&r).history.as_ref().unwrap();
    let switch_us = h.fault_us + (r.figures.promotion_ms.unwrap() * 1000.0) as i64;
    let present: std::collections::HashSet<&str> = h
        .final_read
        .as_ref()
        .unwrap()
        .iter()
        .map(String::as_str)
        .collect();
    let acked = || {
        h.ops
            .iter()
            .filter(|o| o.outcome == drill::history::Outcome::Ok)
            .filter_map(|o| o.value.as_deref().map(|v| (o, v)))
    };
    let lost: Vec<&drill::history::Op> = acked()
        .filter(|(_, v)| !present.contains(v))
        .map(|(o, _)| o)
        .collect();
    assert_eq!(Some(lost.len() as u64), se(&r).figures.lost_acked_writes);
    let switched_us = acked()
        .filter(|(o, v)| o.invoke_us >= switch_us && present.contains(v))
        .map(|(o, _)| o.complete_us)
        .min()
        .expect("an acknowledged write after +switch-master survived: the client switched");
    for o in lost {
        assert!(
            o.invoke_us < switched_us,
            "write {:?} lost although sent {} ms after the client was on the new master",
            o.value,
            (o.invoke_us - switched_us) / 1000
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_replica_causes_no_failover() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&drill_config(tmp.path(), "kr"), DrillKind::KillReplica).await;
    assert!(r.passed(), "{:#?}", r.checks);
    assert!(check(&r, "no failover happened").passed);
    assert_eq!(r.new_master.as_deref(), Some(r.old_master.as_str()));
    for c in &r.clients {
        assert_eq!(c.figures.lost_acked_writes, Some(0), "{}", c.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_below_quorum_never_fail_over() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&drill_config(tmp.path(), "ks"), DrillKind::KillSentinels).await;
    assert!(check(&r, "no failover happened").passed, "{:#?}", r.checks);
    assert!(r.figures.promotion_ms.is_none());
    assert!(r.passed(), "{:#?}", r.checks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_all_keeps_every_acknowledged_write_with_appendfsync_always() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = drill_config(tmp.path(), "ra");
    cfg.persistence.appendfsync = "always".into();
    let r = run(&cfg, DrillKind::RestartAll).await;
    assert!(r.passed(), "{:#?}", r.checks);
    for c in &r.clients {
        assert_eq!(c.figures.lost_acked_writes, Some(0), "{}", c.name);
        assert!(c.figures.acked_writes > 50, "{}", c.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_all_without_persistence_loses_exactly_the_writes_before_the_kill() {
    // Live loss: writes acknowledged by a master whose data is then discarded.
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = drill_config(tmp.path(), "nop");
    cfg.persistence.aof = false;
    cfg.persistence.rdb_save = String::new();
    let r = run(&cfg, DrillKind::RestartAll).await;
    let h = se(&r).history.as_ref().unwrap();
    // Every write acknowledged and sent before the last node was killed was discarded.
    let killed_at = r
        .timeline
        .iter()
        .find(|t| t.source == "harness" && t.event == "fault")
        .unwrap()
        .at_ms;
    let killed_us = h.fault_us + (killed_at * 1000.0) as i64;
    let acked_before = h
        .ops
        .iter()
        .filter(|o| {
            o.kind == drill::history::OpKind::Write
                && o.outcome == drill::history::Outcome::Ok
                && o.invoke_us <= killed_us
        })
        .count() as u64;
    assert!(acked_before > 50);
    assert_eq!(
        se(&r).figures.lost_acked_writes,
        Some(acked_before),
        "the checker reports exactly the discarded writes"
    );
    assert!(
        se(&r).figures.acked_writes > acked_before,
        "writes after the restart were kept"
    );
    assert!(check(
        &r,
        "sentinel-events: acknowledged writes survived the restart"
    )
    .detail
    .contains("persistence off"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_sentinel_triggers_tilt_without_failover() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&drill_config(tmp.path(), "ps"), DrillKind::PauseSentinel).await;
    assert!(r.passed(), "{:#?}", r.checks);
    assert!(
        r.figures.tilt_events >= 1,
        "a Sentinel stopped for 4 s enters TILT: {:?}",
        r.figures
    );
}

#[tokio::test]
async fn partition_is_refused_on_the_process_backend_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = drill_config(tmp.path(), "part");
    let err = drill::run_once(&cfg, DrillKind::Partition, 1, &mut Rng::new(1), false)
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("partitions need the docker backend"),
        "{err}"
    );
    assert!(
        !tmp.path().join("part-partition-1").exists(),
        "nothing was started"
    );
    let mut cfg = drill_config(tmp.path(), "norep");
    cfg.topology.replicas = 0;
    let err = drill::check_supported(&cfg, DrillKind::KillMaster).unwrap_err();
    assert!(err.to_string().contains("at least one replica"), "{err}");
}

#[test]
fn cli_gates_fail_naming_the_threshold_and_the_measured_value() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = drill_config(tmp.path(), "gate");
    cfg.drill.gates.max_promotion_ms = Some(1);
    cfg.drill.gates.max_two_masters_ms = Some(1_000_000);
    let config = write_config(tmp.path(), &cfg);
    let json = tmp.path().join("r.json");
    let md = tmp.path().join("r.md");
    let html = tmp.path().join("r.html");
    let junit = tmp.path().join("r.xml");
    let out = cli()
        .arg("-c")
        .arg(&config)
        .args(["drill", "sentinel-failover", "--seed", "3", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .args(["--client", "sentinel-events", "--client", "fixed-address"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("FAILED gate max_promotion_ms: measured"),
        "{stderr}"
    );
    assert!(stderr.contains("> required 1"), "{stderr}");
    assert!(
        !stderr.contains("gate max_two_masters_ms"),
        "the passing gate is not reported failed"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], "redis-harness/drill-report/v2");
    assert_eq!(report["passed"], false);
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| gate max_promotion_ms | **FAIL**"), "{md}");
    // Every rendering shows the clients side by side, and only those asked for.
    let clients: Vec<&str> = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clients, ["sentinel-events", "fixed-address"]);
    assert!(md.contains("| fixed-address |"), "{md}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<td>fixed-address</td>"), "{page}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("drill sentinel-failover max_promotion_ms") && xml.contains("<failure"),
        "{xml}"
    );
    assert!(
        xml.contains("drill sentinel-failover run 1: fixed-address: final read"),
        "{xml}"
    );
    assert!(processes_under(tmp.path()).is_empty());

    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "drill:\n  gates:\n    max_write_unavailable_ms: -5\n").unwrap();
    let out = cli()
        .arg("-c")
        .arg(&bad)
        .args(["drill", "kill-master"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("drill.gates.max_write_unavailable_ms: must not be negative (got -5)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keeps_answering_through_a_master_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = drill_config(tmp.path(), "api");
    cfg.drill.api = true;
    cfg.drill.api_members = 2000;
    let r = run(&cfg, DrillKind::KillMaster).await;
    assert_failover(&r);
    let api = r.api.as_ref().expect("API figures");
    assert!(api.overall.requests > 100, "{api:?}");
    assert_eq!(
        api.overall.errors, 0,
        "every request was answered from the cache or the database: {api:?}"
    );
    assert!(
        api.fault_window.bypasses > 0,
        "the outage shows as BYPASS: {api:?}"
    );
    assert!(
        api.overall.hits > api.overall.bypasses,
        "caching worked before and after: {api:?}"
    );
    assert_eq!(r.figures.api_errors, Some(0));
}
