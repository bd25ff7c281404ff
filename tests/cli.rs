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
    let up = cli().arg("-c").arg(&config).arg("up").output().unwrap();
    assert!(
        up.status.success(),
        "up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );

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

/// Runs `up` with `cfg` written into `dir`; returns (exit code, stderr).
fn up_fails(dir: &std::path::Path, cfg: &redis_harness::config::HarnessConfig) -> (i32, String) {
    let config = write_config(dir, cfg);
    let out = cli()
        .arg("-c")
        .arg(&config)
        .arg("up")
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unwritable_run_dir_is_named_with_what_was_attempted() {
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where a directory should be: creating below it fails even as root
    // (which permission bits would not stop).
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let run_dir = file.join("runs");
    let mut cfg = test_config(&run_dir, "ro");
    cfg.topology.sentinels = 0;
    cfg.topology.quorum = 0;
    let (code, err) = up_fails(tmp.path(), &cfg);
    assert_eq!(code, 1, "{err}");
    let topo_dir = run_dir.join("ro");
    assert!(
        err.contains(&format!(
            "cannot create the topology directory {}: ",
            topo_dir.display()
        )),
        "{err}"
    );
    assert!(err.contains("Not a directory"), "{err}");
    assert!(processes_under(tmp.path()).is_empty());
}

#[test]
fn empty_redis_server_or_run_dir_is_rejected_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path(), "empty");
    cfg.redis_server = "".into();
    let (code, err) = up_fails(tmp.path(), &cfg);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("redis_server: must not be empty"), "{err}");
    assert!(!err.contains("binary not found"), "{err}");

    let mut cfg = test_config(tmp.path(), "empty");
    cfg.run_dir = "".into();
    let (code, err) = up_fails(tmp.path(), &cfg);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("run_dir: must not be empty"), "{err}");
    // Nothing was started in the current directory instead.
    assert!(!tmp.path().join("empty").exists());
    assert!(processes_under(tmp.path()).is_empty());
}

#[test]
fn a_redis_server_that_is_not_executable_is_not_called_missing() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let bin = bin_dir.join("redis-server");
    std::fs::copy(
        redis_harness::topology::process::locate_binary("redis-server".as_ref()).unwrap(),
        &bin,
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();

    // Given as a path.
    let mut cfg = test_config(tmp.path(), "noexec");
    cfg.redis_server = bin.clone();
    let (code, err) = up_fails(tmp.path(), &cfg);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "redis-server binary {} exists but is not executable (mode 644",
            bin.display()
        )),
        "{err}"
    );
    assert!(!err.contains("not found"), "{err}");

    // Found by name on PATH.
    let mut cfg = test_config(tmp.path(), "noexec");
    cfg.redis_server = "redis-server".into();
    let config = write_config(tmp.path(), &cfg);
    let out = cli()
        .arg("-c")
        .arg(&config)
        .arg("up")
        .env("PATH", &bin_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{} exists but is not executable", bin.display())),
        "{err}"
    );
    assert!(processes_under(tmp.path()).is_empty());
}

#[test]
fn drill_repeat_zero_is_a_command_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &test_config(tmp.path(), "rep"));
    for bad in ["0", "101"] {
        let out = cli()
            .arg("-c")
            .arg(&config)
            .args(["drill", "kill-master", "--repeat", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--repeat"), "{err}");
        assert!(err.contains(&format!("{bad} is not in 1..=100")), "{err}");
    }
    // Nothing was started.
    assert!(!tmp.path().join("rep").exists());
}
