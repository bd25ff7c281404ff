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

/// Evaluates, prints every verdict, writes the files; exit 4 when any target failed.
pub(super) fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let targets = Targets::load(&args.targets)?;
    let current = results(&args.results)?;
    let baseline = args.baseline.as_deref().map(results).transpose()?;
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
