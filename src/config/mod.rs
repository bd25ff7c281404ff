//! `harness.yaml`: the topology configuration, its defaults and its validation.
//!
//! Every field has a default, so an empty file (or no file) is a valid configuration.
//! Unknown keys are rejected by serde; impossible values are rejected by
//! [`HarnessConfig::validate`] with a message naming the field and the rule it breaks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::drill::gates::{gate_name, DrillGates};

pub mod external;

pub use external::{ExternalSection, Hook, PauseMethod};

/// Errors raised while loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// Path of the file.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown key, or a value of the wrong type.
    #[error("invalid config {origin}: {message}")]
    Parse {
        /// Where the YAML came from (a path, or `<inline>`).
        origin: String,
        /// The parser's message, which names the field and the position.
        message: String,
    },
    /// One or more values break a rule; each entry names the field and the rule.
    #[error("invalid config {origin}:\n  - {}", .problems.join("\n  - "))]
    Invalid {
        /// Where the YAML came from.
        origin: String,
        /// One line per broken rule, `field: rule (got value)`.
        problems: Vec<String>,
    },
}

/// Which backend runs the topology's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Local `redis-server` processes on loopback (the embedded default).
    #[default]
    Process,
    /// Docker containers, one private Docker network per topology.
    Docker,
    /// A topology the harness did not start (`topology.external`), reached through its
    /// Sentinels; set by that section, never started or stopped.
    External,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Process => "process",
            BackendKind::Docker => "docker",
            BackendKind::External => "external",
        })
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HarnessConfig {
    /// Name of the topology; used in the run directory and in process/container labels.
    pub name: String,
    /// Backend that runs the nodes.
    pub backend: BackendKind,
    /// Path or bare name (looked up on `PATH`) of the `redis-server` binary.
    pub redis_server: PathBuf,
    /// Directory holding one sub-directory per node plus the state file.
    pub run_dir: PathBuf,
    /// How many nodes of each kind.
    pub topology: TopologySection,
    /// Listening addresses and ports.
    pub ports: PortsSection,
    /// Password for `requirepass`, `masterauth` and Sentinel `auth-pass`; none by default.
    pub password: Option<String>,
    /// Every key the harness writes (drills, the API of `load`/`verify`) starts with this
    /// prefix and the run's own id (`<prefix>drill:<run-id>:`), and is removed (SCAN +
    /// UNLINK on exactly that prefix) when the run ends.
    pub key_prefix: String,
    /// Sentinel failure-detection timings.
    pub sentinel: SentinelSection,
    /// AOF and RDB persistence.
    pub persistence: PersistenceSection,
    /// Memory limit and eviction policy.
    pub memory: MemorySection,
    /// Write safety through `min-replicas-to-write`.
    pub replication: ReplicationSection,
    /// How long `up` waits for the topology to become ready, in milliseconds.
    pub readiness_timeout_ms: u64,
    /// Failover drills: workload, timing and gates.
    pub drill: DrillSection,
    /// The docker backend.
    pub docker: DockerSection,
    /// Load runs (`load`, `verify`).
    pub load: LoadSection,
}

/// Settings of load runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSection {
    /// How responses say what the cache did: a preset name (`ours`, `nginx`, `varnish`,
    /// `cdn`, `cloudflare`) or `{header, hit: [..], miss: [..], bypass: [..],
    /// age_header}`. Default: `ours` (`X-Cache: HIT | MISS | BYPASS`).
    pub cache_status: Option<CacheStatusSetting>,
}

/// A cache-status vocabulary: a preset's name or a mapping of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CacheStatusSetting {
    /// A built-in preset.
    Preset(String),
    /// Header and values.
    Custom(loadtests::CacheVocab),
}

impl CacheStatusSetting {
    /// The vocabulary it names.
    pub fn vocab(&self) -> Result<loadtests::CacheVocab, loadtests::VocabError> {
        let v = match self {
            CacheStatusSetting::Preset(name) => loadtests::CacheVocab::preset(name)?,
            CacheStatusSetting::Custom(v) => v.clone(),
        };
        v.validate()?;
        Ok(v)
    }
}

impl LoadSection {
    /// The configured vocabulary (default: ours).
    pub fn vocab(&self) -> Result<loadtests::CacheVocab, loadtests::VocabError> {
        self.cache_status
            .as_ref()
            .map_or_else(|| Ok(loadtests::CacheVocab::default()), |c| c.vocab())
    }
}

/// Settings of the docker backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSection {
    /// Image of every node, `name:tag`. The default is the official image (pulled when a
    /// registry is reachable); without one, build `redis-harness/redis:offline` with
    /// `scripts/build-offline-image.sh` and name it here.
    pub image: String,
    /// Publish each node's port on the host's loopback (`127.0.0.1`, a port the engine
    /// picks; `docker port` shows it). Off by default: the host reaches the containers on
    /// their own network's addresses, and nothing is published on any host interface.
    pub publish: bool,
    /// Run the console as the topology's commander container once the Sentinels are ready
    /// (a topology without Sentinels has none).
    pub console: bool,
    /// Image of the commander, `name:tag`: the harness binary, built by
    /// `scripts/build-offline-image.sh`. Never pulled.
    pub console_image: String,
    /// Host port of the console on `127.0.0.1`; 0 lets the engine pick one.
    pub console_port: i64,
    /// Start the console with `--allow-write` (commands outside the read-only allow-list,
    /// the failover button).
    pub console_allow_write: bool,
    /// IPv4 range (`a.b.c.d/n`, n at most 24) the topology's network takes a free /24
    /// from, so every node's address is chosen before any container starts.
    pub subnets: String,
}

/// The default [`DockerSection::subnets`]: inside Docker's own default pools, so the
/// engine skips what a topology takes when it picks a subnet for another network.
pub const DOCKER_SUBNETS: &str = "172.29.0.0/16";

/// The default [`DockerSection::console_image`].
pub const CONSOLE_IMAGE: &str = "redis-harness/console:offline";

impl Default for DockerSection {
    fn default() -> Self {
        Self {
            image: "redis:7.2".into(),
            publish: false,
            console: true,
            console_image: CONSOLE_IMAGE.into(),
            console_port: 0,
            console_allow_write: false,
            subnets: DOCKER_SUBNETS.into(),
        }
    }
}

/// Which traffic a partition drill cuts between the master and the other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PartitionDirection {
    /// Both directions.
    #[default]
    Both,
    /// Only what the master receives from them.
    Inbound,
    /// Only what the master sends to them.
    Outbound,
}

impl std::fmt::Display for PartitionDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PartitionDirection::Both => "both",
            PartitionDirection::Inbound => "inbound",
            PartitionDirection::Outbound => "outbound",
        })
    }
}

/// Failover drill settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrillSection {
    /// The clients that write through the fault side by side, each in its own key space:
    /// built-in models by name (`sentinel-events`, `switch-master`, `reresolve-on-error`,
    /// `fixed-address`) and programs of your own as `{name, command}` (default: the
    /// `sentinel-events`, `reresolve-on-error` and `fixed-address` models).
    pub clients: Vec<crate::drill::clients::ClientSpec>,
    /// Concurrent writers of each built-in model.
    pub writers: u32,
    /// Writes per second per writer.
    pub write_rate: u32,
    /// Readers of each built-in model.
    pub readers: u32,
    /// Reads per second per reader.
    pub read_rate: u32,
    /// After each write, `WAIT` for this many replicas; a write is acknowledged only when
    /// they confirm it (0: plain asynchronous replication).
    pub wait_replicas: u32,
    /// Timeout of that `WAIT`, in milliseconds.
    pub wait_timeout_ms: u64,
    /// Client timeout for every operation, in milliseconds; an operation without an answer
    /// by then is recorded as unknown.
    pub op_timeout_ms: u64,
    /// Workload time before the fault, in milliseconds (with `fault_window_ms`, the fault
    /// comes at a random point within `[pre_fault_ms, pre_fault_ms + fault_window_ms]`).
    pub pre_fault_ms: u64,
    /// Width of the random fault window in milliseconds (0: the fault is at `pre_fault_ms`).
    pub fault_window_ms: u64,
    /// Workload time after recovery, in milliseconds.
    pub post_recovery_ms: u64,
    /// How long `pause-master` / `pause-sentinel` keep the process stopped; 0 picks
    /// `3 * down_after_ms` for the master and 4000 ms for a Sentinel (TILT needs > 2 s).
    pub pause_ms: u64,
    /// How long to wait for a failover, a rejoin or healing before giving up; 0 picks
    /// `down_after_ms + failover_timeout_ms + 10000`.
    pub timeout_ms: u64,
    /// Run the membership API in Sentinel mode on the drill's topology and load it over
    /// HTTP through the fault (`drill --api`).
    pub api: bool,
    /// HTTP clients of that load.
    pub api_clients: u32,
    /// Requests per second per HTTP client.
    pub api_rate: u32,
    /// Members generated into the API's database.
    pub api_members: u64,
    /// Which traffic the `partition` drill cuts (docker backend).
    pub partition: PartitionDirection,
    /// Thresholds; a drill exceeding one fails.
    pub gates: DrillGates,
    /// When to stop a fault early and restore at once (the run is reported as aborted).
    pub abort: AbortSection,
}

/// Abort conditions of a drill: past one, the fault is restored at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbortSection {
    /// No built-in client model got a write acknowledged for this long after the fault.
    pub max_write_unavailable_ms: Option<u64>,
    /// The topology is not healthy again this long after the fault.
    pub heal_timeout_ms: Option<u64>,
}

impl Default for DrillSection {
    fn default() -> Self {
        Self {
            clients: crate::drill::clients::ClientSpec::defaults(),
            writers: 2,
            write_rate: 100,
            readers: 1,
            read_rate: 100,
            wait_replicas: 0,
            wait_timeout_ms: 100,
            op_timeout_ms: 500,
            pre_fault_ms: 2000,
            fault_window_ms: 0,
            post_recovery_ms: 2000,
            pause_ms: 0,
            timeout_ms: 0,
            api: false,
            api_clients: 2,
            api_rate: 50,
            api_members: 50_301,
            partition: PartitionDirection::Both,
            gates: DrillGates::default(),
            abort: AbortSection::default(),
        }
    }
}

/// Node counts and the Sentinel quorum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologySection {
    /// Number of replicas of the master.
    pub replicas: u32,
    /// Number of Sentinels.
    pub sentinels: u32,
    /// Sentinels that must agree the master is down before a failover.
    pub quorum: u32,
    /// Name under which Sentinels monitor the master.
    pub master_name: String,
    /// A topology the harness did not start: its Sentinels, credentials and fault hooks.
    /// When set, the backend is `external` and the counts above are discovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSection>,
}

/// Where nodes listen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortsSection {
    /// Loopback address every node binds to.
    pub bind: String,
    /// First port; the master takes it, replicas and Sentinels the ones after it.
    /// When absent, every node gets a free port chosen by the OS.
    pub base: Option<i64>,
}

/// Sentinel timings (all in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentinelSection {
    /// `down-after-milliseconds`: silence before a node is subjectively down.
    pub down_after_ms: i64,
    /// `failover-timeout`.
    pub failover_timeout_ms: i64,
    /// `parallel-syncs`: replicas resynchronised at once after a failover.
    pub parallel_syncs: i64,
}

/// Persistence settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceSection {
    /// Append-only file on or off.
    pub aof: bool,
    /// `appendfsync`: `always`, `everysec` or `no`.
    pub appendfsync: String,
    /// RDB `save` rules (`"seconds changes ..."`); empty disables snapshots.
    pub rdb_save: String,
}

/// Memory limit and eviction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    /// `maxmemory`, e.g. `256mb`; `0` means no limit.
    pub maxmemory: String,
    /// `maxmemory-policy`.
    pub policy: String,
}

/// Write-safety settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationSection {
    /// `min-replicas-to-write`: refuse writes unless this many replicas are connected.
    pub min_replicas_to_write: i64,
    /// `min-replicas-max-lag`, in seconds.
    pub min_replicas_max_lag: i64,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            backend: BackendKind::Process,
            redis_server: PathBuf::from("redis-server"),
            run_dir: PathBuf::from(".redis-harness"),
            topology: TopologySection::default(),
            ports: PortsSection::default(),
            password: None,
            key_prefix: "harness:".into(),
            sentinel: SentinelSection::default(),
            persistence: PersistenceSection::default(),
            memory: MemorySection::default(),
            replication: ReplicationSection::default(),
            readiness_timeout_ms: 30_000,
            drill: DrillSection::default(),
            docker: DockerSection::default(),
            load: LoadSection::default(),
        }
    }
}

impl Default for TopologySection {
    fn default() -> Self {
        Self {
            replicas: 2,
            sentinels: 3,
            quorum: 2,
            master_name: "mymaster".into(),
            external: None,
        }
    }
}

impl Default for PortsSection {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            base: None,
        }
    }
}

impl Default for SentinelSection {
    fn default() -> Self {
        Self {
            down_after_ms: 5_000,
            failover_timeout_ms: 60_000,
            parallel_syncs: 1,
        }
    }
}

impl Default for PersistenceSection {
    fn default() -> Self {
        Self {
            aof: true,
            appendfsync: "everysec".into(),
            rdb_save: "3600 1 300 100 60 10000".into(),
        }
    }
}

impl Default for MemorySection {
    fn default() -> Self {
        Self {
            maxmemory: "256mb".into(),
            policy: "allkeys-lru".into(),
        }
    }
}

impl Default for ReplicationSection {
    fn default() -> Self {
        Self {
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
        }
    }
}

const POLICIES: &[&str] = &[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
];

impl HarnessConfig {
    /// Loads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_yaml(&read(path)?, &path.display().to_string())
    }

    /// Loads `path` when given; otherwise `harness.yaml` in the current directory when it
    /// exists; otherwise the defaults. The process's `REDIS_HARNESS_EXTERNAL_*` variables
    /// apply over the file.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (text, origin) = match path {
            Some(p) => (read(p)?, p.display().to_string()),
            None if Path::new("harness.yaml").is_file() => {
                (read(Path::new("harness.yaml"))?, "harness.yaml".into())
            }
            None => (String::new(), "<defaults>".into()),
        };
        Self::from_yaml_env(&text, &origin, env)
    }

    /// Parses and validates YAML text; `origin` names its source in error messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_env(text, origin, |_| None)
    }

    /// [`HarnessConfig::from_yaml`] with the `REDIS_HARNESS_EXTERNAL_*` variables `get`
    /// returns applied over `topology.external` before validation.
    pub fn from_yaml_env(
        text: &str,
        origin: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // An empty document means "all defaults".
        let mut cfg: HarnessConfig = if text.trim().is_empty() {
            HarnessConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.to_string(),
                message: e.to_string(),
            })?
        };
        cfg.topology.external = ExternalSection::from_env(cfg.topology.external.take(), get);
        if cfg.topology.external.is_some() && cfg.backend == BackendKind::Process {
            cfg.backend = BackendKind::External;
        }
        cfg.validate().map_err(|problems| ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        })?;
        Ok(cfg)
    }

    /// The effective configuration as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("a config always serialises")
    }

    /// Checks every rule; returns one message per broken rule.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        let t = &self.topology;
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            p.push(format!(
                "name: must be non-empty and use only letters, digits, '-' and '_' (got {:?})",
                self.name
            ));
        }
        if self.redis_server.as_os_str().is_empty() {
            p.push(
                "redis_server: must not be empty; give the binary's path or a name looked up on PATH (default redis-server)"
                    .into(),
            );
        }
        if self.run_dir.as_os_str().is_empty() {
            p.push(
                "run_dir: must not be empty; give a directory (\".\" for the current one; default .redis-harness)"
                    .into(),
            );
        }
        if let Err(e) = self.load.vocab() {
            p.push(format!("load.cache_status: {e}"));
        }
        let img = &self.docker.image;
        if !is_image_ref(img) {
            p.push(format!(
                "docker.image: must be name:tag, e.g. redis:7.2 or redis-harness/redis:offline (got {img:?})"
            ));
        }
        let console = &self.docker.console_image;
        if !is_image_ref(console) {
            p.push(format!(
                "docker.console_image: must be name:tag, e.g. {CONSOLE_IMAGE} (got {console:?})"
            ));
        }
        let port = self.docker.console_port;
        if port != 0 && !(1024..=65535).contains(&port) {
            p.push(format!(
                "docker.console_port: 0 (the engine picks a free port) or a port within 1024..=65535 (got {port})"
            ));
        }
        match crate::topology::docker::Subnet::parse(&self.docker.subnets) {
            Ok(n) if n.prefix <= 24 => {}
            Ok(n) => p.push(format!(
                "docker.subnets: the range must hold at least a /24, e.g. {DOCKER_SUBNETS} (got /{})",
                n.prefix
            )),
            Err(e) => p.push(format!(
                "docker.subnets: must be an IPv4 range a.b.c.d/n, e.g. {DOCKER_SUBNETS}: {e}"
            )),
        }
        if t.sentinels == 0 && t.quorum != 0 {
            p.push(format!(
                "topology.quorum: must be 0 when topology.sentinels is 0 (got quorum {})",
                t.quorum
            ));
        }
        if t.sentinels > 0 && t.quorum == 0 {
            p.push(
                "topology.quorum: must be at least 1 when Sentinels are configured (got 0)".into(),
            );
        }
        if t.sentinels > 0 && t.quorum > t.sentinels {
            p.push(format!(
                "topology.quorum: must not exceed topology.sentinels ({}) (got {})",
                t.sentinels, t.quorum
            ));
        }
        if t.replicas > 16 {
            p.push(format!(
                "topology.replicas: at most 16 (got {})",
                t.replicas
            ));
        }
        if t.sentinels > 15 {
            p.push(format!(
                "topology.sentinels: at most 15 (got {})",
                t.sentinels
            ));
        }
        if t.master_name.is_empty()
            || !t
                .master_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            p.push(format!(
                "topology.master_name: must be non-empty and use only letters, digits, '-', '_' and '.' (got {:?})",
                t.master_name
            ));
        }
        if self.ports.bind.parse::<std::net::IpAddr>().is_err() {
            p.push(format!(
                "ports.bind: must be an IP address such as 127.0.0.1 (got {:?})",
                self.ports.bind
            ));
        }
        if let Some(base) = self.ports.base {
            let last = base + i64::from(self.node_count()) - 1;
            if !(1024..=65535).contains(&base) || last > 65535 {
                p.push(format!(
                    "ports.base: the {} ports from the base must lie within 1024..=65535 (got base {}, last port {})",
                    self.node_count(),
                    base,
                    last
                ));
            }
        }
        if let Some(pw) = &self.password {
            if pw.is_empty()
                || pw
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
            {
                p.push(
                    "password: must be non-empty without whitespace, quotes or backslashes".into(),
                );
            }
        }
        let s = &self.sentinel;
        if s.down_after_ms <= 0 {
            p.push(format!(
                "sentinel.down_after_ms: must be a positive number of milliseconds (got {})",
                s.down_after_ms
            ));
        }
        if s.failover_timeout_ms <= 0 {
            p.push(format!(
                "sentinel.failover_timeout_ms: must be a positive number of milliseconds (got {})",
                s.failover_timeout_ms
            ));
        }
        if s.parallel_syncs < 1 {
            p.push(format!(
                "sentinel.parallel_syncs: must be at least 1 (got {})",
                s.parallel_syncs
            ));
        }
        if !["always", "everysec", "no"].contains(&self.persistence.appendfsync.as_str()) {
            p.push(format!(
                "persistence.appendfsync: must be always, everysec or no (got {:?})",
                self.persistence.appendfsync
            ));
        }
        let save: Vec<&str> = self.persistence.rdb_save.split_whitespace().collect();
        if !save.len().is_multiple_of(2) || save.iter().any(|n| n.parse::<u64>().is_err()) {
            p.push(format!(
                "persistence.rdb_save: must be pairs of non-negative integers \"seconds changes ...\" or empty (got {:?})",
                self.persistence.rdb_save
            ));
        }
        if parse_memory(&self.memory.maxmemory).is_none() {
            p.push(format!(
                "memory.maxmemory: must be a size such as 0, 1048576, 512kb, 256mb or 2gb (got {:?})",
                self.memory.maxmemory
            ));
        }
        if !POLICIES.contains(&self.memory.policy.as_str()) {
            p.push(format!(
                "memory.policy: must be one of {} (got {:?})",
                POLICIES.join(", "),
                self.memory.policy
            ));
        }
        let r = &self.replication;
        if r.min_replicas_to_write < 0 || r.min_replicas_to_write > i64::from(t.replicas) {
            p.push(format!(
                "replication.min_replicas_to_write: must be between 0 and topology.replicas ({}) (got {})",
                t.replicas, r.min_replicas_to_write
            ));
        }
        if r.min_replicas_max_lag < 1 {
            p.push(format!(
                "replication.min_replicas_max_lag: must be at least 1 second (got {})",
                r.min_replicas_max_lag
            ));
        }
        let d = &self.drill;
        if d.writers == 0 || d.writers > 64 {
            p.push(format!(
                "drill.writers: between 1 and 64 (got {})",
                d.writers
            ));
        }
        if d.readers > 64 {
            p.push(format!("drill.readers: at most 64 (got {})", d.readers));
        }
        if d.write_rate == 0 || d.write_rate > 10_000 {
            p.push(format!(
                "drill.write_rate: between 1 and 10000 per second (got {})",
                d.write_rate
            ));
        }
        if d.read_rate == 0 || d.read_rate > 10_000 {
            p.push(format!(
                "drill.read_rate: between 1 and 10000 per second (got {})",
                d.read_rate
            ));
        }
        if d.wait_replicas > t.replicas {
            p.push(format!(
                "drill.wait_replicas: must not exceed topology.replicas ({}) (got {})",
                t.replicas, d.wait_replicas
            ));
        }
        if d.op_timeout_ms == 0 || d.wait_timeout_ms == 0 {
            p.push("drill.op_timeout_ms and drill.wait_timeout_ms: must be positive".into());
        }
        if d.pre_fault_ms > 600_000 || d.post_recovery_ms > 600_000 || d.fault_window_ms > 600_000 {
            p.push("drill.pre_fault_ms, fault_window_ms, post_recovery_ms: at most 600000 each (drills are bounded)".into());
        }
        if d.api_clients == 0 || d.api_clients > 256 || d.api_rate == 0 || d.api_rate > 10_000 {
            p.push(format!(
                "drill.api_clients (1-256) and drill.api_rate (1-10000/s): got {} and {}",
                d.api_clients, d.api_rate
            ));
        }
        if d.api_members == 0 {
            p.push("drill.api_members: at least 1".into());
        }
        p.extend(crate::drill::clients::validate(&d.clients));
        for (figure, v) in d.gates.set() {
            if v < 0.0 {
                p.push(format!(
                    "drill.gates.{}: must not be negative (got {v})",
                    gate_name(figure.name())
                ));
            }
        }
        for (key, figure, v) in d.gates.every_threshold() {
            if v < 0.0 {
                p.push(format!("drill.gates.{key}: must not be negative (got {v})"));
            }
            if figure == crate::drill::ClientFigure::LostAckedPercent && v > 100.0 {
                p.push(format!("drill.gates.{key}: between 0 and 100 (got {v})"));
            }
        }
        let a = &d.abort;
        if a.max_write_unavailable_ms == Some(0) || a.heal_timeout_ms == Some(0) {
            p.push("drill.abort.max_write_unavailable_ms and heal_timeout_ms: positive, or left out to turn them off".into());
        }
        if a.max_write_unavailable_ms.is_some()
            && !d
                .clients
                .iter()
                .any(|c| matches!(c, crate::drill::clients::ClientSpec::Model(_)))
        {
            p.push("drill.abort.max_write_unavailable_ms: watches the built-in client models' writes; add one to drill.clients".into());
        }
        if self.key_prefix.is_empty()
            || self.key_prefix.len() > 64
            || self
                .key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "*?[]\\".contains(c))
        {
            p.push(format!(
                "key_prefix: 1 to 64 characters without whitespace or the glob characters * ? [ ] \\ (got {:?})",
                self.key_prefix
            ));
        }
        match (&t.external, self.backend) {
            (Some(e), BackendKind::External) => p.extend(e.problems()),
            (Some(_), b) => p.push(format!(
                "backend: {b} starts its own topology; an external topology (topology.external) is reached through its Sentinels (leave backend out)"
            )),
            (None, BackendKind::External) => p.push(
                "backend: external needs topology.external (its sentinels and master_name)".into(),
            ),
            (None, _) => {}
        }
        if self.readiness_timeout_ms == 0 {
            p.push("readiness_timeout_ms: must be positive (got 0)".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }

    /// Total number of nodes: master, replicas and Sentinels.
    pub fn node_count(&self) -> u32 {
        1 + self.topology.replicas + self.topology.sentinels
    }

    /// How to log in to the topology's nodes: `topology.external`'s credentials, or
    /// `password` for the data nodes of a topology the harness starts (its Sentinels have
    /// none).
    pub fn credentials(&self) -> crate::topology::Credentials {
        use crate::topology::{Credentials, Login};
        match &self.topology.external {
            Some(e) => Credentials {
                data: Login {
                    username: e.username.clone(),
                    password: e.password.clone(),
                },
                sentinel: Login::password(e.sentinel_password.clone()),
            },
            None => Credentials {
                data: Login::password(self.password.clone()),
                sentinel: Login::none(),
            },
        }
    }

    /// The run directory of this topology: `run_dir/name`.
    pub fn topology_dir(&self) -> PathBuf {
        self.run_dir.join(&self.name)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `s` reads as an image reference `name:tag`.
fn is_image_ref(s: &str) -> bool {
    s.split_once(':').is_some_and(|(n, tag)| {
        !n.is_empty() && !tag.is_empty() && !tag.contains('/') && !s.contains(char::is_whitespace)
    })
}

/// Parses a Redis memory size (`0`, `1048576`, `512kb`, `256mb`, `2gb`, case-insensitive)
/// into bytes.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let (digits, mult) = if let Some(n) = lower.strip_suffix("gb") {
        (n, 1u64 << 30)
    } else if let Some(n) = lower.strip_suffix("mb") {
        (n, 1 << 20)
    } else if let Some(n) = lower.strip_suffix("kb") {
        (n, 1 << 10)
    } else if let Some(n) = lower.strip_suffix('b') {
        (n, 1)
    } else {
        (lower.as_str(), 1)
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("256mb"), Some(256 << 20));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("12x"), None);
        assert_eq!(parse_memory("-1mb"), None);
    }

    #[test]
    fn empty_yaml_is_defaults() {
        assert_eq!(
            HarnessConfig::from_yaml("", "t").unwrap(),
            HarnessConfig::default()
        );
    }

    #[test]
    fn effective_config_round_trips() {
        let cfg = HarnessConfig::default();
        assert_eq!(HarnessConfig::from_yaml(&cfg.to_yaml(), "t").unwrap(), cfg);
    }
}
