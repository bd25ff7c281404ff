//! `redis-harness config show`.

use std::process::ExitCode;

use crate::config::HarnessConfig;

/// Prints the effective configuration as YAML.
pub(super) fn show(cfg: &HarnessConfig) -> anyhow::Result<ExitCode> {
    print!("{}", cfg.to_yaml());
    Ok(ExitCode::SUCCESS)
}
