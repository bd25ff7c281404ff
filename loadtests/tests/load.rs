//! A short real load run against the membership API on a real redis-server.

use std::collections::HashMap;
use std::time::Duration;

use loadtests::{ClosedConfig, Mix, OpenConfig};
use testkit::RedisServer;

/// redis-server on a free port, and the API on another, serving until the test ends.
async fn api(dir: &std::path::Path) -> (RedisServer, String) {
    let redis = RedisServer::start();
    let vars: HashMap<&str, String> = HashMap::from([
        ("REDIS_HOST", "127.0.0.1".to_string()),
        ("REDIS_PORT", redis.port().to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("m.db").display()),
        ),
        ("MEMBERSHIP_MEMBERS", "3000".into()),
        ("PORT", "0".into()),
    ]);
    let cfg = membership::ApiConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(membership::serve(
        cfg,
        move |a| tx.send(a).unwrap(),
        std::future::pending(),
    ));
    let addr = rx.await.unwrap();
    (redis, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_goose_run_records_microseconds_and_a_hit_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let (_redis, host) = api(tmp.path()).await;
    let res = loadtests::run_closed(&ClosedConfig {
        hosts: vec![host],
        vocab: loadtests::CacheVocab::default(),
        shard: (0, 1),
        users: 6,
        hatch_rate: 20.0,
        run_time_s: 3,
        mix: Mix {
            writer_percent: 20,
            think: (Duration::ZERO, Duration::ZERO),
        },
        zipf_s: 1.1,
        only: None,
    })
    .await
    .unwrap();
    assert!(res.requests > 100, "{res:?}");
    assert_eq!(res.errors, 0, "{:?}", res.statuses);
    assert!(res.hit_rate.unwrap() > 0.0, "{res:?}");
    let hits: Vec<_> = res.routes.iter().filter(|r| r.cache == "HIT").collect();
    assert!(!hits.is_empty());
    // Microsecond resolution: goose's own whole milliseconds could not express these.
    assert!(hits.iter().any(|r| r.p50_us % 1000 != 0), "{hits:?}");
    for route in [
        "/api/v1/statistics/system",
        "/api/v1/members/{id}",
        "PUT /api/v1/members/{id}",
    ] {
        assert!(
            res.routes.iter().any(|r| r.route == route),
            "{route} was requested: {:?}",
            res.routes
        );
    }
    assert_eq!(
        res.timeline.iter().map(|s| s.requests).sum::<u64>(),
        res.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_sends_at_the_fixed_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let (_redis, host) = api(tmp.path()).await;
    let res = loadtests::run_open(&OpenConfig {
        host,
        rate: 200.0,
        duration_s: 2.0,
        max_in_flight: 1000,
        zipf_s: 1.1,
    })
    .await
    .unwrap();
    assert_eq!(
        res.requests, 400,
        "every scheduled request was sent and recorded"
    );
    assert_eq!(res.errors, 0, "{:?}", res.statuses);
    assert!(res.hit_rate.unwrap() > 0.5, "{res:?}");
}

#[tokio::test]
async fn a_target_that_is_not_the_api_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = loadtests::run_open(&OpenConfig {
        host: format!("http://127.0.0.1:{port}"),
        rate: 10.0,
        duration_s: 1.0,
        max_in_flight: 10,
        zipf_s: 1.1,
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not serve the membership API contract"),
        "{err}"
    );
}
