//! `redis-harness down [--all]`.

use std::process::ExitCode;

use super::{render, DownArgs};
use crate::config::HarnessConfig;
use crate::topology::{self, state::TopologyState};

/// Stops the configured topology, or every topology under the run directory.
pub(super) async fn run(cfg: HarnessConfig, args: DownArgs) -> anyhow::Result<ExitCode> {
    if cfg.backend == crate::config::BackendKind::External && !args.all {
        eprintln!(
            "topology '{}' is external (topology.external): {}; nothing was stopped",
            cfg.topology
                .external
                .as_ref()
                .map(|e| e.master_name.as_str())
                .unwrap_or("?"),
            crate::topology::external::NOT_OURS
        );
        return Ok(ExitCode::SUCCESS);
    }
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
        if !report.ports_still_open.is_empty() || !report.containers_left.is_empty() {
            code = ExitCode::FAILURE;
        }
    }
    if args.all {
        // Containers and networks of runs that crashed before writing a state file (or
        // before starting a container), found by label.
        let run_dir = topology::absolute(&cfg.run_dir)?;
        match topology::docker::client() {
            Ok(d) if topology::docker::check_engine(&d).await.is_ok() => {
                let removed = topology::docker::remove_all_under(&d, &run_dir).await?;
                if !removed.containers.is_empty() {
                    eprintln!(
                        "removed {} leftover container(s) labelled with {}: {}",
                        removed.containers.len(),
                        run_dir.display(),
                        removed.containers.join(", ")
                    );
                }
                if !removed.networks.is_empty() {
                    eprintln!(
                        "removed {} leftover network(s) of {}: {}",
                        removed.networks.len(),
                        run_dir.display(),
                        removed.networks.join(", ")
                    );
                }
            }
            _ => tracing::debug!("no Docker engine answers; no containers to look for"),
        }
    }
    Ok(code)
}
