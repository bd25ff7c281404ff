//! Gate logic on recorded load results: each target passing and failing, the no-sample
//! case, baseline regressions and noise within the floor, and the report files.

mod common;

use common::cli;
use loadtests::LoadResults;
use loadtests::RouteLatency;
use redis_harness::gate::{self, Targets};

fn route(route: &str, cache: &str, p50: u64, p99: u64) -> RouteLatency {
    RouteLatency {
        route: route.into(),
        cache: cache.into(),
        class: match cache {
            "HIT" => loadtests::CacheClass::Hit,
            "MISS" => loadtests::CacheClass::Miss,
            _ => loadtests::CacheClass::None,
        },
        count: 100,
        p50_us: p50,
        p90_us: p99,
        p99_us: p99,
        p999_us: p99,
        max_us: p99,
        mean_us: p50 as f64,
    }
}

fn results(p99_hit: u64, rps: f64) -> LoadResults {
    LoadResults {
        model: "closed".into(),
        duration_s: 10.0,
        requests: 1000,
        errors: 5,
        throughput_rps: rps,
        hit_rate: Some(0.9),
        routes: vec![
            route("/api/v1/statistics/system", "HIT", 200, p99_hit),
            route("/api/v1/statistics/system", "MISS", 9000, 20000),
        ],
        ..Default::default()
    }
}

fn targets(yaml: &str) -> Targets {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), yaml).unwrap();
    Targets::load(tmp.path()).unwrap()
}

fn verdict<'a>(v: &'a [gate::Verdict], name: &str) -> &'a gate::Verdict {
    v.iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no verdict {name}: {v:?}"))
}

#[test]
fn each_target_passes_and_fails() {
    let r = results(900, 100.0);
    let ok = targets("hit_rate_min: 0.85\nerror_rate_max: 0.01\nthroughput_min_rps: 50\nlatency:\n  - route: /api/v1/statistics/system\n    cache: HIT\n    p50_us: 300\n    p99_us: 1000\n");
    let v = gate::evaluate(&r, &ok, None);
    assert_eq!(v.len(), 5);
    assert!(v.iter().all(|x| x.passed), "{v:?}");

    let strict = targets("hit_rate_min: 0.95\nerror_rate_max: 0.001\nthroughput_min_rps: 500\nlatency:\n  - route: /api/v1/statistics/system\n    cache: HIT\n    p99_us: 800\n  - route: /api/v1/statistics/system\n    p99_us: 10000\n");
    let v = gate::evaluate(&r, &strict, None);
    for name in [
        "hit rate",
        "error rate",
        "throughput rps",
        "p99 /api/v1/statistics/system HIT",
    ] {
        assert!(!verdict(&v, name).passed, "{name} should fail");
    }
    let any = verdict(&v, "p99 /api/v1/statistics/system any");
    assert!(
        !any.passed && any.measured == Some(20000.0),
        "without a cache value the worst entry counts: {any:?}"
    );
}

#[test]
fn a_target_without_samples_fails() {
    let r = results(900, 100.0);
    let t = targets("latency:\n  - route: /api/v1/never-requested\n    p99_us: 1000000\n");
    let v = gate::evaluate(&r, &t, None);
    assert_eq!(v.len(), 1);
    assert!(!v[0].passed);
    assert_eq!(v[0].measured, None);
    let empty = LoadResults::default();
    let v = gate::evaluate(
        &empty,
        &targets("hit_rate_min: 0\nthroughput_min_rps: 0\n"),
        None,
    );
    assert!(v.iter().all(|x| !x.passed), "no requests, no pass: {v:?}");
}

#[test]
fn baseline_regressions_fail_but_noise_within_the_floor_passes() {
    let t = targets("baseline:\n  max_latency_ratio: 1.2\n  latency_floor_us: 500\n  max_throughput_drop_ratio: 1.2\n");
    let old = results(900, 100.0);
    // p99 HIT 900 → 1300 µs: +44% but only +400 µs: noise within the floor.
    let v = gate::evaluate(&results(1300, 100.0), &t, Some(&old));
    assert!(
        verdict(&v, "regression p99 /api/v1/statistics/system HIT").passed,
        "{v:?}"
    );
    // 900 → 1500 µs: beyond both the ratio and the floor.
    let v = gate::evaluate(&results(1500, 100.0), &t, Some(&old));
    assert!(!verdict(&v, "regression p99 /api/v1/statistics/system HIT").passed);
    // Throughput 100 → 80 req/s is a drop beyond 1.2x.
    let v = gate::evaluate(&results(900, 80.0), &t, Some(&old));
    assert!(!verdict(&v, "regression throughput rps").passed);
    assert!(verdict(&v, "regression p99 /api/v1/statistics/system MISS").passed);
}

#[test]
fn bad_targets_are_rejected_naming_the_field() {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    for (yaml, needle) in [
        ("hit_rate_min: 85\n", "hit_rate_min: between 0 and 1"),
        ("latency:\n  - route: /x\n", "names no percentile"),
        (
            "latency:\n  - route: /x\n    cache: WARM\n    p99_us: 1\n",
            "latency[0].cache",
        ),
        ("hitrate: 0.5\n", "unknown field `hitrate`"),
    ] {
        std::fs::write(tmp.path(), yaml).unwrap();
        let e = Targets::load(tmp.path()).unwrap_err().to_string();
        assert!(e.contains(needle), "{yaml:?}: {e}");
    }
}

#[test]
fn cli_gate_exits_4_and_writes_well_formed_junit_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("r.json");
    std::fs::write(&res, serde_json::to_string(&results(900, 100.0)).unwrap()).unwrap();
    let tg = tmp.path().join("t.yaml");
    std::fs::write(&tg, "hit_rate_min: 0.95\nlatency:\n  - route: /api/v1/statistics/system\n    cache: HIT\n    p99_us: 1000\n").unwrap();
    let (junit, md) = (tmp.path().join("j.xml"), tmp.path().join("g.md"));
    let out = cli()
        .arg("gate")
        .arg(&res)
        .arg("--targets")
        .arg(&tg)
        .arg("--junit")
        .arg(&junit)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL hit rate: measured 0.9, required >= 0.95"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok   p99 /api/v1/statistics/system HIT"),
        "{stdout}"
    );

    // JUnit parses, with one test case per target and one failure.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(common::junit_counts(&xml), (2, 1));
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .contains("## Gates: 1 of 2 passed"));

    std::fs::write(&tg, "hit_rate_min: 0.5\n").unwrap();
    let out = cli()
        .arg("gate")
        .arg(&res)
        .arg("--targets")
        .arg(&tg)
        .output()
        .unwrap();
    assert!(out.status.success());
}
