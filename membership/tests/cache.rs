//! The cache layer against a real redis-server and a real SQLite file.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn miss_then_hit_with_identical_bodies_and_the_seed_key_format() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let idn = get(r, "/api/v1/members/7").await.json()["id_number"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/api/v1/statistics/system",
        "/api/v1/statistics/demographics",
        "/api/v1/statistics/ward-membership?province=GP&limit=5",
        "/api/v1/statistics/membership-trends",
        "/api/v1/analytics/dashboard",
        "/api/v1/analytics/membership?group_by=gender",
        "/api/v1/analytics/comprehensive",
        "/api/v1/members/3",
        &format!("/api/v1/members/by-id-number/{idn}"),
        "/api/v1/lookups/provinces",
        "/api/v1/lookups/wards",
    ] {
        let first = get(r, path).await;
        assert_eq!(first.status, 200, "{path}: {:?}", first.body);
        let second = get(r, path).await;
        // members/7 was read above, so only its own entry is a HIT already.
        assert_eq!(first.cache(), "MISS", "{path}");
        assert_eq!(second.cache(), "HIT", "{path}");
        assert_eq!(
            first.body, second.body,
            "{path}: HIT body differs from MISS body"
        );
        assert_eq!(first.key(), second.key());
        assert_eq!(second.headers["content-type"], "application/json");
    }
    assert_eq!(
        get(r, "/api/v1/statistics/system").await.key(),
        "membership:statistics:/api/v1/statistics/system:default"
    );
    // Query order does not create a second entry.
    let a = get(r, "/api/v1/statistics/ward-membership?limit=5&province=GP").await;
    assert_eq!(a.cache(), "HIT");

    // The ward list (large) is stored compressed, the system statistics (small) raw.
    let mut con = redis.con().await;
    let wards: Vec<u8> = redis::cmd("GET")
        .arg("membership:lookup:/api/v1/lookups/wards:default")
        .query_async(&mut con)
        .await
        .unwrap();
    let entry = membership::cache::codec::decode_entry(&wards).unwrap();
    assert_eq!(entry.versions.len(), 1, "one tag (lookup), one version");
    assert!(membership::cache::codec::is_compressed(entry.body));
    let len = get(r, "/api/v1/lookups/wards").await.body.len();
    assert!(
        wards.len() < len / 2,
        "compressed {} vs body {len}",
        wards.len()
    );
    let sys: Vec<u8> = redis::cmd("GET")
        .arg("membership:statistics:/api/v1/statistics/system:default")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!membership::cache::codec::is_compressed(
        membership::cache::codec::decode_entry(&sys).unwrap().body
    ));

    // TTLs follow the cache configurations.
    for (key, ttl) in [
        (
            "membership:statistics:/api/v1/statistics/system:default",
            1800,
        ),
        (
            "membership:analytics:/api/v1/analytics/comprehensive:default",
            7200,
        ),
        ("membership:member:/api/v1/members/3:default", 900),
        ("membership:lookup:/api/v1/lookups/provinces:default", 86400),
    ] {
        let t: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(
            t > ttl - 30 && t <= ttl,
            "{key}: ttl {t}, expected about {ttl}"
        );
    }
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(
        &tmp.path().join("m.db"),
        redis.port(),
        &[("CACHE_MEMBER_TTL", "1")],
    ))
    .await;
    let r = &app.router;
    assert_eq!(get(r, "/api/v1/members/5").await.cache(), "MISS");
    assert_eq!(get(r, "/api/v1/members/5").await.cache(), "HIT");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        get(r, "/api/v1/members/5").await.cache(),
        "MISS",
        "expired after 1 s"
    );
}

#[tokio::test]
async fn only_successful_gets_are_stored() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    for _ in 0..2 {
        let nf = get(r, "/api/v1/members/999999").await;
        assert_eq!(nf.status, 404);
        assert_eq!(
            nf.cache(),
            "",
            "a 404 is not a cache result: no X-Cache, not counted as a miss"
        );
    }
    let mut con = redis.con().await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg("membership:member:/api/v1/members/999999:default")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn concurrent_misses_on_one_key_run_the_query_once() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let route = "/api/v1/analytics/comprehensive";
    // Every read connection is held until all 49 followers have joined the leader, so
    // the leader cannot finish (and store) early and let a late request HIT: exactly 49
    // coalesce whatever the scheduling. Without coalescing nobody joins and the wait
    // below fails.
    let db = std::sync::Arc::clone(&app.state.db);
    let (held_tx, mut held) = tokio::sync::mpsc::unbounded_channel();
    let mut release = Vec::new();
    let mut holders = Vec::new();
    for _ in 0..db.readers() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        release.push(tx);
        let (db, held_tx) = (std::sync::Arc::clone(&db), held_tx.clone());
        holders.push(tokio::spawn(async move {
            db.read(move |_| {
                held_tx.send(()).unwrap();
                let _ = rx.blocking_recv();
                Ok(())
            })
            .await
            .unwrap()
        }));
    }
    for _ in 0..db.readers() {
        held.recv().await.unwrap();
    }
    let before = db.read_count();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let r = app.router.clone();
            tokio::spawn(async move { get(&r, route).await })
        })
        .collect();
    let coalesced = || app.state.cache.metrics.to_json()["routes"][route]["coalesced"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while coalesced() != 49 {
        assert!(
            std::time::Instant::now() < deadline,
            "followers never all joined the leader: coalesced {}",
            coalesced()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for tx in release {
        tx.send(()).unwrap();
    }
    for h in holders {
        h.await.unwrap();
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let resp = t.await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.cache(), "MISS");
        bodies.push(resp.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "all share one body"
    );
    assert_eq!(
        app.state.db.read_count() - before,
        1,
        "the database was queried once"
    );
    assert_eq!(app.state.cache.metrics.origin_calls(route), 1);
    let m = app.state.cache.metrics.to_json();
    assert_eq!(m["routes"][route]["coalesced"], 49);
}

#[tokio::test]
async fn redis_down_means_bypass_with_correct_bodies_and_hits_resume_after_restart() {
    let mut redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let paths = [
        "/api/v1/statistics/system",
        "/api/v1/members/11",
        "/api/v1/lookups/statuses",
    ];
    let mut expected = Vec::new();
    for p in paths {
        assert_eq!(get(r, p).await.cache(), "MISS");
        expected.push(get(r, p).await.body);
    }
    redis.stop();
    for _ in 0..5 {
        for (p, want) in paths.iter().zip(&expected) {
            let resp = get(r, p).await;
            assert_eq!(resp.status, 200, "{p} still answered with Redis down");
            assert_eq!(resp.cache(), "BYPASS", "{p}");
            assert_eq!(&resp.body, want, "{p}: same body from the database");
        }
    }
    let health = admin(r, "GET", "/api/v1/cache/health", Some("test-token")).await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["status"], "down");

    redis.restart();
    // After the breaker's cooldown the cache is used again without any restart.
    let mut seen = Vec::new();
    for _ in 0..40 {
        let c = get(r, paths[0]).await.cache().to_string();
        seen.push(c.clone());
        if c == "HIT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.last().map(String::as_str), Some("HIT"), "{seen:?}");
    assert!(
        seen.contains(&"MISS".to_string()),
        "the (empty) restarted Redis was refilled: {seen:?}"
    );
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    for (method, path) in [
        ("GET", "/api/v1/cache/status"),
        ("GET", "/api/v1/cache/health"),
        ("GET", "/api/v1/cache/metrics"),
        ("POST", "/api/v1/cache/clear?pattern=*"),
        ("DELETE", "/api/v1/cache/clear?pattern=*"),
        ("POST", "/api/v1/cache/warmup"),
        ("POST", "/api/v1/cache/invalidation/trigger"),
    ] {
        let none = admin(r, method, path, None).await;
        assert_eq!(none.status, 401, "{method} {path}");
        assert_eq!(none.headers["www-authenticate"], "Bearer");
        assert!(none.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing"));
        assert_eq!(
            admin(r, method, path, Some("wrong")).await.status,
            401,
            "{method} {path}"
        );
    }
    assert_eq!(
        admin(r, "GET", "/api/v1/cache/status", Some("test-token"))
            .await
            .status,
        200
    );

    let tmp2 = tempfile::tempdir().unwrap();
    let mut cfg = env(&tmp2.path().join("m.db"), redis.port(), &[]);
    cfg.admin_token = None;
    let off = app_with(cfg).await;
    let resp = admin(
        &off.router,
        "GET",
        "/api/v1/cache/status",
        Some("test-token"),
    )
    .await;
    assert_eq!(resp.status, 403);
    assert!(resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("CACHE_ADMIN_TOKEN"));
}

async fn app_with(cfg: membership::ApiConfig) -> membership::App {
    membership::build(cfg).await.unwrap()
}

#[tokio::test]
async fn clear_never_reaches_outside_the_prefix() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    // A prefix with glob metacharacters must match only itself.
    let app = app(env(
        &tmp.path().join("m.db"),
        redis.port(),
        &[("REDIS_KEY_PREFIX", "mem*:")],
    ))
    .await;
    let r = &app.router;
    let mut con = redis.con().await;
    for k in ["other:key", "memX:key", "membership:key"] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("keep")
            .query_async(&mut con)
            .await
            .unwrap();
    }
    get(r, "/api/v1/statistics/system").await;
    get(r, "/api/v1/analytics/dashboard").await;
    get(r, "/api/v1/members/1").await;

    let resp = admin(
        r,
        "POST",
        "/api/v1/cache/clear?pattern=statistics:*",
        Some("test-token"),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["removed"], 1);
    assert_eq!(get(r, "/api/v1/statistics/system").await.cache(), "MISS");
    assert_eq!(
        get(r, "/api/v1/analytics/dashboard").await.cache(),
        "HIT",
        "other types untouched"
    );

    let resp = admin(
        r,
        "DELETE",
        "/api/v1/cache/clear?pattern=*",
        Some("test-token"),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(resp.json()["removed"].as_u64().unwrap() >= 3);
    for k in ["other:key", "memX:key", "membership:key"] {
        let v: Option<String> = redis::cmd("GET")
            .arg(k)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(
            v.as_deref(),
            Some("keep"),
            "{k} is outside the prefix and must survive"
        );
    }
    let n: Vec<String> = redis::cmd("KEYS")
        .arg("mem\\*:*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(n.is_empty(), "everything under the prefix is gone: {n:?}");

    let bad = admin(r, "POST", "/api/v1/cache/clear", Some("test-token")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pattern"));
}

#[tokio::test]
async fn warmup_trigger_and_metrics_endpoints() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let w = admin(r, "POST", "/api/v1/cache/warmup", Some("test-token")).await;
    assert_eq!(w.status, 200);
    let wj = w.json();
    assert_eq!(wj["warmed"], membership::cache::warmup::CRITICAL.len());
    assert!(wj["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["cache"] == "MISS"));
    for p in membership::cache::warmup::CRITICAL {
        assert_eq!(get(r, p).await.cache(), "HIT", "{p} warmed");
    }
    let t = json_req(
        r,
        "POST",
        "/api/v1/cache/invalidation/trigger",
        &json!({"event": "bulk_operation"}),
    )
    .await;
    assert_eq!(t.status, 401, "trigger needs the token too");
    let t = common::send(
        r,
        axum::http::Request::post("/api/v1/cache/invalidation/trigger")
            .header("authorization", "Bearer test-token")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"event":"tags","tags":["statistics"]}"#,
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    assert_eq!(t.json()["invalidation"]["removed"], 4);
    assert_eq!(get(r, "/api/v1/statistics/system").await.cache(), "MISS");
    assert_eq!(get(r, "/api/v1/analytics/dashboard").await.cache(), "HIT");

    let m = admin(r, "GET", "/api/v1/cache/metrics", Some("test-token"))
        .await
        .json();
    let sys = &m["routes"]["/api/v1/statistics/system"];
    assert_eq!(sys["hits"], 1);
    assert_eq!(sys["misses"], 2);
    assert!(sys["latency"]["hit"]["p50_us"].as_u64().unwrap() > 0);
    let prom = get(r, "/metrics").await;
    let text = String::from_utf8_lossy(&prom.body);
    assert!(
        text.contains(
            "membership_cache_requests_total{route=\"/api/v1/statistics/system\",result=\"hit\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("membership_cache_latency_microseconds{route=\"/api/v1/statistics/system\",result=\"miss\",quantile=\"0.5\"}"));
    let h = admin(r, "GET", "/api/v1/cache/health", Some("test-token"))
        .await
        .json();
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["role"], "master");
    assert!(h["memory"]["used_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn cache_disabled_bypasses_everything() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(
        &tmp.path().join("m.db"),
        redis.port(),
        &[("CACHE_ENABLED", "false")],
    ))
    .await;
    for _ in 0..2 {
        assert_eq!(
            get(&app.router, "/api/v1/statistics/system").await.cache(),
            "BYPASS"
        );
    }
    let mut con = redis.con().await;
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 0);
}
