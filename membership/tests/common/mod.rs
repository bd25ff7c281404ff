//! Test helpers: a real redis-server on a free port, and the app built against it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use membership::{ApiConfig, App};
use serde_json::Value;
use tower::ServiceExt;

/// A redis-server child process on a free loopback port; killed on drop.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments (e.g. `--maxmemory 3mb`).
    pub fn start_with(extra: &[&str]) -> Self {
        let mut s = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        s.restart();
        s
    }

    /// A field of `INFO` as a number.
    pub async fn info_u64(&self, field: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .query_async(&mut self.con().await)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO has no {field}"))
    }

    /// (Re)starts the server on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/setup.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (its data is lost).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT: unreachable without losing data.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        let sig = if paused { "-STOP" } else { "-CONT" };
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
    }

    pub async fn con(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server must be resumed to die promptly from SIGKILL's point of view.
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.stop();
    }
}

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
