//! The freshness defects found from outside (issue 10), one test each: odd spellings of a
//! URL, eviction of the cache's own bookkeeping under every policy, invalidations deferred
//! across API instances and restarts, HEAD, and which answers count as cache results.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use common::*;
use serde_json::{json, Value};

/// Percent-encodes every character (`42` -> `%34%32`).
fn encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn body_of(r: &Router, path: &str) -> (u16, Value, String) {
    let resp = get(r, path).await;
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status.as_u16(), v, resp.cache().to_string())
}

async fn put(r: &Router, path: &str, body: Value) -> Resp {
    let resp = json_req(r, "PUT", path, &body).await;
    assert_eq!(resp.status, 200, "{path}: {:?}", resp.body);
    resp
}

#[tokio::test]
async fn percent_encoded_member_paths_see_updates_and_deletes() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let cached = app(env(&db, redis.port(), &[])).await.router;
    let truth = app(env(&db, redis.port(), &[("CACHE_ENABLED", "false")]))
        .await
        .router;
    let idn = get(&truth, "/api/v1/members/1100").await.json()["id_number"]
        .as_str()
        .unwrap()
        .to_string();
    let paths = [
        "/api/v1/members/%31%31%30%30".to_string(),
        "/api/v1/members/01100".to_string(),
        format!("/api/v1/members/by-id-number/{}", encode_all(&idn)),
    ];
    for p in &paths {
        get(&cached, p).await;
        let (status, _, x) = body_of(&cached, p).await;
        assert_eq!((status, x.as_str()), (200, "HIT"), "{p} is cached");
    }
    put(
        &cached,
        "/api/v1/members/1100",
        json!({"first_name": "Renamed"}),
    )
    .await;
    for p in &paths {
        let (status, v, x) = body_of(&cached, p).await;
        assert_eq!(status, 200);
        assert_eq!(
            v["first_name"], "Renamed",
            "{p} served the old member ({x})"
        );
    }
    let d = json_req(&cached, "DELETE", "/api/v1/members/1100", &json!(null)).await;
    assert_eq!(d.status, 200);
    for p in &paths {
        let (status, _, x) = body_of(&cached, p).await;
        assert_eq!(status, 404, "{p} served a deleted member ({x})");
    }
}

#[tokio::test]
async fn equivalent_queries_share_one_key_and_unacceptable_values_make_none() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let route = "/api/v1/statistics/ward-membership";
    let spellings = [
        "?limit=5",
        "?limit=05",
        "?limit=%35",
        "?limit=%2B5",
        "?limit=005",
    ];
    let mut keys = Vec::new();
    for (i, q) in spellings.iter().enumerate() {
        let resp = get(r, &format!("{route}{q}")).await;
        assert_eq!(resp.status, 200, "{q}");
        assert_eq!(resp.cache(), if i == 0 { "MISS" } else { "HIT" }, "{q}");
        keys.push(resp.key().to_string());
    }
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
    assert_eq!(keys[0], format!("membership:statistics:{route}:limit=5"));
    assert_eq!(app.state.cache.metrics.origin_calls(route), 1);
    let a = get(r, &format!("{route}?province=G%50&limit=5")).await;
    let b = get(r, &format!("{route}?limit=5&province=GP")).await;
    assert_eq!((a.key(), b.cache()), (b.key(), "HIT"));
    let d = get(r, route).await;
    let e = get(r, &format!("{route}?limit=10")).await;
    assert_eq!((d.key(), e.cache()), (e.key(), "HIT"), "defaults filled in");

    for p in ["42", "0042", "%34%32", "+42"] {
        let resp = get(r, &format!("/api/v1/members/{p}")).await;
        assert_eq!(resp.status, 200, "{p}");
        assert_eq!(resp.key(), "membership:member:/api/v1/members/42:default");
    }

    // Values the handler does not accept are 400s that create no key.
    for q in [
        "?limit=0",
        "?limit=101",
        "?limit=abc",
        "?province=XX",
        "?limit=5&limit=6",
        "?foo=1",
    ] {
        let resp = get(r, &format!("{route}{q}")).await;
        assert_eq!(resp.status, 400, "{q}");
        assert_eq!((resp.cache(), resp.key()), ("", ""), "{q}");
    }
    let mut con = redis.con().await;
    let (_, found): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("membership:statistics:{route}:*"))
        .arg("COUNT")
        .arg(10_000)
        .query_async(&mut con)
        .await
        .unwrap();
    let mut found = found;
    found.sort();
    assert_eq!(
        found,
        [
            format!("membership:statistics:{route}:limit=10"),
            format!("membership:statistics:{route}:limit=5"),
            format!("membership:statistics:{route}:limit=5&province=GP"),
        ]
    );
}

#[tokio::test]
async fn head_is_served_from_the_cache_path() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let path = "/api/v1/analytics/comprehensive";
    let head = || async { send(r, Request::head(path).body(Body::empty()).unwrap()).await };
    let reads = app.state.db.read_count();
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        let h = head().await;
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty(), "HEAD has no body");
        outcomes.push(h.cache().to_string());
    }
    assert_eq!(outcomes[0], "MISS");
    assert!(outcomes[1..].iter().all(|o| o == "HIT"), "{outcomes:?}");
    assert_eq!(
        app.state.db.read_count() - reads,
        1,
        "20 HEADs read the database once"
    );
    let g = get(r, path).await;
    assert_eq!(g.cache(), "HIT", "the entry a HEAD stored has its body");
    let h = head().await;
    assert_eq!(
        h.headers["content-length"].to_str().unwrap(),
        g.body.len().to_string()
    );
    assert_eq!(h.key(), g.key());
}

#[tokio::test]
async fn errors_on_cached_routes_are_not_cache_results() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    for (path, status) in [
        ("/api/v1/members/999999", 404),
        ("/api/v1/members/abc", 400),
        ("/api/v1/statistics/system?x=1", 400),
    ] {
        let resp = get(r, path).await;
        assert_eq!(resp.status, status, "{path}");
        assert_eq!((resp.cache(), resp.key()), ("", ""), "{path}");
    }
    let m = admin(r, "GET", "/api/v1/cache/metrics", Some("test-token"))
        .await
        .json();
    assert_eq!(m["totals"]["misses"], 0, "{m}");
    assert_eq!(m["totals"]["hit_rate"], Value::Null);
    assert_eq!(m["routes"]["/api/v1/members/{id}"]["uncacheable"], 2);
}

#[tokio::test]
async fn a_warmup_path_that_is_no_uri_is_a_400_naming_it() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let resp = send(
        &app.router,
        Request::post("/api/v1/cache/warmup")
            .header("authorization", "Bearer test-token")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"paths":["/api/v1/a b"]}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status, 400);
    let msg = resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("/api/v1/a b"), "{msg}");
}

/// Caches `ids`, reads them again so the entries are the hot keys, floods Redis with other
/// members' entries, updates `ids` and reads them back: returns (stale reads, HITs).
async fn evict_then_update(
    cached: &Router,
    truth: &Router,
    ids: std::ops::Range<i64>,
    flood: std::ops::Range<i64>,
    round: &str,
) -> (usize, usize) {
    for _ in 0..3 {
        for id in ids.clone() {
            get(cached, &format!("/api/v1/members/{id}")).await;
        }
    }
    for id in flood {
        get(cached, &format!("/api/v1/members/{id}")).await;
    }
    for id in ids.clone() {
        put(
            cached,
            &format!("/api/v1/members/{id}"),
            json!({"first_name": format!("{round}{id}")}),
        )
        .await;
    }
    let (mut stale, mut hits) = (0, 0);
    for id in ids {
        let p = format!("/api/v1/members/{id}");
        let (_, served, x) = body_of(cached, &p).await;
        let (_, fresh, _) = body_of(truth, &p).await;
        if served != fresh {
            stale += 1;
        }
        if x == "HIT" {
            hits += 1;
        }
    }
    (stale, hits)
}

/// A cached app and the uncached truth on one database of 3,000 members.
async fn eviction_apps(redis: &RedisServer, db: &std::path::Path) -> (Router, Router) {
    let extra = [("MEMBERSHIP_MEMBERS", "3000")];
    let cached = app(env(db, redis.port(), &extra)).await.router;
    let truth = app(env(
        db,
        redis.port(),
        &[extra[0], ("CACHE_ENABLED", "false")],
    ))
    .await
    .router;
    (cached, truth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_of_bookkeeping_never_leaves_a_stale_hit() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"]);
    let tmp = tempfile::tempdir().unwrap();
    let (cached, truth) = eviction_apps(&redis, &tmp.path().join("m.db")).await;
    let (stale, hits) = evict_then_update(&cached, &truth, 1..301, 301..2801, "Updated").await;
    let evicted = redis.info_u64("evicted_keys").await;
    eprintln!("eviction repro (maxmemory 3mb, allkeys-lru): {stale} stale reads of 300 after the update; {evicted} keys evicted");
    assert!(evicted > 0, "memory pressure was real");
    assert_eq!(stale, 0, "{stale} of 300 reads were stale ({hits} HITs)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_eviction_policy_keeps_reads_fresh() {
    let redis = RedisServer::start_with(&["--maxmemory", "2mb"]);
    let tmp = tempfile::tempdir().unwrap();
    let (cached, truth) = eviction_apps(&redis, &tmp.path().join("m.db")).await;
    let mut con = redis.con().await;
    for (i, policy) in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "noeviction",
    ]
    .into_iter()
    .enumerate()
    {
        let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .query_async(&mut con)
            .await
            .unwrap();
        let base = 1 + i as i64 * 100;
        let (stale, hits) =
            evict_then_update(&cached, &truth, base..base + 60, 1000..2600, policy).await;
        assert_eq!(
            stale, 0,
            "{policy}: {stale} of 60 reads were stale ({hits} HITs)"
        );
    }
}

#[tokio::test]
async fn an_entry_whose_bookkeeping_was_evicted_is_never_served_stale() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let p = "/api/v1/members/7";
    get(r, p).await;
    assert_eq!(get(r, p).await.cache(), "HIT");
    // The version and the tag set are evicted; the entry survives.
    let mut con = redis.con().await;
    let _: () = redis::cmd("DEL")
        .arg("membership:tagver:member:7")
        .arg("membership:tags:member:7")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        get(r, p).await.cache(),
        "MISS",
        "an unproven entry is a miss"
    );
    assert_eq!(
        get(r, p).await.cache(),
        "HIT",
        "re-stored with a new version"
    );
    // Again, then a write: its invalidation finds no tag set to unlink the entry by, and
    // a counter restarting from nothing could match the entry's old version. Ours cannot.
    let _: () = redis::cmd("DEL")
        .arg("membership:tagver:member:7")
        .arg("membership:tags:member:7")
        .query_async(&mut con)
        .await
        .unwrap();
    put(r, p, json!({"first_name": "Evicted"})).await;
    let (_, v, x) = body_of(r, p).await;
    assert_eq!(v["first_name"], "Evicted", "stale {x}");
    let m = admin(r, "GET", "/api/v1/cache/metrics", Some("test-token"))
        .await
        .json();
    assert!(
        m["routes"]["/api/v1/members/{id}"]["unproven"]
            .as_u64()
            .unwrap()
            >= 1,
        "{m}"
    );
}

/// Reads each path twice: the second read must be a HIT.
async fn cache_all(r: &Router, paths: &[&str]) {
    for p in paths {
        get(r, p).await;
        assert_eq!(get(r, p).await.cache(), "HIT", "{p} is cached");
    }
}

/// Reads `paths` through `via` until each is a HIT again, asserting every read equals the
/// database; returns the X-Cache values seen.
async fn read_until_hit(via: &Router, truth: &Router, paths: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let mut all_hit = true;
        for p in paths {
            let (_, served, x) = body_of(via, p).await;
            let (_, fresh, _) = body_of(truth, p).await;
            assert_eq!(
                served, fresh,
                "{p} served data from before the write (X-Cache {x}); seen {seen:?}"
            );
            all_hit &= x == "HIT";
            seen.push(x);
        }
        if all_hit {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("caching never resumed: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_deferred_on_one_instance_is_honoured_by_another() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let a = app(env(&db, redis.port(), &[])).await;
    let b = app(env(&db, redis.port(), &[])).await;
    let truth = app(env(&db, redis.port(), &[("CACHE_ENABLED", "false")]))
        .await
        .router;
    let paths = ["/api/v1/members/20", "/api/v1/statistics/system"];
    cache_all(&b.router, &paths).await;
    redis.pause(true);
    let u = put(
        &a.router,
        "/api/v1/members/20",
        json!({"status": "suspended"}),
    )
    .await;
    assert!(
        u.json()["invalidation"]["removed"].is_null(),
        "deferred: {:?}",
        u.json()
    );
    redis.pause(false);
    // Instance B never touched the outage; it must still not serve the old member.
    let seen = read_until_hit(&b.router, &truth, &paths).await;
    assert_ne!(
        seen[0], "HIT",
        "B served a HIT before the outbox was drained: {seen:?}"
    );
    assert_eq!(
        b.state.cache.status().await["pending_invalidations"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_deferred_before_a_restart_is_honoured_after_it() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let truth = app(env(&db, redis.port(), &[("CACHE_ENABLED", "false")]))
        .await
        .router;
    let paths = ["/api/v1/members/21", "/api/v1/statistics/system"];
    {
        let a = app(env(&db, redis.port(), &[])).await;
        cache_all(&a.router, &paths).await;
        redis.pause(true);
        let u = put(
            &a.router,
            "/api/v1/members/21",
            json!({"last_name": "Restarted"}),
        )
        .await;
        assert!(u.json()["invalidation"]["removed"].is_null());
        // The API stops before Redis returns.
    }
    redis.pause(false);
    let again = app(env(&db, redis.port(), &[])).await;
    read_until_hit(&again.router, &truth, &paths).await;
}

#[tokio::test]
async fn metrics_are_open_by_default_and_closed_with_metrics_token() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let open = app(env(&db, redis.port(), &[])).await;
    assert_eq!(
        admin(&open.router, "GET", "/metrics", None).await.status,
        200
    );
    let closed = app(env(&db, redis.port(), &[("METRICS_TOKEN", "scrape")])).await;
    let r = &closed.router;
    assert_eq!(admin(r, "GET", "/metrics", None).await.status, 401);
    assert_eq!(admin(r, "GET", "/metrics", Some("wrong")).await.status, 401);
    let ok = admin(r, "GET", "/metrics", Some("scrape")).await;
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("membership_cache_unproven_total"));
}

/// A miss in flight when a write lands must not hand its (older) body to a request that
/// arrives after the write was acknowledged: that request reads newer tag versions and
/// computes for itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_after_a_write_never_joins_a_miss_computed_before_it() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use axum::routing::get as route_get;
    use membership::api::params::Plain;
    use membership::cache::keys::CacheKind;
    use membership::cache::layer::CacheLayer;

    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let cache = Arc::clone(&app.state.cache);
    // The "database": a value read when the handler starts; the handler then waits for the
    // gate before it answers, so the first request's body is computed before the write.
    let value = Arc::new(AtomicU64::new(1));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let handler = {
        let (value, gate) = (Arc::clone(&value), Arc::clone(&gate));
        move || {
            let (value, gate) = (Arc::clone(&value), Arc::clone(&gate));
            async move {
                let read = value.load(Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                axum::Json(json!({ "value": read }))
            }
        }
    };
    let router = Router::new().route(
        "/x",
        route_get(handler).layer(CacheLayer::<Plain>::new(
            Arc::clone(&cache),
            CacheKind::Statistics,
            "/x",
        )),
    );
    let leader = tokio::spawn({
        let r = router.clone();
        async move { get(&r, "/x").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The write: the data changes, its invalidation is applied, then it is acknowledged.
    value.store(2, Ordering::SeqCst);
    cache.invalidate(&["statistics".to_string()]).await.unwrap();
    let after = tokio::spawn({
        let r = router.clone();
        async move { get(&r, "/x").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.add_permits(2);
    let (leader, after) = (leader.await.unwrap(), after.await.unwrap());
    assert_eq!(
        leader.json()["value"],
        1,
        "the leader was concurrent with the write"
    );
    assert_eq!(
        after.json()["value"],
        2,
        "a request after the write was given a body computed before it ({})",
        after.cache()
    );
}

/// Redis restarts from a snapshot taken before an invalidation it had applied (AOF
/// `everysec` loses up to a second; an RDB restore more): the entry and its old version come
/// back together. Entries are fenced to the server incarnation, so none of them is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_that_lost_an_invalidation_serves_no_stale_hit() {
    let mut redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let cached = app(env(&db, redis.port(), &[])).await;
    let truth = app(env(&db, redis.port(), &[("CACHE_ENABLED", "false")]))
        .await
        .router;
    let paths = ["/api/v1/members/30", "/api/v1/statistics/system"];
    cache_all(&cached.router, &paths).await;
    let _: () = redis::cmd("SAVE")
        .query_async(&mut redis.con().await)
        .await
        .unwrap();
    let u = put(
        &cached.router,
        "/api/v1/members/30",
        json!({"status": "suspended"}),
    )
    .await;
    assert!(
        u.json()["invalidation"]["removed"].as_u64().unwrap() >= 1,
        "applied"
    );
    // Killed and restarted: it loads the snapshot from before the invalidation.
    redis.stop();
    redis.restart();
    read_until_hit(&cached.router, &truth, &paths).await;
}

/// A large outbox (a long outage with many writes) is drained in batches until empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_outbox_is_drained_completely() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let app = app(env(&db, redis.port(), &[])).await;
    {
        let mut con = rusqlite::Connection::open(&db).unwrap();
        let tx = con.transaction().unwrap();
        for id in 1..=1200 {
            tx.execute(
                "INSERT INTO cache_outbox (tag, created_ms) VALUES (?1, 0)",
                [format!("member:{id}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut pending = usize::MAX;
    for _ in 0..200 {
        pending = app.state.cache.status().await["pending_invalidations"]
            .as_array()
            .unwrap()
            .len();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "the outbox was not drained");
    let mut con = redis.con().await;
    let versions: Vec<Option<String>> = redis::cmd("MGET")
        .arg(
            (1..=1200)
                .map(|id| format!("membership:tagver:member:{id}"))
                .collect::<Vec<_>>(),
        )
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        versions.iter().all(Option::is_some),
        "every tag got a new version"
    );
}
