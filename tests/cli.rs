//! The real CLI binary: up / status / down from separate processes, foreground Ctrl-C,
//! and configuration errors.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn up_status_down_from_separate_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "cli");
    let config = write_config(tmp.path(), &cfg);
    let _guard = StateGuard(tmp.path().join("cli"));

    let up = cli()
        .arg("--config")
        .arg(&config)
        .arg("up")
        .output()
        .unwrap();
    let up_out = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(up_out.contains("master name mymaster"), "{up_out}");
    assert!(up_out.contains("REDIS_SENTINELS="), "{up_out}");

    let st = cli()
        .arg("--config")
        .arg(&config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(json["healthy"], true, "{json:#}");
    let master = json["connection"]["master"].as_str().unwrap().to_string();
    assert_eq!(json["current_master"], master.as_str());
    assert!(up_out.contains(&master), "up printed the master address");
    let pids: Vec<u32> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(pids.len(), 6);

    let down = cli()
        .arg("--config")
        .arg(&config)
        .arg("down")
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(processes_under(tmp.path()).is_empty());
    assert!(!port_open(&master));

    // Once down, status says so and fails.
    let st = cli()
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("no topology 'cli' is up"));
}

#[test]
fn up_twice_is_refused_while_the_first_is_running() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path(), "twice");
    cfg.topology.replicas = 1;
    cfg.topology.sentinels = 1;
    cfg.topology.quorum = 1;
    let config = write_config(tmp.path(), &cfg);
    let _guard = StateGuard(tmp.path().join("twice"));
    assert!(cli()
        .arg("-c")
        .arg(&config)
        .arg("up")
        .output()
        .unwrap()
        .status
        .success());
    let again = cli().arg("-c").arg(&config).arg("up").output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));
    assert!(cli()
        .arg("-c")
        .arg(&config)
        .args(["down", "--all"])
        .output()
        .unwrap()
        .status
        .success());
    assert!(processes_under(tmp.path()).is_empty());
}

#[test]
fn foreground_up_tears_down_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "fg");
    let config = write_config(tmp.path(), &cfg);
    let _guard = StateGuard(tmp.path().join("fg"));
    let mut child = cli()
        .arg("--config")
        .arg(&config)
        .args(["up", "--foreground"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = tmp.path().join("fg").join("state.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.exists() {
        assert!(
            Instant::now() < deadline,
            "foreground up never became ready"
        );
        assert!(child.try_wait().unwrap().is_none(), "up exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_under(tmp.path()).len(), 6);
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C is a clean exit: {status}");
    assert!(processes_under(tmp.path()).is_empty());
    assert!(!state.exists());
}

#[test]
fn bad_config_is_rejected_with_a_message_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.yaml");
    std::fs::write(&path, "topology:\n  sentinels: 2\n  quorum: 3\n").unwrap();
    let out = cli()
        .arg("-c")
        .arg(&path)
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("topology.quorum: must not exceed topology.sentinels (2) (got 3)"),
        "{err}"
    );

    let out = cli()
        .arg("-c")
        .arg(tmp.path().join("missing.yaml"))
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn config_show_prints_the_effective_config() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("h.yaml");
    std::fs::write(&path, "topology:\n  replicas: 4\n").unwrap();
    let out = cli()
        .arg("-c")
        .arg(&path)
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("replicas: 4"), "{text}");
    assert!(
        text.contains("master_name: mymaster"),
        "defaults filled in: {text}"
    );
    assert!(text.contains("appendfsync: everysec"), "{text}");
}

#[test]
fn serve_uses_the_running_topology_in_sentinel_mode() {
    use std::io::{BufRead, BufReader, Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "serve");
    let config = write_config(tmp.path(), &cfg);
    let _guard = StateGuard(tmp.path().join("serve"));
    assert!(cli()
        .arg("-c")
        .arg(&config)
        .arg("up")
        .output()
        .unwrap()
        .status
        .success());

    let mut child = cli()
        .arg("-c")
        .arg(&config)
        .args(["serve", "--port", "0", "--members", "500", "--database"])
        .arg(format!("sqlite://{}", tmp.path().join("m.db").display()))
        .env("CACHE_ADMIN_TOKEN", "tok")
        .env_remove("REDIS_SENTINELS")
        .env_remove("REDIS_HOST")
        .env_remove("REDIS_PORT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        seen.push(line.clone());
        if let Some(rest) = line.strip_prefix("serving http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    assert!(
        seen.iter()
            .any(|l| l.contains("Sentinel mode, master 'mymaster'")),
        "{seen:?}"
    );
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /api/v1/cache/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"mode\":\"sentinel\""), "{resp}");
    assert!(resp.contains("\"connected\":true"), "{resp}");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(
        child.wait().unwrap().success(),
        "serve exits cleanly on SIGTERM"
    );
    assert!(cli()
        .arg("-c")
        .arg(&config)
        .arg("down")
        .output()
        .unwrap()
        .status
        .success());
}
