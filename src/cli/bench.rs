//! `redis-harness bench`.

use std::process::ExitCode;

use anyhow::Context;

use super::BenchArgs;
use crate::bench;
use crate::config::HarnessConfig;
use crate::progress::Progress;

/// Runs the benches and the baseline, prints the tables, writes bench.json / bench.md.
pub async fn run(cfg: HarnessConfig, args: BenchArgs) -> anyhow::Result<ExitCode> {
    cfg.validate()
        .map_err(|p| anyhow::anyhow!("invalid settings:\n  - {}", p.join("\n  - ")))?;
    anyhow::ensure!(args.requests > 0, "--requests must be positive");
    let progress = Progress::new();
    let rep = tokio::select! {
        r = bench::run(&cfg, args.requests, args.filter.as_deref(), &progress) => r?,
        _ = super::up::shutdown_signal() => anyhow::bail!("interrupted; the redis-server was stopped"),
    };
    print!("{}", bench::terminal(&rep));
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (name, text) in [
        ("bench.json", serde_json::to_string_pretty(&rep)?),
        ("bench.md", bench::markdown(&rep)),
    ] {
        let p = args.out.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
