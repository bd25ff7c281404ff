//! `redis-harness serve`: runs the membership API (the system under test). When the
//! environment names no Redis and a topology of this config is up, it uses that
//! topology's Sentinels (Sentinel mode), its master name and its password.

use std::process::ExitCode;

use anyhow::Context;
use membership::ApiConfig;
use membership::RedisTarget;

use super::{up::shutdown_signal, ServeArgs};
use crate::config::HarnessConfig;
use crate::topology::state::TopologyState;

/// Builds the API config: environment, then the running topology, then the flags.
pub(super) fn api_config(cfg: &HarnessConfig, args: &ServeArgs) -> anyhow::Result<ApiConfig> {
    let env_names_redis = ["REDIS_SENTINELS", "REDIS_HOST", "REDIS_PORT"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let mut api = ApiConfig::from_env()?;
    if !env_names_redis && !args.standalone_env {
        if let Some(state) = TopologyState::read(&cfg.topology_dir())? {
            api.redis = crate::stack::redis_target(&state);
            if api.redis_auth.password.is_none() {
                api.redis_auth.password = state.password.clone();
            }
        }
    }
    if let Some(p) = args.port {
        api.port = p;
    }
    if let Some(h) = &args.host {
        api.host = h.clone();
    }
    if let Some(d) = &args.database {
        api.database_url = d.clone();
    }
    if let Some(m) = args.members {
        anyhow::ensure!(m > 0, "--members must be at least 1");
        api.members = m;
    }
    Ok(api)
}

/// Serves until Ctrl-C or SIGTERM.
pub(super) async fn run(cfg: HarnessConfig, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let api = api_config(&cfg, &args)?;
    let target = match &api.redis {
        RedisTarget::Standalone { host, port } => format!("standalone Redis at {host}:{port}"),
        RedisTarget::Sentinel {
            sentinels,
            master_name,
        } => format!(
            "Sentinel mode, master '{master_name}' via {}",
            sentinels
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    eprintln!("membership API: {target}; database {}", api.database_url);
    membership::serve(
        api,
        |addr| eprintln!("serving http://{addr}/api/v1 (Ctrl-C to stop)"),
        shutdown_signal(),
    )
    .await
    .context("membership API")?;
    Ok(ExitCode::SUCCESS)
}
