//! The command line: argument types (clap derive) and one module per command.
//!
//! This is the binary's edge: commands return `anyhow` errors, which `main` prints.

mod bench;
mod config_cmd;
mod console;
mod down;
mod drill;
mod gate;
mod plan;
mod render;
mod serve;
mod signal;
mod status;
mod up;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{BackendKind, HarnessConfig};

/// Exit code of `status` when the topology is up but not healthy.
pub(crate) const EXIT_UNHEALTHY: u8 = 3;
/// Exit code when a drill check, a drill gate or a load target failed.
pub(crate) const EXIT_CHECK_FAILED: u8 = 4;
/// Exit code when a drill was aborted (an abort condition, Ctrl-C) and its fault restored.
pub(crate) const EXIT_ABORTED: u8 = 5;
/// Exit code when the preflight (steady-state) check failed and nothing was touched.
pub(crate) const EXIT_PREFLIGHT: u8 = 6;

/// redis-harness: bring up a Redis Sentinel topology and measure it honestly.
#[derive(Debug, Parser)]
#[command(name = "redis-harness", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./harness.yaml when present, else built-in defaults).
    #[arg(long, short = 'c', global = true, env = "REDIS_HARNESS_CONFIG")]
    pub config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the topology, wait until it is ready, print its nodes and connection info.
    Up(UpArgs),
    /// Stop a topology started by `up` (from any shell) and remove its state file.
    Down(DownArgs),
    /// Show the live state of every node of a running topology.
    Status(StatusArgs),
    /// Run a failover drill on a fresh topology and report what clients saw.
    Drill(DrillArgs),
    /// Check load-test results (`loadtest --json`) against a targets file; exit 4 when a
    /// target fails.
    Gate(GateArgs),
    /// Run the membership API (the system under test) against the running topology.
    Serve(ServeArgs),
    /// The main job: up → membership API (Sentinel mode) → warm-up → load → kill the
    /// master under load → gates → reports → down. Exit 4 when a target fails.
    Verify(VerifyArgs),
    /// Load the membership API with goose (our own topology and API, or `--host`) and
    /// write the reports; with `--targets`, gate them (exit 4 on failure).
    Load(LoadArgs),
    /// Capacity planning: find the highest request rate within a p99 SLO (open model,
    /// bisected and confirmed) and project Redis memory for other member counts.
    Plan(PlanArgs),
    /// Run the criterion benches against a fresh redis-server, plus a redis-benchmark
    /// baseline of the same server.
    Bench(BenchArgs),
    /// Serve the web console (topology, events, keys, command line, reports) for a
    /// running topology: the configured one, or any reached through its Sentinels.
    Console(ConsoleArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Arguments of `console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Port to listen on (0: any free one).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// The token every request must carry (default: a random one, printed).
    #[arg(long, env = "REDIS_HARNESS_CONSOLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Allow commands outside the read-only allow-list, and the failover button.
    #[arg(long)]
    pub allow_write: bool,
    /// Directory of reports to list (default: ./redis-harness-report when it exists).
    #[arg(long)]
    pub reports: Option<PathBuf>,
    /// How often the topology is polled, ms.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub refresh_ms: u64,
    /// Sentinels of the topology to watch, HOST:PORT,... (default: the configured
    /// topology's state file).
    #[arg(long, value_delimiter = ',')]
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under (with --sentinels; default mymaster).
    #[arg(long)]
    pub master_name: Option<String>,
    /// Password of the data nodes (with --sentinels).
    #[arg(long, env = "REDIS_HARNESS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Password of the Sentinels (with --sentinels).
    #[arg(long, env = "REDIS_HARNESS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub sentinel_password: Option<String>,
    /// A name to show for an address, NAME=HOST:PORT (repeatable; with --sentinels).
    #[arg(long)]
    pub node: Vec<String>,
    /// The topology's name in the page header (with --sentinels).
    #[arg(long)]
    pub name: Option<String>,
}

/// `--console` and its options, on commands that can run the console beside them.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleFlags {
    /// Serve the web console while this runs.
    #[arg(long)]
    pub console: bool,
    /// The console's port (0: any free one).
    #[arg(long, default_value_t = 8081)]
    pub console_port: u16,
    /// The console's address.
    #[arg(long, default_value = "127.0.0.1")]
    pub console_bind: std::net::IpAddr,
    /// The console's token (default: a random one, printed).
    #[arg(long, env = "REDIS_HARNESS_CONSOLE_TOKEN", hide_env_values = true)]
    pub console_token: Option<String>,
    /// Allow writes and the failover button in the console.
    #[arg(long)]
    pub console_allow_write: bool,
}

/// Arguments of `drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Drill kind.
    #[arg(value_enum)]
    pub kind: crate::drill::DrillKind,
    /// Runs (each on a fresh topology), 1 to 100; the report gives min / median / max.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Seed of the random fault timing (printed; default from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Random fault window in ms after `drill.pre_fault_ms` (overrides the config).
    #[arg(long)]
    pub fault_window_ms: Option<u64>,
    /// Sentinel down-after-milliseconds (overrides the config).
    #[arg(long)]
    pub down_after_ms: Option<i64>,
    /// WAIT for this many replicas after each write (overrides the config).
    #[arg(long)]
    pub wait_replicas: Option<u32>,
    /// min-replicas-to-write on the data nodes (overrides the config).
    #[arg(long)]
    pub min_replicas_to_write: Option<i64>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write JUnit XML here: one test case per check of every run and per gate.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Keep every operation in the JSON report.
    #[arg(long)]
    pub history: bool,
    /// Also run the membership API in Sentinel mode and load it over HTTP through the fault.
    #[arg(long)]
    pub api: bool,
    /// A client to run through the fault (repeatable; replaces `drill.clients`): a model
    /// (sentinel-events, switch-master, reresolve-on-error, fixed-address) or a program of
    /// your own as NAME=COMMAND.
    #[arg(long, value_name = "MODEL|NAME=COMMAND", value_parser = crate::drill::clients::ClientSpec::parse_arg)]
    pub client: Vec<crate::drill::clients::ClientSpec>,
    /// Print the plan (preflight, fault steps with hooks filled in, timings, key prefix)
    /// and touch nothing (external topologies).
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead with a fault on an external topology: its master name, as a typed
    /// confirmation.
    #[arg(long, value_name = "MASTER_NAME")]
    pub confirm: Option<String>,
    /// The web console beside the drill.
    #[command(flatten)]
    pub console: ConsoleFlags,
}

/// Refuses a fault on an external topology unless `confirm` names its master.
pub(crate) fn confirmed(
    cfg: &HarnessConfig,
    what: &str,
    confirm: Option<&str>,
) -> anyhow::Result<()> {
    let Some(ext) = cfg.topology.external.as_ref() else {
        return Ok(());
    };
    match confirm {
        Some(c) if c == ext.master_name => Ok(()),
        Some(c) => anyhow::bail!(
            "--confirm {c:?} does not match the master name {:?} of the external topology; nothing was touched",
            ext.master_name
        ),
        None => anyhow::bail!(
            "{what} would inject a fault into the external topology '{}' (Sentinels {}); run with --dry-run to see the plan, then with --confirm {} to go ahead. Nothing was touched",
            ext.master_name,
            ext.sentinels.join(", "),
            ext.master_name
        ),
    }
}

/// Sizes and outputs shared by `verify` and `load`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Size profile: quick (about two minutes), ci, full.
    #[arg(long, default_value = "quick")]
    pub profile: String,
    /// Concurrent goose users (overrides the profile).
    #[arg(long)]
    pub users: Option<usize>,
    /// Measured load in seconds (overrides the profile).
    #[arg(long)]
    pub run_time: Option<usize>,
    /// Warm-up load in seconds before measuring (overrides the profile).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Writer users in percent (overrides the profile).
    #[arg(long)]
    pub writer_percent: Option<usize>,
    /// Think time between transactions in ms, MIN,MAX (overrides the profile).
    #[arg(long, value_parser = parse_pair)]
    pub think_ms: Option<(u64, u64)>,
    /// Targets file (YAML; `verify` defaults to the built-in targets/verify.yaml).
    #[arg(long)]
    pub targets: Option<PathBuf>,
    /// Earlier `load.json` to compare against (regressions beyond ratio and floor fail);
    /// repeatable: several generators' files are merged exactly.
    #[arg(long)]
    pub baseline: Vec<PathBuf>,
    /// Read members 1..=N (the most popular) through the cache before the measured load
    /// (default 2000; 0: none).
    #[arg(long, default_value_t = 2000)]
    pub warm_members: u64,
    /// Directory for report.json, load.json, report.md, junit.xml and report.html.
    #[arg(long, default_value = "redis-harness-report")]
    pub out: PathBuf,
    /// Members generated into the API's database.
    #[arg(long, default_value_t = 50_301)]
    pub members: u64,
    /// Membership API instances, 1 to 16: more than one runs each as a separate process
    /// on the same topology and database, and the users are spread over them.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16))]
    pub api_instances: usize,
}

fn parse_pair(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected MIN,MAX in ms, got {s:?}"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|e| format!("{x:?} is not a number of ms: {e}"))
    };
    Ok((n(a)?, n(b)?))
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Sizes and outputs.
    #[command(flatten)]
    pub run: RunArgs,
    /// Seconds into the measured load when the master is killed (overrides the profile).
    #[arg(long)]
    pub fault_at: Option<u64>,
    /// Go ahead with the kill-master fault on an external topology: its master name.
    #[arg(long, value_name = "MASTER_NAME")]
    pub confirm: Option<String>,
    /// The web console beside the run.
    #[command(flatten)]
    pub console: ConsoleFlags,
}

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Sizes and outputs.
    #[command(flatten)]
    pub run: RunArgs,
    /// Base URL of a running implementation of the API contract (default: start our own
    /// topology and API, and stop them afterwards); repeatable or comma-separated for
    /// several instances of one API (users are spread over them).
    #[arg(long, value_delimiter = ',')]
    pub host: Vec<String>,
    /// How responses say what the cache did: ours, nginx, varnish, cdn, cloudflare
    /// (overrides `load.cache_status` in the config).
    #[arg(long)]
    pub cache_status: Option<String>,
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Highest allowed p99 over all requests, ms.
    #[arg(long, default_value_t = 50.0)]
    pub slo_p99_ms: f64,
    /// Highest allowed error rate (0-1).
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate: f64,
    /// Seconds per load step.
    #[arg(long, default_value_t = 10.0)]
    pub step_s: f64,
    /// First offered rate, requests per second (doubled until the SLO breaks).
    #[arg(long, default_value_t = 250.0)]
    pub start_rate: f64,
    /// Never offer more than this many requests per second.
    #[arg(long, default_value_t = 20_000.0)]
    pub max_rate: f64,
    /// Stop bisecting when the bracket is narrower than this ratio.
    #[arg(long, default_value_t = 1.1)]
    pub resolution: f64,
    /// Warm-up seconds at the start rate (not judged).
    #[arg(long, default_value_t = 10.0)]
    pub warmup_s: f64,
    /// Members generated into the API's database.
    #[arg(long, default_value_t = 50_301)]
    pub members: u64,
    /// Member counts to project Redis memory for (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50301,250000,1000000,5000000"
    )]
    pub project: Vec<u64>,
    /// Requests in flight at most; requests due beyond it count as errors.
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// Directory for plan.json, plan.md and plan.html.
    #[arg(long, default_value = "redis-harness-report")]
    pub out: PathBuf,
}

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Requests per redis-benchmark test.
    #[arg(long, default_value_t = 100_000)]
    pub requests: u32,
    /// Only benches whose id contains this (criterion filter).
    #[arg(long)]
    pub filter: Option<String>,
    /// Directory for bench.json and bench.md.
    #[arg(long, default_value = "redis-harness-report")]
    pub out: PathBuf,
}

/// Arguments of `gate`.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Results JSON written by `loadtest --json` (or `load.json`); several files (one
    /// per load generator) are merged exactly into one run.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Targets file (YAML).
    #[arg(long)]
    pub targets: PathBuf,
    /// Earlier results to compare against (regressions beyond ratio and floor fail);
    /// repeatable, merged like the results.
    #[arg(long)]
    pub baseline: Vec<PathBuf>,
    /// Write JUnit XML here (one test case per target).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write Markdown here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Print the verdicts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `serve`. Everything else comes from the API's environment variables
/// (REDIS_*, CACHE_*, DATABASE_URL ...).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (overrides PORT; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on (overrides HOST).
    #[arg(long)]
    pub host: Option<String>,
    /// Database (overrides DATABASE_URL), e.g. sqlite://membership.db.
    #[arg(long)]
    pub database: Option<String>,
    /// Members to generate into an empty database (overrides MEMBERSHIP_MEMBERS).
    #[arg(long)]
    pub members: Option<u64>,
    /// Ignore a running topology and use REDIS_HOST/REDIS_PORT (default localhost:6379).
    #[arg(long = "standalone-env")]
    pub standalone_env: bool,
}

/// Arguments of `up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Backend that runs the nodes (overrides `backend:` in the config).
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Stay in the foreground until Ctrl-C (or SIGTERM), then tear everything down.
    #[arg(long)]
    pub foreground: bool,
    /// Print the ready topology's status as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The web console while the topology is held (with --foreground).
    #[command(flatten)]
    pub console: ConsoleFlags,
}

/// Arguments of `down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Stop every topology found under the run directory, not only the configured one.
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON (stable field names) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file merged over defaults) as YAML.
    Show,
}

/// Backend choice on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackendArg {
    /// Local redis-server processes.
    Process,
    /// Docker containers on a private network.
    Docker,
}

impl From<BackendArg> for BackendKind {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Process => BackendKind::Process,
            BackendArg::Docker => BackendKind::Docker,
        }
    }
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    signal::install();
    let cfg = HarnessConfig::load_or_default(cli.config.as_deref())?;
    match cli.command {
        Command::Up(args) => up::run(cfg, args).await,
        Command::Down(args) => down::run(cfg, args).await,
        Command::Status(args) => status::run(cfg, args).await,
        Command::Serve(args) => serve::run(cfg, args).await,
        Command::Drill(args) => drill::run(cfg, args).await,
        Command::Gate(args) => gate::run(args),
        Command::Verify(args) => verify::run_verify(cfg, args).await,
        Command::Load(args) => verify::run_load(cfg, args).await,
        Command::Plan(args) => plan::run(cfg, args).await,
        Command::Bench(args) => bench::run(cfg, args).await,
        Command::Console(args) => console::run(cfg, args).await,
        Command::Config(ConfigCommand::Show) => config_cmd::show(&cfg),
    }
}
