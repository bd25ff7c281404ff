//! Microbenchmarks of the cache layer against a real redis-server.
//!
//! - `redis/*`: the cache layer's hit path (`Cache::lookup`: GET + MGET of the tag
//!   versions in one pipeline, then decode) and store path (`Cache::store`: the Lua
//!   script) against raw redis-rs GET/SET of the same stored bytes. The ratio of the two
//!   is the layer's overhead.
//! - `keys/*`: key building.
//! - `codec/*`: the value codec with and without LZ4 on payloads the API really serves.
//! - `middleware/*`: a whole request through the router on a HIT (axum + the cache
//!   layer) and on the uncached path (SQLite), in-process.
//!
//! The server: `REDIS_HARNESS_BENCH_REDIS=host:port` (what `redis-harness bench` sets,
//! so its redis-benchmark baseline measures the same server), else a redis-server
//! started here on a free port and killed at the end.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use membership::api::params::{MemberId, WardMembership};
use membership::cache::keys::{cache_key, tags as tag, CacheKind};
use membership::cache::request::CachedRequest;
use membership::cache::{codec, Lookup};
use testkit::RedisServer;
use tower::ServiceExt;

/// One GET of member 1 through `app`, body read; `expect` is the X-Cache it must carry.
async fn request(app: axum::Router, expect: Option<&str>) -> axum::body::Bytes {
    let resp = app
        .oneshot(
            Request::get("/api/v1/members/1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(resp.status().is_success());
    if let Some(x) = expect {
        assert_eq!(resp.headers()["x-cache"], x);
    }
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
}

/// The server benched: `addr` is (host, port); `_local` is the redis-server started here,
/// if any, killed when dropped.
struct Server {
    addr: (String, u16),
    _local: Option<RedisServer>,
}

fn server() -> Server {
    if let Ok(a) = std::env::var("REDIS_HARNESS_BENCH_REDIS") {
        let (h, p) = a
            .rsplit_once(':')
            .expect("REDIS_HARNESS_BENCH_REDIS is host:port");
        return Server {
            addr: (h.to_string(), p.parse().expect("a port number")),
            _local: None,
        };
    }
    let local = RedisServer::start();
    Server {
        addr: ("127.0.0.1".into(), local.port()),
        _local: Some(local),
    }
}

fn benches(c: &mut Criterion) {
    // One thread: the numbers are the code's and the server's, not cross-thread wake-ups.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let srv = server();
    let db_dir = tempfile::tempdir().expect("a temporary directory");
    let vars: std::collections::HashMap<&str, String> = [
        ("REDIS_HOST", srv.addr.0.clone()),
        ("REDIS_PORT", srv.addr.1.to_string()),
        ("REDIS_KEY_PREFIX", "bench:".to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", db_dir.path().join("bench.db").display()),
        ),
        ("CACHE_WARMUP", "false".into()),
    ]
    .into_iter()
    .collect();
    let cfg = membership::ApiConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let app = rt.block_on(membership::build(cfg)).expect("the app builds");
    // The same database with the cache switched off: the uncached path.
    let mut uncached_vars = vars.clone();
    uncached_vars.insert("CACHE_ENABLED", "false".into());
    let cfg =
        membership::ApiConfig::from_lookup(|k| uncached_vars.get(k).cloned()).expect("config");
    let uncached = rt
        .block_on(membership::build(cfg))
        .expect("the app builds")
        .router;
    let router = app.router.clone();
    let cache = Arc::clone(&app.state.cache);
    let get = |path: &str| {
        let r = router.clone();
        let req = Request::get(path).body(Body::empty()).unwrap();
        rt.block_on(async move {
            let resp = r.oneshot(req).await.unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
        })
    };
    let member = get("/api/v1/members/1");
    let dashboard = get("/api/v1/analytics/dashboard");
    let page = get("/api/v1/members?page_size=100");
    // Second calls are HITs from here on.
    get("/api/v1/members/1");

    // redis: the layer's hit and store paths vs raw redis-rs on the same bytes.
    let mut con = rt
        .block_on(
            redis::Client::open(format!("redis://{}:{}/", srv.addr.0, srv.addr.1))
                .unwrap()
                .get_multiplexed_async_connection(),
        )
        .expect("a redis connection");
    let key = cache_key("bench:", CacheKind::Member, "/api/v1/members/1", "default");
    let tags = vec![tag::member(1)];
    let versions = rt
        .block_on(cache.versions(&tags))
        .flatten()
        .expect("the member's tag versions");
    let stored = codec::encode(&member, 1024);
    let mut g = c.benchmark_group("redis");
    g.bench_function("raw_get", |b| {
        b.to_async(&rt).iter(|| {
            let mut con = con.clone();
            let key = key.clone();
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                assert!(v.is_some());
            }
        })
    });
    g.bench_function("cache_lookup_hit", |b| {
        b.to_async(&rt).iter(|| {
            let (cache, key, tags) = (Arc::clone(&cache), key.clone(), tags.clone());
            async move {
                let hit = cache.lookup(&key, &tags, "/api/v1/members/{id}").await;
                assert!(matches!(hit, Lookup::Hit(_)));
            }
        })
    });
    g.bench_function("raw_set", |b| {
        b.to_async(&rt).iter(|| {
            let mut con = con.clone();
            let v = stored.clone();
            async move {
                let _: () = redis::cmd("SET")
                    .arg("bench:raw")
                    .arg(v)
                    .arg("EX")
                    .arg(900)
                    .query_async(&mut con)
                    .await
                    .unwrap();
            }
        })
    });
    g.bench_function("cache_store", |b| {
        b.to_async(&rt).iter(|| {
            let (cache, tags, body) = (Arc::clone(&cache), tags.clone(), member.clone());
            let versions = versions.clone();
            async move {
                let stored = cache
                    .store("bench:member:store", &body, 900, &tags, &versions)
                    .await
                    .unwrap();
                assert!(stored, "the versions are current: the store runs in full");
            }
        })
    });
    g.finish();
    let _: () = rt
        .block_on(redis::cmd("DEL").arg("bench:raw").query_async(&mut con))
        .unwrap();

    let mut g = c.benchmark_group("keys");
    // Canonical keys: parse the request as the handler would, then build the key.
    let plain: axum::http::Uri = "/api/v1/members/12345".parse().unwrap();
    g.bench_function("cache_key_member", |b| {
        b.iter(|| {
            let m = MemberId::parse(&[("id", std::hint::black_box("12345"))], &plain).unwrap();
            cache_key(
                "bench:",
                CacheKind::Member,
                &m.path("/api/v1/members/{id}"),
                &m.variant(),
            )
        })
    });
    let query: axum::http::Uri = "/api/v1/statistics/ward-membership?province=GP&limit=50"
        .parse()
        .unwrap();
    g.bench_function("cache_key_query", |b| {
        b.iter(|| {
            let w = WardMembership::parse(&[], std::hint::black_box(&query)).unwrap();
            cache_key(
                "bench:",
                CacheKind::Statistics,
                "/api/v1/statistics/ward-membership",
                &w.variant(),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("codec");
    for (name, body) in [
        ("member", &member),
        ("dashboard", &dashboard),
        ("members_page", &page),
    ] {
        for (mode, threshold) in [("lz4", 0usize), ("plain", usize::MAX)] {
            let id = format!("{name}_{}B_{mode}", body.len());
            g.bench_with_input(BenchmarkId::new("encode", &id), body, |b, body| {
                b.iter(|| codec::encode(body, threshold))
            });
            let enc = codec::encode(body, threshold);
            g.bench_with_input(BenchmarkId::new("decode", &id), &enc, |b, enc| {
                b.iter(|| codec::decode(enc).unwrap())
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("middleware");
    for (name, app, expect) in [
        ("member_hit", &router, Some("HIT")),
        ("member_uncached", &uncached, None),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| request(app.clone(), expect))
        });
    }
    g.finish();
    let _: () = rt
        .block_on(async {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("bench:*")
                .query_async(&mut con)
                .await?;
            if keys.is_empty() {
                return Ok(());
            }
            redis::cmd("DEL").arg(keys).query_async(&mut con).await
        })
        .unwrap();
}

criterion_group! {
    name = cache;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = benches
}
criterion_main!(cache);
