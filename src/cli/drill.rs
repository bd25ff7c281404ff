//! `redis-harness drill KIND [--repeat N]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{DrillArgs, EXIT_ABORTED, EXIT_CHECK_FAILED, EXIT_PREFLIGHT};
use crate::config::{BackendKind, HarnessConfig};
use crate::drill::{self, report, DrillError, Rng};

/// Runs the drill `--repeat` times, prints the table, writes the files, gates.
pub(super) async fn run(mut cfg: HarnessConfig, args: DrillArgs) -> anyhow::Result<ExitCode> {
    if let Some(v) = args.down_after_ms {
        cfg.sentinel.down_after_ms = v;
    }
    if let Some(v) = args.wait_replicas {
        cfg.drill.wait_replicas = v;
    }
    if let Some(v) = args.min_replicas_to_write {
        cfg.replication.min_replicas_to_write = v;
    }
    if args.api {
        cfg.drill.api = true;
    }
    if let Some(v) = args.fault_window_ms {
        cfg.drill.fault_window_ms = v;
    }
    if !args.client.is_empty() {
        cfg.drill.clients = args.client.clone();
    }
    cfg.validate()
        .map_err(|p| anyhow::anyhow!("invalid settings:\n  - {}", p.join("\n  - ")))?;
    drill::check_supported(&cfg, args.kind)?;
    if args.dry_run {
        let plan = drill::plan(&cfg, args.kind).await?;
        print!("{}", report::plan_text(&plan));
        return Ok(if plan.ready() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_PREFLIGHT)
        });
    }
    super::confirmed(
        &cfg,
        &format!("drill {}", args.kind),
        args.confirm.as_deref(),
    )?;
    let external = cfg.backend == BackendKind::External;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut rng = Rng::new(seed);
    let console = super::console::beside(&args.console).await?;
    let watch = super::console::watcher(&console);
    let mut runs = Vec::new();
    for i in 1..=args.repeat {
        eprintln!(
            "[{i}/{}] drill {} (seed {seed}) ...",
            args.repeat, args.kind
        );
        let result = if external {
            // Not ours to tear down: Ctrl-C restores the fault, then the run ends.
            let stop = Some(super::signal::subscribe());
            drill::run_once_watched(
                &cfg,
                args.kind,
                i,
                &mut rng,
                args.history,
                watch.clone(),
                stop,
            )
            .await
        } else {
            tokio::select! {
                r = drill::run_once_watched(&cfg, args.kind, i, &mut rng, args.history, watch.clone(), None) => r,
                _ = super::up::shutdown_signal() => anyhow::bail!("interrupted; the drill's topology was torn down"),
            }
        };
        let run = match result {
            Ok(run) => run,
            Err(DrillError::Preflight { checks }) => {
                eprint!("{}", report::checks_text("preflight", &checks));
                eprintln!(
                    "drill {} run {i}: the preflight failed; nothing was touched",
                    args.kind
                );
                super::console::stop(console).await;
                return Ok(ExitCode::from(EXIT_PREFLIGHT));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("drill {} run {i}", args.kind));
            }
        };
        if let Some(c) = &run.cleanup {
            eprintln!("[{i}/{}] {}", args.repeat, c.summary());
        }
        let aborted = run.aborted.clone();
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        eprintln!(
            "[{i}/{}] {}: promotion {} ms",
            args.repeat,
            if run.passed() { "passed" } else { "FAILED" },
            ms(run.figures.promotion_ms),
        );
        for c in &run.clients {
            eprintln!(
                "[{i}/{}]   {}: write outage {} ms, {}",
                args.repeat,
                c.name,
                ms(c.figures.write_unavailable_ms),
                c.figures.lost_text()
            );
        }
        runs.push(run);
        if let Some(reason) = aborted {
            eprintln!(
                "[{i}/{}] ABORTED: {reason}; the fault was restored",
                args.repeat
            );
            break;
        }
    }
    super::console::stop(console).await;
    let rep = report::build(&cfg, args.kind, runs);
    print!("{}", report::terminal(&rep));
    write(&args.json, || {
        serde_json::to_string_pretty(&rep).expect("report serialises")
    })?;
    write(&args.markdown, || report::markdown(&rep))?;
    write(&args.html, || report::html(&rep))?;
    write(&args.junit, || {
        crate::gate::junit(&crate::gate::drill_verdicts(&rep))
    })?;
    let failures = report::failures(&rep);
    if rep.runs.iter().any(|r| r.aborted.is_some()) {
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        if super::signal::received() {
            anyhow::bail!("interrupted; the fault was restored and the run's keys removed");
        }
        return Ok(ExitCode::from(EXIT_ABORTED));
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        Ok(ExitCode::from(EXIT_CHECK_FAILED))
    }
}

fn write(path: &Option<PathBuf>, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if let Some(p) = path {
        std::fs::write(p, text()).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}
