//! # membership
//!
//! The membership-management API with its Redis cache layer: the system under test of
//! redis-harness, built for real from the user's two documents. It serves the seeds' API
//! contract under `/api/v1` from SQLite, caches reads in Redis (standalone or through
//! Sentinels) and keeps the cache correct across writes and failovers.
//!
//! # Layout
//!
//! - `config`: environment variables (the seeds' names and defaults): [`ApiConfig`],
//!   [`RedisTarget`].
//! - [`db`]: SQLite pool, schema, the deterministic data set, queries and writes.
//! - [`cache`]: the cache service, middleware, invalidation, metrics and warm-up.
//! - [`api`]: the axum routes and the router factory.
//! - [`dates`]: civil-date arithmetic.
//! - `server`: the accept loop: header-read and idle timeouts, the connection cap,
//!   graceful shutdown bounded by SHUTDOWN_GRACE_MS.
//!
//! Entry points: [`build`] opens everything and returns the router; [`serve`] also binds
//! the port, warms the cache and serves until a shutdown signal. The root re-exports what
//! the binaries and redis-harness use ([`ApiConfig`], [`RedisTarget`], [`RedisLink`],
//! [`RedisAuth`], [`Follow`], [`LinkError`]); the public modules hold what the integration tests and the
//! bench reach into; everything else is crate-private.

pub mod api;
pub mod cache;
mod config;
pub mod dates;
pub mod db;
mod server;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;

pub use api::AppState;
pub use cache::link::{Follow, LinkError, RedisAuth, RedisLink, ServerId};
pub use config::{ApiConfig, CacheTtls, ConfigError, RedisTarget};

/// Errors while starting the API.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A bad environment variable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The database could not be opened, migrated or filled.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// A built application.
pub struct App {
    /// The router serving every route.
    pub router: Router,
    /// Its shared state.
    pub state: AppState,
    /// What was generated into an empty database, if anything.
    pub generated: Option<db::generate::Generated>,
}

/// Opens (and if empty, fills) the database and builds the cache and the router.
pub async fn build(cfg: ApiConfig) -> Result<App, StartError> {
    let url = db::DatabaseUrl::parse(&cfg.database_url)?;
    let spec = db::generate::GenerateSpec {
        members: cfg.members,
        seed: cfg.seed,
        ..Default::default()
    };
    let (db, generated) = tokio::task::spawn_blocking(move || db::Db::open(&url, &spec))
        .await
        .expect("database open panicked")?;
    let cache = cache::Cache::new(&cfg, std::sync::Arc::clone(db.outbox()));
    let state = AppState {
        db,
        cache,
        config: Arc::new(cfg),
    };
    Ok(App {
        router: api::app(state.clone()),
        state,
        generated,
    })
}

/// Builds the app, binds HOST:PORT, warms the cache (CACHE_WARMUP) and serves until
/// `shutdown` resolves. `on_ready` receives the bound address (useful with PORT=0).
///
/// Connections get the header-read and idle timeouts and the cap of the `server` module. After the
/// shutdown signal it returns as soon as every connection is closed and at most
/// SHUTDOWN_GRACE_MS after the signal, with every connection closed then (see
/// `server::run`). Blocking database calls of requests cut off at the grace may still be
/// running on the runtime's blocking pool; a binary should not wait for them when it drops
/// its runtime (see `main.rs`).
pub async fn serve(
    cfg: ApiConfig,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let started = std::time::Instant::now();
    let app = build(cfg).await?;
    if let Some(g) = &app.generated {
        tracing::info!(
            "generated {} members in {} wards ({} municipalities, {} provinces), {} applications, {} leaders in {} ms",
            g.members, g.wards, g.municipalities, g.provinces, g.applications, g.leadership,
            started.elapsed().as_millis()
        );
    }
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(StartError::Serve)?;
    if app.state.config.warmup_on_start && app.state.cache.enabled() {
        let paths: Vec<String> = cache::warmup::CRITICAL
            .iter()
            .map(|p| p.to_string())
            .collect();
        let results = cache::warmup::warm(&api::cached_routes(app.state.clone()), &paths).await;
        let stored = results
            .iter()
            .filter(|r| r.cache.as_deref() == Some("MISS"))
            .count();
        tracing::info!(
            "warm-up: {stored}/{} critical endpoints computed and stored",
            results.len()
        );
    }
    tracing::info!(
        "membership API listening on http://{local}/api/v1 (redis {})",
        app.state.cache.link().mode()
    );
    on_ready(local);
    let limits = server::Limits::from_config(&app.state.config);
    server::run(listener, app.router, limits, shutdown).await;
    Ok(())
}
