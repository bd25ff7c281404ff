//! Test helpers: the app built against a real redis-server (`testkit::RedisServer`), and
//! requests to it; real Sentinels ([`sentinel::Sentinel`]).
#![allow(dead_code)]

pub mod sentinel;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use membership::{ApiConfig, App};
use serde_json::Value;
use tower::ServiceExt;

pub use testkit::RedisServer;

/// Environment for a test app: a fresh SQLite file with a small data set, the given
/// Redis port, a token, no warm-up, short timeouts; `extra` overrides.
pub fn env(db: &std::path::Path, redis_port: u16, extra: &[(&str, &str)]) -> ApiConfig {
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", format!("sqlite://{}", db.display())),
        ("MEMBERSHIP_MEMBERS", "2000".into()),
        ("REDIS_HOST", "127.0.0.1".into()),
        ("REDIS_PORT", redis_port.to_string()),
        ("CACHE_ADMIN_TOKEN", "test-token".into()),
        ("CACHE_WARMUP", "false".into()),
        ("REDIS_TIMEOUT_MS", "150".into()),
        ("CACHE_BREAKER_COOLDOWN_MS", "200".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    ApiConfig::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

pub async fn app(cfg: ApiConfig) -> App {
    membership::build(cfg).await.unwrap()
}

/// A response: status, headers, body bytes.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    pub fn key(&self) -> &str {
        self.headers
            .get("x-cache-key")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

pub async fn get(router: &Router, path: &str) -> Resp {
    send(router, Request::get(path).body(Body::empty()).unwrap()).await
}

pub async fn json_req(router: &Router, method: &str, path: &str, body: &Value) -> Resp {
    send(
        router,
        Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

pub async fn admin(router: &Router, method: &str, path: &str, token: Option<&str>) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    send(router, b.body(Body::empty()).unwrap()).await
}

/// A valid new member in ward 1 with a fresh ID number derived from `n`.
pub fn new_member(n: u32) -> Value {
    let birth = membership::dates::parse_day("1935-01-01").unwrap();
    let idn = membership::db::generate::id_number(birth, 5000 + (n % 5000));
    serde_json::json!({
        "id_number": idn, "first_name": "Test", "last_name": format!("Person{n}"),
        "gender": "male", "birth_date": "1935-01-01", "ward_id": 1
    })
}
