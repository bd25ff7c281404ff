//! `loadtest`: runs the membership API load test against any base URL.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Load-test a membership API (the redis-harness contract) at HOST.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version)]
struct Args {
    /// Base URL of the API, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    host: String,
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

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    loadtests::raise_fd_limit();
    if a.writer_percent > 100 || a.think_min_ms > a.think_max_ms {
        eprintln!("error: --writer-percent must be 0-100 and --think-min-ms <= --think-max-ms");
        return ExitCode::from(2);
    }
    let res = match a.open_rate {
        Some(rate) => {
            loadtests::run_open(&loadtests::OpenConfig {
                host: a.host.clone(),
                rate,
                duration_s: a.run_time as f64,
                max_in_flight: a.max_in_flight,
                zipf_s: a.zipf,
            })
            .await
        }
        None => {
            loadtests::run_closed(&loadtests::ClosedConfig {
                host: a.host.clone(),
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
