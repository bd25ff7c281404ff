//! `redis-harness console`, and `--console` beside `up --foreground`, `drill` and `verify`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::{ConsoleArgs, ConsoleFlags};
use crate::config::HarnessConfig;
use crate::console::{self, Console, Feed, Target};
use crate::drill::Watch;
use crate::topology::state::TopologyState;

/// Where reports go by default; shown when it exists.
const DEFAULT_REPORTS: &str = "redis-harness-report";

fn options(
    bind: IpAddr,
    port: u16,
    token: Option<String>,
    allow_write: bool,
    reports: Option<PathBuf>,
    refresh_ms: u64,
) -> anyhow::Result<console::Options> {
    if let Some(t) = &token {
        anyhow::ensure!(
            t.len() >= 16
                && t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)),
            "the console token must be at least 16 characters of A-Z, a-z, 0-9, '.', '_', '~' or '-' (it goes into a URL and a cookie as is)"
        );
    }
    if !bind.is_loopback() {
        eprintln!(
            "console: listening on {bind}, not only loopback: anyone who can reach it and has the token can use it"
        );
    }
    let reports = reports.or_else(|| {
        Path::new(DEFAULT_REPORTS)
            .is_dir()
            .then(|| PathBuf::from(DEFAULT_REPORTS))
    });
    Ok(console::Options {
        bind,
        port,
        token,
        allow_write,
        reports,
        refresh: Duration::from_millis(refresh_ms),
    })
}

fn announce(c: &Console, allow_write: bool) {
    // On stdout, one line, so scripts (and tests) can read the URL.
    println!("console: {}", c.url());
    eprintln!(
        "console: {} on {}; the token is in the URL (or send `Authorization: Bearer <token>`)",
        if allow_write {
            "WRITES ALLOWED (--allow-write)"
        } else {
            "read-only"
        },
        c.addr()
    );
}

/// Starts the console beside another command when `flags.console` asks for it.
pub(super) async fn beside(flags: &ConsoleFlags) -> anyhow::Result<Option<(Console, Feed)>> {
    if !flags.console {
        return Ok(None);
    }
    let opts = options(
        flags.console_bind,
        flags.console_port,
        flags.console_token.clone(),
        flags.console_allow_write,
        None,
        250,
    )?;
    let feed = Feed::new();
    let c = Console::start(opts, feed.clone()).await?;
    announce(&c, flags.console_allow_write);
    Ok(Some((c, feed)))
}

/// The feed of a console started [`beside`] a command, as a drill watcher.
pub(super) fn watcher(c: &Option<(Console, Feed)>) -> Option<Arc<dyn Watch>> {
    c.as_ref()
        .map(|(_, f)| Arc::new(f.clone()) as Arc<dyn Watch>)
}

/// Stops a console started [`beside`] a command.
pub(super) async fn stop(c: Option<(Console, Feed)>) {
    if let Some((c, _)) = c {
        c.stop().await;
    }
}

/// `host:port` with a port.
fn addr(s: &str) -> anyhow::Result<String> {
    let (h, p) = s
        .rsplit_once(':')
        .with_context(|| format!("{s:?} is not host:port"))?;
    anyhow::ensure!(!h.is_empty(), "{s:?} has no host");
    p.parse::<u16>()
        .with_context(|| format!("{s:?}: {p:?} is not a port"))?;
    Ok(s.to_string())
}

/// The target named on the command line, if any.
fn explicit_target(args: &ConsoleArgs) -> anyhow::Result<Option<Target>> {
    if args.sentinels.is_empty() {
        anyhow::ensure!(
            args.master_name.is_none() && args.node.is_empty(),
            "--master-name and --node go with --sentinels"
        );
        return Ok(None);
    }
    let sentinels = args
        .sentinels
        .iter()
        .map(|s| addr(s.trim()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names = args
        .node
        .iter()
        .map(|n| {
            let (name, a) = n
                .split_once('=')
                .with_context(|| format!("--node {n:?}: expected NAME=HOST:PORT"))?;
            Ok((addr(a)?, name.to_string()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Target {
        name: args.name.clone().unwrap_or_else(|| "external".into()),
        sentinels,
        master_name: args
            .master_name
            .clone()
            .unwrap_or_else(|| "mymaster".into()),
        password: args.password.clone(),
        sentinel_password: args.sentinel_password.clone(),
        names,
    }))
}

/// Follows the state file of the configured topology: a new `up` is picked up, a `down`
/// is logged (the console keeps showing the nodes, now down).
fn follow_state(dir: PathBuf, feed: Feed) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut had = true;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match TopologyState::read(&dir) {
                Ok(Some(state)) => {
                    had = true;
                    feed.watch(Target::from_state(&state));
                }
                _ if had => {
                    had = false;
                    feed.push(
                        console::Kind::Console,
                        "console",
                        "state",
                        format!(
                            "no state file in {} any more (the topology was taken down?)",
                            dir.display()
                        ),
                    );
                }
                _ => {}
            }
        }
    })
}

/// `redis-harness console`: serves until Ctrl-C.
pub(super) async fn run(cfg: HarnessConfig, args: ConsoleArgs) -> anyhow::Result<ExitCode> {
    let opts = options(
        args.bind,
        args.port,
        args.token.clone(),
        args.allow_write,
        args.reports.clone(),
        args.refresh_ms,
    )?;
    let feed = Feed::new();
    let follower = match explicit_target(&args)? {
        Some(t) => {
            feed.watch(t);
            None
        }
        None => {
            let dir = cfg.topology_dir();
            let state = TopologyState::read(&dir)?.with_context(|| {
                format!(
                    "no topology '{}' is up (no state file in {}); start one with `redis-harness up`, or point the console at Sentinels with --sentinels HOST:PORT,...",
                    cfg.name,
                    dir.display()
                )
            })?;
            feed.watch(Target::from_state(&state));
            Some(follow_state(dir, feed.clone()))
        }
    };
    let c = Console::start(opts, feed).await?;
    announce(&c, args.allow_write);
    eprintln!("console: press Ctrl-C to stop");
    super::signal::shutdown_signal().await;
    if let Some(f) = follower {
        f.abort();
    }
    c.stop().await;
    Ok(ExitCode::SUCCESS)
}
