//! `redis-harness status [--json]`.

use std::process::ExitCode;

use super::{render, StatusArgs, EXIT_UNHEALTHY};
use crate::config::HarnessConfig;
use crate::topology::{self, state::TopologyState, TopologyError};

/// Prints live status; exits 0 when healthy, [`EXIT_UNHEALTHY`] when not.
pub(super) async fn run(cfg: HarnessConfig, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let status = if cfg.backend == crate::config::BackendKind::External {
        // Read-only: the nodes the Sentinels name, probed under the same health rules.
        // The secrets are the user's: shown as set, never printed.
        let mut s = topology::Topology::attach(&cfg).await?.status().await;
        let c = &mut s.connection;
        for secret in [&mut c.password, &mut c.sentinel_password] {
            if secret.is_some() {
                *secret = Some("***".into());
            }
        }
        s
    } else {
        let dir = cfg.topology_dir();
        let state = TopologyState::read(&dir)?.ok_or_else(|| TopologyError::NotUp {
            name: cfg.name.clone(),
            dir: dir.clone(),
        })?;
        topology::status_of(&state).await
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("{}", render::status_table(&status));
        println!("{}", render::connection_block(&status.connection));
        match &status.problem {
            None => println!("healthy: yes"),
            Some(p) => println!("healthy: NO ({p})"),
        }
    }
    Ok(if status.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    })
}
