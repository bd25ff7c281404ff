//! `redis-harness bench`.

use std::process::ExitCode;

use anyhow::Context;

use super::BenchArgs;
use crate::bench;
use crate::config::HarnessConfig;
use crate::progress::Progress;

/// Runs the benches and the baseline, prints the tables, writes bench.json / bench.md.
pub(super) async fn run(cfg: HarnessConfig, args: BenchArgs) -> anyhow::Result<ExitCode> {
    cfg.validate()
        .map_err(|p| anyhow::anyhow!("invalid settings:\n  - {}", p.join("\n  - ")))?;
    anyhow::ensure!(args.requests > 0, "--requests must be positive");
    let progress = Progress::new();
    let rep = tokio::select! {
        r = bench::run(&cfg, args.requests, args.filter.as_deref(), &progress) => r?,
        _ = super::up::shutdown_signal() => anyhow::bail!("interrupted; the redis-server was stopped"),
    };
    print!("{}", bench::report::terminal(&rep));
    let files = vec![
        ("bench.json", serde_json::to_string_pretty(&rep)?),
        ("bench.md", bench::report::markdown(&rep)),
    ];
    let written = crate::report::write_files(&args.out, files)
        .with_context(|| format!("writing the reports into {}", args.out.display()))?;
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
