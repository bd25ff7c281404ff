//! # testkit
//!
//! Test-only helpers shared by the workspace's tests and benches (a `[dev-dependencies]`
//! entry only; never published).
//!
//! [`RedisServer`] is a real `redis-server` child process on a free loopback port (never
//! 6379) with its own temporary directory. Starting it has a deadline: it panics naming the
//! problem when `redis-server` is not installed, exits early, or does not answer `PING`
//! within [`START_DEADLINE`]. Dropping it kills and reaps the process.
//!
//! [`Nginx`] is a real nginx with a `proxy_cache` in front of an upstream, on a free port.

mod nginx;

pub use nginx::Nginx;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server has to answer `PING`.
pub const START_DEADLINE: Duration = Duration::from_secs(10);

/// Ports a test server never takes: Redis's and Sentinel's defaults, which a developer's
/// own instances may hold.
const RESERVED: [u16; 2] = [6379, 26379];

/// A `redis-server` child process on `127.0.0.1`, no persistence; killed on drop.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

/// A free loopback port other than the reserved ones (Redis's and Sentinel's defaults).
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0 for a free port")
            .port();
        if !RESERVED.contains(&port) {
            return port;
        }
    }
}

impl RedisServer {
    /// Starts a server with the default arguments.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments (e.g. `--maxmemory 3mb`).
    ///
    /// Another process can take the free port between choosing and binding it; then the
    /// server exits at once and this tries another port (three tries in all).
    #[track_caller]
    pub fn start_with(extra: &[&str]) -> Self {
        let mut s = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        for _ in 0..2 {
            match s.try_start() {
                Ok(()) => return s,
                Err(Failure::Exited(_)) => s.port = free_port(),
                Err(f) => s.fail(f),
            }
        }
        if let Err(f) = s.try_start() {
            s.fail(f);
        }
        s
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT/`.
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// (Re)starts the server on the same port; panics like [`RedisServer::start`].
    #[track_caller]
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        if let Err(f) = self.try_start() {
            self.fail(f);
        }
    }

    /// Kills the server and waits for it (its data is lost).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): unreachable without losing data.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let sig = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill {sig} {pid}: {status}");
    }

    /// A new multiplexed connection.
    pub async fn con(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a valid redis URL")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connect to redis-server on {}: {e}", self.addr()))
    }

    /// A field of `INFO` as a number.
    pub async fn info_u64(&self, field: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .query_async(&mut self.con().await)
            .await
            .expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO has no numeric {field}"))
    }

    fn try_start(&mut self) -> Result<(), Failure> {
        let log = self.dir.path().join("redis.log");
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
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Failure::Spawn)?;
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(Failure::Exited(status.to_string()));
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Failure::Deadline);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[track_caller]
    fn fail(&mut self, f: Failure) -> ! {
        self.stop();
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        let what = match f {
            Failure::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "redis-server is not installed or not on PATH (run scripts/setup.sh)".to_string()
            }
            Failure::Spawn(e) => format!("cannot run redis-server: {e}"),
            Failure::Exited(status) => format!(
                "redis-server on port {} exited ({status}) before answering PING",
                self.port
            ),
            Failure::Deadline => format!(
                "redis-server on port {} did not answer PING within {:?}",
                self.port, START_DEADLINE
            ),
        };
        if tail.is_empty() {
            panic!("{what}");
        }
        panic!("{what}; last lines of its log:\n{}", tail.join("\n"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server is resumed first so that it dies and is reaped promptly.
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        self.stop();
    }
}

enum Failure {
    Spawn(std::io::Error),
    Exited(String),
    Deadline,
}

/// Whether `PING` on `127.0.0.1:port` gets `+PONG` within a short timeout.
pub fn ping(port: u16) -> bool {
    use std::io::Write;
    let timeout = Duration::from_millis(500);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answers_and_is_reaped_on_drop() {
        let mut s = RedisServer::start();
        assert!(!RESERVED.contains(&s.port()));
        assert!(ping(s.port()));
        s.stop();
        assert!(!ping(s.port()));
        s.restart();
        assert!(ping(s.port()));
        let (port, pid) = (s.port(), s.child.as_ref().unwrap().id());
        drop(s);
        assert!(!ping(port));
        // Reaped: no zombie left under this process.
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                !stat.contains(") Z")
            }
        );
    }

    #[test]
    #[should_panic(expected = "exited")]
    fn a_server_that_cannot_start_panics_naming_why() {
        RedisServer::start_with(&["--no-such-option", "x"]);
    }
}
