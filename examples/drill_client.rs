//! An external drill client: a redis-rs application that finds the master through
//! redis-rs's own Sentinel support, under a failover drill.
//!
//! The harness starts this program when a drill's workload starts (`drill.clients`), with
//! the topology described in `REDIS_HARNESS_*` environment variables, and stops it with
//! SIGTERM when the drill ends. It builds a `redis::sentinel::SentinelClient` for the master
//! and takes one multiplexed connection from it; a connection that returns an error is
//! dropped and the next write asks the Sentinels again, which is how a redis-rs application
//! without failover handling of its own follows a failover. It writes
//! `SADD <prefix>set w-<n>` at the suggested rate and records every write as one JSON line in
//! `REDIS_HARNESS_HISTORY` (CLOCK_MONOTONIC nanoseconds around the call, outcome ok / fail /
//! unknown), which the harness judges like its own clients: acknowledged members missing
//! from the set after the drill are lost, the longest gap between them is the outage.
//!
//! Build it with `cargo build --example drill_client` (the `sentinel` feature of `redis` is
//! a dev-dependency feature: it is on for examples only) and name
//! `target/debug/examples/drill_client` as a drill client's command. By hand, against a
//! topology from `redis-harness up`:
//!
//! ```text
//! REDIS_HARNESS_SENTINELS=127.0.0.1:26379 REDIS_HARNESS_MASTER_NAME=mymaster \
//! REDIS_HARNESS_KEY_PREFIX=harness:drill:redis-rs: REDIS_HARNESS_HISTORY=/tmp/h.jsonl \
//! target/debug/examples/drill_client
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval, timeout, MissedTickBehavior};

/// After SIGTERM the write in flight may finish for this long; the harness's SIGKILL comes
/// at 5 s.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// The environment the harness passes (see the drill client protocol).
struct Config {
    sentinels: Vec<ConnectionAddr>,
    master_name: String,
    password: Option<String>,
    sentinel_password: Option<String>,
    prefix: String,
    history: String,
    interval: Duration,
    op_timeout: Duration,
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let required = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!("missing environment variable {name}")),
        };
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: f64| match optional(name) {
            None => Ok(default),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => Err(format!("{name}: not a positive number: {v:?}")),
            },
        };

        let sentinels_var = required("REDIS_HARNESS_SENTINELS")?;
        let master_name = required("REDIS_HARNESS_MASTER_NAME")?;
        let prefix = required("REDIS_HARNESS_KEY_PREFIX")?;
        let history = required("REDIS_HARNESS_HISTORY")?;
        let sentinels = sentinels_var
            .split(',')
            .map(|item| {
                let item = item.trim();
                let (host, port) = item
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .filter(|(h, _)| !h.is_empty())
                    .ok_or_else(|| format!("REDIS_HARNESS_SENTINELS: not host:port: {item:?}"))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Ok(ConnectionAddr::Tcp(host.to_string(), port))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let rate = number("REDIS_HARNESS_WRITE_RATE", 100.0)?;
        let op_timeout_ms = number("REDIS_HARNESS_OP_TIMEOUT_MS", 500.0)?;
        Ok(Self {
            sentinels,
            master_name,
            password: optional("REDIS_HARNESS_PASSWORD"),
            sentinel_password: optional("REDIS_HARNESS_SENTINEL_PASSWORD"),
            prefix,
            history,
            interval: Duration::from_secs_f64(1.0 / rate),
            op_timeout: Duration::from_secs_f64(op_timeout_ms / 1000.0),
        })
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock the harness reads.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What became of one write.
struct Done {
    outcome: &'static str,
    error: Option<String>,
}

/// An error reply from the server (READONLY, NOREPLICAS, OOM, ...): the command was refused.
fn is_error_reply(err: &RedisError) -> bool {
    matches!(err.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

/// One `SADD`: a connection from the SentinelClient if there is none, then the command.
async fn write_once(
    client: &mut SentinelClient,
    conn: &mut Option<MultiplexedConnection>,
    conn_config: &AsyncConnectionConfig,
    key: &str,
    value: &str,
) -> Done {
    if conn.is_none() {
        match client.get_async_connection_with_config(conn_config).await {
            Ok(c) => *conn = Some(c),
            // Nothing was sent: the SADD goes out only on a connection that is up.
            Err(e) => {
                return Done {
                    outcome: "fail",
                    error: Some(format!("connecting through the Sentinels: {e}")),
                }
            }
        }
    }
    let c = conn.as_mut().expect("connected above");
    match redis::cmd("SADD")
        .arg(key)
        .arg(value)
        .query_async::<i64>(c)
        .await
    {
        Ok(_) => Done {
            outcome: "ok",
            error: None,
        },
        Err(e) => {
            // Dropped either way, so the next write finds the master again: after a lost
            // connection, a timeout or a READONLY from a demoted master alike.
            *conn = None;
            Done {
                outcome: if is_error_reply(&e) {
                    "fail"
                } else {
                    "unknown"
                },
                error: Some(e.to_string()),
            }
        }
    }
}

/// One line of the history, fields in the protocol's order.
#[derive(serde::Serialize)]
struct Line<'a> {
    op: &'static str,
    key: &'a str,
    value: &'a str,
    invoke_ns: u64,
    complete_ns: u64,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn record(history: &mut File, line: &Line<'_>) -> std::io::Result<()> {
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    // One write per line on an unbuffered file: each line reaches the file whole, at once.
    history.write_all(text.as_bytes())?;
    history.flush()
}

async fn run(cfg: Config) -> Result<(), String> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;

    let mut builder = SentinelClientBuilder::new(
        cfg.sentinels.clone(),
        &cfg.master_name,
        SentinelServerType::Master,
    )
    .map_err(|e| format!("Sentinel client: {e}"))?;
    if let Some(pw) = &cfg.password {
        builder = builder.set_client_to_redis_password(pw);
    }
    if let Some(pw) = &cfg.sentinel_password {
        builder = builder.set_client_to_sentinel_password(pw);
    }
    let mut client = builder
        .build()
        .map_err(|e| format!("Sentinel client: {e}"))?;
    let conn_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(cfg.op_timeout))
        .set_response_timeout(Some(cfg.op_timeout));

    let mut history = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.history)
        .map_err(|e| format!("{}: {e}", cfg.history))?;

    let mut ticks = interval(cfg.interval);
    // A late write does not make the next ones earlier: no bursts after a stall.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let key = format!("{}set", cfg.prefix);
    let mut conn: Option<MultiplexedConnection> = None;
    let mut n: u64 = 0;
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            biased;
            _ = term.recv() => break,
            _ = ticks.tick() => {}
        }
        n += 1;
        let value = format!("w-{n}");
        let invoke_ns = monotonic_ns();
        let done = {
            let op = write_once(&mut client, &mut conn, &conn_config, &key, &value);
            tokio::pin!(op);
            tokio::select! {
                done = &mut op => done,
                _ = term.recv() => {
                    // Told to stop mid-write: finish it (within the grace), then stop.
                    stopping = true;
                    timeout(SHUTDOWN_GRACE, &mut op).await.unwrap_or_else(|_| Done {
                        outcome: "unknown",
                        error: Some(format!(
                            "interrupted: still running {} s after SIGTERM",
                            SHUTDOWN_GRACE.as_secs()
                        )),
                    })
                }
            }
        };
        let complete_ns = monotonic_ns();
        let line = Line {
            op: "write",
            key: &key,
            value: &value,
            invoke_ns,
            complete_ns,
            outcome: done.outcome,
            error: done.error.as_deref(),
        };
        record(&mut history, &line).map_err(|e| format!("{}: {e}", cfg.history))?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("drill_client: {e}");
            eprintln!(
                "It is meant to be started by redis-harness (drill.clients); see \
                 examples/clients/README.md."
            );
            return ExitCode::from(2);
        }
    };
    match run(cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drill_client: {e}");
            ExitCode::FAILURE
        }
    }
}
