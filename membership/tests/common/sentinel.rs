//! A real Sentinel (`redis-server <conf> --sentinel`) on a free loopback port with its own
//! temporary directory, in the style of `testkit::RedisServer`: starting it has a deadline
//! and panics with the tail of its log; dropping it kills and reaps the process. It may
//! have a `requirepass` of its own ([`Sentinel::start_with_password`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{free_port, ping};

/// How long a started Sentinel has to answer `PING`.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A Sentinel child process on `127.0.0.1` monitoring one master; killed on drop.
pub struct Sentinel {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Its `requirepass`, used by the helpers' own connections.
    password: Option<String>,
}

impl Sentinel {
    /// Starts a Sentinel monitoring `master_name` at `127.0.0.1:master_port` with quorum 1;
    /// `extra` are more configuration lines (`{name}` is replaced by the master name), e.g.
    /// `sentinel down-after-milliseconds {name} 60000`. Another process can take the free
    /// port before the Sentinel binds it: then it tries another one (three tries in all).
    #[track_caller]
    pub fn start(master_name: &str, master_port: u16, extra: &[&str]) -> Self {
        Self::launch(master_name, master_port, extra, None)
    }

    /// [`Sentinel::start`], with `requirepass password`: clients must log in (the helpers
    /// here do).
    #[track_caller]
    pub fn start_with_password(
        master_name: &str,
        master_port: u16,
        extra: &[&str],
        password: &str,
    ) -> Self {
        Self::launch(master_name, master_port, extra, Some(password))
    }

    #[track_caller]
    fn launch(master_name: &str, master_port: u16, extra: &[&str], password: Option<&str>) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            let mut s = Self {
                port: free_port(),
                dir: tempfile::tempdir().expect("a temporary directory for a Sentinel"),
                child: None,
                password: password.map(str::to_string),
            };
            let mut conf = format!(
                "port {}\nbind 127.0.0.1\ndir {}\nlogfile {}\n\
                 sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n",
                s.port,
                s.dir.path().display(),
                s.log().display(),
            );
            if let Some(pw) = password {
                conf.push_str(&format!("requirepass {pw}\n"));
            }
            for line in extra {
                conf.push_str(&line.replace("{name}", master_name));
                conf.push('\n');
            }
            let path = s.dir.path().join("sentinel.conf");
            std::fs::write(&path, conf).expect("write sentinel.conf");
            let child = Command::new("redis-server")
                .arg(&path)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run redis-server --sentinel: {e}"));
            s.child = Some(child);
            let deadline = Instant::now() + START_DEADLINE;
            loop {
                let child = s.child.as_mut().expect("just spawned");
                if let Ok(Some(status)) = child.try_wait() {
                    s.child = None;
                    last = format!("exited ({status}); {}", s.log_tail());
                    break;
                }
                if s.answers() {
                    return s;
                }
                if Instant::now() >= deadline {
                    let tail = s.log_tail();
                    s.stop();
                    panic!(
                        "Sentinel on port {} did not answer PING within {START_DEADLINE:?}; {tail}",
                        s.port
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("Sentinel did not start: {last}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it answers `PING` (after `AUTH` when it has a password).
    fn answers(&self) -> bool {
        let Some(pw) = &self.password else {
            return ping(self.port);
        };
        let timeout = Duration::from_millis(500);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(timeout));
        let _ = s.set_write_timeout(Some(timeout));
        let auth = redis::cmd("AUTH").arg(pw).get_packed_command();
        if s.write_all(&auth)
            .and_then(|()| s.write_all(b"PING\r\n"))
            .is_err()
        {
            return false;
        }
        let want = b"+OK\r\n+PONG\r\n";
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && &buf == want
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("sentinel.log")
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        format!("last lines of its log:\n{}", tail.join("\n"))
    }

    /// Kills the Sentinel and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new multiplexed connection (logged in when it has a password).
    pub async fn con(&self) -> redis::aio::MultiplexedConnection {
        use redis::IntoConnectionInfo;
        let mut login = redis::RedisConnectionInfo::default();
        if let Some(pw) = &self.password {
            login = login.set_password(pw);
        }
        let info = ("127.0.0.1".to_string(), self.port)
            .into_connection_info()
            .expect("a valid address")
            .set_redis_settings(login);
        redis::Client::open(info)
            .expect("a valid connection info")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connect to the Sentinel on {}: {e}", self.port))
    }

    /// `SENTINEL REPLICAS <master_name>`: each replica's fields (`ip`, `port`, `flags`,
    /// `master-link-status`, `slave-priority` ...).
    pub async fn replicas(&self, master_name: &str) -> Vec<HashMap<String, String>> {
        let flat: Vec<Vec<String>> = redis::cmd("SENTINEL")
            .arg("REPLICAS")
            .arg(master_name)
            .query_async(&mut self.con().await)
            .await
            .expect("SENTINEL REPLICAS");
        flat.into_iter()
            .map(|f| {
                f.chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| (c[0].clone(), c[1].clone()))
                    .collect()
            })
            .collect()
    }

    /// How many channel subscriptions its clients hold in all (`sub=` of `CLIENT LIST`;
    /// a Sentinel has no `PUBSUB NUMSUB`).
    pub async fn subscriptions(&self) -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut self.con().await)
            .await
            .expect("CLIENT LIST");
        list.split_whitespace()
            .filter_map(|f| f.strip_prefix("sub="))
            .filter_map(|n| n.parse::<usize>().ok())
            .sum()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.stop();
    }
}
