//! Several membership API instances as separate OS processes, as real deployments run
//! them: each is this program's `serve` on its own free loopback port, against the same
//! topology (Sentinel mode, same master name and credentials) and the same SQLite file.
//!
//! - [`ApiFleet::start`]: the first instance generates the database; once it answers, the
//!   others start in parallel. Each instance writes its output to `api-N.log` in the
//!   topology directory, and a failed start names the instance, its port and the end of
//!   that log.
//! - Every instance runs in its own process group, stopped with SIGTERM and SIGKILL after
//!   [`GRACE`]: by [`ApiFleet::stop`], when a start fails, and when the fleet is dropped
//!   (Ctrl-C drops the pipeline).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use membership::{RedisAuth, RedisTarget};

use super::{redis_target, StackError, START_TIMEOUT};
use crate::topology::Topology;

/// How long an instance has to exit after SIGTERM before it is killed.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// The route an instance must answer (200) to count as started.
pub(crate) const READY_PATH: &str = "/api/v1/statistics/system";

/// Lines of an instance's log quoted in an error.
const TAIL_LINES: usize = 10;

/// How often a starting instance is asked, and a stopping one looked at.
const POLL: Duration = Duration::from_millis(50);

/// One instance's process.
struct Instance {
    /// From 1.
    number: usize,
    port: u16,
    log: PathBuf,
    /// `None` once it has been waited for (it leads no process group any more).
    child: Option<Child>,
}

impl Instance {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The end of its log, for an error message.
    fn tail(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n    ");
        if tail.is_empty() {
            format!("its log {} is empty", self.log.display())
        } else {
            format!("the end of its log {}:\n    {tail}", self.log.display())
        }
    }

    /// Sends `sig` to its process group while it has not been waited for.
    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on the process group the child leads (it was not waited for,
            // so the id is still ours); no memory is involved.
            unsafe { libc::kill(-(c.id() as libc::pid_t), sig) };
        }
    }

    /// Whether it has exited (waited for now if so).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = match self.child.as_mut()?.try_wait() {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            // Not ours to wait for any more: count it as gone.
            Err(_) => std::process::ExitStatus::default(),
        };
        self.child = None;
        Some(status)
    }

    fn gone(&mut self) -> bool {
        self.child.is_none() || self.exited().is_some()
    }

    /// Waits until it answers [`READY_PATH`]; fails when it exits or `timeout` passes.
    async fn ready(&mut self, http: &reqwest::Client, timeout: Duration) -> Result<(), StackError> {
        let url = format!("{}{READY_PATH}", self.base());
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(StackError::Exited {
                    instance: self.number,
                    port: self.port,
                    status: status.to_string(),
                    log: self.tail(),
                });
            }
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() >= timeout {
                return Err(StackError::Silent {
                    instance: self.number,
                    port: self.port,
                    waited: timeout,
                    log: self.tail(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// What the instances run, and where.
struct Launch {
    /// The program (this one) and the arguments before each instance's own.
    program: PathBuf,
    args: Vec<String>,
    /// Working directory and place of the logs.
    dir: PathBuf,
    /// `DATABASE_URL` of every instance.
    database: String,
    members: u64,
    /// Variables set (`Some`) or removed (`None`) in each instance's environment.
    env: BTreeMap<String, Option<String>>,
    instances: usize,
    /// How long each instance has to answer.
    timeout: Duration,
    /// How long each has to exit after SIGTERM.
    grace: Duration,
}

/// Running API instances, each its own process; stop them with [`ApiFleet::stop`]
/// (dropping the fleet stops them too, blocking for at most [`GRACE`]).
pub(crate) struct ApiFleet {
    instances: Vec<Instance>,
    grace: Duration,
}

impl ApiFleet {
    /// Starts `instances` processes of this program's `serve` on free loopback ports
    /// against `topo` (its Sentinels, master name and credentials, as
    /// [`super::ApiServer::start`] does) and one database in the topology's directory, and
    /// waits until each answers. `key_prefix`: the prefix of every key they write.
    pub(crate) async fn start(
        topo: &Topology,
        members: u64,
        key_prefix: Option<&str>,
        instances: usize,
    ) -> Result<Self, StackError> {
        let program = std::env::current_exe().map_err(|e| {
            StackError::Fleet(format!(
                "cannot find this program to run the instances: {e}"
            ))
        })?;
        let state = topo.state();
        Launch {
            program,
            args: vec!["serve".into()],
            dir: topo.dir().to_path_buf(),
            database: format!("sqlite://{}", topo.dir().join("membership.db").display()),
            members,
            env: api_env(
                &redis_target(state),
                &state.credentials().redis_auth(),
                key_prefix,
            ),
            instances,
            timeout: START_TIMEOUT,
            grace: GRACE,
        }
        .run()
        .await
    }

    /// Base URLs of every instance, in instance order.
    pub(crate) fn hosts(&self) -> Vec<String> {
        self.instances.iter().map(Instance::base).collect()
    }

    /// Stops every instance: SIGTERM, then SIGKILL to whatever is left after the grace.
    pub(crate) async fn stop(mut self) {
        let mut instances = std::mem::take(&mut self.instances);
        for i in &instances {
            i.signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + self.grace;
        while !instances.iter_mut().all(Instance::gone) && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        kill_rest(&mut instances, self.grace);
    }
}

impl Drop for ApiFleet {
    /// A fleet dropped without [`ApiFleet::stop`] (an error, Ctrl-C, a panic) stops its
    /// instances the same way, blocking: nothing outlives the harness.
    fn drop(&mut self) {
        if self.instances.is_empty() {
            return;
        }
        for i in &self.instances {
            i.signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + self.grace;
        while !self.instances.iter_mut().all(Instance::gone) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        kill_rest(&mut self.instances, self.grace);
    }
}

/// SIGKILLs every instance still running after `grace` and waits for it.
fn kill_rest(instances: &mut [Instance], grace: Duration) {
    for i in instances.iter_mut() {
        if let Some(mut c) = i.child.take() {
            tracing::warn!(
                "API instance {} (port {}) did not exit within {} s of SIGTERM; killed",
                i.number,
                i.port,
                grace.as_secs_f64()
            );
            // SAFETY: kill(2) on the group the child leads; it has not been waited for.
            unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

impl Launch {
    /// Starts the first instance, waits for it, then the others in parallel.
    async fn run(self) -> Result<ApiFleet, StackError> {
        let ports = crate::topology::spec::free_ports("127.0.0.1", self.instances)
            .map_err(|e| StackError::Fleet(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| StackError::Fleet(format!("HTTP client: {e}")))?;
        let mut fleet = ApiFleet {
            instances: Vec::with_capacity(self.instances),
            grace: self.grace,
        };
        // The first one generates the database; the others find it filled.
        fleet.instances.push(self.spawn(1, ports[0])?);
        if let Err(e) = fleet.instances[0].ready(&http, self.timeout).await {
            fleet.stop().await;
            return Err(e);
        }
        for (n, port) in ports.iter().enumerate().skip(1) {
            match self.spawn(n + 1, *port) {
                Ok(i) => fleet.instances.push(i),
                Err(e) => {
                    fleet.stop().await;
                    return Err(e);
                }
            }
        }
        let waits = fleet.instances[1..]
            .iter_mut()
            .map(|i| i.ready(&http, self.timeout));
        let results = futures_util::future::join_all(waits).await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            fleet.stop().await;
            return Err(e);
        }
        Ok(fleet)
    }

    /// Starts instance `number` on `port`, in its own process group, its output into
    /// `api-<number>.log`.
    fn spawn(&self, number: usize, port: u16) -> Result<Instance, StackError> {
        let log = self.dir.join(format!("api-{number}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|e| StackError::Fleet(format!("cannot create {}: {e}", log.display())))?;
        let out = file
            .try_clone()
            .map_err(|e| StackError::Fleet(format!("cannot share {}: {e}", log.display())))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .args(["--database", &self.database])
            .args(["--members", &self.members.to_string()])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file)
            .process_group(0);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let child = cmd.spawn().map_err(|source| StackError::Spawn {
            instance: number,
            port,
            program: self.program.clone(),
            source,
        })?;
        Ok(Instance {
            number,
            port,
            log,
            child: Some(child),
        })
    }
}

/// The environment of an instance, under the names `membership::ApiConfig::from_env`
/// reads: every variable it reads is removed from what the harness inherited (so each
/// instance is configured like the in-process [`super::ApiServer`], from defaults), then
/// the topology (`target`), its logins (`auth`), the key prefix and the cache warm-up are
/// set. The harness's own config variable is removed too: an instance needs no config.
fn api_env(
    target: &RedisTarget,
    auth: &RedisAuth,
    key_prefix: Option<&str>,
) -> BTreeMap<String, Option<String>> {
    let read = Mutex::new(Vec::new());
    let _ = membership::ApiConfig::from_lookup(|k| {
        read.lock().expect("not poisoned").push(k.to_string());
        None
    });
    let mut env: BTreeMap<String, Option<String>> = read
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|k| (k, None))
        .collect();
    env.insert("REDIS_HARNESS_CONFIG".into(), None);
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), Some(v));
    };
    match target {
        RedisTarget::Sentinel {
            sentinels,
            master_name,
        } => {
            let list: Vec<String> = sentinels.iter().map(|(h, p)| format!("{h}:{p}")).collect();
            set("REDIS_SENTINELS", list.join(","));
            set("REDIS_MASTER_NAME", master_name.clone());
        }
        RedisTarget::Standalone { host, port } => {
            set("REDIS_HOST", host.clone());
            set("REDIS_PORT", port.to_string());
        }
    }
    for (k, v) in [
        ("REDIS_USERNAME", &auth.username),
        ("REDIS_PASSWORD", &auth.password),
        ("REDIS_SENTINEL_USERNAME", &auth.sentinel_username),
        ("REDIS_SENTINEL_PASSWORD", &auth.sentinel_password),
    ] {
        if let Some(v) = v {
            set(k, v.clone());
        }
    }
    if let Some(p) = key_prefix {
        set("REDIS_KEY_PREFIX", p.to_string());
    }
    set("CACHE_WARMUP", "true".into());
    env
}

/// Live (not zombie) processes of the process group `pgid`, waiting up to a second for
/// them to go (an orphan killed with its group is reaped by init a moment later).
#[cfg(test)]
fn group_alive(pgid: u32) -> bool {
    let live = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .any(|stat| {
                // Fields after the command: state, ppid, pgrp, ...
                let rest: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, r)| r.split_whitespace().collect())
                    .unwrap_or_default();
                rest.len() > 2 && rest[0] != "Z" && rest[2] == pgid.to_string()
            })
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    while live() {
        if Instant::now() >= deadline {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// An API config read from `env` as an instance reads its environment.
    fn as_instance_reads(env: &BTreeMap<String, Option<String>>) -> membership::ApiConfig {
        membership::ApiConfig::from_lookup(|k| env.get(k).cloned().flatten()).unwrap()
    }

    #[test]
    fn the_environment_names_the_topology_logins_and_prefix() {
        let target = RedisTarget::Sentinel {
            sentinels: vec![("127.0.0.1".into(), 26379), ("127.0.0.1".into(), 26380)],
            master_name: "m1".into(),
        };
        let auth = RedisAuth {
            username: Some("app".into()),
            password: Some("pw".into()),
            sentinel_username: None,
            sentinel_password: Some("spw".into()),
        };
        let env = api_env(&target, &auth, Some("rh:load:abc:"));
        let cfg = as_instance_reads(&env);
        assert_eq!(cfg.redis, target);
        assert_eq!(cfg.redis_auth, auth);
        assert_eq!(cfg.key_prefix, "rh:load:abc:");
        assert!(cfg.warmup_on_start);
        // Everything else the API reads is removed, so an inherited setting cannot make
        // one instance differ from another or from the in-process API.
        for k in [
            "CACHE_ENABLED",
            "REDIS_DB",
            "SHUTDOWN_GRACE_MS",
            "REDIS_HOST",
        ] {
            assert_eq!(env.get(k), Some(&None), "{k}");
        }
        assert_eq!(env.get("REDIS_HARNESS_CONFIG"), Some(&None));

        let env = api_env(
            &RedisTarget::Standalone {
                host: "127.0.0.1".into(),
                port: 7000,
            },
            &RedisAuth::default(),
            None,
        );
        let cfg = as_instance_reads(&env);
        assert!(matches!(
            cfg.redis,
            RedisTarget::Standalone { port: 7000, .. }
        ));
        assert_eq!(cfg.key_prefix, "membership:");
        assert_eq!(env.get("REDIS_PASSWORD"), Some(&None));
    }

    /// A launch of `script` (run by sh) as every instance, in `dir`.
    fn launch(dir: &Path, script: &str, instances: usize, timeout: Duration) -> Launch {
        let program = dir.join("instance.sh");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        Launch {
            program: "/bin/sh".into(),
            args: vec![program.display().to_string()],
            dir: dir.to_path_buf(),
            database: format!("sqlite://{}", dir.join("m.db").display()),
            members: 10,
            env: BTreeMap::new(),
            instances,
            timeout,
            grace: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn an_instance_that_exits_is_named_with_its_port_and_log() {
        let tmp = tempfile::tempdir().unwrap();
        let e = launch(
            tmp.path(),
            "echo \"starting with $*\" >&2; echo 'cannot open the database' >&2; exit 3",
            2,
            Duration::from_secs(10),
        )
        .run()
        .await
        .err()
        .expect("the start fails");
        let text = e.to_string();
        let StackError::Exited { instance, port, .. } = e else {
            panic!("{text}");
        };
        assert_eq!(instance, 1, "{text}");
        assert!(text.contains(&format!("port {port}")), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("cannot open the database"), "{text}");
        assert!(text.contains("api-1.log"), "{text}");
        // It was handed the serve flags.
        assert!(
            text.contains(&format!(
                "--port {port} --host 127.0.0.1 --database sqlite://"
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_instance_that_never_answers_is_stopped_with_its_group() {
        let tmp = tempfile::tempdir().unwrap();
        // Ignores SIGTERM, and leaves a grandchild in its group.
        let pids = tmp.path().join("pids");
        let script = format!(
            "trap '' TERM; sleep 300 & echo $$ $! > {}; echo 'still booting' >&2; wait",
            pids.display()
        );
        let started = Instant::now();
        let e = launch(tmp.path(), &script, 1, Duration::from_secs(2))
            .run()
            .await
            .err()
            .expect("the start fails");
        let text = e.to_string();
        assert!(
            matches!(e, StackError::Silent { instance: 1, .. }),
            "{text}"
        );
        assert!(text.contains("within 2 s"), "{text}");
        assert!(text.contains("still booting"), "{text}");
        // SIGTERM was ignored, so it took the grace, then SIGKILL took the whole group.
        assert!(started.elapsed() >= Duration::from_millis(2400));
        let leader: u32 = std::fs::read_to_string(&pids)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(!group_alive(leader), "the instance's group is left");
    }

    #[tokio::test]
    async fn a_dropped_fleet_leaves_no_process() {
        let tmp = tempfile::tempdir().unwrap();
        let pids = tmp.path().join("pids");
        // Answers nothing, so build the fleet by hand from spawned instances.
        let l = launch(
            tmp.path(),
            &format!("echo $$ >> {}; exec sleep 300", pids.display()),
            2,
            Duration::from_secs(1),
        );
        let fleet = ApiFleet {
            instances: vec![l.spawn(1, 1).unwrap(), l.spawn(2, 2).unwrap()],
            grace: l.grace,
        };
        let leaders: Vec<u32> = fleet
            .instances
            .iter()
            .map(|i| i.child.as_ref().unwrap().id())
            .collect();
        assert!(leaders.iter().all(|p| group_alive(*p)));
        drop(fleet);
        for p in leaders {
            assert!(!group_alive(p), "instance {p} is left after the drop");
        }
    }
}
