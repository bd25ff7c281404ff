//! # redis-harness
//!
//! Brings up a Redis Sentinel topology (master, replicas, Sentinels), checks that it is
//! really ready, reports its live state and tears it down without leaving a process or a
//! bound port behind.
//!
//! # Layout
//!
//! - [`config`]: `harness.yaml`, defaults and validation.
//! - [`topology`]: planning, starting (process backend), readiness, status, teardown.
//! - [`drill`]: failover drills with Jepsen-style accounting, reports and gates.
//! - [`gate`]: targets and baseline regressions over load-test results; JUnit/Markdown.
//! - `stack`: the membership API served in-process on a topology.
//! - `verify`: `verify` (the main job) and `load`: load, drill under load, gates, reports.
//! - `plan`: capacity planning (knee search, memory projection).
//! - [`bench`]: criterion benches plus a redis-benchmark baseline.
//! - `report`: self-contained HTML with SVG charts.
//! - `progress`: step lines and progress bars.
//! - `cli`: the command line (the binary's edge; `main.rs` only calls [`run`]).

#![warn(unreachable_pub)]

// The library's surface: the configuration, topologies, drills and gates (what the
// integration tests and embedders use) plus the CLI entry point. Everything else is
// crate-internal.
pub mod config;
pub mod drill;
pub mod gate;
pub mod topology;

mod bench;
mod cli;
mod console;
mod plan;
mod progress;
mod report;
mod stack;
mod verify;

pub use cli::{run, Cli};

/// Installs the log subscriber: `info` for this crate (`debug`/`trace` with `-v`/`-vv`),
/// `warn` for dependencies; `RUST_LOG` overrides both. Logs go to stderr.
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("warn,redis_harness={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
