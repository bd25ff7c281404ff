//! `redis-harness up`.

use std::process::ExitCode;

use anyhow::Context;

use super::{render, UpArgs};
use crate::config::HarnessConfig;
use crate::topology::Topology;

/// Starts the topology; detaches it, or holds it until Ctrl-C with `--foreground`.
pub(super) async fn run(mut cfg: HarnessConfig, args: UpArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        cfg.backend != crate::config::BackendKind::External || args.backend.is_some(),
        "topology '{}' is external (topology.external): {}; `status` shows it, `drill`, `load` and `verify` work on it",
        cfg.topology.external.as_ref().map(|e| e.master_name.as_str()).unwrap_or("?"),
        crate::topology::external::NOT_OURS
    );
    if let Some(b) = args.backend {
        cfg.backend = b.into();
        if cfg.backend != crate::config::BackendKind::External {
            cfg.topology.external = None;
        }
    }
    anyhow::ensure!(
        !args.console.console || args.foreground,
        "--console needs --foreground (it runs while `up` holds the topology); for a detached topology run `redis-harness console`"
    );
    // Ctrl-C while starting drops the half-built topology, which kills what it started.
    let topo = tokio::select! {
        t = Topology::up(&cfg) => t.with_context(|| format!("bringing up topology '{}'", cfg.name))?,
        _ = shutdown_signal() => anyhow::bail!("interrupted while starting; everything started was stopped"),
    };
    let status = topo.status().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("{}", render::status_table(&status));
        println!("{}", render::connection_block(&status.connection));
    }
    if !args.foreground {
        let dir = topo.dir().display().to_string();
        topo.detach();
        eprintln!(
            "topology '{}' is up (state in {dir}); stop it with `redis-harness down`",
            cfg.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let console = super::console::beside(&args.console).await?;
    if let Some((_, feed)) = &console {
        feed.watch(crate::console::Target::from_state(topo.state()));
    }
    eprintln!(
        "holding topology '{}'; press Ctrl-C to tear it down",
        cfg.name
    );
    shutdown_signal().await;
    super::console::stop(console).await;
    eprintln!("tearing down ...");
    let report = topo.down().await?;
    eprintln!("{}", render::teardown_line(&report));
    Ok(ExitCode::SUCCESS)
}

pub(super) use super::signal::shutdown_signal;
