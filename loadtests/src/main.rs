//! `loadtest`: runs the membership API load test against any base URL.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Load-test a membership API (the redis-harness contract) at HOST.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version)]
struct Args {
    /// Base URL of the API, e.g. http://127.0.0.1:5000 (repeatable, or comma-separated:
    /// API instances, users are spread over them).
    #[arg(long, required = true, value_delimiter = ',')]
    host: Vec<String>,
    /// Cache status vocabulary preset: ours, nginx, varnish, cdn, cloudflare.
    #[arg(long, default_value = "ours")]
    cache_status: String,
    /// Cache status header (overrides the preset's).
    #[arg(long)]
    cache_header: Option<String>,
    /// Values meaning a hit (comma-separated; overrides the preset's).
    #[arg(long, value_delimiter = ',')]
    cache_hit: Vec<String>,
    /// Values meaning a miss (comma-separated; overrides the preset's).
    #[arg(long, value_delimiter = ',')]
    cache_miss: Vec<String>,
    /// Values meaning a bypass (comma-separated; overrides the preset's).
    #[arg(long, value_delimiter = ',')]
    cache_bypass: Vec<String>,
    /// This generator's shard K/N of the members it writes (several generators on one
    /// API: each writes its own members, so their stale-read checks stay sound).
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    shard: (u64, u64),
    /// Read members 1..=N through every host before measuring.
    #[arg(long, default_value_t = 0)]
    warm_members: u64,
    /// Virtual users (closed model).
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Users started per second.
    #[arg(long, default_value_t = 50.0)]
    hatch_rate: f64,
    /// Seconds to run after hatching (closed) or in total (open).
    #[arg(long, default_value_t = 30)]
    run_time: usize,
    /// Think time between a user's transactions, min ms.
    #[arg(long, default_value_t = 0)]
    think_min_ms: u64,
    /// Think time, max ms (0: no think time).
    #[arg(long, default_value_t = 0)]
    think_max_ms: u64,
    /// Percent of users that write (0-100).
    #[arg(long, default_value_t = 5)]
    writer_percent: usize,
    /// Zipf exponent of member popularity.
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Open model instead: this many requests per second, latency from intended send time.
    #[arg(long)]
    open_rate: Option<f64>,
    /// Most requests in flight in the open model.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Request only this path (e.g. /api/v1/statistics/system) instead of the mix.
    #[arg(long)]
    only: Option<String>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected K/N, got {s:?}"))?;
    let num = |x: &str| x.trim().parse::<u64>().map_err(|e| format!("{x:?}: {e}"));
    let (k, n) = (num(k)?, num(n)?);
    if n == 0 || k >= n {
        return Err(format!("{s:?}: K must be below N"));
    }
    Ok((k, n))
}

fn vocab(a: &Args) -> Result<loadtests::CacheVocab, String> {
    let mut v = loadtests::CacheVocab::preset(&a.cache_status).map_err(|e| e.to_string())?;
    if let Some(h) = &a.cache_header {
        v.header = h.clone();
    }
    for (from, to) in [
        (&a.cache_hit, &mut v.hit),
        (&a.cache_miss, &mut v.miss),
        (&a.cache_bypass, &mut v.bypass),
    ] {
        if !from.is_empty() {
            *to = from.clone();
        }
    }
    v.validate().map_err(|e| e.to_string())?;
    Ok(v)
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    loadtests::raise_fd_limit();
    if a.writer_percent > 100 || a.think_min_ms > a.think_max_ms {
        eprintln!("error: --writer-percent must be 0-100 and --think-min-ms <= --think-max-ms");
        return ExitCode::from(2);
    }
    let vocab = match vocab(&a) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let hosts: Vec<String> = a
        .host
        .iter()
        .map(|h| h.trim_end_matches('/').to_string())
        .collect();
    if a.warm_members > 0 {
        match loadtests::warm_members(&hosts, a.warm_members).await {
            Ok(n) => eprintln!("warmed {n} member reads"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let res = match a.open_rate {
        Some(rate) => {
            let rec = loadtests::Recorder::with(vocab.clone(), vec![hosts[0].clone()], a.shard);
            loadtests::run_open_into(
                &loadtests::OpenConfig {
                    host: hosts[0].clone(),
                    rate,
                    duration_s: a.run_time as f64,
                    max_in_flight: a.max_in_flight,
                    zipf_s: a.zipf,
                },
                std::sync::Arc::new(rec),
            )
            .await
        }
        None => {
            loadtests::run_closed(&loadtests::ClosedConfig {
                hosts: hosts.clone(),
                vocab: vocab.clone(),
                shard: a.shard,
                users: a.users,
                hatch_rate: a.hatch_rate,
                run_time_s: a.run_time,
                mix: loadtests::Mix {
                    writer_percent: a.writer_percent,
                    think: (
                        Duration::from_millis(a.think_min_ms),
                        Duration::from_millis(a.think_max_ms),
                    ),
                },
                zipf_s: a.zipf,
                only: a.only.clone(),
            })
            .await
        }
    };
    match res {
        Ok(r) => {
            println!("{}", loadtests::table(&r));
            if let Some(p) = a.json {
                if let Err(e) = std::fs::write(
                    &p,
                    serde_json::to_string_pretty(&r).expect("results serialise"),
                ) {
                    eprintln!("error: writing {}: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
