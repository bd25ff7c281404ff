//! A real headless Chromium for the console's browser tests, driven over WebDriver.
//!
//! [`Browser::start`] runs `chromedriver --port=<free port>` as a child process in its own
//! process group (Chromium runs under it), opens a session with `--headless=new
//! --no-sandbox --disable-gpu --window-size=1400,900`, and keeps the profile and Chromium's
//! temporary files in a scratch directory of its own. Dropping the [`Browser`] kills the
//! whole group and removes the scratch directory, so a panicking test leaves no browser
//! behind. Screenshots go to `target/console-screenshots/` as PNG.
//!
//! Where Chromium or chromedriver is missing, `start` prints why and returns `None` (the
//! test skips), unless [`REQUIRE`] is `1` (CI sets it): then it panics saying so.

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// Set to `1` to make browser tests fail, instead of skip, where no browser is installed.
pub const REQUIRE: &str = "REDIS_HARNESS_REQUIRE_BROWSER";

/// How long chromedriver has to answer `/status` and a session to open.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Names Chromium goes by on `PATH`.
const CHROMIUM: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or why not: a skip, or a panic when [`REQUIRE`] is `1`.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = on_path(&CHROMIUM);
    let driver = on_path(&["chromedriver"]);
    let why = match (&chromium, &driver) {
        (Some(c), Some(d)) => return Some((c.clone(), d.clone())),
        (None, None) => "neither chromium nor chromedriver is on PATH",
        (None, _) => "chromium is not on PATH",
        (_, None) => "chromedriver is not on PATH",
    };
    let hint =
        "install them with `./scripts/setup.sh --browser` (Debian: chromium chromium-driver)";
    if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
        panic!("{REQUIRE}=1 but {why}; {hint}");
    }
    eprintln!("SKIP: {why}; {hint} (set {REQUIRE}=1 to fail instead)");
    None
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 for a free port")
        .port()
}

/// Where screenshots go: `<target dir>/console-screenshots` (the target directory is the
/// one this test binary was built into).
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("console-screenshots")
}

/// A headless Chromium session; dropping it kills chromedriver and Chromium.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    /// Profile and temporary files of this browser alone.
    scratch: tempfile::TempDir,
    /// Prefix of this test's screenshots.
    test: String,
}

impl Browser {
    /// Starts chromedriver and a headless session; `None` (after printing why) when no
    /// browser is installed and [`REQUIRE`] is not `1`. `test` prefixes screenshot names.
    pub async fn start(test: &str) -> Option<Browser> {
        let (chromium, driver) = binaries()?;
        let scratch = tempfile::tempdir().expect("a scratch directory for the browser");
        let log = scratch.path().join("chromedriver.log");
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .env("TMPDIR", scratch.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let mut browser = Browser {
            client: None,
            driver: child,
            scratch,
            test: test.to_string(),
        };
        let url = format!("http://127.0.0.1:{port}");
        browser.wait_driver(&url, &log).await;

        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1400,900",
                    format!("--user-data-dir={}", browser.scratch.path().join("profile").display()),
                ],
            }),
        );
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = tokio::time::timeout(START_DEADLINE, builder.connect(&url))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no Chromium session within {START_DEADLINE:?}; chromedriver log:\n{}",
                    tail(&log)
                )
            })
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver did not open a session: {e}; its log:\n{}",
                    tail(&log)
                )
            });
        browser.client = Some(client);
        Some(browser)
    }

    /// Waits until chromedriver answers `/status` ready; panics with its log otherwise.
    async fn wait_driver(&mut self, url: &str, log: &Path) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited with {status}; its log:\n{}", tail(log));
            }
            let ready = http
                .get(format!("{url}/status"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(r) = ready {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within {START_DEADLINE:?}; its log:\n{}",
                tail(log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Navigates to `url` and waits for the load.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `check` until it gives `Some`, for at most `timeout`; panics naming `what`
    /// (and saves a screenshot) otherwise. A deadline, not a timed assertion: the test
    /// goes on as soon as the page shows what it waits for.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot("timeout").await;
                panic!(
                    "the page did not show {what} within {timeout:?} (screenshot: {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `script` (a function body) returns something other than null, false
    /// or undefined, and returns it.
    pub async fn wait_js(&self, what: &str, timeout: Duration, script: &str) -> Value {
        self.wait_for(what, timeout, || async {
            let v = self.js(script, vec![]).await;
            (!v.is_null() && v != json!(false)).then_some(v)
        })
        .await
    }

    /// Saves a screenshot of the page as `<test>-<name>.png` under [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        let path = dir.join(format!("{}-{name}.png", self.test));
        let png = self
            .client()
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        std::fs::write(&path, png).expect("write the screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own group, and Chromium's processes stay in it.
        let pgid = self.driver.id() as libc::pid_t;
        // SAFETY: signals a process group this browser created; no memory is involved.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

/// The last lines of a log file, for a panic message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
