//! [`Nginx`]: a real nginx (Debian's nginx-light) in front of an HTTP upstream, with a
//! `proxy_cache`, on a free loopback port; killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// nginx caching an upstream's GET answers for `valid` seconds, answering
/// `X-Cache: $upstream_cache_status` (HIT, MISS, EXPIRED, STALE, UPDATING ...).
pub struct Nginx {
    port: u16,
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    ["nginx", "/usr/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new(p)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
        .unwrap_or_else(|| {
            panic!("nginx is not installed: apt-get install nginx-light (./scripts/setup.sh)")
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Nginx {
    /// Starts nginx on a free port proxying to `upstream` (`host:port`), caching 200s for
    /// `valid_s` seconds, serving stale entries while one request refreshes them (the
    /// usual production setting).
    #[track_caller]
    pub fn proxy_cache(upstream: &str, valid_s: u32) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for nginx");
        let port = free_port();
        let d = dir.path().display();
        // As root, the workers would run as nobody and could not enter the 0700 temp dir.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  proxy_cache_path {d}/cache keys_zone=api:10m;
  upstream api {{ server {upstream}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_cache api;
      proxy_cache_valid 200 {valid_s}s;
      proxy_cache_use_stale updating error timeout;
      proxy_cache_background_update on;
      proxy_cache_lock on;
      add_header X-Cache $upstream_cache_status always;
    }}
  }}
}}
"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new(binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut n = Self {
            port,
            _dir: dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log = std::fs::read_to_string(n._dir.path().join("error.log"))
                        .unwrap_or_default();
                    panic!("nginx exited ({st}) before listening on {port}: {log}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The master takes its worker with it on SIGQUIT/SIGTERM; SIGKILL would orphan
            // the worker, so ask first.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
