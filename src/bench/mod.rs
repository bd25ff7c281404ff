//! `redis-harness bench`: runs the criterion benches (`benches/cache.rs`) against a
//! redis-server this command starts, then measures the same server with
//! `redis-benchmark` as the baseline, and reports both with the overhead ratios.
//!
//! - [`run`]: start the server, run `cargo bench`, read criterion's estimates, run
//!   redis-benchmark, stop the server.
//! - [`read_criterion`]: every `new/estimates.json` under `target/criterion`.
//! - [`parse_redis_benchmark`]: redis-benchmark's `--csv` output.
//! - [`report`]: renderings ([`report::terminal`], [`report::markdown`]).

pub(crate) mod report;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;

use crate::config::HarnessConfig;
use crate::progress::Progress;
use crate::topology::{Topology, TopologyError};

/// Identifier and version of the JSON layout.
pub(crate) const SCHEMA: &str = "redis-harness/bench-report/v1";

/// Errors of a bench run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// The server could not start or stop.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A tool is missing or failed.
    #[error("{0}")]
    Tool(String),
}

/// One criterion benchmark.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Estimate {
    /// Full id, e.g. `redis/cache_lookup_hit`.
    pub id: String,
    /// Mean time per iteration, ns.
    pub mean_ns: f64,
    /// Median, ns.
    pub median_ns: f64,
    /// Half-width of the mean's 95% confidence interval, ns.
    pub mean_ci_ns: f64,
}

/// One redis-benchmark test.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RedisBenchmark {
    /// Test name (`SET`, `GET`).
    pub test: String,
    /// Parallel clients.
    pub clients: u32,
    /// Requests per second.
    pub rps: f64,
    /// Mean latency, ms.
    pub avg_ms: f64,
    /// p50, ms.
    pub p50_ms: f64,
    /// p99, ms.
    pub p99_ms: f64,
}

/// A ratio of two benchmarks.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ratio {
    /// What it says.
    pub name: String,
    /// Numerator id.
    pub of: String,
    /// Denominator id.
    pub to: String,
    /// of / to.
    pub ratio: f64,
}

/// The bench report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Criterion estimates.
    pub criterion: Vec<Estimate>,
    /// The overhead ratios.
    pub ratios: Vec<Ratio>,
    /// redis-benchmark on the same server.
    pub redis_benchmark: Vec<RedisBenchmark>,
    /// Payload size given to redis-benchmark (`-d`), bytes.
    pub payload_bytes: usize,
}

/// Reads the estimates under `dir` (criterion's output directory) written at or after
/// `since` (older ones are from earlier runs).
pub(crate) fn read_criterion(dir: &Path, since: std::time::SystemTime) -> Vec<Estimate> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    let fresh = std::fs::metadata(p.join("estimates.json"))
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t >= since);
                    if let Some(est) = read_one(&p).filter(|_| fresh) {
                        out.push(est);
                    }
                } else if p.file_name().is_some_and(|n| n != "base" && n != "report") {
                    stack.push(p);
                }
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn read_one(new_dir: &Path) -> Option<Estimate> {
    let read = |f: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(new_dir.join(f)).ok()?).ok()
    };
    let b = read("benchmark.json")?;
    let e = read("estimates.json")?;
    let mean = &e["mean"];
    let ci = &mean["confidence_interval"];
    Some(Estimate {
        id: b["full_id"].as_str()?.to_string(),
        mean_ns: mean["point_estimate"].as_f64()?,
        median_ns: e["median"]["point_estimate"].as_f64()?,
        mean_ci_ns: (ci["upper_bound"].as_f64()? - ci["lower_bound"].as_f64()?) / 2.0,
    })
}

/// Parses `redis-benchmark --csv` output (Redis 7: test, rps, avg, min, p50, p95, p99,
/// max latency in ms).
pub(crate) fn parse_redis_benchmark(csv: &str, clients: u32) -> Vec<RedisBenchmark> {
    csv.lines()
        .filter(|l| !l.starts_with("\"test\""))
        .filter_map(|l| {
            let f: Vec<String> = l
                .split(',')
                .map(|x| x.trim_matches('"').to_string())
                .collect();
            let n = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some(RedisBenchmark {
                test: f.first()?.clone(),
                clients,
                rps: n(1)?,
                avg_ms: n(2)?,
                p50_ms: n(4)?,
                p99_ms: n(6)?,
            })
        })
        .collect()
}

/// The ratios the report leads with, where both sides were measured.
pub(crate) fn ratios(est: &[Estimate]) -> Vec<Ratio> {
    let mean = |id: &str| est.iter().find(|e| e.id == id).map(|e| e.mean_ns);
    [
        (
            "cache layer hit (GET + tag versions + decode) / raw redis-rs GET",
            "redis/cache_lookup_hit",
            "redis/raw_get",
        ),
        (
            "cache layer store (Lua, encode) / raw redis-rs SET",
            "redis/cache_store",
            "redis/raw_set",
        ),
        (
            "whole request on a HIT (router + middleware) / raw redis-rs GET",
            "middleware/member_hit",
            "redis/raw_get",
        ),
        (
            "uncached request (SQLite) / HIT request",
            "middleware/member_uncached",
            "middleware/member_hit",
        ),
    ]
    .into_iter()
    .filter_map(|(name, of, to)| {
        Some(Ratio {
            name: name.into(),
            of: of.into(),
            to: to.into(),
            ratio: mean(of)? / mean(to)?,
        })
    })
    .collect()
}

fn redis_benchmark(
    port: u16,
    password: Option<&str>,
    clients: u32,
    requests: u32,
    payload: usize,
) -> Result<Vec<RedisBenchmark>, BenchError> {
    let mut cmd = std::process::Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set,get"])
        .args(["-n", &requests.to_string(), "-c", &clients.to_string()])
        .args(["-d", &payload.to_string(), "--csv"]);
    if let Some(pw) = password {
        cmd.args(["-a", pw]);
    }
    let out = cmd.stderr(Stdio::null()).output().map_err(|e| {
        BenchError::Tool(format!(
            "redis-benchmark could not run ({e}); it comes with redis-tools (scripts/setup.sh)"
        ))
    })?;
    if !out.status.success() {
        return Err(BenchError::Tool(format!(
            "redis-benchmark failed with {}",
            out.status
        )));
    }
    Ok(parse_redis_benchmark(
        &String::from_utf8_lossy(&out.stdout),
        clients,
    ))
}

/// Where the benches live: the source tree this binary was built from.
pub(crate) fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts a single redis-server (no replicas, no Sentinels), runs the criterion benches
/// against it, then redis-benchmark with 1 and 50 clients, and stops it.
pub(crate) async fn run(
    cfg: &HarnessConfig,
    requests: u32,
    filter: Option<&str>,
    progress: &Progress,
) -> Result<BenchReport, BenchError> {
    let src = source_dir();
    if !src.join("benches/cache.rs").is_file() {
        return Err(BenchError::Tool(format!(
            "the criterion benches are not at {}; `bench` runs them from the source tree this binary was built from",
            src.join("benches/cache.rs").display()
        )));
    }
    let mut cfg = cfg.clone();
    cfg.name = format!("{}-bench", cfg.name);
    cfg.topology.replicas = 0;
    cfg.topology.sentinels = 0;
    cfg.topology.quorum = 0;
    cfg.replication.min_replicas_to_write = 0;
    progress.step(1, 4, "starting a redis-server for the benches");
    let topo = Topology::up(&cfg).await?;
    let master = topo.state().initial_master().spec.clone();
    progress.step(
        2,
        4,
        "running the criterion benches (cargo bench --bench cache; builds first)",
    );
    let mut cmd = tokio::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.current_dir(&src)
        .args(["bench", "--bench", "cache", "--"])
        .env("REDIS_HARNESS_BENCH_REDIS", master.addr())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(f) = filter {
        cmd.arg(f);
    }
    let since = std::time::SystemTime::now();
    let status = cmd
        .status()
        .await
        .map_err(|e| BenchError::Tool(format!("cargo could not run: {e}")))?;
    if !status.success() {
        topo.down().await?;
        return Err(BenchError::Tool(format!(
            "cargo bench failed with {status}"
        )));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| src.join("target"));
    let criterion = read_criterion(&target.join("criterion"), since);
    let payload = 1024;
    progress.step(
        3,
        4,
        &format!("redis-benchmark: SET/GET of {payload} B, {requests} requests, 1 and 50 clients"),
    );
    let mut rb = Vec::new();
    for clients in [1, 50] {
        rb.extend(redis_benchmark(
            master.port,
            cfg.password.as_deref(),
            clients,
            requests,
            payload,
        )?);
    }
    progress.step(4, 4, "stopping the redis-server");
    topo.down().await?;
    Ok(BenchReport {
        schema: SCHEMA,
        ratios: ratios(&criterion),
        criterion,
        redis_benchmark: rb,
        payload_bytes: payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_benchmark_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"41666.67\",\"0.023\",\"0.008\",\"0.023\",\"0.031\",\"0.047\",\"0.231\"\n\"GET\",\"45454.55\",\"0.021\",\"0.008\",\"0.023\",\"0.031\",\"0.039\",\"0.119\"\n";
        let r = parse_redis_benchmark(csv, 1);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].test, "GET");
        assert!((r[1].rps - 45454.55).abs() < 1e-6);
        assert!((r[0].p99_ms - 0.047).abs() < 1e-9);
    }

    #[test]
    fn ratios_need_both_sides() {
        let e = |id: &str, ns: f64| Estimate {
            id: id.into(),
            mean_ns: ns,
            median_ns: ns,
            mean_ci_ns: 1.0,
        };
        let r = ratios(&[
            e("redis/raw_get", 20_000.0),
            e("redis/cache_lookup_hit", 30_000.0),
        ]);
        assert_eq!(r.len(), 1);
        assert!((r[0].ratio - 1.5).abs() < 1e-12);
    }
}
