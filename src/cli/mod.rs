//! The command line: argument types (clap derive) and one module per command.
//!
//! This is the binary's edge: commands return `anyhow` errors, which `main` prints.

mod config_cmd;
mod down;
mod drill;
mod gate;
mod render;
mod serve;
mod status;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{BackendKind, HarnessConfig};

/// Exit code of `status` when the topology is up but not healthy.
pub const EXIT_UNHEALTHY: u8 = 3;
/// Exit code when a drill check, a drill gate or a load target failed.
pub const EXIT_CHECK_FAILED: u8 = 4;

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
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Arguments of `drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Drill kind.
    #[arg(value_enum)]
    pub kind: crate::drill::DrillKind,
    /// Runs (each on a fresh topology); the report gives min / median / max.
    #[arg(long, default_value_t = 1)]
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
    /// Keep every operation in the JSON report.
    #[arg(long)]
    pub history: bool,
    /// Also run the membership API in Sentinel mode and load it over HTTP through the fault.
    #[arg(long)]
    pub api: bool,
}

/// Arguments of `gate`.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Results JSON written by `loadtest --json`.
    pub results: PathBuf,
    /// Targets file (YAML).
    #[arg(long)]
    pub targets: PathBuf,
    /// Earlier results to compare against (regressions beyond ratio and floor fail).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
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
    /// Containers (through testcontainers).
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
    let cfg = HarnessConfig::load_or_default(cli.config.as_deref())?;
    match cli.command {
        Command::Up(args) => up::run(cfg, args).await,
        Command::Down(args) => down::run(cfg, args).await,
        Command::Status(args) => status::run(cfg, args).await,
        Command::Serve(args) => serve::run(cfg, args).await,
        Command::Drill(args) => drill::run(cfg, args).await,
        Command::Gate(args) => gate::run(args),
        Command::Config(ConfigCommand::Show) => config_cmd::show(&cfg),
    }
}
