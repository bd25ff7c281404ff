//! `redis-harness plan`.

use std::process::ExitCode;

use anyhow::Context;

use super::PlanArgs;
use crate::config::HarnessConfig;
use crate::plan::{self, PlanOptions};
use crate::progress::Progress;

/// Runs the knee search, prints the tables, writes plan.json / plan.md / plan.html.
pub(super) async fn run(cfg: HarnessConfig, args: PlanArgs) -> anyhow::Result<ExitCode> {
    cfg.validate()
        .map_err(|p| anyhow::anyhow!("invalid settings:\n  - {}", p.join("\n  - ")))?;
    anyhow::ensure!(args.slo_p99_ms > 0.0, "--slo-p99-ms must be positive");
    let o = PlanOptions {
        slo_p99_us: (args.slo_p99_ms * 1000.0).round() as u64,
        max_error_rate: args.max_error_rate,
        step_s: args.step_s,
        start_rate: args.start_rate,
        max_rate: args.max_rate,
        resolution: args.resolution,
        warmup_s: args.warmup_s,
        members: args.members,
        project_members: args.project.clone(),
        max_in_flight: args.max_in_flight,
    };
    let progress = Progress::new();
    let rep = tokio::select! {
        r = plan::run(&cfg, &o, &progress) => r?,
        _ = super::up::shutdown_signal() => anyhow::bail!("interrupted; everything started was stopped"),
    };
    print!("{}", plan::report::terminal(&rep));
    let files = vec![
        ("plan.json", serde_json::to_string_pretty(&rep)?),
        ("plan.md", plan::report::markdown(&rep)),
        ("plan.html", plan::report::html_page(&rep)),
    ];
    let written = crate::report::write_files(&args.out, files)
        .with_context(|| format!("writing the reports into {}", args.out.display()))?;
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
