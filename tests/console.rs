//! The web console in a real headless Chromium, against real components: each test brings
//! up its own process-backend topology in-process, runs the console as the real binary
//! (`redis-harness console --port 0 --token ...`), reads its URL from stdout, and asserts
//! on the DOM (never on pixels), saving screenshots under `target/console-screenshots/`.
//!
//! - the token: 401 without it or with a wrong one, `/healthz` open, `?token=` sets the
//!   cookie and redirects to the same URL without it;
//! - the Topology page lists every node in its role and every Sentinel;
//! - `SENTINEL FAILOVER`: `+switch-master` appears live on the Events page (SSE, no
//!   reload) and the Topology page shows the promoted replica as master;
//! - the key browser pages through 100,000 keys, each seen once, with the console's
//!   memory bounded;
//! - the Command page refuses FLUSHALL (403, nothing flushed) and runs read-only
//!   commands; the failover button exists only with `--allow-write`.
//!
//! Without Chromium and chromedriver the browser tests skip with a message, unless
//! `REDIS_HARNESS_REQUIRE_BROWSER=1` (CI sets it). Two `#[ignore]`d tests are the
//! measurements `scripts/measure-console.sh` runs: role change to page latency, and the
//! console's RSS while browsing 1,000,000 keys.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::browser::Browser;
use common::{test_config, write_config};
use redis::aio::MultiplexedConnection;
use redis_harness::config::HarnessConfig;
use redis_harness::topology::{probe, NodeKind, Topology};
use serde_json::{json, Value};

/// The token every console here is started with (16+ characters).
const TOKEN: &str = "browser-test-token-5f3a9c0e";

/// How long a page has to show what a test waits for. A deadline, not a timing claim.
const PAGE: Duration = Duration::from_secs(20);

/// How long a failover may take to show up (down-after is 1 s in the tests' config, and
/// the old master is demoted about 10 s after the promotion).
const FAILOVER: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The console as a child process.

/// `redis-harness console` as a child process; killed (and reaped) on drop. Its stderr
/// goes to a log file, printed when a test panics.
struct ConsoleProc {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    base: String,
    /// Its token.
    token: String,
    log: PathBuf,
}

/// The binary under test: `REDIS_HARNESS_CONSOLE_BIN` (the measurement script points it
/// at a release build), else the one cargo built for these tests.
fn console_bin() -> PathBuf {
    std::env::var_os("REDIS_HARNESS_CONSOLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_redis-harness")))
}

impl ConsoleProc {
    /// Runs `redis-harness <args> --token TOKEN` and waits (with a deadline) for its
    /// `console: URL` line.
    fn start(args: &[String], log_dir: &Path) -> ConsoleProc {
        Self::start_with_token(args, TOKEN, log_dir)
    }

    /// [`ConsoleProc::start`] with another token.
    fn start_with_token(args: &[String], token: &str, log_dir: &Path) -> ConsoleProc {
        let log = log_dir.join(format!("console-{}.log", unique()));
        let mut child = std::process::Command::new(console_bin())
            .args(args)
            .args(["--token", token])
            .env_remove("REDIS_HARNESS_CONFIG")
            .env_remove("REDIS_HARNESS_CONSOLE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("console log file"))
            .spawn()
            .expect("start the console");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the URL line, then keeps draining stdout so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("console: ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let mut proc = ConsoleProc {
            child,
            base: String::new(),
            token: token.to_string(),
            log,
        };
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "the console printed no `console: URL` line within 30 s; its log:\n{}",
                    proc.log_text()
                )
            });
        let (base, printed) = url
            .split_once("/?token=")
            .unwrap_or_else(|| panic!("unexpected console URL {url:?}"));
        assert_eq!(printed, token, "the URL carries the token it was given");
        proc.base = base.to_string();
        proc
    }

    /// `base` + `path`.
    /// The name of its token cookie (named after its port).
    fn cookie(&self) -> String {
        let port = self.base.rsplit(':').next().unwrap_or("");
        format!("rh_console_{port}")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` and `VmHWM` (peak RSS) of the console process, KiB.
    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the console's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{}/status", self.pid()))
        };
        Memory {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }

    /// Waits (with a deadline) until the console has its first topology snapshot:
    /// `/api/topology` answers 503 before.
    async fn first_snapshot(&self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PAGE;
        loop {
            let r = http
                .get(self.url("/api/topology"))
                .bearer_auth(&self.token)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no topology snapshot within {PAGE:?}; the console's log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ConsoleProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- console log (last lines) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// A process's memory, KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Console arguments that follow the topology's state file (`-c` its config).
fn state_file_args(config: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["-c", &config.display().to_string(), "console"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(["--port", "0"].iter().chain(extra).map(|s| s.to_string()));
    v
}

/// Console arguments naming the topology explicitly (`--sentinels`, `--node`).
fn explicit_args(topo: &Topology, extra: &[&str]) -> Vec<String> {
    let st = topo.state();
    let sentinels: Vec<String> = st
        .nodes
        .iter()
        .filter(|n| n.spec.kind == NodeKind::Sentinel)
        .map(|n| n.spec.addr())
        .collect();
    let mut v: Vec<String> = vec![
        "console".into(),
        "--port".into(),
        "0".into(),
        "--sentinels".into(),
        sentinels.join(","),
        "--master-name".into(),
        st.master_name.clone(),
        "--name".into(),
        st.name.clone(),
    ];
    for n in &st.nodes {
        v.push("--node".into());
        v.push(format!("{}={}", n.spec.name, n.spec.addr()));
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

// ---------------------------------------------------------------------------------------
// Topology helpers.

/// A topology of the tests' shape (1 master, 2 replicas, 3 Sentinels, down-after 1 s)
/// with its config written to `dir/harness.yaml`.
async fn topology(
    dir: &Path,
    name: &str,
    tune: impl FnOnce(&mut HarnessConfig),
) -> (Topology, PathBuf) {
    let mut cfg = test_config(dir, name);
    tune(&mut cfg);
    let config = write_config(dir, &cfg);
    let topo = Topology::up(&cfg).await.expect("topology comes up");
    (topo, config)
}

async fn connect(addr: &str, timeout: Duration) -> MultiplexedConnection {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    probe::connect(
        host,
        port.parse().expect("port"),
        &redis_harness::topology::Login::none(),
        timeout,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Name of the node at `addr`.
fn name_of(topo: &Topology, addr: &str) -> String {
    topo.state()
        .nodes
        .iter()
        .find(|n| n.spec.addr() == addr)
        .map(|n| n.spec.name.clone())
        .unwrap_or_else(|| panic!("{addr} is not a node of the topology"))
}

fn addr_of(topo: &Topology, kind: NodeKind) -> Vec<String> {
    topo.state()
        .nodes
        .iter()
        .filter(|n| n.spec.kind == kind)
        .map(|n| n.spec.addr())
        .collect()
}

/// The master as the first Sentinel names it.
async fn sentinel_master(topo: &Topology) -> String {
    let s = &addr_of(topo, NodeKind::Sentinel)[0];
    let mut con = connect(s, Duration::from_secs(2)).await;
    let (h, p): (String, String) = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(&topo.state().master_name)
        .query_async(&mut con)
        .await
        .expect("a Sentinel names the master");
    format!("{h}:{p}")
}

/// Sends `SENTINEL FAILOVER` to the first Sentinel, retrying while it refuses (no good
/// replica yet right after a previous failover, or one in progress).
async fn sentinel_failover(topo: &Topology) {
    let s = &addr_of(topo, NodeKind::Sentinel)[0];
    let mut con = connect(s, Duration::from_secs(2)).await;
    let deadline = Instant::now() + FAILOVER;
    loop {
        let r: redis::RedisResult<String> = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(&topo.state().master_name)
            .query_async(&mut con)
            .await;
        match r {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("SENTINEL FAILOVER refused ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("SENTINEL FAILOVER refused until the deadline: {e}"),
        }
    }
}

/// Writes `count` keys `key:<i>` with pipelined SETs on the master.
async fn write_keys(master: &str, count: u64) -> HashSet<String> {
    let mut con = connect(master, Duration::from_secs(30)).await;
    let mut all = HashSet::with_capacity(count as usize);
    let batch = 10_000;
    let mut i = 0;
    while i < count {
        let mut p = redis::pipe();
        for j in i..(i + batch).min(count) {
            let k = format!("key:{j:07}");
            p.cmd("SET").arg(&k).arg(j).ignore();
            all.insert(k);
        }
        let () = p.query_async(&mut con).await.expect("pipelined SETs");
        i += batch;
    }
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, count, "every key was written");
    all
}

/// Fills the master with `count` keys: `DEBUG POPULATE` where the server allows it (from
/// loopback, by default), else pipelined SETs. Says which.
async fn populate(master: &str, count: u64) -> &'static str {
    let mut con = connect(master, Duration::from_secs(60)).await;
    let r: redis::RedisResult<()> = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(count)
        .arg("key")
        .query_async(&mut con)
        .await;
    if r.is_ok() && dbsize(master).await == count {
        return "DEBUG POPULATE";
    }
    write_keys(master, count).await;
    "pipelined SETs"
}

async fn dbsize(addr: &str) -> u64 {
    let mut con = connect(addr, Duration::from_secs(5)).await;
    redis::cmd("DBSIZE").query_async(&mut con).await.unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Page helpers.

/// Opens `path` with `?token=`, which sets the cookie and redirects; later pages need
/// nothing more.
async fn login(b: &Browser, console: &ConsoleProc, path: &str) {
    b.goto(&console.url(&format!("{path}?token={}", console.token)))
        .await;
    let url = b.client().current_url().await.expect("current URL");
    assert!(
        !url.as_str().contains("token="),
        "the redirect takes the token out of the address bar: {url}"
    );
}

/// Logs in on the Topology page and waits until it shows the first snapshot.
async fn open_topology(b: &Browser, console: &ConsoleProc) {
    login(b, console, "/topology").await;
    b.wait_js(
        "the first snapshot",
        PAGE,
        "return !!document.querySelector('#nodes tr[data-node]');",
    )
    .await;
}

/// The nodes the Topology page shows, as (name, role), once it shows `want` of them.
const NODES_JS: &str = "return Array.from(document.querySelectorAll('#nodes tr[data-node]')).map(r => [r.dataset.node, r.dataset.role]);";

/// The Sentinels the Topology page shows, as (name, the master address it names).
const SENTINELS_JS: &str = "return Array.from(document.querySelectorAll('#sentinels tr[data-sentinel]')).map(r => [r.dataset.sentinel, r.dataset.names]);";

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or_default().to_string(),
                        p[1].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Marks the current document, so a later check can tell it was not reloaded.
async fn mark(b: &Browser) {
    b.js("window.__notReloaded = true; return true;", vec![])
        .await;
}

async fn still_marked(b: &Browser) -> bool {
    b.js("return window.__notReloaded === true;", vec![]).await == json!(true)
}

/// The key browser's current page: the keys (hex) and the next-page link, if any.
async fn key_page(b: &Browser) -> (Vec<String>, Option<String>) {
    let v = b
        .js(
            "const t = document.getElementById('keys'); if (!t) return null; \
             const n = document.getElementById('next-page'); \
             return {keys: Array.from(t.querySelectorAll('tr[data-key-hex]')).map(r => r.dataset.keyHex), \
                     next: n ? n.getAttribute('href') : null};",
            vec![],
        )
        .await;
    assert!(
        !v.is_null(),
        "the Keys page has no #keys table: {}",
        b.client().source().await.unwrap_or_default()
    );
    let keys = v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("hex").to_string())
        .collect();
    (keys, v["next"].as_str().map(str::to_string))
}

/// Opens the key browser as a person would (the Keys link, then the scan form with
/// `count` keys a page) and follows `#next-page` until it disappears, clicking it, for at
/// most `max_pages` pages. Checks it browses `node` (the master, the default). Returns
/// every key seen (decoded) in order, and the number of pages.
async fn browse_keys(
    b: &Browser,
    console: &ConsoleProc,
    node: &str,
    count: u32,
    max_pages: usize,
) -> (Vec<String>, usize) {
    b.client()
        .find(fantoccini::Locator::Css("nav a[href=\"/keys\"]"))
        .await
        .expect("the Keys link")
        .click()
        .await
        .expect("click Keys");
    let form = b
        .wait_for("the scan form", PAGE, || async {
            b.client()
                .find(fantoccini::Locator::Css("form#scan-form"))
                .await
                .ok()
        })
        .await;
    let shown = form
        .find(fantoccini::Locator::Css("input[name=node]"))
        .await
        .expect("the node field")
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        shown.as_deref(),
        Some(node),
        "the Keys page opens on the master"
    );
    let field = form
        .find(fantoccini::Locator::Css("input[name=count]"))
        .await
        .expect("the count field");
    field.clear().await.unwrap();
    mark(b).await;
    field
        .send_keys(&format!(
            "{count}{}",
            char::from(fantoccini::key::Key::Enter)
        ))
        .await
        .unwrap();
    b.wait_for("the first key page", PAGE, || async {
        let u = b.client().current_url().await.ok()?;
        (!still_marked(b).await && u.as_str().contains(&format!("count={count}"))).then_some(())
    })
    .await;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (keys, next) = key_page(b).await;
        pages += 1;
        seen.extend(
            keys.iter()
                .map(|h| String::from_utf8(unhex(h)).expect("UTF-8 key")),
        );
        let Some(next) = next else { break };
        if pages >= max_pages {
            break;
        }
        let before = b.client().current_url().await.expect("URL");
        b.client()
            .find(fantoccini::Locator::Css("a#next-page"))
            .await
            .expect("#next-page")
            .click()
            .await
            .expect("click #next-page");
        let want = console.url(&next);
        b.wait_for("the next key page", PAGE, || async {
            let u = b.client().current_url().await.ok()?;
            (u != before && u.as_str() == want).then_some(())
        })
        .await;
    }
    (seen, pages)
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guards_every_page_and_the_topology_page_lists_every_node_and_sentinel() {
    let tmp = tempfile::tempdir().unwrap();
    let (topo, config) = topology(tmp.path(), "console-topology", |_| {}).await;
    let console = ConsoleProc::start(&state_file_args(&config, &[]), tmp.path());

    // Plain HTTP: the token, every way it can be presented.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(console.url(path));
    let r = get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200, "/healthz needs no token");
    for path in [
        "/",
        "/topology",
        "/events",
        "/reports",
        "/api/topology",
        "/api/events",
        "/keys",
        "/command",
    ] {
        let r = get(path).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without the token");
    }
    let wrong = "not-the-token-0123456789";
    let r = get("/topology").bearer_auth(wrong).send().await.unwrap();
    assert_eq!(r.status(), 401, "a wrong bearer token");
    let r = get("/topology")
        .header("cookie", format!("{}={wrong}", console.cookie()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a wrong cookie");
    let r = get(&format!("/topology?token={wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a wrong ?token=");
    let r = get(&format!("/events?after=0&token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection(),
        "?token= redirects: {}",
        r.status()
    );
    assert_eq!(
        r.headers()["location"],
        "/events?after=0",
        "to the same URL without the token"
    );
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("{}={TOKEN};", console.cookie()))
            && cookie.contains("HttpOnly"),
        "the token becomes an HttpOnly cookie: {cookie}"
    );
    let r = get("/topology").bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200, "the right bearer token");
    let r = get("/api/topology")
        .header("cookie", format!("{}={TOKEN}", console.cookie()))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 200 || r.status() == 503,
        "the right cookie: {}",
        r.status()
    );

    let Some(b) = Browser::start("topology").await else {
        return;
    };
    // `/` with the token: the cookie, then the Topology page.
    login(&b, &console, "/").await;
    let url = b.client().current_url().await.unwrap();
    assert_eq!(url.path(), "/topology", "/ leads to the Topology page");

    let master = addr_of(&topo, NodeKind::Master)[0].clone();
    let want_nodes = vec![
        ("master".to_string(), "master".to_string()),
        ("replica-1".to_string(), "slave".to_string()),
        ("replica-2".to_string(), "slave".to_string()),
    ];
    let nodes = b
        .wait_for("every data node in its role", PAGE, || async {
            let mut n = pairs(&b.js(NODES_JS, vec![]).await);
            n.sort();
            (n == want_nodes).then_some(n)
        })
        .await;
    let sentinels = b
        .wait_for("every Sentinel naming the master", PAGE, || async {
            let mut s = pairs(&b.js(SENTINELS_JS, vec![]).await);
            s.sort();
            (s.len() == 3 && s.iter().all(|(_, m)| *m == master)).then_some(s)
        })
        .await;
    let names: Vec<&str> = sentinels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sentinel-1", "sentinel-2", "sentinel-3"]);
    let masters = b
        .js(
            "return document.getElementById('topology-fragment').dataset.masters;",
            vec![],
        )
        .await;
    assert_eq!(masters, json!("master"), "nodes: {nodes:?}");
    assert!(
        b.js("return !!document.getElementById('agreement');", vec![])
            .await
            == json!(true),
        "a healthy topology shows no disagreement"
    );
    assert!(
        b.js("return !document.getElementById('failover');", vec![])
            .await
            == json!(true),
        "a read-only console has no failover button"
    );
    b.screenshot("nodes").await;

    // The Events page renders (its live part is the failover test's).
    b.goto(&console.url("/events")).await;
    b.wait_js(
        "the events table",
        PAGE,
        "return !!document.getElementById('events-body');",
    )
    .await;
    b.screenshot("events-idle").await;
    b.close().await;
    drop(console);
    topo.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_shows_live_on_the_events_and_topology_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let (topo, _config) = topology(tmp.path(), "console-failover", |_| {}).await;
    let console = ConsoleProc::start(&explicit_args(&topo, &[]), tmp.path());
    let Some(b) = Browser::start("failover").await else {
        return;
    };

    // Window 1: Topology, showing the initial master.
    login(&b, &console, "/topology").await;
    let topo_window = b.client().window().await.unwrap();
    b.wait_js(
        "the initial master",
        PAGE,
        "const f = document.getElementById('topology-fragment'); return f && f.dataset.masters === 'master';",
    )
    .await;
    mark(&b).await;

    // Window 2: Events, with its event stream open and no switch yet.
    let events_window = b.client().new_window(true).await.unwrap().handle;
    b.client()
        .switch_to_window(events_window.clone())
        .await
        .unwrap();
    b.goto(&console.url("/events")).await;
    b.wait_js(
        "the events stream open",
        PAGE,
        "return document.body.dataset.sse === 'open';",
    )
    .await;
    let before = b
        .js(
            "return document.querySelectorAll('#events-body tr[data-event=\"+switch-master\"]').length;",
            vec![],
        )
        .await;
    assert_eq!(before, json!(0), "no switch before the failover");
    mark(&b).await;

    sentinel_failover(&topo).await;

    let detail = b
        .wait_js(
            "a +switch-master row",
            FAILOVER,
            "const r = document.querySelector('#events-body tr[data-event=\"+switch-master\"]'); return r ? r.textContent : null;",
        )
        .await;
    assert!(still_marked(&b).await, "the row arrived without a reload");
    let promoted_addr = sentinel_master(&topo).await;
    let promoted = name_of(&topo, &promoted_addr);
    assert_ne!(promoted, "master", "a replica was promoted");
    let (_, port) = promoted_addr.rsplit_once(':').unwrap();
    assert!(
        detail.as_str().unwrap_or_default().contains(port),
        "the +switch-master row names the new master {promoted_addr}: {detail}"
    );
    let kind = b
        .js(
            "return document.querySelector('#events-body tr[data-event=\"+switch-master\"]').dataset.kind;",
            vec![],
        )
        .await;
    assert_eq!(kind, json!("sentinel"));
    b.screenshot("events-switch-master").await;

    // Back to Topology: the promoted replica in role master, shown live.
    b.client().switch_to_window(topo_window).await.unwrap();
    let sel = format!("#nodes tr[data-node=\"{promoted}\"][data-role=\"master\"]");
    b.wait_js(
        "the promoted replica in role master",
        FAILOVER,
        &format!("return !!document.querySelector('{sel}');"),
    )
    .await;
    assert!(
        still_marked(&b).await,
        "the Topology page updated without a reload"
    );
    let log = b.js("return window.consoleLog;", vec![]).await;
    assert!(
        log.as_array().unwrap().iter().any(|e| e["masters"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .any(|m| m == promoted)),
        "window.consoleLog recorded the change: {log}"
    );
    // Healed: the promoted node is the only master, the old master follows it.
    b.wait_js(
        "the old master demoted",
        FAILOVER,
        &format!(
            "const f = document.getElementById('topology-fragment'); \
             return f && f.dataset.masters === '{promoted}' && \
                    !!document.querySelector('#nodes tr[data-node=\"master\"][data-role=\"slave\"]');"
        ),
    )
    .await;
    b.screenshot("topology-after-failover").await;
    b.close().await;
    drop(console);
    topo.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_browser_pages_through_100k_keys_once_each_with_bounded_memory() {
    const KEYS: u64 = 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let (topo, config) = topology(tmp.path(), "console-keys", |c| {
        c.memory.maxmemory = "0".into();
    })
    .await;
    let master = addr_of(&topo, NodeKind::Master)[0].clone();
    let written = write_keys(&master, KEYS).await;
    let console = ConsoleProc::start(&state_file_args(&config, &[]), tmp.path());
    let Some(b) = Browser::start("keys").await else {
        return;
    };
    open_topology(&b, &console).await;
    let before = console.memory();

    let (seen, pages) = browse_keys(&b, &console, &master, 1000, usize::MAX).await;
    let after = console.memory();
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "{} keys shown more than once",
        seen.len() - distinct.len()
    );
    let seen: HashSet<String> = seen.into_iter().collect();
    assert_eq!(
        seen.len(),
        written.len(),
        "every key was shown ({pages} pages)"
    );
    assert!(seen == written, "the keys shown are the keys written");
    eprintln!(
        "console memory browsing {KEYS} keys in {pages} pages: RSS {:.1} -> {:.1} MiB, peak (VmHWM) {:.1} -> {:.1} MiB",
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(before.hwm_kib),
        mib(after.hwm_kib)
    );
    // The pages rendered for 100,000 keys come to about 20 MiB of HTML; a console that
    // kept them (or the keys with their per-key overhead) would grow well past this.
    let bound = 8 * 1024;
    assert!(
        after.hwm_kib.saturating_sub(before.rss_kib) < bound,
        "the console's peak RSS grew by {:.1} MiB while browsing (bound 8 MiB)",
        mib(after.hwm_kib.saturating_sub(before.rss_kib))
    );

    // The last page, then one key's viewer.
    b.screenshot("last-page").await;
    b.client()
        .find(fantoccini::Locator::Css("#keys tr[data-key-hex] a"))
        .await
        .expect("a key link")
        .click()
        .await
        .expect("open a key");
    let viewer = b
        .wait_js(
            "the key's viewer",
            PAGE,
            "const v = document.querySelector('#value[data-viewer]'); return v ? v.dataset.viewer : null;",
        )
        .await;
    assert_eq!(
        viewer,
        json!("text"),
        "a SET of a small number is shown as text"
    );
    b.screenshot("key-view").await;
    b.close().await;
    drop(console);
    topo.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_page_refuses_flushall_runs_read_only_commands_and_failover_needs_allow_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (topo, config) = topology(tmp.path(), "console-command", |_| {}).await;
    let master = addr_of(&topo, NodeKind::Master)[0].clone();
    let written = write_keys(&master, 1000).await.len() as u64;
    let console = ConsoleProc::start(&state_file_args(&config, &[]), tmp.path());
    console.first_snapshot().await;

    // Plain HTTP: the refusal's status, and the read-only failover endpoint.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(console.url("/command"))
        .bearer_auth(TOKEN)
        .form(&[("node", master.as_str()), ("line", "FLUSHALL")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "FLUSHALL is refused");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("FLUSHALL"),
        "the refusal names FLUSHALL: {body}"
    );
    let r = http
        .post(console.url("/failover"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no failover from a read-only console");
    assert_eq!(dbsize(&master).await, written, "nothing was flushed");

    let Some(b) = Browser::start("command").await else {
        return;
    };
    login(&b, &console, "/command").await;
    let run = |line: &'static str| {
        let b = &b;
        async move {
            let input = b
                .wait_for("the command line", PAGE, || async {
                    b.client()
                        .find(fantoccini::Locator::Css("input[name=line]"))
                        .await
                        .ok()
                })
                .await;
            input.clear().await.unwrap();
            let submit = format!("{line}{}", char::from(fantoccini::key::Key::Enter));
            mark(b).await;
            input.send_keys(&submit).await.unwrap();
            b.wait_for("the command's result page", PAGE, || async {
                (!still_marked(b).await).then_some(())
            })
            .await;
            b.js("return document.querySelector('main').innerText;", vec![])
                .await
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };

    let text = run("FLUSHALL").await;
    let refusal = b
        .js(
            "const e = document.querySelector('#refusal, .error'); return e ? e.innerText : null;",
            vec![],
        )
        .await;
    assert!(
        refusal.as_str().is_some_and(|r| r.contains("FLUSHALL")),
        "the page shows a refusal naming FLUSHALL: {refusal} / {text}"
    );
    b.screenshot("flushall-refused").await;
    assert_eq!(dbsize(&master).await, written, "FLUSHALL did not run");

    let text = run("DBSIZE").await;
    assert!(
        text.contains(&written.to_string()),
        "DBSIZE shows {written}: {text}"
    );
    let error = b
        .js(
            "return !!document.querySelector('#refusal, .error');",
            vec![],
        )
        .await;
    assert_eq!(error, json!(false), "DBSIZE is not refused: {text}");
    b.screenshot("dbsize").await;

    let text = run("INFO replication").await;
    assert!(
        text.contains("role:master"),
        "INFO replication runs: {text}"
    );
    assert!(text.contains("connected_slaves:2"), "{text}");
    b.screenshot("info-replication").await;

    // The Topology page: no failover button here; a console with --allow-write has one.
    b.goto(&console.url("/topology")).await;
    b.wait_js(
        "the nodes",
        PAGE,
        "return !!document.querySelector('#nodes tr[data-node]');",
    )
    .await;
    assert_eq!(
        b.js("return !!document.getElementById('failover');", vec![])
            .await,
        json!(false),
        "read-only: no failover button"
    );
    // Its own token: cookies are per host, not per port, so the same token's cookie
    // would let the `?token=` URL through without the redirect.
    let writer = ConsoleProc::start_with_token(
        &explicit_args(&topo, &["--allow-write"]),
        "browser-test-writer-token-81d2",
        tmp.path(),
    );
    login(&b, &writer, "/topology").await;
    b.wait_js(
        "the failover button",
        PAGE,
        "return !!document.querySelector('form#failover-form button#failover');",
    )
    .await;
    assert_eq!(
        b.js(
            "return document.getElementById('mode').dataset.mode;",
            vec![]
        )
        .await,
        json!("write")
    );
    b.screenshot("topology-allow-write").await;
    b.close().await;
    drop(writer);
    drop(console);
    topo.down().await.expect("down");
}

// ---------------------------------------------------------------------------------------
// Measurements (scripts/measure-console.sh runs these; they assert nothing about speed).

/// When a replica was seen promoted: `answered_ms` when it first answered ROLE master;
/// `dropped_ms` when its connection was closed just before (Sentinel promotes a replica
/// in one MULTI with `REPLICAOF NO ONE` and `CLIENT KILL`, so the drop marks the switch
/// itself, and the answer comes one reconnect later). Wall-clock ms.
struct Promotion {
    addr: String,
    answered_ms: u64,
    dropped_ms: Option<u64>,
}

/// Polls ROLE on `candidates` every ~2 ms until one answers master. A connection that
/// fails is opened again on the next round, and the failure's time kept.
async fn first_master(candidates: Vec<String>, deadline: Instant) -> Promotion {
    struct Probe {
        addr: String,
        con: Option<MultiplexedConnection>,
        dropped_ms: Option<u64>,
    }
    let mut probes: Vec<Probe> = candidates
        .into_iter()
        .map(|addr| Probe {
            addr,
            con: None,
            dropped_ms: None,
        })
        .collect();
    loop {
        let asks = probes.iter_mut().map(|p| async move {
            if p.con.is_none() {
                let (host, port) = p.addr.rsplit_once(':').expect("host:port");
                let port = port.parse().expect("port");
                p.con = probe::connect(host, port, &redis_harness::topology::Login::none(), Duration::from_millis(500))
                    .await
                    .ok();
            }
            let c = p.con.as_mut()?;
            let role: redis::RedisResult<Vec<redis::Value>> =
                redis::cmd("ROLE").query_async(c).await;
            let at = now_ms();
            match role {
                Ok(r) => matches!(r.first(), Some(redis::Value::BulkString(b)) if b.as_slice() == b"master")
                    .then(|| Promotion {
                        addr: p.addr.clone(),
                        answered_ms: at,
                        dropped_ms: p.dropped_ms,
                    }),
                Err(_) => {
                    p.con = None;
                    p.dropped_ms = Some(at);
                    None
                }
            }
        });
        let answers = futures_util::future::join_all(asks).await;
        if let Some(p) = answers.into_iter().flatten().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "no replica became master");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn median(v: &mut [i64]) -> f64 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (a) From a role change to the Topology page showing it: N `SENTINEL FAILOVER`s
/// (`CONSOLE_MEASURE_FAILOVERS`, default 5). This process polls ROLE on the replicas
/// every ~2 ms and records when the promoted one first answers master; the page records
/// in `window.consoleLog` when the nodes shown in role master change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: scripts/measure-console.sh"]
async fn measure_role_change_to_page_latency() {
    let runs = env_u64("CONSOLE_MEASURE_FAILOVERS", 5);
    let tmp = tempfile::tempdir().unwrap();
    let (topo, _config) = topology(tmp.path(), "console-latency", |_| {}).await;
    let console = ConsoleProc::start(&explicit_args(&topo, &[]), tmp.path());
    let b = Browser::start("measure-latency")
        .await
        .expect("a browser (install chromium and chromium-driver)");
    open_topology(&b, &console).await;

    let mut rows = Vec::new();
    for run in 1..=runs {
        let master = sentinel_master(&topo).await;
        b.wait_js(
            "only the current master in role master",
            FAILOVER,
            &format!(
                "const f = document.getElementById('topology-fragment'); return f && f.dataset.masters === '{}';",
                name_of(&topo, &master)
            ),
        )
        .await;
        let seen = b
            .js("return window.consoleLog.length;", vec![])
            .await
            .as_u64()
            .unwrap();
        let replicas: Vec<String> = topo
            .state()
            .nodes
            .iter()
            .filter(|n| n.spec.kind != NodeKind::Sentinel && n.spec.addr() != master)
            .map(|n| n.spec.addr())
            .collect();
        let deadline = Instant::now() + FAILOVER;
        let poller = tokio::spawn(first_master(replicas, deadline));
        sentinel_failover(&topo).await;
        let p = poller.await.expect("the ROLE poller");
        let promoted = name_of(&topo, &p.addr);
        let page_ms = b
            .wait_js(
                "the promoted node in role master",
                FAILOVER,
                &format!(
                    "const e = window.consoleLog.slice({seen}).find(e => e.masters.split(',').includes('{promoted}')); return e ? e.t : null;"
                ),
            )
            .await
            .as_u64()
            .unwrap();
        let from_answer = page_ms as i64 - p.answered_ms as i64;
        let from_drop = p.dropped_ms.map(|d| page_ms as i64 - d as i64);
        eprintln!(
            "run {run}: {promoted}'s connection dropped at {:?}, it answered master at {}, the page showed it at {page_ms}",
            p.dropped_ms, p.answered_ms
        );
        rows.push((run, promoted, from_answer, from_drop));
        let healthy = topo.wait_healthy(FAILOVER).await;
        assert!(
            healthy.healthy,
            "healed after run {run}: {:?}",
            healthy.problem
        );
    }
    let mut answers: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let mut drops: Vec<i64> = rows.iter().filter_map(|r| r.3).collect();
    println!(
        "\nrole change -> Topology page (console refresh 250 ms, down-after 1000 ms, {} binary)",
        console_bin().display()
    );
    println!("| run | promoted | first ROLE master answer -> page (ms) | promotion (connection dropped) -> page (ms) |");
    println!("|---|---|---|---|");
    for (run, promoted, answer, drop) in &rows {
        let drop = drop.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        println!("| {run} | {promoted} | {answer} | {drop} |");
    }
    let drop_median = if drops.is_empty() {
        "-".to_string()
    } else {
        median(&mut drops).to_string()
    };
    println!(
        "| median of {runs} | | {} | {drop_median} |",
        median(&mut answers)
    );
    b.close().await;
    drop(console);
    topo.down().await.expect("down");
}

/// (b) The console's RSS idle and its peak (VmHWM) while browsing 1,000,000 keys
/// (`CONSOLE_MEASURE_KEYS`): `CONSOLE_MEASURE_PAGES` (50) pages of 1,000 keys, then a few
/// key views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: scripts/measure-console.sh"]
async fn measure_console_memory_browsing_a_million_keys() {
    let keys = env_u64("CONSOLE_MEASURE_KEYS", 1_000_000);
    let pages = env_u64("CONSOLE_MEASURE_PAGES", 50) as usize;
    let tmp = tempfile::tempdir().unwrap();
    let (topo, config) = topology(tmp.path(), "console-memory", |c| {
        c.memory.maxmemory = "0".into();
    })
    .await;
    let master = addr_of(&topo, NodeKind::Master)[0].clone();
    let t = Instant::now();
    let how = populate(&master, keys).await;
    eprintln!(
        "wrote {keys} keys ({how}) in {} ms",
        t.elapsed().as_millis()
    );
    let console = ConsoleProc::start(&state_file_args(&config, &[]), tmp.path());
    let b = Browser::start("measure-memory")
        .await
        .expect("a browser (install chromium and chromium-driver)");
    open_topology(&b, &console).await;
    let idle = console.memory();

    let t = Instant::now();
    let (seen, shown) = browse_keys(&b, &console, &master, 1000, pages).await;
    let browse_ms = t.elapsed().as_millis();
    let after_pages = console.memory();
    // A few key views: the first keys of the last page.
    let views = 5;
    for k in seen.iter().rev().take(views) {
        let hex: String = k.bytes().map(|b| format!("{b:02x}")).collect();
        b.goto(&console.url(&format!("/key?node={}&k={hex}", percent(&master))))
            .await;
        b.wait_js(
            "the key's viewer",
            PAGE,
            "return !!document.querySelector('#value[data-viewer]');",
        )
        .await;
    }
    let end = console.memory();
    println!(
        "\nconsole memory ({} binary), {keys} keys on the master ({how})",
        console_bin().display()
    );
    println!("| moment | VmRSS MiB | VmHWM (peak) MiB |");
    println!("|---|---|---|");
    println!(
        "| idle, Topology page shown | {:.1} | {:.1} |",
        mib(idle.rss_kib),
        mib(idle.hwm_kib)
    );
    println!(
        "| after {shown} pages of 1000 keys ({} keys, {browse_ms} ms) | {:.1} | {:.1} |",
        seen.len(),
        mib(after_pages.rss_kib),
        mib(after_pages.hwm_kib)
    );
    println!(
        "| after {views} key views | {:.1} | {:.1} |",
        mib(end.rss_kib),
        mib(end.hwm_kib)
    );
    b.close().await;
    drop(console);
    topo.down().await.expect("down");
}
