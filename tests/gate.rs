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
            "latency:\n  - route: /x\n    cache: ' '\n    p99_us: 1\n",
            "latency[0].cache",
        ),
        (
            "hit_rate_steady_min: 2\n",
            "hit_rate_steady_min: between 0 and 1",
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

/// Results recorded by a real [`loadtests::Recorder`]: `n` requests of `/x`, every third
/// a MISS, with latencies `scale` times the base.
fn recorded(n: u64, scale: u64) -> LoadResults {
    let r = loadtests::Recorder::new();
    for i in 1..=n {
        let (cache, us) = if i % 3 == 0 {
            ("MISS", 5_000 + i)
        } else {
            ("HIT", 100 + i % 900)
        };
        r.record(
            "/x",
            Some(cache),
            Some(200),
            std::time::Duration::from_micros(us * scale),
        );
    }
    r.results("closed", std::time::Duration::from_secs(1))
}

#[test]
fn stale_reads_and_the_steady_hit_rate_are_gated() {
    let mut r = results(900, 100.0);
    r.stale.routes = vec![loadtests::StaleRoute {
        route: "/api/v1/members/{id}".into(),
        checked: 500,
        violations: 3,
        cross_instance: 0,
        unjudged: 0,
    }];
    r.timeline = (0..10)
        .map(|t| loadtests::Second {
            t,
            requests: 10,
            // Seconds 4 and 5 (the fault) serve only misses.
            hits: if (4..6).contains(&t) { 0 } else { 9 },
            misses: if (4..6).contains(&t) { 10 } else { 1 },
            ..Default::default()
        })
        .collect();
    r.set_fault_windows(&[(4.0, 5.5)]);
    let split = r.hit_split.clone().unwrap();
    assert_eq!((split.steady, split.fault), (Some(0.9), Some(0.0)));
    let t = targets("max_stale_reads: 0\nhit_rate_steady_min: 0.85\n");
    let v = gate::evaluate(&r, &t, None);
    let stale = verdict(&v, "stale reads");
    assert!(!stale.passed);
    assert_eq!(stale.measured, Some(3.0));
    assert!(verdict(&v, "hit rate (steady state)").passed);
    // No checked read: the stale gate cannot pass on nothing.
    r.stale.routes.clear();
    let v = gate::evaluate(&r, &t, None);
    assert!(!verdict(&v, "stale reads").passed);
}

#[test]
fn cli_gate_merges_several_generators_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (recorded(3000, 1), recorded(1000, 9));
    let (pa, pb) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    std::fs::write(&pa, serde_json::to_string(&a).unwrap()).unwrap();
    std::fs::write(&pb, serde_json::to_string(&b).unwrap()).unwrap();
    let merged = loadtests::merge(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(merged.requests, 4000);
    // The merged p99 is the p99 of every sample: b's slow tail, not an average.
    assert!(
        merged.p99_us > (a.p99_us + b.p99_us) / 2,
        "{} {} {}",
        merged.p99_us,
        a.p99_us,
        b.p99_us
    );
    let tg = tmp.path().join("t.yaml");
    // The gate's figure: the worst p99 of /x over its cache values, in the merged rows.
    let limit = merged.routes.iter().map(|r| r.p99_us).max().unwrap();
    std::fs::write(
        &tg,
        format!("latency:\n  - route: /x\n    p99_us: {limit}\n"),
    )
    .unwrap();
    let out = cli()
        .args(["gate", "--json", "--targets"])
        .arg(&tg)
        .arg(&pa)
        .arg(&pb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["measured"].as_f64(), Some(limit as f64), "{v}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("merged 2 results files (2 load generators)")
    );
    // A file without histograms (an older load.json) is refused, naming it.
    let mut old = a;
    old.hdr = Default::default();
    std::fs::write(&pb, serde_json::to_string(&old).unwrap()).unwrap();
    let out = cli()
        .args(["gate", "--targets"])
        .arg(&tg)
        .arg(&pa)
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("results 2 carry no histograms"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
