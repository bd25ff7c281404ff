//! `topology.external`: a topology the harness did not start, reached through its
//! Sentinels (pre-production mode), with the hooks that inject the faults it cannot
//! inject itself and the thresholds of the steady-state check before a fault.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The environment variables that override `topology.external` (so secrets need not sit in
/// files): `(variable, field)`.
pub const ENV: [(&str, &str); 5] = [
    (
        "REDIS_HARNESS_EXTERNAL_SENTINELS",
        "sentinels (comma-separated host:port)",
    ),
    ("REDIS_HARNESS_EXTERNAL_MASTER_NAME", "master_name"),
    ("REDIS_HARNESS_EXTERNAL_USERNAME", "username"),
    ("REDIS_HARNESS_EXTERNAL_PASSWORD", "password"),
    (
        "REDIS_HARNESS_EXTERNAL_SENTINEL_PASSWORD",
        "sentinel_password",
    ),
];

/// A topology reached through its Sentinels; the harness never starts or stops its nodes.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalSection {
    /// `host:port` of the Sentinels to ask (at least one; every Sentinel they know is
    /// discovered and checked).
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under.
    pub master_name: String,
    /// ACL user of the data nodes (`AUTH username password`); none: the default user.
    pub username: Option<String>,
    /// Password of the data nodes.
    pub password: Option<String>,
    /// The Sentinels' own `requirepass`.
    pub sentinel_password: Option<String>,
    /// Names for node addresses, `name: host:port`: what `{node}` becomes in a hook (a
    /// container, pod or VM name). A node not listed here is named by its host.
    pub nodes: BTreeMap<String, String>,
    /// Shell commands that inject the faults the harness cannot inject over the Redis
    /// protocol.
    pub hooks: Hooks,
    /// How long a hook may run before it is killed and the fault fails, in milliseconds.
    pub hook_timeout_ms: u64,
    /// How `pause-master` freezes the master.
    pub pause: PauseMethod,
    /// Thresholds of the steady-state check before a fault.
    pub preflight: PreflightSection,
}

impl std::fmt::Debug for ExternalSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("ExternalSection")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .field("sentinel_password", &secret(&self.sentinel_password))
            .field("nodes", &self.nodes)
            .field("hooks", &self.hooks)
            .field("hook_timeout_ms", &self.hook_timeout_ms)
            .field("pause", &self.pause)
            .field("preflight", &self.preflight)
            .finish()
    }
}

impl Default for ExternalSection {
    fn default() -> Self {
        Self {
            sentinels: Vec::new(),
            master_name: String::new(),
            username: None,
            password: None,
            sentinel_password: None,
            nodes: BTreeMap::new(),
            hooks: Hooks::default(),
            hook_timeout_ms: 30_000,
            pause: PauseMethod::DebugSleep,
            preflight: PreflightSection::default(),
        }
    }
}

/// Fault hooks: shell commands (`sh -c`) with `{node}`, `{host}`, `{port}` and `{role}`
/// filled in (shell-quoted) for the node the fault aims at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    /// Kills a node without grace (`kill-master`, `kill-replica`, `kill-sentinels`,
    /// `restart-all`), e.g. `docker kill {node}`.
    pub kill: Option<String>,
    /// Starts a killed node again from its own data and config, e.g. `docker start {node}`.
    pub restore: Option<String>,
    /// Cuts the master off from the replicas and Sentinels while clients still reach it.
    pub partition: Option<String>,
    /// Undoes `partition`.
    pub heal: Option<String>,
}

/// Which hook a fault needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `hooks.kill`.
    Kill,
    /// `hooks.restore`.
    Restore,
    /// `hooks.partition`.
    Partition,
    /// `hooks.heal`.
    Heal,
}

impl Hook {
    /// Its key under `hooks`.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Kill => "kill",
            Hook::Restore => "restore",
            Hook::Partition => "partition",
            Hook::Heal => "heal",
        }
    }
}

impl Hooks {
    /// The command of `hook`, when configured.
    pub fn get(&self, hook: Hook) -> Option<&str> {
        match hook {
            Hook::Kill => self.kill.as_deref(),
            Hook::Restore => self.restore.as_deref(),
            Hook::Partition => self.partition.as_deref(),
            Hook::Heal => self.heal.as_deref(),
        }
    }
}

/// How `pause-master` freezes an external master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PauseMethod {
    /// `DEBUG SLEEP`: the whole server stops answering, as a frozen process would
    /// (refused where the server has `enable-debug-command no`).
    #[default]
    DebugSleep,
    /// `CLIENT PAUSE ... WRITE`: writes stall but PING and reads are answered, so the
    /// Sentinels see the master up and no failover is expected. A write outage, not a
    /// frozen master.
    ClientPauseWrite,
}

impl std::fmt::Display for PauseMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PauseMethod::DebugSleep => "debug-sleep",
            PauseMethod::ClientPauseWrite => "client-pause-write",
        })
    }
}

/// Thresholds of the steady-state check before a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreflightSection {
    /// Most bytes a replica may be behind the master.
    pub max_replica_lag_bytes: u64,
    /// Most seconds since a replica's last acknowledgement (`lag` in the master's INFO).
    pub max_replica_lag_s: u64,
}

impl Default for PreflightSection {
    fn default() -> Self {
        Self {
            max_replica_lag_bytes: 1 << 20,
            max_replica_lag_s: 2,
        }
    }
}

impl ExternalSection {
    /// Applies the `REDIS_HARNESS_EXTERNAL_*` variables `get` returns over `section`
    /// (creating it when the variables name Sentinels and the file did not).
    pub fn from_env(
        section: Option<ExternalSection>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Option<ExternalSection> {
        let sentinels = get(ENV[0].0);
        let mut s = match (section, &sentinels) {
            (Some(s), _) => s,
            (None, Some(_)) => ExternalSection::default(),
            (None, None) => return None,
        };
        if let Some(list) = sentinels {
            s.sentinels = list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = get(ENV[1].0) {
            s.master_name = v;
        }
        for (var, field) in [
            (ENV[2].0, &mut s.username),
            (ENV[3].0, &mut s.password),
            (ENV[4].0, &mut s.sentinel_password),
        ] {
            if let Some(v) = get(var) {
                *field = Some(v);
            }
        }
        Some(s)
    }

    /// Every broken rule, `topology.external.<field>: rule (got value)`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let f = "topology.external";
        if self.sentinels.is_empty() {
            p.push(format!(
                "{f}.sentinels: at least one host:port (or set {})",
                ENV[0].0
            ));
        }
        for a in &self.sentinels {
            if split_addr(a).is_none() {
                p.push(format!("{f}.sentinels: {a:?} is not host:port"));
            }
        }
        if self.master_name.is_empty() {
            p.push(format!(
                "{f}.master_name: the name the Sentinels monitor the master under (or set {})",
                ENV[1].0
            ));
        }
        for (name, a) in &self.nodes {
            if split_addr(a).is_none() {
                p.push(format!("{f}.nodes.{name}: {a:?} is not host:port"));
            }
            if !plain_host(name) {
                p.push(format!(
                    "{f}.nodes: {name:?}: a node name must be letters, digits, '.', '-', '_' or ':'"
                ));
            }
        }
        if self.username.is_some() && self.password.is_none() {
            p.push(format!(
                "{f}.username: needs password too (AUTH takes both; without one the default user would be used)"
            ));
        }
        for hook in [Hook::Kill, Hook::Restore, Hook::Partition, Hook::Heal] {
            if self.hooks.get(hook).is_some_and(|c| c.trim().is_empty()) {
                p.push(format!(
                    "{f}.hooks.{}: an empty command; leave it out instead",
                    hook.name()
                ));
            }
        }
        if self.hook_timeout_ms == 0 || self.hook_timeout_ms > 600_000 {
            p.push(format!(
                "{f}.hook_timeout_ms: between 1 and 600000 (got {})",
                self.hook_timeout_ms
            ));
        }
        p
    }
}

/// Whether `s` is a plain host name or address (what may reach a hook's command line).
pub fn plain_host(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
}

/// `host:port` split, when it is one (`[v6]:port` too).
pub fn split_addr(a: &str) -> Option<(String, u16)> {
    let (host, port) = a.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_creates_and_overrides_the_section() {
        let env = |k: &str| match k {
            "REDIS_HARNESS_EXTERNAL_SENTINELS" => Some("10.0.0.1:26379, 10.0.0.2:26379".into()),
            "REDIS_HARNESS_EXTERNAL_PASSWORD" => Some("s3cret".into()),
            _ => None,
        };
        let s = ExternalSection::from_env(None, env).unwrap();
        assert_eq!(s.sentinels, ["10.0.0.1:26379", "10.0.0.2:26379"]);
        assert_eq!(s.password.as_deref(), Some("s3cret"));
        assert!(!format!("{s:?}").contains("s3cret"), "Debug hides secrets");
        assert_eq!(
            s.problems(),
            ["topology.external.master_name: the name the Sentinels monitor the master under (or set REDIS_HARNESS_EXTERNAL_MASTER_NAME)"]
        );
        assert!(ExternalSection::from_env(None, |_| None).is_none());
        let file = ExternalSection {
            master_name: "prod".into(),
            ..Default::default()
        };
        let s = ExternalSection::from_env(Some(file), |k| {
            (k == "REDIS_HARNESS_EXTERNAL_MASTER_NAME").then(|| "staging".to_string())
        })
        .unwrap();
        assert_eq!(s.master_name, "staging");
    }

    #[test]
    fn addresses_and_empty_hooks_are_checked() {
        assert_eq!(split_addr("[::1]:26379"), Some(("::1".into(), 26379)));
        assert_eq!(
            split_addr("redis-0.redis:6379"),
            Some(("redis-0.redis".into(), 6379))
        );
        assert_eq!(split_addr("host"), None);
        assert_eq!(split_addr("host:0"), None);
        let s = ExternalSection {
            sentinels: vec!["a:1".into(), "nope".into()],
            master_name: "m".into(),
            hooks: Hooks {
                kill: Some(" ".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            s.problems(),
            [
                "topology.external.sentinels: \"nope\" is not host:port",
                "topology.external.hooks.kill: an empty command; leave it out instead"
            ]
        );
    }
}
