//! `redis-harness config show`.

use std::process::ExitCode;

use crate::config::HarnessConfig;

/// Prints the effective configuration as YAML; an external topology's secrets (often
/// from the environment) are shown as `***`.
pub(super) fn show(cfg: &HarnessConfig) -> anyhow::Result<ExitCode> {
    let mut shown = cfg.clone();
    if let Some(ext) = shown.topology.external.as_mut() {
        for secret in [&mut ext.password, &mut ext.sentinel_password] {
            if secret.is_some() {
                *secret = Some("***".into());
            }
        }
    }
    print!("{}", shown.to_yaml());
    Ok(ExitCode::SUCCESS)
}
