//! The HTTP API (axum) under `/api/v1`: routes, shared state and the router factory.
//!
//! - `read`: cached GET routes and uncached listings.
//! - [`write`]: writes, each firing its invalidation hook after commit.
//! - `admin`: cache management and Prometheus metrics.
//! - [`params`]: the cached routes' requests in canonical form (key, tags, validation).
//! - `error` / `extract`: JSON errors for every rejection.

pub(crate) mod admin;
pub(crate) mod error;
pub(crate) mod extract;
pub mod params;
pub(crate) mod read;
pub(crate) mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

use crate::cache::keys::CacheKind;
use crate::cache::layer::CacheLayer;
use crate::cache::request::CachedRequest;
use crate::cache::Cache;
use crate::config::ApiConfig;
use crate::db::Db;

/// Largest request body on ordinary routes.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// Largest bulk-import body.
pub(crate) const BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub db: Arc<Db>,
    /// The cache.
    pub cache: Arc<Cache>,
    /// The configuration.
    pub config: Arc<ApiConfig>,
}

/// The cached GET routes, each wrapped in the cache layer with its configuration.
pub(crate) fn cached_routes(state: AppState) -> Router {
    let c = &state.cache;
    fn l<R: CachedRequest>(c: &Arc<Cache>, kind: CacheKind, route: &'static str) -> CacheLayer<R> {
        CacheLayer::new(Arc::clone(c), kind, route)
    }
    use params::*;
    use CacheKind::*;
    Router::new()
        .route(
            "/api/v1/statistics/system",
            get(read::system).layer(l::<Plain>(c, Statistics, "/api/v1/statistics/system")),
        )
        .route(
            "/api/v1/statistics/demographics",
            get(read::demographics).layer(l::<Plain>(
                c,
                Statistics,
                "/api/v1/statistics/demographics",
            )),
        )
        .route(
            "/api/v1/statistics/ward-membership",
            get(read::ward_membership).layer(l::<WardMembership>(
                c,
                Statistics,
                "/api/v1/statistics/ward-membership",
            )),
        )
        .route(
            "/api/v1/statistics/membership-trends",
            get(read::trends).layer(l::<Trends>(
                c,
                Statistics,
                "/api/v1/statistics/membership-trends",
            )),
        )
        .route(
            "/api/v1/analytics/dashboard",
            get(read::dashboard).layer(l::<Plain>(c, Analytics, "/api/v1/analytics/dashboard")),
        )
        .route(
            "/api/v1/analytics/membership",
            get(read::membership).layer(l::<Membership>(
                c,
                Analytics,
                "/api/v1/analytics/membership",
            )),
        )
        .route(
            "/api/v1/analytics/comprehensive",
            get(read::comprehensive).layer(l::<Plain>(
                c,
                AnalyticsLong,
                "/api/v1/analytics/comprehensive",
            )),
        )
        .route(
            "/api/v1/members/{id}",
            get(read::member)
                .layer(l::<MemberId>(c, Member, "/api/v1/members/{id}"))
                .put(write::update_member)
                .delete(write::delete_member),
        )
        .route(
            "/api/v1/members/by-id-number/{id_number}",
            get(read::member_by_id_number).layer(l::<IdNumber>(
                c,
                MemberByIdNumber,
                "/api/v1/members/by-id-number/{id_number}",
            )),
        )
        .route(
            "/api/v1/lookups/provinces",
            get(read::provinces).layer(l::<Plain>(c, Lookup, "/api/v1/lookups/provinces")),
        )
        .route(
            "/api/v1/lookups/municipalities",
            get(read::municipalities).layer(l::<Municipalities>(
                c,
                Lookup,
                "/api/v1/lookups/municipalities",
            )),
        )
        .route(
            "/api/v1/lookups/wards",
            get(read::wards).layer(l::<Wards>(c, Lookup, "/api/v1/lookups/wards")),
        )
        .route(
            "/api/v1/lookups/statuses",
            get(read::statuses).layer(l::<Plain>(c, Lookup, "/api/v1/lookups/statuses")),
        )
        .with_state(state)
}

/// The whole application.
pub(crate) fn app(state: AppState) -> Router {
    let admin = Router::new()
        .route("/api/v1/cache/status", get(admin::status))
        .route("/api/v1/cache/health", get(admin::health))
        .route("/api/v1/cache/metrics", get(admin::metrics))
        .route(
            "/api/v1/cache/clear",
            post(admin::clear).delete(admin::clear),
        )
        .route("/api/v1/cache/warmup", post(admin::warm))
        .route("/api/v1/cache/invalidation/trigger", post(admin::trigger))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin,
        ));
    let other = Router::new()
        .route(
            "/api/v1/members",
            get(read::list_members).post(write::create_member),
        )
        .route(
            "/api/v1/members/bulk-import",
            post(write::bulk_import).layer(DefaultBodyLimit::max(BULK_BODY_LIMIT)),
        )
        .route(
            "/api/v1/applications",
            get(read::list_applications).post(write::submit_application),
        )
        .route(
            "/api/v1/applications/{id}/approve",
            post(write::approve_application),
        )
        .route(
            "/api/v1/applications/{id}/reject",
            post(write::reject_application),
        )
        .route("/api/v1/wards/{ward_id}/leadership", get(read::leadership))
        .route(
            "/api/v1/wards/{ward_id}/leadership/{role}",
            put(write::change_leadership),
        )
        .route("/metrics", get(admin::prometheus))
        .merge(admin);
    cached_routes(state.clone())
        .merge(other.with_state(state))
        .fallback(|| async {
            error::ApiError::new(axum::http::StatusCode::NOT_FOUND, "no such route")
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
