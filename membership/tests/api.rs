//! Input validation and writes through the real router and SQLite: every bad input is a
//! 4xx with a JSON error naming the problem, and nothing is half-written.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::json;

async fn error_of(resp: &Resp) -> String {
    resp.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn bad_reads_are_4xx_json_errors_naming_the_problem() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    for (path, status, needle) in [
        ("/api/v1/members/abc", 400, "invalid member id \"abc\""),
        ("/api/v1/members/0", 400, "must be a positive integer"),
        ("/api/v1/members/-3", 400, "must be a positive integer"),
        ("/api/v1/members/99999999", 404, "member 99999999 not found"),
        (
            "/api/v1/members/by-id-number/12345",
            400,
            "invalid ID number",
        ),
        (
            "/api/v1/members/by-id-number/9001015009088",
            400,
            "check digit",
        ),
        (
            "/api/v1/members/by-id-number/9013015009087",
            400,
            "valid date",
        ),
        (
            "/api/v1/members?page_size=0",
            400,
            "page_size: must be between 1 and 100 (got 0)",
        ),
        ("/api/v1/members?page_size=1000", 400, "page_size"),
        ("/api/v1/members?page=0", 400, "page: must be between"),
        ("/api/v1/members?status=gold", 400, "status: must be one of"),
        (
            "/api/v1/statistics/ward-membership?limit=500",
            400,
            "limit: must be between 1 and 100",
        ),
        (
            "/api/v1/statistics/ward-membership?province=XX",
            400,
            "province: must be one of",
        ),
        (
            "/api/v1/statistics/membership-trends?months=99",
            400,
            "months",
        ),
        (
            "/api/v1/statistics/membership-trends?months=six",
            400,
            "months",
        ),
        (
            "/api/v1/analytics/membership?group_by=colour",
            400,
            "unknown variant `colour`",
        ),
        (
            "/api/v1/statistics/system?debug=1",
            400,
            "unknown field `debug`",
        ),
        (
            "/api/v1/applications?status=maybe",
            400,
            "status: must be pending, approved or rejected",
        ),
        ("/api/v1/wards/x/leadership", 400, "invalid ward id"),
        (
            "/api/v1/wards/999999/leadership",
            404,
            "ward 999999 does not exist",
        ),
        ("/api/v1/nowhere", 404, "no such route"),
    ] {
        let resp = get(r, path).await;
        assert_eq!(resp.status.as_u16(), status, "{path}: {:?}", resp.body);
        let msg = error_of(&resp).await;
        assert!(msg.contains(needle), "{path}: {msg:?} lacks {needle:?}");
        assert_eq!(resp.json()["error"]["status"], status);
    }
}

#[tokio::test]
async fn bad_writes_are_rejected_and_nothing_is_lost_or_half_written() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let total = || async {
        get(r, "/api/v1/members?page_size=1").await.json()["total"]
            .as_i64()
            .unwrap()
    };
    let before = total().await;

    let send_raw = |body: &'static str| {
        let r = r.clone();
        async move {
            send(
                &r,
                Request::post("/api/v1/members")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    let malformed = send_raw(r#"{"id_number": "#).await;
    assert_eq!(malformed.status, 400);
    assert!(error_of(&malformed)
        .await
        .contains("parse the request body as JSON"));
    let wrong_type = send_raw(r#"{"id_number": 5}"#).await;
    assert_eq!(wrong_type.status, 422);
    assert!(error_of(&wrong_type).await.contains("id_number"));
    let big = format!(r#"{{"id_number": "{}"}}"#, "9".repeat(100_000));
    let oversized = send(
        r,
        Request::post("/api/v1/members")
            .header("content-type", "application/json")
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    assert_eq!(oversized.status, 413);
    assert!(error_of(&oversized).await.contains("length limit"));
    let no_ct = send(
        r,
        Request::post("/api/v1/members")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(no_ct.status, 415);

    for (field, value, needle) in [
        ("id_number", json!("1234567890123"), "id_number"),
        ("first_name", json!(""), "first_name"),
        (
            "gender",
            json!("x"),
            "gender: must be female, male or other",
        ),
        (
            "birth_date",
            json!("1990-02-30"),
            "birth_date: must be a real date",
        ),
        ("birth_date", json!("2999-01-01"), "birth_date"),
        (
            "ward_id",
            json!(999999),
            "ward_id: ward 999999 does not exist",
        ),
        ("status", json!("gold"), "status: must be one of"),
        ("email", json!("not-an-email"), "email"),
        ("phone", json!("12"), "phone"),
        ("unexpected", json!(1), "unknown field `unexpected`"),
    ] {
        let mut m = new_member(100);
        m[field] = value;
        let resp = json_req(r, "POST", "/api/v1/members", &m).await;
        assert!(resp.status.is_client_error(), "{field}: {}", resp.status);
        let msg = error_of(&resp).await;
        assert!(msg.contains(needle), "{field}: {msg:?}");
    }

    // A duplicate ID number is a conflict.
    let ok = json_req(r, "POST", "/api/v1/members", &new_member(101)).await;
    assert_eq!(ok.status, 201);
    let dup = json_req(r, "POST", "/api/v1/members", &new_member(101)).await;
    assert_eq!(dup.status, 409);
    assert!(error_of(&dup).await.contains("already belongs to member"));

    // Bulk import is all-or-nothing: one bad item, nothing imported, and the error names it.
    let mut items: Vec<_> = (200..205).map(new_member).collect();
    items[3]["gender"] = json!("robot");
    let bulk = json_req(r, "POST", "/api/v1/members/bulk-import", &json!(items)).await;
    assert_eq!(bulk.status, 400);
    assert!(
        error_of(&bulk).await.starts_with("item 3: gender"),
        "{}",
        error_of(&bulk).await
    );
    assert_eq!(
        total().await,
        before + 1,
        "only the single good create landed"
    );
    let empty = json_req(r, "POST", "/api/v1/members/bulk-import", &json!([])).await;
    assert_eq!(empty.status, 400);
    let good: Vec<_> = (300..305).map(new_member).collect();
    let bulk = json_req(r, "POST", "/api/v1/members/bulk-import", &json!(good)).await;
    assert_eq!(bulk.status, 201, "{:?}", bulk.body);
    assert_eq!(bulk.json()["imported"], 5);
    assert_eq!(total().await, before + 6);

    // Updates and deletes of unknown members, empty updates, bad leadership changes.
    assert_eq!(
        json_req(
            r,
            "PUT",
            "/api/v1/members/99999999",
            &json!({"first_name": "X"})
        )
        .await
        .status,
        404
    );
    let empty = json_req(r, "PUT", "/api/v1/members/1", &json!({})).await;
    assert_eq!(empty.status, 400);
    assert!(error_of(&empty).await.contains("names no field"));
    assert_eq!(
        json_req(r, "DELETE", "/api/v1/members/99999999", &json!(null))
            .await
            .status,
        404
    );
    let role = json_req(
        r,
        "PUT",
        "/api/v1/wards/1/leadership/king",
        &json!({"member_id": 1}),
    )
    .await;
    assert_eq!(role.status, 400);
    assert!(error_of(&role).await.contains("role: must be one of"));

    // Applications: approving twice is a conflict.
    let mut a = new_member(400);
    a["last_name"] = json!("Applicant");
    let id = json_req(r, "POST", "/api/v1/applications", &a).await.json()["application_id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/applications/{id}/approve");
    assert_eq!(json_req(r, "POST", &path, &json!(null)).await.status, 200);
    let again = json_req(r, "POST", &path, &json!(null)).await;
    assert_eq!(again.status, 409);
    assert!(error_of(&again).await.contains("already approved"));
    assert_eq!(
        json_req(r, "POST", "/api/v1/applications/99999/reject", &json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn sql_metacharacters_in_input_are_data_not_sql() {
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = app(env(&tmp.path().join("m.db"), redis.port(), &[])).await;
    let r = &app.router;
    let mut m = new_member(500);
    m["last_name"] = json!("O'Brien'); DROP TABLE members; --");
    let created = json_req(r, "POST", "/api/v1/members", &m).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.json()["member"]["id"].as_i64().unwrap();
    let back = get(r, &format!("/api/v1/members/{id}")).await.json();
    assert_eq!(back["last_name"], "O'Brien'); DROP TABLE members; --");
    assert_eq!(get(r, "/api/v1/statistics/system").await.status, 200);
}

#[tokio::test]
async fn shutdown_is_bounded_even_with_a_half_sent_request_open() {
    use std::io::Write;
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = env(
        &tmp.path().join("m.db"),
        redis.port(),
        &[("SHUTDOWN_GRACE_MS", "200")],
    );
    cfg.port = 0;
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(membership::serve(
        cfg,
        move |a| addr_tx.send(a).unwrap(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let addr = addr_rx.await.unwrap();
    // A client that never finishes its request keeps its connection "in flight".
    let mut stuck = std::net::TcpStream::connect(addr).unwrap();
    stuck
        .write_all(b"GET /api/v1/statistics/system HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    let finished = tokio::time::timeout(std::time::Duration::from_secs(30), server).await;
    assert!(
        finished.is_ok(),
        "the server never stopped while a client held a half-sent request"
    );
    assert!(finished.unwrap().unwrap().is_ok());
    drop(stuck);
}
