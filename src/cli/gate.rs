//! `redis-harness gate RESULTS --targets FILE [--baseline OLD]`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use loadtests::LoadResults;

use super::{GateArgs, EXIT_CHECK_FAILED};
use crate::gate::{self, Targets};

/// Reads load results: a `loadtest --json` / `load.json` file, or the `load` section of
/// a `verify` / `load` report.json.
pub(super) fn results(path: &Path) -> anyhow::Result<LoadResults> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading results {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let v = if v["schema"] == crate::verify::report::SCHEMA {
        v["load"].clone()
    } else {
        v
    };
    serde_json::from_value(v)
        .with_context(|| format!("{} is not a load results file", path.display()))
}

/// Reads one or several results files as one run: several (one per load generator) are
/// merged through their HDR histograms, so percentiles stay exact.
pub(super) fn merged(paths: &[std::path::PathBuf]) -> anyhow::Result<LoadResults> {
    let parts = paths
        .iter()
        .map(|p| results(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    loadtests::merge(&parts).with_context(|| format!("merging {}", names.join(", ")))
}

/// Evaluates, prints every verdict, writes the files; exit 4 when any target failed.
pub(super) fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let targets = Targets::load(&args.targets)?;
    let current = merged(&args.results)?;
    if args.results.len() > 1 {
        eprintln!(
            "merged {} results files ({} load generators): {} requests, hit rate {}, p99 {} µs",
            args.results.len(),
            current.generators,
            current.requests,
            current
                .hit_rate
                .map(|h| format!("{:.1}%", h * 100.0))
                .unwrap_or_else(|| "-".into()),
            current.p99_us
        );
    }
    let baseline = if args.baseline.is_empty() {
        None
    } else {
        Some(merged(&args.baseline)?)
    };
    let verdicts = gate::evaluate(&current, &targets, baseline.as_ref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdicts)?);
    } else {
        for v in &verdicts {
            let m = v.measured_text();
            println!(
                "{} {}: measured {m}, required {}",
                if v.passed { "ok  " } else { "FAIL" },
                v.name,
                v.required
            );
        }
    }
    if let Some(p) = &args.junit {
        std::fs::write(p, gate::junit(&verdicts))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.markdown {
        std::fs::write(p, gate::markdown(&verdicts))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let failed: Vec<_> = verdicts.iter().filter(|v| !v.passed).collect();
    if failed.is_empty() {
        eprintln!("all {} targets passed", verdicts.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} of {} targets FAILED", failed.len(), verdicts.len());
        Ok(ExitCode::from(EXIT_CHECK_FAILED))
    }
}
