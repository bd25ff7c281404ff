//! Partitions: iptables rules inside a container's network namespace (entered with
//! `nsenter` from the host) that cut it off from chosen peers while the host still reaches it.

use testcontainers::bollard::Docker;

use crate::config::PartitionDirection;
use crate::topology::state::NodeRecord;
use crate::topology::TopologyError;

use super::container::{container_pid, id};

/// Drops the traffic between this container and `peers` (their addresses) in the
/// given direction; everything else, the host included, still gets through.
pub(super) async fn partition(
    d: &Docker,
    record: &NodeRecord,
    peers: &[String],
    direction: PartitionDirection,
) -> Result<(), TopologyError> {
    let pid = container_pid(d, id(record)).await?;
    for peer in peers {
        if direction != PartitionDirection::Outbound {
            nsenter_iptables(pid, &["-A", "INPUT", "-s", peer, "-j", "DROP"])?;
        }
        if direction != PartitionDirection::Inbound {
            nsenter_iptables(pid, &["-A", "OUTPUT", "-d", peer, "-j", "DROP"])?;
        }
    }
    Ok(())
}

/// Removes every partition rule.
pub(super) async fn heal(d: &Docker, record: &NodeRecord) -> Result<(), TopologyError> {
    let pid = container_pid(d, id(record)).await?;
    nsenter_iptables(pid, &["-F", "INPUT"])?;
    nsenter_iptables(pid, &["-F", "OUTPUT"])
}

pub(super) fn nsenter_iptables(pid: i64, args: &[&str]) -> Result<(), TopologyError> {
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "iptables", "-w"])
        .args(args)
        .output()
        .map_err(|e| {
            TopologyError::Docker(format!(
                "partitions need nsenter and iptables on the host, run as root ({e}); apt-get install util-linux iptables"
            ))
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TopologyError::Docker(format!(
            "iptables {} in the container's network namespace failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
