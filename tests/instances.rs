//! Several membership API instances as separate processes (`--api-instances`): a real
//! topology, two real `serve` processes on one SQLite database, goose users spread over
//! them, writes through one seen through the other, and no instance left afterwards.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{cli, processes_under, test_config, write_config, StateGuard};

/// Live processes whose command line contains `needle`.
fn processes_naming(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if cmdline.contains(needle) && !zombie {
            out.push((pid, cmdline));
        }
    }
    out
}

/// The ports of the instance URLs in the progress line "N API instances started: ...".
fn started_ports(stderr: &str) -> Vec<u16> {
    let line = stderr
        .lines()
        .find(|l| l.contains("API instances started:"))
        .unwrap_or_else(|| panic!("no instances line in:\n{stderr}"));
    line.split("http://127.0.0.1:")
        .skip(1)
        .map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        })
        .collect()
}

#[test]
fn load_spreads_users_over_two_instance_processes_and_leaves_none() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "fleet");
    let config = write_config(tmp.path(), &cfg);
    let _guard = StateGuard(tmp.path().join("fleet-verify"));
    let out_dir = tmp.path().join("reports");
    // Every kind of user is spread over both instances; many writers make reads of
    // written members frequent.
    let out = cli()
        .arg("-c")
        .arg(&config)
        .args([
            "load",
            "--api-instances",
            "2",
            "--run-time",
            "6",
            "--warmup",
        ])
        .args([
            "0",
            "--users",
            "8",
            "--members",
            "2000",
            "--writer-percent",
            "50",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("starting 2 membership API instances as separate processes"),
        "{stderr}"
    );
    let ports = started_ports(&stderr);
    assert_eq!(ports.len(), 2, "{stderr}");

    let text = std::fs::read_to_string(out_dir.join("load.json")).unwrap();
    let load: loadtests::LoadResults = serde_json::from_str(&text).unwrap();
    assert_eq!(load.instances.len(), 2, "{text}");
    for (i, port) in load.instances.iter().zip(&ports) {
        assert_eq!(i.host, format!("http://127.0.0.1:{port}"));
        assert!(i.requests > 0, "{i:?}");
        assert_eq!(i.errors, 0, "{i:?}");
    }
    assert_eq!(load.errors, 0);
    // Writers and readers on both instances: reads of written members were judged, and
    // none served an older value than had been acknowledged through either instance.
    assert!(load.routes.iter().any(|r| r.route.starts_with("PUT ")));
    assert!(load.stale.checked() > 0, "{:?}", load.stale);
    let across: u64 = load.stale.routes.iter().map(|r| r.cross_instance).sum();
    assert!(
        across > 0,
        "writes through one instance bound reads through the other: {:?}",
        load.stale
    );
    assert_eq!(load.stale.violations(), 0, "{:?}", load.stale);

    // Every report names both instances.
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(md.contains("## API instances (2)"), "{md}");
    assert!(html.contains("<h2>API instances (2)</h2>"));
    for p in &ports {
        let host = format!("http://127.0.0.1:{p}");
        assert!(md.contains(&host) && html.contains(&host) && stdout.contains(&host));
    }

    // Each instance logged into its own file in the topology directory, and none is left.
    let dir = tmp.path().join("fleet-verify");
    for n in [1, 2] {
        let log = std::fs::read_to_string(dir.join(format!("api-{n}.log"))).unwrap();
        assert!(log.contains("serving http://127.0.0.1:"), "{log}");
    }
    assert_no_instance_left(tmp.path(), &ports);
}

/// No `serve` process naming the test's directory or an instance's port is left, and
/// no port of an instance still accepts connections; then (within 10 s, as the topology's
/// nodes are reaped) no process at all under the test's directory.
fn assert_no_instance_left(tmp: &Path, ports: &[u16]) {
    let serve = |needle: &str| -> Vec<(u32, String)> {
        processes_naming(needle)
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(" serve "))
            .collect()
    };
    let left = serve(&tmp.display().to_string());
    assert!(left.is_empty(), "instances left: {left:?}");
    for p in ports {
        let left = serve(&format!("--port {p} "));
        assert!(left.is_empty(), "instances left on port {p}: {left:?}");
        assert!(!common::port_open(&format!("127.0.0.1:{p}")), "port {p}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_under(tmp).is_empty() {
        assert!(Instant::now() < deadline, "processes left under {tmp:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_stops_every_instance_process() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "fleetc");
    let config = write_config(tmp.path(), &cfg);
    let _guard = StateGuard(tmp.path().join("fleetc-verify"));
    let log = tmp.path().join("stderr.txt");
    let mut child = cli()
        .arg("-c")
        .arg(&config)
        .args([
            "load",
            "--api-instances",
            "3",
            "--run-time",
            "60",
            "--warmup",
        ])
        .args(["0", "--users", "4", "--members", "2000", "--out"])
        .arg(tmp.path().join("reports"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ports = loop {
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        if stderr.contains("API instances started:") {
            break started_ports(&stderr);
        }
        assert!(Instant::now() < deadline, "no instance started:\n{stderr}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited early:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ports.len(), 3);
    // Into the load, with every instance answering.
    std::thread::sleep(Duration::from_secs(3));
    let serving: Vec<_> = processes_naming(&tmp.path().display().to_string())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(" serve "))
        .collect();
    assert_eq!(serving.len(), 3, "{serving:?}");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Stopped before the harness exited, not some time after.
    assert_no_instance_left(tmp.path(), &ports);
}

#[test]
fn api_instances_out_of_range_is_a_command_line_error() {
    for n in ["0", "17"] {
        let out = cli().args(["load", "--api-instances", n]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--api-instances") && stderr.contains("1..=16"),
            "{stderr}"
        );
    }
    let out = cli()
        .args([
            "load",
            "--host",
            "http://127.0.0.1:9",
            "--api-instances",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--api-instances") && stderr.contains("--host"),
        "{stderr}"
    );
}
