//! The docker backend on the real Docker engine: up/status/down with the same readiness
//! rules, nothing left after down, a failed up or a panic; kill-master with a
//! Sentinel-mode client on the host; the partition drill with and without
//! min-replicas-to-write (the Jepsen reproduction); clear errors without an engine or an
//! image; nothing published on the host unless `docker.publish` (then loopback only);
//! networks labelled from creation, so `down --all` removes them after a harness killed
//! early in `up`; the commander (the harness's console as a container) on loopback with
//! its token, removed with the rest; the compose file with the offline images. The
//! offline images are built (`scripts/build-offline-image.sh`) when one is missing.
//! Where no engine answers, each test prints why and returns, unless
//! `REDIS_HARNESS_REQUIRE_DOCKER=1` (CI sets it): then each fails saying so.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use common::{cli, port_open, test_config, write_config};
use redis_harness::config::{BackendKind, HarnessConfig};
use redis_harness::drill::{self, history, DrillKind, Rng};
use redis_harness::topology::{docker, Topology};

const IMAGE: &str = "redis-harness/redis:offline";

/// The commander's image (the harness binary).
const CONSOLE_IMAGE: &str = "redis-harness/console:offline";

/// Set to `1` to make these tests fail, instead of skip, where no engine answers.
const REQUIRE: &str = "REDIS_HARNESS_REQUIRE_DOCKER";

/// Whether an engine answers; builds the offline images once when one is missing. Without
/// an engine: false (the test skips), or a panic when [`REQUIRE`] is `1`.
fn engine() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let info = Command::new("docker").arg("info").output();
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "no Docker engine answers `docker info`: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => return Err(format!("cannot run `docker info`: {e}")),
        }
        let have = Command::new("docker")
            .args(["image", "inspect", IMAGE, CONSOLE_IMAGE])
            .output()
            .is_ok_and(|o| o.status.success());
        if !have {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-offline-image.sh");
            let out = Command::new(script)
                .args([IMAGE, CONSOLE_IMAGE])
                .output()
                .expect("run the image script");
            assert!(
                out.status.success(),
                "building {IMAGE} and {CONSOLE_IMAGE} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    });
    match ready {
        Ok(()) => true,
        Err(why) if std::env::var(REQUIRE).is_ok_and(|v| v == "1") => {
            panic!("{REQUIRE}=1 but {why}")
        }
        Err(why) => {
            eprintln!("SKIP: {why} (set {REQUIRE}=1 to fail instead)");
            false
        }
    }
}

/// The nodes alone: the commander's own tests turn it on ([`commander_config`]).
fn docker_config(dir: &Path, name: &str) -> HarnessConfig {
    let mut cfg = test_config(dir, name);
    cfg.backend = BackendKind::Docker;
    cfg.docker.image = IMAGE.into();
    cfg.docker.console = false;
    cfg.drill.pre_fault_ms = 1000;
    cfg.drill.post_recovery_ms = 1000;
    cfg
}

/// The nodes and the commander (the default on docker).
fn commander_config(dir: &Path, name: &str) -> HarnessConfig {
    let mut cfg = docker_config(dir, name);
    cfg.docker.console = true;
    cfg.docker.console_image = CONSOLE_IMAGE.into();
    cfg
}

/// GET `url`, redirects not followed, with `Authorization: Bearer` or a cookie when
/// given: status, `Location` and `Set-Cookie` (empty when absent), body.
async fn get(
    url: &str,
    bearer: Option<&str>,
    cookie: Option<&str>,
) -> (u16, String, String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let mut req = http.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cookie {
        req = req.header(reqwest::header::COOKIE, c);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |h| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (location, set_cookie) = (
        header(reqwest::header::LOCATION),
        header(reqwest::header::SET_COOKIE),
    );
    (
        r.status().as_u16(),
        location,
        set_cookie,
        r.text().await.unwrap_or_default(),
    )
}

/// Polls `url` with the bearer `token` until the page holds every one of `needles`;
/// panics with the last page after 30 s.
async fn page_with(url: &str, token: &str, needles: &[String]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _, _, body) = get(url, Some(token), None).await;
        if status == 200 && needles.iter().all(|n| body.contains(n.as_str())) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never showed all of {needles:?} (status {status}):\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Containers labelled with `run_dir`, and networks named after topologies there.
fn leftovers(run_dir: &Path) -> Vec<String> {
    let label = format!("label={}={}", docker::LABEL_RUN_DIR, run_dir.display());
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Removes every container and network labelled with the run directory, and the
/// networks it names, when dropped, so a failing test leaves nothing in the engine.
struct EngineGuard(std::path::PathBuf, Vec<String>);

impl Drop for EngineGuard {
    fn drop(&mut self) {
        let label = format!("label={}={}", docker::LABEL_RUN_DIR, self.0.display());
        let named: Vec<&String> = self.1.iter().filter(|n| network_exists(n)).collect();
        for (list, rm) in [
            (&["ps", "-aq"][..], &["rm", "-f", "-v"][..]),
            (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        ] {
            let Ok(out) = Command::new("docker")
                .args(list)
                .args(["--filter", &label])
                .output()
            else {
                return;
            };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(rm).args(&ids).output();
            }
        }
        if !named.is_empty() {
            let _ = Command::new("docker")
                .args(["network", "rm"])
                .args(named)
                .output();
        }
    }
}

/// The guard of topology `name` under `run_dir`.
fn guard(run_dir: &Path, name: &str) -> EngineGuard {
    let net = docker::network_name(name, &run_dir.join(name));
    EngineGuard(run_dir.to_path_buf(), vec![net])
}

/// `docker inspect -f FORMAT NAME`, parsed as JSON.
fn inspect(name: &str, format: &str) -> serde_json::Value {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker inspect {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// TCP listeners of docker-proxy (the engine's userland port publisher) as `ss` shows
/// them: local addresses such as `0.0.0.0:49153`. `None` when `ss` is not installed.
fn docker_proxy_listeners() -> Option<Vec<String>> {
    let out = Command::new("ss").args(["-ltnpH"]).output().ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("docker-proxy"))
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect(),
    )
}

fn network_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["network", "inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn up_status_down_on_docker_leave_no_container_or_network() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = docker_config(tmp.path(), "dk");
    let config = write_config(tmp.path(), &cfg);
    let _guard = guard(tmp.path(), "dk");
    let run = |args: &[&str]| cli().arg("-c").arg(&config).args(args).output().unwrap();
    let up = run(&["up", "--json"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    assert_eq!(status["backend"], "docker");
    assert_eq!(status["healthy"], true, "{status}");
    // docker.console: false: the nodes and no commander.
    assert_eq!(status["connection"]["console"], serde_json::Value::Null);
    let names = leftovers(tmp.path());
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(
        !names.iter().any(|n| n.ends_with("-commander")),
        "{names:?}"
    );
    let st = run(&["status"]);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("dk/state.json")).unwrap())
            .unwrap();
    let network = state["network"].as_str().unwrap().to_string();
    assert!(network_exists(&network));
    assert!(state.get("console").is_none(), "{state}");
    // Every address was planned before the first container started: a /24 of
    // docker.subnets, the gateway first, then the nodes in plan order, and each container
    // has the address its config names.
    let ipam = inspect(&network, "{{json .IPAM.Config}}");
    let subnet = ipam[0]["Subnet"].as_str().unwrap().to_string();
    let pool = docker::Subnet::parse(&cfg.docker.subnets).unwrap();
    let ours = docker::Subnet::parse(&subnet).unwrap();
    assert!(ours.prefix == 24 && pool.overlaps(&ours), "{ipam}");
    for (i, n) in state["nodes"].as_array().unwrap().iter().enumerate() {
        let host = n["host"].as_str().unwrap();
        assert_eq!(host, ours.nth(2 + i as u32).to_string(), "{n}");
        let id = n["container"].as_str().unwrap();
        let live = inspect(
            id,
            &format!("{{{{json (index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        );
        assert_eq!(live, host, "{n}");
    }
    let down = run(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(leftovers(tmp.path()).is_empty());
    assert!(!network_exists(&network));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_up_removes_what_it_started() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = docker_config(tmp.path(), "dkfail");
    // Containers start, readiness cannot be reached this fast.
    cfg.readiness_timeout_ms = 1;
    let e = Topology::up(&cfg).await.unwrap_err().to_string();
    assert!(e.contains("not ready"), "{e}");
    assert!(leftovers(tmp.path()).is_empty());
    let net = docker::network_name("dkfail", &tmp.path().join("dkfail"));
    assert!(!network_exists(&net), "{net} left behind");
}

#[test]
fn a_panic_with_a_live_topology_leaves_nothing() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // With the commander: dropping the handle removes it too.
    let cfg = commander_config(tmp.path(), "dkpanic");
    let _guard = guard(tmp.path(), "dkpanic");
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let topo = Topology::up(&cfg).await.expect("up");
            assert!(topo.connection_info().console.is_some());
            panic!("a test failing while its topology runs");
        })
    });
    assert!(handle.join().is_err());
    assert!(leftovers(tmp.path()).is_empty());
    let net = docker::network_name("dkpanic", &tmp.path().join("dkpanic"));
    assert!(!network_exists(&net), "{net} left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_master_on_docker_with_a_sentinel_client_on_the_host() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = docker_config(tmp.path(), "dkkill");
    let r = drill::run_once(&cfg, DrillKind::KillMaster, 1, &mut Rng::new(3), false)
        .await
        .expect("drill runs");
    assert!(r.passed(), "{:#?}", r.checks);
    // The workload's client found the master through the Sentinels' announcements
    // (container addresses) and followed the failover: writes were acknowledged after it.
    let se = r.client("sentinel-events").unwrap();
    assert!(se.analysis.writes_recovered);
    assert!(r.new_master.as_deref().is_some_and(|m| m != r.old_master));
    assert!(leftovers(tmp.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_loses_acknowledged_writes_unless_min_replicas_bounds_them() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Asynchronous replication, no min-replicas-to-write: the isolated master keeps
    // acknowledging writes that the failover then discards.
    let unsafe_cfg = docker_config(tmp.path(), "dkpart");
    let r = drill::run_once(&unsafe_cfg, DrillKind::Partition, 1, &mut Rng::new(5), true)
        .await
        .expect("drill runs");
    assert!(r.passed(), "{:#?}", r.checks);
    for c in &r.clients {
        assert!(
            c.figures.lost_acked_writes.unwrap_or(0) > 0,
            "{}: the Jepsen loss did not show: {:?}",
            c.name,
            c.figures
        );
    }

    // min-replicas-to-write 1 with a 1 s lag: the isolated master refuses writes once its
    // replicas go quiet (after at most ~2 s: lag plus the 1 s ack interval), so every lost
    // write was acknowledged within that window. Detection is slowed to 3 s so the
    // failover cannot move the clients before the refusals start (at down-after 1000 it
    // sometimes does, and then nothing is refused).
    let mut safe = docker_config(tmp.path(), "dkpartsafe");
    safe.replication.min_replicas_to_write = 1;
    safe.replication.min_replicas_max_lag = 1;
    safe.sentinel.down_after_ms = 3000;
    let s = drill::run_once(&safe, DrillKind::Partition, 1, &mut Rng::new(5), true)
        .await
        .expect("drill runs");
    assert!(s.passed(), "{:#?}", s.checks);
    let bound_us = 3_000_000; // max-lag (1 s) + ack interval (1 s) + margin
    for c in &s.clients {
        assert!(
            c.figures.failed_ops > 0,
            "{}: no write was refused: {:?}",
            c.name,
            c.figures
        );
        let h = c.history.as_ref().unwrap();
        for w in history::lost_writes(h) {
            assert!(
                w.complete_us - h.fault_us <= bound_us,
                "{}: a write acknowledged {} ms after the partition was lost",
                c.name,
                (w.complete_us - h.fault_us) / 1000
            );
        }
    }
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn no_engine_and_no_image_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = docker_config(tmp.path(), "dkerr");
    let config = write_config(tmp.path(), &cfg);
    let out = cli()
        .arg("-c")
        .arg(&config)
        .arg("up")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no Docker engine answers"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    if !engine() {
        return;
    }
    let mut cfg = cfg;
    cfg.docker.image = "redis-harness/no-such-image:none".into();
    let config = write_config(tmp.path(), &cfg);
    let out = cli().arg("-c").arg(&config).arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("scripts/build-offline-image.sh"), "{e}");
    assert!(leftovers(tmp.path()).is_empty());
    // The commander's image is never pulled: missing, `up` says how to get it, before
    // anything starts.
    let mut cfg = commander_config(tmp.path(), "dkerr");
    cfg.docker.console_image = "redis-harness/no-such-console:none".into();
    let config = write_config(tmp.path(), &cfg);
    let out = cli().arg("-c").arg(&config).arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("console image redis-harness/no-such-console:none is not in the Docker engine; build it with scripts/build-offline-image.sh, or set docker.console: false"),
        "{e}"
    );
    assert!(leftovers(tmp.path()).is_empty());
    let net = docker::network_name("dkerr", &tmp.path().join("dkerr"));
    assert!(!network_exists(&net), "{net} left behind");
}

/// The compose command that answers here: `docker-compose` (v1) or `docker compose`
/// (v2); `None` when neither is installed.
fn compose_command() -> Option<Vec<&'static str>> {
    [&["docker-compose"][..], &["docker", "compose"][..]]
        .into_iter()
        .find(|c| {
            Command::new(c[0])
                .args(&c[1..])
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(<[&str]>::to_vec)
}

/// One compose project on `docker/compose.yaml` with the offline images, a console port
/// and a token; `down -v` when dropped, so a failing test leaves nothing running.
struct Compose {
    cmd: Vec<&'static str>,
    project: String,
    port: u16,
    token: String,
}

impl Compose {
    /// `compose -p PROJECT -f docker/compose.yaml ARGS` with the project's environment
    /// (every compose command interpolates the whole file, so each needs the token).
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.cmd[0])
            .args(&self.cmd[1..])
            .args(["-p", &self.project, "-f", "docker/compose.yaml"])
            .args(args)
            .env("REDIS_IMAGE", IMAGE)
            .env("CONSOLE_IMAGE", CONSOLE_IMAGE)
            .env("CONSOLE_PORT", self.port.to_string())
            .env("REDIS_HARNESS_CONSOLE_TOKEN", &self.token)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v"]);
    }
}

/// A port free on loopback right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_file_brings_up_the_topology_and_the_commander_with_the_offline_images() {
    if !engine() {
        return;
    }
    let Some(cmd) = compose_command() else {
        eprintln!("SKIP: neither docker-compose nor `docker compose` is installed");
        return;
    };
    let project = format!("rhcompose{}", std::process::id());
    let compose = Compose {
        cmd,
        project: project.clone(),
        port: free_port(),
        token: "compose-test-token-0123456789".into(),
    };
    // The default services: the topology and the commander (the upstream Redis
    // Commander sits under a profile: it needs a registry).
    let up = compose.run(&["up", "-d"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let id = compose.run(&["ps", "-q", "sentinel-1"]);
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let ip = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &id,
        ])
        .output()
        .unwrap();
    let ip = String::from_utf8_lossy(&ip.stdout).trim().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = Command::new("redis-cli")
            .args(["-h", &ip, "-p", "26379", "SENTINEL", "MASTER", "mymaster"])
            .output()
            .unwrap();
        let last = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = last.lines().collect();
        let field = |k: &str| {
            lines
                .iter()
                .position(|l| *l == k)
                .and_then(|i| lines.get(i + 1).copied())
        };
        if field("flags") == Some("master")
            && field("num-slaves") == Some("2")
            && field("num-other-sentinels") == Some("2")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the compose topology never became ready: {last}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // The console, on loopback only, with the token from the environment; it resolves
    // the service names the Sentinels announce inside the network.
    let base = format!("http://127.0.0.1:{}", compose.port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while get(&format!("{base}/healthz"), None, None).await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the commander never answered: {}",
            String::from_utf8_lossy(&compose.run(&["logs", "commander"]).stdout)
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(get(&format!("{base}/topology"), None, None).await.0, 401);
    let needles = [
        "data-role=\"master\"".to_string(),
        "data-sentinel=".to_string(),
    ];
    let page = page_with(&format!("{base}/topology"), &compose.token, &needles).await;
    assert_eq!(page.matches("<tr data-node=").count(), 3, "{page}");
    assert_eq!(page.matches("data-role=\"master\"").count(), 1, "{page}");
    // Every Sentinel once, by the service name it announces.
    for i in 1..=3 {
        assert!(
            page.contains(&format!("data-sentinel=\"sentinel-{i}:26379\"")),
            "{page}"
        );
    }
    assert_eq!(page.matches("<tr data-sentinel=").count(), 3, "{page}");
    drop(compose);
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "compose left containers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_docker_starts_the_commander_on_loopback_behind_its_token() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _guard = guard(tmp.path(), "dkcon");
    let mut cfg = commander_config(tmp.path(), "dkcon");
    cfg.password = Some("s3cret-pw".into());
    let config = write_config(tmp.path(), &cfg);
    let run = |args: &[&str]| cli().arg("-c").arg(&config).args(args).output().unwrap();
    let up = run(&["up", "--backend", "docker", "--json"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    assert_eq!(status["healthy"], true, "{status}");
    let url = status["connection"]["console"]
        .as_str()
        .expect("a console URL");
    let (base, token) = url.split_once("/?token=").expect("the URL holds the token");
    assert!(base.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(token.len(), 32, "{url}");

    // One more container, labelled like the nodes, published on loopback only, with no
    // secret on its command line.
    let names = leftovers(tmp.path());
    assert_eq!(names.len(), 7, "{names:?}");
    let commander = names
        .iter()
        .find(|n| n.ends_with("-commander"))
        .expect("a commander container");
    let labels = inspect(commander, "{{json .Config.Labels}}");
    assert_eq!(labels[docker::LABEL_NODE], "commander", "{labels}");
    assert_eq!(labels[docker::LABEL_TOPOLOGY], "dkcon", "{labels}");
    assert_eq!(
        labels[docker::LABEL_RUN_DIR],
        tmp.path().display().to_string(),
        "{labels}"
    );
    let ports = inspect(commander, "{{json .NetworkSettings.Ports}}");
    let bindings = ports["8081/tcp"].as_array().expect("8081 is published");
    for b in bindings {
        assert_eq!(b["HostIp"], "127.0.0.1", "{ports}");
    }
    assert!(
        base.ends_with(bindings[0]["HostPort"].as_str().unwrap()),
        "{ports}"
    );
    let cmd = inspect(commander, "{{json .Config.Cmd}}").to_string();
    assert!(
        cmd.contains("--sentinels") && cmd.contains("--node"),
        "{cmd}"
    );
    assert!(!cmd.contains(token) && !cmd.contains("s3cret-pw"), "{cmd}");
    if let Some(listeners) = docker_proxy_listeners() {
        let open: Vec<_> = listeners
            .iter()
            .filter(|a| !a.starts_with("127.0.0.1:"))
            .collect();
        assert!(
            open.is_empty(),
            "docker-proxy listens beyond loopback: {open:?}"
        );
    }

    // /healthz is open; everything else needs the token.
    let (code, _, _, body) = get(&format!("{base}/healthz"), None, None).await;
    assert_eq!((code, body.trim()), (200, "ok"));
    assert_eq!(get(&format!("{base}/"), None, None).await.0, 401);
    assert_eq!(get(&format!("{base}/topology"), None, None).await.0, 401);
    assert_eq!(
        get(
            &format!("{base}/topology"),
            Some("not-the-token-at-all"),
            None
        )
        .await
        .0,
        401
    );
    // The printed URL trades the token for a cookie, which then opens the pages.
    let (code, location, set_cookie, _) = get(url, None, None).await;
    assert!((300..400).contains(&code), "{code}");
    assert_eq!(location, "/");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let port = base.rsplit(':').next().unwrap();
    assert!(
        cookie.starts_with(&format!("rh_console_{port}=")),
        "{set_cookie}"
    );
    assert_eq!(
        get(&format!("{base}/topology"), None, Some(&cookie))
            .await
            .0,
        200
    );
    // Every node, by name, seen through the password the container got in its
    // environment.
    let mut needles: Vec<String> = ["master", "replica-1", "replica-2"]
        .iter()
        .map(|n| format!("data-node=\"{n}\""))
        .collect();
    needles.extend((1..=3).map(|i| format!("data-sentinel=\"sentinel-{i}\"")));
    needles.push("data-node=\"master\" data-role=\"master\"".into());
    page_with(&format!("{base}/topology"), token, &needles).await;

    let st = run(&["status"]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success(), "{text}");
    assert!(text.contains(&format!("console     {url}")), "{text}");

    let network = docker::network_name("dkcon", &tmp.path().join("dkcon"));
    let down = run(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(leftovers(tmp.path()).is_empty());
    assert!(!network_exists(&network), "{network} left behind");
    assert!(
        !port_open(base.trim_start_matches("http://")),
        "{base} still answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commander_that_cannot_start_fails_up_and_leaves_nothing() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _guard = guard(tmp.path(), "dkconfail");
    let mut cfg = commander_config(tmp.path(), "dkconfail");
    // An image without the harness in it: the container is created, then cannot start.
    cfg.docker.console_image = IMAGE.into();
    cfg.topology.replicas = 0;
    cfg.topology.sentinels = 1;
    cfg.topology.quorum = 1;
    let e = Topology::up(&cfg).await.unwrap_err().to_string();
    assert!(e.contains("console (commander) failed to start"), "{e}");
    assert!(e.contains("-commander"), "{e}");
    assert!(leftovers(tmp.path()).is_empty());
    let net = docker::network_name("dkconfail", &tmp.path().join("dkconfail"));
    assert!(!network_exists(&net), "{net} left behind");
}

#[test]
fn up_on_docker_publishes_nothing_on_the_host() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _guard = guard(tmp.path(), "dkpub0");
    let mut cfg = docker_config(tmp.path(), "dkpub0");
    cfg.backend = BackendKind::Process; // the command line picks docker
    cfg.topology.replicas = 1;
    cfg.topology.sentinels = 1;
    cfg.topology.quorum = 1;
    let config = write_config(tmp.path(), &cfg);
    let run = |args: &[&str]| cli().arg("-c").arg(&config).args(args).output().unwrap();
    let up = run(&["up", "--backend", "docker"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let names = leftovers(tmp.path());
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        let publish_all = inspect(name, "{{json .HostConfig.PublishAllPorts}}");
        assert_eq!(publish_all, false, "{name}: PublishAllPorts");
        let bindings = inspect(name, "{{json .HostConfig.PortBindings}}");
        assert!(
            bindings.is_null() || bindings.as_object().is_some_and(|m| m.is_empty()),
            "{name} asks for port bindings: {bindings}"
        );
        // What the engine really published: every exposed port maps to nothing.
        let ports = inspect(name, "{{json .NetworkSettings.Ports}}");
        for (port, published) in ports.as_object().into_iter().flatten() {
            assert!(published.is_null(), "{name} publishes {port}: {published}");
        }
    }
    if let Some(listeners) = docker_proxy_listeners() {
        let open: Vec<_> = listeners
            .iter()
            .filter(|a| !a.starts_with("127.0.0.1:"))
            .collect();
        assert!(
            open.is_empty(),
            "docker-proxy listens beyond loopback: {open:?}"
        );
    }
    let down = run(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn docker_publish_binds_the_node_port_on_loopback_only() {
    use std::io::{Read, Write};
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _guard = guard(tmp.path(), "dkpub1");
    let mut cfg = docker_config(tmp.path(), "dkpub1");
    cfg.docker.publish = true;
    cfg.topology.replicas = 0;
    cfg.topology.sentinels = 0;
    cfg.topology.quorum = 0;
    let config = write_config(tmp.path(), &cfg);
    let run = |args: &[&str]| cli().arg("-c").arg(&config).args(args).output().unwrap();
    let up = run(&["up"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let names = leftovers(tmp.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let name = &names[0];
    assert_eq!(inspect(name, "{{json .HostConfig.PublishAllPorts}}"), false);
    let ports = inspect(name, "{{json .NetworkSettings.Ports}}");
    let bindings = ports["6379/tcp"].as_array().expect("6379 is published");
    assert!(!bindings.is_empty(), "{ports}");
    for b in bindings {
        assert_eq!(b["HostIp"], "127.0.0.1", "{ports}");
    }
    // Only the node port is published.
    for (port, published) in ports.as_object().unwrap() {
        assert!(port == "6379/tcp" || published.is_null(), "{ports}");
    }
    let host_port = bindings[0]["HostPort"].as_str().unwrap().to_string();
    // The published port answers on loopback.
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{host_port}")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    if let Some(listeners) = docker_proxy_listeners() {
        let open: Vec<_> = listeners
            .iter()
            .filter(|a| !a.starts_with("127.0.0.1:"))
            .collect();
        assert!(
            open.is_empty(),
            "docker-proxy listens beyond loopback: {open:?}"
        );
    }
    assert!(run(&["down"]).status.success());
    assert!(leftovers(tmp.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_all_removes_a_labelled_network_with_no_container() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _guard = guard(tmp.path(), "dknet");
    let cfg = docker_config(tmp.path(), "dknet");
    let config = write_config(tmp.path(), &cfg);
    // The network exactly as `up` creates it, before any container.
    let d = docker::client().unwrap();
    let net = docker::network_name("dknet", &tmp.path().join("dknet"));
    let pool = docker::Subnet::parse(&cfg.docker.subnets).unwrap();
    docker::create_network(
        &d,
        &net,
        &docker::topology_labels("dknet", tmp.path()),
        pool,
    )
    .await
    .unwrap();
    let labels = inspect(&net, "{{json .Labels}}");
    assert_eq!(labels[docker::LABEL_TOPOLOGY], "dknet", "{labels}");
    assert_eq!(
        labels[docker::LABEL_RUN_DIR],
        tmp.path().display().to_string(),
        "{labels}"
    );
    let down = cli()
        .arg("-c")
        .arg(&config)
        .args(["down", "--all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(down.status.success(), "{err}");
    assert!(!network_exists(&net), "{net} left behind: {err}");
    assert!(err.contains(&net), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harness_killed_early_in_up_leaves_only_what_down_all_finds() {
    if !engine() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _guard = guard(tmp.path(), "dkkilled");
    let cfg = docker_config(tmp.path(), "dkkilled");
    let config = write_config(tmp.path(), &cfg);
    let net = docker::network_name("dkkilled", &tmp.path().join("dkkilled"));
    let run_dir = tmp.path().display().to_string();
    let d = docker::client().unwrap();
    let mut child = cli()
        .arg("-c")
        .arg(&config)
        .arg("up")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL the harness the moment its network exists (labelled), as early into `up`
    // as the engine lets us see; nothing of it runs afterwards.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let labelled = docker::networks_labelled(&d, docker::LABEL_RUN_DIR, &run_dir)
            .await
            .unwrap();
        if labelled.contains(&net) {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("up finished ({status}) and its network {net} never carried the labels");
        }
        assert!(std::time::Instant::now() < deadline, "no network appeared");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.wait().unwrap();
    assert!(network_exists(&net));
    let down = cli()
        .arg("-c")
        .arg(&config)
        .args(["down", "--all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&down.stderr);
    eprintln!("down --all after the kill: {err}");
    assert!(down.status.success(), "{err}");
    assert!(!network_exists(&net), "{net} left behind: {err}");
    assert!(leftovers(tmp.path()).is_empty(), "{err}");
}
