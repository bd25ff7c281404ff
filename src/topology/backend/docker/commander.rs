//! The commander: the harness's own console (`redis-harness console`) as a container on
//! the topology's network, started once the Sentinels are ready. It watches the nodes on
//! their container addresses, gets its token and the password through its environment
//! (never its command line, which the host's `ps` shows), and is published on
//! `127.0.0.1` only. Its image is built locally (`scripts/build-offline-image.sh`) and
//! never pulled.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use testcontainers::bollard::container::{
    Config, InspectContainerOptions, LogsOptions, StartContainerOptions,
};
use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::bollard::Docker;

use crate::config::HarnessConfig;
use crate::topology::spec::NodeKind;
use crate::topology::state::{ConsoleRecord, TopologyState};
use crate::topology::TopologyError;

use super::container::{create, is_running, published_port};
use super::{LABEL_NODE, LABEL_VERSION};

/// The commander's node label and the suffix of its container name.
pub const COMMANDER: &str = "commander";

/// Port the console listens on inside its container.
pub const CONSOLE_PORT: u16 = 8081;

/// How the commander runs, from the `docker:` section.
#[derive(Debug, Clone)]
pub(super) struct Commander {
    /// Image, `name:tag`.
    image: String,
    /// Host port on `127.0.0.1` (0: the engine picks).
    host_port: u16,
    /// `--allow-write`.
    allow_write: bool,
    /// How long `/healthz` may take to answer 200.
    timeout: Duration,
}

impl Commander {
    /// The commander `cfg` asks for: none when `docker.console` is off or the topology has
    /// no Sentinels (the console watches a topology through them).
    pub(super) fn from_config(cfg: &HarnessConfig) -> Option<Self> {
        if !cfg.docker.console {
            return None;
        }
        if cfg.topology.sentinels == 0 {
            tracing::info!(
                "no commander: the console watches through Sentinels and there are none"
            );
            return None;
        }
        Some(Self {
            image: cfg.docker.console_image.clone(),
            host_port: u16::try_from(cfg.docker.console_port).unwrap_or(0),
            allow_write: cfg.docker.console_allow_write,
            timeout: Duration::from_millis(cfg.readiness_timeout_ms),
        })
    }

    /// Checks that the image is in the engine (it is never pulled: the default names a
    /// local build), and warns when it was built from another harness version.
    pub(super) async fn check_image(&self, d: &Docker) -> Result<(), TopologyError> {
        let Ok(image) = d.inspect_image(&self.image).await else {
            return Err(TopologyError::Docker(format!(
                "console image {} is not in the Docker engine; build it with scripts/build-offline-image.sh, or set docker.console: false",
                self.image
            )));
        };
        let built = image
            .config
            .and_then(|c| c.labels)
            .and_then(|mut l| l.remove(LABEL_VERSION));
        let ours = env!("CARGO_PKG_VERSION");
        if built.as_deref() != Some(ours) {
            tracing::warn!(
                "console image {} holds redis-harness {} (this is {ours}); rebuild it with scripts/build-offline-image.sh",
                self.image,
                built.as_deref().unwrap_or("of unknown version")
            );
        }
        Ok(())
    }

    /// Starts the commander for the ready topology `state` on `network` and waits until
    /// its `/healthz` answers 200 on the published port. The container is recorded in
    /// `state.console` as soon as it exists, so a failure here is cleaned up with the
    /// rest of the topology.
    /// Creates and starts the commander on `network` for the topology `state` describes
    /// and waits until `/healthz` answers; yields its record as soon as the container
    /// exists (to be cleaned up whatever happens) and whether it came up.
    pub(super) async fn launch(
        self,
        d: Docker,
        network: String,
        labels: Vec<(&'static str, String)>,
        state: TopologyState,
    ) -> (Option<ConsoleRecord>, Result<(), TopologyError>) {
        let mut record = None;
        let result = self.start(&d, &network, &labels, &state, &mut record).await;
        (record, result)
    }

    async fn start(
        &self,
        d: &Docker,
        network: &str,
        labels: &[(&'static str, String)],
        state: &TopologyState,
        console: &mut Option<ConsoleRecord>,
    ) -> Result<(), TopologyError> {
        let started = Instant::now();
        let token = crate::console::new_token();
        let mut env = vec![format!("REDIS_HARNESS_CONSOLE_TOKEN={token}")];
        if let Some(pw) = &state.password {
            env.push(format!("REDIS_HARNESS_PASSWORD={pw}"));
        }
        let port = format!("{CONSOLE_PORT}/tcp");
        let mut all_labels: HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        all_labels.insert(LABEL_NODE.into(), COMMANDER.into());
        let host_port = match self.host_port {
            0 => String::new(),
            p => p.to_string(),
        };
        let host_config = HostConfig {
            network_mode: Some(network.to_string()),
            publish_all_ports: Some(false),
            port_bindings: Some(HashMap::from([(
                port.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host_port),
                }]),
            )])),
            // It only reads the topology and serves HTTP above 1024.
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..Default::default()
        };
        let config = Config {
            image: Some(self.image.clone()),
            cmd: Some(command(state, self.allow_write)),
            env: Some(env),
            labels: Some(all_labels),
            exposed_ports: Some(HashMap::from([(port, HashMap::new())])),
            host_config: Some(host_config),
            ..Default::default()
        };
        let name = format!("{network}-{COMMANDER}");
        let id = create(d, &name, config).await.map_err(failed)?;
        *console = Some(ConsoleRecord {
            container: Some(id.clone()),
            url: String::new(),
            token,
        });
        d.start_container(&id, None::<StartContainerOptions<String>>)
            .await
            .map_err(|e| failed(format!("container {name} did not start: {e}")))?;
        let Some(published) = published_port(d, &id).await else {
            return Err(failed(format!(
                "the engine published no port for {name}; {}",
                report(d, &id).await
            )));
        };
        let url = format!("http://127.0.0.1:{published}");
        if let Some(c) = console.as_mut() {
            c.url = url.clone();
        }
        wait_healthy(d, &id, &url, started + self.timeout).await?;
        tracing::info!(
            "commander (console) at {url}, healthy {} ms after its start",
            started.elapsed().as_millis()
        );
        Ok(())
    }
}

/// The console's command line for `state`: its Sentinels and nodes by container address,
/// listening on every interface of its own network namespace. Secrets go through the
/// environment instead.
fn command(state: &TopologyState, allow_write: bool) -> Vec<String> {
    let sentinels: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.spec.kind == NodeKind::Sentinel)
        .map(|n| n.spec.addr())
        .collect();
    let mut cmd: Vec<String> = [
        "console",
        "--sentinels",
        &sentinels.join(","),
        "--master-name",
        &state.master_name,
        "--bind",
        "0.0.0.0",
        "--port",
        &CONSOLE_PORT.to_string(),
        "--name",
        &state.name,
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    for n in &state.nodes {
        cmd.push("--node".into());
        cmd.push(format!("{}={}", n.spec.name, n.spec.addr()));
    }
    if allow_write {
        cmd.push("--allow-write".into());
    }
    cmd
}

fn failed(detail: String) -> TopologyError {
    TopologyError::Console(detail)
}

/// Polls `url/healthz` until it answers 200; fails at once when the container stops, and
/// at `deadline` otherwise, either way with the container's state and log tail.
async fn wait_healthy(
    d: &Docker,
    id: &str,
    url: &str,
    deadline: Instant,
) -> Result<(), TopologyError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .no_proxy()
        .build()
        .map_err(|e| failed(format!("no HTTP client: {e}")))?;
    let health = format!("{url}/healthz");
    loop {
        let last = match http.get(&health).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(r) => format!("it answered {}", r.status()),
            Err(e) => e.to_string(),
        };
        if !is_running(d, id).await {
            return Err(failed(format!(
                "the commander stopped before {health} answered; {}",
                report(d, id).await
            )));
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "{health} did not answer 200 in time ({last}); {}",
                report(d, id).await
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The container's state and the last lines of its output.
async fn report(d: &Docker, id: &str) -> String {
    let state = match d
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
    {
        Ok(c) => match c.state {
            Some(s) => format!(
                "container {} (exit code {}{}{})",
                s.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "in an unknown state".into()),
                s.exit_code.unwrap_or(-1),
                if s.oom_killed == Some(true) {
                    ", out of memory"
                } else {
                    ""
                },
                s.error
                    .filter(|e| !e.is_empty())
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default()
            ),
            None => "container in an unknown state".into(),
        },
        Err(e) => format!("container not inspectable ({e})"),
    };
    format!("{state}; log:\n{}", log_tail(d, id, 20).await)
}

/// The last `lines` lines the container wrote (stdout and stderr).
async fn log_tail(d: &Docker, id: &str, lines: usize) -> String {
    use futures_util::StreamExt as _;
    let logs = d
        .logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        )
        .map(|chunk| chunk.map(|c| c.to_string()).unwrap_or_default())
        .collect::<Vec<String>>();
    match tokio::time::timeout(Duration::from_secs(5), logs).await {
        Ok(chunks) if chunks.iter().any(|c| !c.trim().is_empty()) => {
            chunks.concat().trim_end().to_string()
        }
        Ok(_) => "(empty)".into(),
        Err(_) => "(the engine did not return the log within 5 s)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendKind;
    use crate::topology::spec::NodeSpec;
    use crate::topology::state::{NodeRecord, STATE_VERSION};

    fn node(name: &str, kind: NodeKind, host: &str, port: u16) -> NodeRecord {
        NodeRecord {
            spec: NodeSpec {
                name: name.into(),
                kind,
                host: host.into(),
                port,
            },
            pid: None,
            dir: "/x".into(),
            config_file: "/x/redis.conf".into(),
            log_file: "/x/redis.log".into(),
            container: Some(format!("id-{name}")),
        }
    }

    #[test]
    fn the_command_names_sentinels_and_nodes_but_no_secret() {
        let state = TopologyState {
            version: STATE_VERSION,
            name: "t".into(),
            backend: BackendKind::Docker,
            master_name: "mymaster".into(),
            password: Some("s3cret".into()),
            username: None,
            sentinel_password: None,
            redis_version: String::new(),
            started_unix_ms: 0,
            nodes: vec![
                node("master", NodeKind::Master, "172.18.0.2", 6379),
                node("replica-1", NodeKind::Replica, "172.18.0.3", 6379),
                node("sentinel-1", NodeKind::Sentinel, "172.18.0.4", 26379),
                node("sentinel-2", NodeKind::Sentinel, "172.18.0.5", 26379),
            ],
            network: Some("rh-t-0".into()),
            console: None,
        };
        let cmd = command(&state, false).join(" ");
        assert_eq!(
            cmd,
            "console --sentinels 172.18.0.4:26379,172.18.0.5:26379 --master-name mymaster \
             --bind 0.0.0.0 --port 8081 --name t --node master=172.18.0.2:6379 \
             --node replica-1=172.18.0.3:6379 --node sentinel-1=172.18.0.4:26379 \
             --node sentinel-2=172.18.0.5:26379"
        );
        assert!(!cmd.contains("s3cret"));
        assert!(command(&state, true).ends_with(&["--allow-write".to_string()]));
    }

    #[test]
    fn no_commander_when_off_or_without_sentinels() {
        let mut cfg = HarnessConfig::default();
        assert!(Commander::from_config(&cfg).is_some());
        cfg.docker.console = false;
        assert!(Commander::from_config(&cfg).is_none());
        cfg.docker.console = true;
        cfg.topology.sentinels = 0;
        cfg.topology.quorum = 0;
        assert!(Commander::from_config(&cfg).is_none());
    }
}
