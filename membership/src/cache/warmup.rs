//! Warm-up: requests the critical endpoints through the application itself, so entries
//! are built by the same cached routes that serve clients.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use serde::Serialize;
use tower::ServiceExt;

/// The critical endpoints, warmed at start (CACHE_WARMUP) and by `POST cache/warmup`.
pub const CRITICAL: &[&str] = &[
    "/api/v1/statistics/system",
    "/api/v1/statistics/demographics",
    "/api/v1/statistics/ward-membership",
    "/api/v1/statistics/membership-trends",
    "/api/v1/analytics/dashboard",
    "/api/v1/analytics/membership",
    "/api/v1/analytics/comprehensive",
    "/api/v1/lookups/provinces",
    "/api/v1/lookups/municipalities",
    "/api/v1/lookups/wards",
    "/api/v1/lookups/statuses",
];

/// The result of warming one endpoint.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Warmed {
    /// Path requested.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// `X-Cache` of the response (MISS = computed and stored now; HIT = already there).
    pub cache: Option<String>,
    /// Time taken in microseconds.
    pub elapsed_us: u64,
}

/// Requests each path (a path of the API, with optional query) through `app`.
pub(crate) async fn warm(app: &Router, paths: &[String]) -> Vec<Warmed> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let started = Instant::now();
        let Ok(req) = Request::get(path.as_str()).body(Body::empty()) else {
            out.push(Warmed {
                path: path.clone(),
                status: 400,
                cache: None,
                elapsed_us: 0,
            });
            continue;
        };
        let resp = app.clone().oneshot(req).await.expect("infallible");
        out.push(Warmed {
            path: path.clone(),
            status: resp.status().as_u16(),
            cache: resp
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            elapsed_us: started.elapsed().as_micros() as u64,
        });
    }
    out
}
