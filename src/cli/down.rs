//! `redis-harness down [--all]`.

use std::process::ExitCode;

use super::{render, DownArgs};
use crate::config::HarnessConfig;
use crate::topology::{self, state::TopologyState};

/// Stops the configured topology, or every topology under the run directory.
pub async fn run(cfg: HarnessConfig, args: DownArgs) -> anyhow::Result<ExitCode> {
    let dirs: Vec<(String, std::path::PathBuf)> = if args.all {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&cfg.run_dir) {
            for e in entries.flatten() {
                if TopologyState::path(&e.path()).is_file() {
                    found.push((e.file_name().to_string_lossy().into_owned(), e.path()));
                }
            }
        }
        if found.is_empty() {
            eprintln!("no topology is up under {}", cfg.run_dir.display());
        }
        found
    } else {
        vec![(cfg.name.clone(), cfg.topology_dir())]
    };
    let mut code = ExitCode::SUCCESS;
    for (name, dir) in dirs {
        let report = topology::down_dir(&dir, &name).await?;
        eprintln!("topology '{name}': {}", render::teardown_line(&report));
        if !report.ports_still_open.is_empty() {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}
