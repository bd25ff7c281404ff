//! The invalidation property: after any write returns, no read returns data from before
//! that write. Checked for every kind of write by comparing each cached route with the
//! same route of an uncached app on the same database, while concurrent readers keep
//! re-filling the cache (the race that version-checked stores exist for).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::*;
use serde_json::{json, Value};

struct Pair {
    cached: Router,
    truth: Router,
}

impl Pair {
    /// Asserts every path reads the same through the cache as from the database.
    async fn assert_fresh(&self, paths: &[String], after: &str) {
        for p in paths {
            let c = get(&self.cached, p).await;
            let t = get(&self.truth, p).await;
            assert_eq!(c.status, t.status, "after {after}: {p} status");
            assert_eq!(
                serde_json::from_slice::<Value>(&c.body).unwrap(),
                serde_json::from_slice::<Value>(&t.body).unwrap(),
                "after {after}: {p} returned data from before the write (X-Cache {})",
                c.cache()
            );
        }
    }

    async fn warm(&self, paths: &[String]) {
        for p in paths {
            get(&self.cached, p).await;
        }
    }
}

async fn pair(redis: &RedisServer, db: &std::path::Path) -> (Pair, membership::App) {
    let cached = app(env(db, redis.port(), &[])).await;
    let truth = app(env(db, redis.port(), &[("CACHE_ENABLED", "false")])).await;
    (
        Pair {
            cached: cached.router.clone(),
            truth: truth.router.clone(),
        },
        cached,
    )
}

fn member_paths(id: i64, idn: &str) -> Vec<String> {
    vec![
        format!("/api/v1/members/{id}"),
        format!("/api/v1/members/by-id-number/{idn}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_read_after_a_write_sees_older_data_for_any_kind_of_write() {
    every_kind_of_write(&RedisServer::start(), false).await;
}

/// The same property while Redis evicts: a filler keeps memory full under `allkeys-lru`, so
/// entries, versions and tag sets are evicted all through the writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_read_after_a_write_sees_older_data_under_memory_pressure_with_allkeys_lru() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let stop = Arc::new(AtomicBool::new(false));
    let filler = {
        let (mut con, stop) = (redis.con().await, stop.clone());
        tokio::spawn(async move {
            let blob = vec![b'x'; 4096];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(format!("filler:{n}"))
                    .arg(&blob)
                    .query_async(&mut con)
                    .await;
                n += 1;
                if n.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    every_kind_of_write(&redis, true).await;
    stop.store(true, Ordering::Relaxed);
    filler.await.unwrap();
    let evicted = redis.info_u64("evicted_keys").await;
    assert!(
        evicted > 1000,
        "memory pressure was real: {evicted} keys evicted"
    );
}

async fn every_kind_of_write(redis: &RedisServer, pressure: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (p, app) = pair(redis, &tmp.path().join("m.db")).await;
    let r = p.cached.clone();

    let mut paths: Vec<String> = [
        // Other spellings of the same resources.
        "/api/v1/members/%35",
        "/api/v1/members/0006",
        "/api/v1/statistics/ward-membership?limit=%2B10",
        "/api/v1/statistics/system",
        "/api/v1/statistics/demographics",
        "/api/v1/statistics/ward-membership",
        "/api/v1/statistics/ward-membership?limit=100",
        "/api/v1/statistics/membership-trends",
        "/api/v1/analytics/dashboard",
        "/api/v1/analytics/membership",
        "/api/v1/analytics/membership?group_by=status",
        "/api/v1/analytics/comprehensive",
    ]
    .map(String::from)
    .to_vec();
    let idn = |id: i64| {
        let truth = p.truth.clone();
        async move {
            get(&truth, &format!("/api/v1/members/{id}")).await.json()["id_number"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    for id in [5, 6, 8] {
        paths.extend(member_paths(id, &idn(id).await));
    }
    // Leaders of the largest ward and a non-leader active member of it.
    let ward = get(&p.truth, "/api/v1/statistics/ward-membership?limit=1")
        .await
        .json()["wards"][0]["ward_id"]
        .as_i64()
        .unwrap();
    let leaders = get(&p.truth, &format!("/api/v1/wards/{ward}/leadership"))
        .await
        .json();
    let chair = leaders["leadership"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "chairperson")
        .map(|l| l["member_id"].as_i64().unwrap());
    let leader_ids: Vec<i64> = leaders["leadership"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["member_id"].as_i64().unwrap())
        .collect();
    let ward1 = get(
        &p.truth,
        &format!("/api/v1/members?ward_id={ward}&status=active&page_size=100"),
    )
    .await
    .json();
    let newcomer = ward1["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .find(|id| !leader_ids.contains(id))
        .expect("the largest ward has a non-leader");
    paths.extend(member_paths(newcomer, &idn(newcomer).await));
    if let Some(c) = chair {
        paths.extend(member_paths(c, &idn(c).await));
    }

    // Concurrent readers keep every entry hot and race each write.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (r, paths, stop) = (r.clone(), paths.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    get(&r, &paths[(n as usize + i * 7) % paths.len()]).await;
                    n += 1;
                }
                n
            })
        })
        .collect();

    p.warm(&paths).await;
    let created = json_req(&r, "POST", "/api/v1/members", &new_member(1)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let new = &created.json()["member"];
    paths.extend(member_paths(
        new["id"].as_i64().unwrap(),
        new["id_number"].as_str().unwrap(),
    ));
    p.assert_fresh(&paths, "create").await;

    p.warm(&paths).await;
    let u = json_req(
        &r,
        "PUT",
        "/api/v1/members/5",
        &json!({"status": "suspended", "ward_id": 2}),
    )
    .await;
    assert_eq!(u.status, 200, "{:?}", u.body);
    p.assert_fresh(&paths, "update of counted fields").await;

    p.warm(&paths).await;
    let u = json_req(
        &r,
        "PUT",
        "/api/v1/members/6",
        &json!({"first_name": "Renamed"}),
    )
    .await;
    assert_eq!(u.status, 200);
    p.assert_fresh(&paths, "update of a name").await;

    p.warm(&paths).await;
    let d = json_req(&r, "DELETE", "/api/v1/members/8", &json!(null)).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    p.assert_fresh(&paths, "delete").await;
    assert_eq!(get(&r, "/api/v1/members/8").await.status, 404);

    p.warm(&paths).await;
    let mut app_body = new_member(2);
    app_body["last_name"] = json!("Applicant");
    let s = json_req(&r, "POST", "/api/v1/applications", &app_body).await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    let app_id = s.json()["application_id"].as_i64().unwrap();
    p.assert_fresh(&paths, "application submitted").await;

    p.warm(&paths).await;
    let a = json_req(
        &r,
        "POST",
        &format!("/api/v1/applications/{app_id}/approve"),
        &json!(null),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    p.assert_fresh(&paths, "application approved").await;

    p.warm(&paths).await;
    let pending = get(&p.truth, "/api/v1/applications?status=pending&page_size=1")
        .await
        .json();
    let pid = pending["applications"][0]["id"].as_i64().unwrap();
    let rj = json_req(
        &r,
        "POST",
        &format!("/api/v1/applications/{pid}/reject"),
        &json!({"reason": "duplicate"}),
    )
    .await;
    assert_eq!(rj.status, 200, "{:?}", rj.body);
    p.assert_fresh(&paths, "application rejected").await;

    p.warm(&paths).await;
    let l = json_req(
        &r,
        "PUT",
        &format!("/api/v1/wards/{ward}/leadership/chairperson"),
        &json!({"member_id": newcomer}),
    )
    .await;
    assert_eq!(l.status, 200, "{:?}", l.body);
    p.assert_fresh(&paths, "leadership change").await;
    let roles = get(&r, &format!("/api/v1/members/{newcomer}")).await.json();
    assert!(roles["leadership_roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x.as_str().unwrap().ends_with(":chairperson")));

    p.warm(&paths).await;
    let bulk: Vec<Value> = (10..13).map(new_member).collect();
    let b = json_req(&r, "POST", "/api/v1/members/bulk-import", &json!(bulk)).await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    p.assert_fresh(&paths, "bulk import").await;

    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for t in readers {
        reads += t.await.unwrap();
    }
    assert!(
        reads > 100,
        "the concurrent readers really ran ({reads} reads)"
    );
    if !pressure {
        let hits = app.state.cache.metrics.totals().0;
        assert!(hits > 10, "the cache really served hits ({hits})");
    }
}

#[tokio::test]
async fn invalidation_removes_exactly_what_the_write_made_stale() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (p, _app) = pair(&redis, &tmp.path().join("m.db")).await;
    let r = &p.cached;
    let stats = ["/api/v1/statistics/system", "/api/v1/analytics/dashboard"];
    let warm = || async {
        for s in stats.iter().chain(
            [
                "/api/v1/members/6",
                "/api/v1/members/7",
                "/api/v1/lookups/provinces",
            ]
            .iter(),
        ) {
            get(r, s).await;
        }
    };
    warm().await;
    // A name change touches nothing that statistics count.
    json_req(
        r,
        "PUT",
        "/api/v1/members/6",
        &json!({"last_name": "Other"}),
    )
    .await;
    assert_eq!(get(r, "/api/v1/members/6").await.cache(), "MISS");
    assert_eq!(
        get(r, "/api/v1/members/7").await.cache(),
        "HIT",
        "other members stay cached"
    );
    for s in stats {
        assert_eq!(get(r, s).await.cache(), "HIT", "{s} survives a name change");
    }
    // A status change does.
    warm().await;
    json_req(r, "PUT", "/api/v1/members/6", &json!({"status": "expired"})).await;
    for s in stats {
        assert_eq!(get(r, s).await.cache(), "MISS", "{s} counts statuses");
    }
    assert_eq!(get(r, "/api/v1/members/7").await.cache(), "HIT");
    assert_eq!(
        get(r, "/api/v1/lookups/provinces").await.cache(),
        "HIT",
        "lookups never depend on members"
    );
}

#[tokio::test]
async fn a_write_while_redis_is_unreachable_is_never_followed_by_a_stale_hit() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (p, app) = pair(&redis, &tmp.path().join("m.db")).await;
    let r = &p.cached;
    let paths: Vec<String> = ["/api/v1/members/20", "/api/v1/statistics/system"]
        .map(String::from)
        .to_vec();
    p.warm(&paths).await;
    assert_eq!(get(r, &paths[0]).await.cache(), "HIT");

    redis.pause(true);
    let u = json_req(
        r,
        "PUT",
        "/api/v1/members/20",
        &json!({"status": "suspended"}),
    )
    .await;
    assert_eq!(u.status, 200, "the write succeeds without Redis");
    assert!(
        u.json()["invalidation"]["removed"].is_null(),
        "invalidation deferred: {:?}",
        u.json()
    );
    p.assert_fresh(&paths, "write with Redis paused").await;
    assert_eq!(get(r, &paths[0]).await.cache(), "BYPASS");

    // Redis comes back still holding the stale entries: they must never be served.
    redis.pause(false);
    let mut outcomes = Vec::new();
    for _ in 0..60 {
        let c = get(r, &paths[0]).await;
        outcomes.push(c.cache().to_string());
        p.assert_fresh(&paths, "Redis resumed").await;
        if c.cache() == "HIT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        outcomes.last().map(String::as_str),
        Some("HIT"),
        "caching resumed: {outcomes:?}"
    );
    let status = app.state.cache.status().await;
    assert_eq!(status["pending_invalidations"], json!([]));
}

#[tokio::test]
async fn a_value_computed_before_an_invalidation_is_not_stored() {
    use membership::cache::Lookup;
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let cache = &app.state.cache;
    let key = "membership:statistics:/api/v1/statistics/system:default";
    let tags = vec!["statistics".to_string()];

    // A reader misses and starts computing ...
    let Lookup::Miss(Some(versions)) = cache.lookup(key, &tags, "test").await else {
        panic!("expected a miss")
    };
    // ... a write commits and invalidates meanwhile ...
    assert_eq!(cache.invalidate(&tags).await.unwrap(), 0);
    // ... so the reader's (older) value must not be stored.
    let stored = cache
        .store(key, br#"{"stale":true}"#, 60, &tags, &versions)
        .await
        .unwrap();
    assert!(
        !stored,
        "a value computed before the invalidation was stored"
    );
    let mut con = redis.con().await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 0);

    // A value computed after the invalidation is stored, and joins the tag set so the next
    // invalidation removes it.
    let Lookup::Miss(Some(fresh)) = cache.lookup(key, &tags, "test").await else {
        panic!("expected a miss")
    };
    assert!(cache
        .store(key, br#"{"fresh":true}"#, 60, &tags, &fresh)
        .await
        .unwrap());
    assert!(
        matches!(cache.lookup(key, &tags, "test").await, Lookup::Hit(b) if b.as_ref() == br#"{"fresh":true}"#)
    );
    assert_eq!(cache.invalidate(&tags).await.unwrap(), 1);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}
