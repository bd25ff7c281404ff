//! Cache management under `/api/v1/cache` (bearer token CACHE_ADMIN_TOKEN) and the
//! Prometheus `/metrics` endpoint.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json as AxumJson;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{parse_id, ApiError};
use super::extract::Query;
use super::AppState;
use crate::cache::invalidation::{self, MemberAction};
use crate::cache::keys::tags;
use crate::cache::warmup;

/// Rejects requests without the admin bearer token: 401 without or with a wrong token,
/// 403 when no token is configured (management disabled).
pub(crate) async fn require_admin(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = s.config.admin_token.as_deref() else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cache management is disabled: set CACHE_ADMIN_TOKEN",
        )
        .into_response();
    };
    if let Some(resp) = bearer_rejection(req.headers(), expected) {
        return resp;
    }
    next.run(req).await
}

/// Checks `Authorization: Bearer <expected>` (constant time for equal lengths): `None` when
/// it matches, else the 401 (with `WWW-Authenticate`) naming what was wrong.
fn bearer_rejection(headers: &axum::http::HeaderMap, expected: &str) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        g.len() == expected.len()
            && g.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        return None;
    }
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        if given.is_none() {
            "missing bearer token"
        } else {
            "wrong bearer token"
        },
    )
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(resp)
}

/// `GET cache/status`.
pub(crate) async fn status(State(s): State<AppState>) -> AxumJson<Value> {
    AxumJson(s.cache.status().await)
}

/// `GET cache/health`: 200 when healthy or disabled, 503 otherwise.
pub(crate) async fn health(State(s): State<AppState>) -> (StatusCode, AxumJson<Value>) {
    let h = s.cache.health().await;
    let code = match h["status"].as_str() {
        Some("healthy") | Some("disabled") => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, AxumJson(h))
}

/// `GET cache/metrics`.
pub(crate) async fn metrics(State(s): State<AppState>) -> AxumJson<Value> {
    let mut m = s.cache.metrics.to_json();
    m["database_reads"] = json!(s.db.read_count());
    AxumJson(m)
}

/// Query of `cache/clear`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClearParams {
    pattern: Option<String>,
}

/// `POST|DELETE cache/clear?pattern=GLOB`: removes keys under REDIS_KEY_PREFIX matching
/// the glob (which is always taken relative to the prefix).
pub(crate) async fn clear(
    State(s): State<AppState>,
    Query(p): Query<ClearParams>,
) -> Result<AxumJson<Value>, ApiError> {
    let pattern = p.pattern.ok_or_else(|| {
        ApiError::bad_request(
            "pattern: required, e.g. pattern=statistics:* (relative to the key prefix)",
        )
    })?;
    let removed = s.cache.clear(&pattern).await?;
    Ok(AxumJson(
        json!({ "pattern": format!("{}{pattern}", s.cache.prefix()), "removed": removed }),
    ))
}

/// Body of `cache/warmup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WarmupBody {
    paths: Vec<String>,
}

/// `POST cache/warmup` with an optional `{"paths": [...]}` (default: the critical set).
pub(crate) async fn warm(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<AxumJson<Value>, ApiError> {
    let paths: Vec<String> = if body.iter().all(u8::is_ascii_whitespace) {
        warmup::CRITICAL.iter().map(|p| p.to_string()).collect()
    } else {
        let b: WarmupBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid warm-up body: {e}")))?;
        if b.paths.is_empty() || b.paths.len() > 1000 {
            return Err(ApiError::bad_request("paths: between 1 and 1000 paths"));
        }
        if let Some(bad) = b
            .paths
            .iter()
            .find(|p| !p.starts_with("/api/v1/") || p.starts_with("/api/v1/cache"))
        {
            return Err(ApiError::bad_request(format!(
                "paths: {bad:?} is not an API read path"
            )));
        }
        if let Some(bad) = b
            .paths
            .iter()
            .find(|p| p.parse::<axum::http::Uri>().is_err())
        {
            return Err(ApiError::bad_request(format!(
                "paths: {bad:?} is not a valid URI path (percent-encode spaces and other reserved characters)"
            )));
        }
        b.paths
    };
    let results = warmup::warm(&super::cached_routes(s.clone()), &paths).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    Ok(AxumJson(
        json!({ "warmed": ok, "requested": results.len(), "results": results }),
    ))
}

/// Body of `cache/invalidation/trigger`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trigger {
    /// `member_change`, `application_change`, `leadership_change`, `bulk_operation`,
    /// `lookups`, or `tags` (with `tags`).
    event: String,
    /// Member id for `member_change`.
    id: Option<i64>,
    /// Explicit tags for `tags`.
    tags: Option<Vec<String>>,
}

/// `POST cache/invalidation/trigger`: runs a hook by hand.
pub(crate) async fn trigger(
    State(s): State<AppState>,
    super::extract::Json(t): super::extract::Json<Trigger>,
) -> Result<AxumJson<Value>, ApiError> {
    let tags = match t.event.as_str() {
        "member_change" => {
            let id = t.id.ok_or_else(|| ApiError::bad_request("id: required for member_change"))?;
            let id = parse_id(&id.to_string(), "member id")?;
            let m = s.db.read(move |c| crate::db::queries::member_by_id(c, id)).await?;
            invalidation::on_member_change(MemberAction::Update, id, &m.id_number, true)
        }
        "application_change" => invalidation::on_membership_application_change(None),
        "leadership_change" => invalidation::on_leadership_change(&[]),
        "bulk_operation" => invalidation::on_bulk_operation(),
        "lookups" => vec![tags::LOOKUP.into()],
        "tags" => {
            let list = t.tags.filter(|l| !l.is_empty()).ok_or_else(|| ApiError::bad_request("tags: required for event tags"))?;
            for tag in &list {
                let known = [tags::STATISTICS, tags::ANALYTICS, tags::LOOKUP].contains(&tag.as_str())
                    || tag.strip_prefix("member:").is_some_and(|n| n.parse::<i64>().is_ok())
                    || tag.strip_prefix("member-idn:").is_some_and(|n| n.len() == 13);
                if !known {
                    return Err(ApiError::bad_request(format!("tags: unknown tag {tag:?}")));
                }
            }
            list
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "event: must be member_change, application_change, leadership_change, bulk_operation, lookups or tags (got {other:?})"
            )))
        }
    };
    // Recorded in the outbox like a write's, so it is applied even if Redis is down now.
    let ((), inv) = invalidation::write(&s.db, &s.cache, move |_| Ok(((), tags))).await?;
    Ok(AxumJson(json!({ "event": t.event, "invalidation": inv })))
}

/// `GET /metrics`: Prometheus text format; with METRICS_TOKEN set, only with that bearer
/// token.
pub(crate) async fn prometheus(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(expected) = s.config.metrics_token.as_deref() {
        if let Some(resp) = bearer_rejection(&headers, expected) {
            return resp;
        }
    }
    let mut out = String::new();
    s.cache.metrics.write_prometheus(&mut out);
    out.push_str("# HELP membership_db_reads_total Database read calls.\n# TYPE membership_db_reads_total counter\n");
    out.push_str(&format!(
        "membership_db_reads_total {}\n",
        s.db.read_count()
    ));
    let (h, m, b, _) = s.cache.metrics.totals();
    let rate = if h + m + b > 0 {
        h as f64 / (h + m + b) as f64
    } else {
        0.0
    };
    out.push_str("# HELP membership_cache_hit_ratio Hits over answered cached requests.\n# TYPE membership_cache_hit_ratio gauge\n");
    out.push_str(&format!("membership_cache_hit_ratio {rate}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
