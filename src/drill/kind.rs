//! The drill kinds and what each promises about failover.

use serde::{Deserialize, Serialize};

/// The drill kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DrillKind {
    /// SIGKILL the master; restart it after the failover and watch it rejoin.
    KillMaster,
    /// SIGSTOP the master for `pause_ms`, then SIGCONT.
    PauseMaster,
    /// `SENTINEL FAILOVER` (graceful, coordinated).
    SentinelFailover,
    /// SIGKILL a replica, then restart it; no failover may happen.
    KillReplica,
    /// Kill Sentinels until fewer than the quorum remain, then kill the master: the drill
    /// passes only if no failover happens.
    KillSentinels,
    /// SIGKILL every node, start them again: acknowledged writes must survive within the
    /// fsync policy's promise.
    RestartAll,
    /// SIGSTOP a Sentinel long enough to trigger TILT, then SIGCONT.
    PauseSentinel,
    /// Cut the master off from the replicas and Sentinels while clients still reach it,
    /// hold until the majority side has failed over (or `pause_ms`), then heal (docker
    /// backend; `drill.partition` picks both directions or one).
    Partition,
}

impl std::fmt::Display for DrillKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DrillKind::KillMaster => "kill-master",
            DrillKind::PauseMaster => "pause-master",
            DrillKind::SentinelFailover => "sentinel-failover",
            DrillKind::KillReplica => "kill-replica",
            DrillKind::KillSentinels => "kill-sentinels",
            DrillKind::RestartAll => "restart-all",
            DrillKind::PauseSentinel => "pause-sentinel",
            DrillKind::Partition => "partition",
        })
    }
}

impl DrillKind {
    /// Every kind the process backend runs.
    pub const PROCESS: [DrillKind; 7] = [
        DrillKind::KillMaster,
        DrillKind::PauseMaster,
        DrillKind::SentinelFailover,
        DrillKind::KillReplica,
        DrillKind::KillSentinels,
        DrillKind::RestartAll,
        DrillKind::PauseSentinel,
    ];

    /// Whether a failover must happen (`true`) or must not (`false`).
    pub fn expects_failover(self) -> bool {
        match self {
            DrillKind::KillMaster
            | DrillKind::PauseMaster
            | DrillKind::SentinelFailover
            | DrillKind::Partition => true,
            DrillKind::KillReplica
            | DrillKind::KillSentinels
            | DrillKind::RestartAll
            | DrillKind::PauseSentinel => false,
        }
    }
}
