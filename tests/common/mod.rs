//! Helpers shared by the integration tests: isolated configs, process scans, guards.
#![allow(dead_code)]

pub mod browser;

use std::path::{Path, PathBuf};
use std::time::Duration;

use redis_harness::config::HarnessConfig;
use redis_harness::topology::{process, state::TopologyState};

/// A config for one test: its own run directory, a unique name, short timings.
pub fn test_config(dir: &Path, name: &str) -> HarnessConfig {
    let mut cfg = HarnessConfig {
        name: name.into(),
        run_dir: dir.to_path_buf(),
        ..Default::default()
    };
    cfg.sentinel.down_after_ms = 1000;
    cfg.sentinel.failover_timeout_ms = 3000;
    cfg.readiness_timeout_ms = 30_000;
    cfg
}

/// Live (non-zombie) processes whose working directory lies under `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if cwd.starts_with(&dir) && !zombie {
            out.push(pid);
        }
    }
    out
}

/// Whether something accepts TCP connections on `addr`.
pub fn port_open(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(300)).is_ok()
}

/// Stops whatever a state file under `dir/name` records when dropped, so a failing CLI
/// test leaves no process behind.
pub struct StateGuard(pub PathBuf);

impl Drop for StateGuard {
    fn drop(&mut self) {
        if let Ok(Some(state)) = TopologyState::read(&self.0) {
            process::stop_records(&state.nodes, Duration::ZERO);
        }
    }
}

/// Path of the CLI binary built for these tests.
pub fn cli() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_redis-harness"));
    cmd.env_remove("REDIS_HARNESS_CONFIG");
    cmd
}

/// Writes `cfg` as YAML into `dir/harness.yaml` and returns the path.
pub fn write_config(dir: &Path, cfg: &HarnessConfig) -> PathBuf {
    let path = dir.join("harness.yaml");
    std::fs::write(&path, cfg.to_yaml()).unwrap();
    path
}

/// Test cases and failures in a JUnit XML document; panics unless it is well-formed.
pub fn junit_counts(xml: &str) -> (usize, usize) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    (cases, failures)
}
