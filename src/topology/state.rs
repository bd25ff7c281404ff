//! The state file (`<run_dir>/<name>/state.json`) that lets `status` and `down` find a
//! topology started by another shell.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::auth::{Credentials, Login};

use super::spec::NodeSpec;
use super::TopologyError;
use crate::config::BackendKind;

/// Version of the state file layout; bumped on incompatible changes.
pub const STATE_VERSION: u32 = 1;

/// One running node as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The planned node.
    #[serde(flatten)]
    pub spec: NodeSpec,
    /// Process id (process backend).
    pub pid: Option<u32>,
    /// The node's working directory (config, data, log).
    pub dir: PathBuf,
    /// The node's config file; also used to recognise its process.
    pub config_file: PathBuf,
    /// The node's log file.
    pub log_file: PathBuf,
    /// Container id (docker backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Everything needed to find, probe and stop a running topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyState {
    /// Layout version ([`STATE_VERSION`]).
    pub version: u32,
    /// Topology name.
    pub name: String,
    /// Backend that runs it.
    pub backend: BackendKind,
    /// Sentinel master name.
    pub master_name: String,
    /// Password, when configured.
    pub password: Option<String>,
    /// ACL user of the data nodes (external topologies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Sentinels' own password (external topologies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_password: Option<String>,
    /// `redis-server --version` of the binary that runs it.
    pub redis_version: String,
    /// Start time, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Every node.
    pub nodes: Vec<NodeRecord>,
    /// The topology's private network (docker backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The topology's console, when one runs with it (docker backend: the commander
    /// container). State files written before the console existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleRecord>,
}

/// The console watching a topology, as recorded in the state file (readable by its owner
/// only, since it holds the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleRecord {
    /// Container id (docker backend: the commander).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Where the host reaches it, e.g. `http://127.0.0.1:49153`.
    pub url: String,
    /// Its token.
    pub token: String,
}

impl ConsoleRecord {
    /// The URL to open: the console with its token (which the console trades for a cookie
    /// and removes from the address bar).
    pub fn url_with_token(&self) -> String {
        format!("{}/?token={}", self.url.trim_end_matches('/'), self.token)
    }
}

impl TopologyState {
    /// Path of the state file in a topology directory.
    pub fn path(topology_dir: &Path) -> PathBuf {
        topology_dir.join("state.json")
    }

    /// Reads the state file of a topology directory; `Ok(None)` when there is none.
    pub fn read(topology_dir: &Path) -> Result<Option<Self>, TopologyError> {
        let path = Self::path(topology_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TopologyError::file("read the state file", &path)(e)),
        };
        let state: TopologyState = serde_json::from_str(&text).map_err(|e| {
            TopologyError::State(format!("{} is not a valid state file: {e}", path.display()))
        })?;
        if state.version != STATE_VERSION {
            return Err(TopologyError::State(format!(
                "{} has layout version {}, this build reads {STATE_VERSION}",
                path.display(),
                state.version
            )));
        }
        Ok(Some(state))
    }

    /// Writes the state file atomically (write to a temporary file, then rename), readable
    /// by the owner only since it may hold the password.
    pub fn write(&self, topology_dir: &Path) -> Result<(), TopologyError> {
        let path = Self::path(topology_dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("state serialises");
        std::fs::write(&tmp, text).map_err(TopologyError::file("write the state file", &tmp))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .map_err(TopologyError::file("restrict the permissions of", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(TopologyError::file(
            "move the state file into place at",
            &path,
        ))?;
        Ok(())
    }

    /// Removes the state file of a topology directory, if any.
    pub fn remove(topology_dir: &Path) -> Result<(), TopologyError> {
        let path = Self::path(topology_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TopologyError::file("remove the state file", &path)(e)),
        }
    }

    /// Address of the node started as master.
    pub fn initial_master(&self) -> &NodeRecord {
        self.nodes
            .iter()
            .find(|n| n.spec.kind == super::NodeKind::Master)
            .expect("a topology has a master")
    }
}

impl TopologyState {
    /// How to log in to its nodes.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            data: Login {
                username: self.username.clone(),
                password: self.password.clone(),
            },
            sentinel: Login::password(self.sentinel_password.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file as written before the console existed.
    const WITHOUT_CONSOLE: &str = r#"{
  "version": 1,
  "name": "old",
  "backend": "docker",
  "master_name": "mymaster",
  "password": null,
  "redis_version": "image redis:7.2",
  "started_unix_ms": 1,
  "nodes": [],
  "network": "rh-old-00000000"
}"#;

    #[test]
    fn state_files_without_a_console_still_load_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(TopologyState::path(dir.path()), WITHOUT_CONSOLE).unwrap();
        let mut state = TopologyState::read(dir.path()).unwrap().unwrap();
        assert_eq!(state.console, None);
        state.console = Some(ConsoleRecord {
            container: Some("abc".into()),
            url: "http://127.0.0.1:49153".into(),
            token: "t0k".into(),
        });
        state.write(dir.path()).unwrap();
        let back = TopologyState::read(dir.path()).unwrap().unwrap();
        assert_eq!(back, state);
        assert_eq!(
            back.console.unwrap().url_with_token(),
            "http://127.0.0.1:49153/?token=t0k"
        );
    }
}
