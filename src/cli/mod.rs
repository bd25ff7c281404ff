//! The command line: argument types (clap derive) and one module per command.
//!
//! This is the binary's edge: commands return `anyhow` errors, which `main` prints.

mod config_cmd;
mod down;
mod render;
mod status;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{BackendKind, HarnessConfig};

/// Exit code of `status` when the topology is up but not healthy.
pub const EXIT_UNHEALTHY: u8 = 3;

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
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
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
        Command::Config(ConfigCommand::Show) => config_cmd::show(&cfg),
    }
}
