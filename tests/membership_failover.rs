//! The membership API in Sentinel mode on a real topology: after SENTINEL FAILOVER,
//! writes and caching work again without a restart, and no read returns older data.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::*;
use redis_harness::topology::{probe, Topology};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        cache,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_follows_a_sentinel_failover_without_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "apifailover");
    let topo = Topology::up(&cfg).await.expect("topology up");
    let info = topo.connection_info();

    let vars: HashMap<&str, String> = HashMap::from([
        ("REDIS_SENTINELS", info.sentinels.join(",")),
        ("REDIS_MASTER_NAME", info.master_name.clone()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", tmp.path().join("m.db").display()),
        ),
        ("MEMBERSHIP_MEMBERS", "2000".into()),
        ("CACHE_WARMUP", "false".into()),
        ("CACHE_ADMIN_TOKEN", "t".into()),
        ("REDIS_TIMEOUT_MS", "300".into()),
        ("CACHE_BREAKER_COOLDOWN_MS", "200".into()),
    ]);
    let api = membership::ApiConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let app = membership::build(api).await.unwrap();
    let r = &app.router;

    assert_eq!(call(r, "GET", "/api/v1/members/3", None).await.1, "MISS");
    assert_eq!(call(r, "GET", "/api/v1/members/3", None).await.1, "HIT");
    assert_eq!(
        app.state.cache.link().address().as_deref(),
        Some(info.master.as_str())
    );

    // Fail over.
    let s = &topo
        .state()
        .nodes
        .iter()
        .find(|n| n.spec.name == "sentinel-1")
        .unwrap()
        .spec;
    let mut sc = probe::connect(
        &s.host,
        s.port,
        &redis_harness::topology::Login::none(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg("mymaster")
        .query_async(&mut sc)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_master = loop {
        let st = topo.status().await;
        if let Some(m) = st
            .current_master
            .clone()
            .filter(|m| *m != info.master && st.healthy)
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "failover did not complete: {:?}",
            st.problem
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // A write through the API succeeds and its read-back is never older data.
    let (status, _, body) = call(
        r,
        "PUT",
        "/api/v1/members/3",
        Some(json!({"status": "expired"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, m) = call(r, "GET", "/api/v1/members/3", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        m["status"], "expired",
        "read after the write returned older data"
    );

    // Caching resumes on the new master by itself.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, cache, m) = call(r, "GET", "/api/v1/members/3", None).await;
        assert_eq!(m["status"], "expired");
        if cache == "HIT" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "caching did not resume after the failover (last {cache})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.state.cache.link().address().as_deref(),
        Some(new_master.as_str())
    );
    assert!(app.state.cache.link().master_changes() >= 1);
    let (_, _, st) = call(r, "GET", "/api/v1/statistics/system", None).await;
    assert!(st["total_members"].as_i64().unwrap() > 0);
    let (_, cache, _) = call(r, "GET", "/api/v1/statistics/system", None).await;
    assert_eq!(cache, "HIT", "new entries are stored on the new master");
    topo.down().await.unwrap();
}
