//! Waiting on the live topology during a drill: the Sentinels naming a new master, a node
//! answering as a connected replica again.

use std::time::Duration;

use crate::topology::{probe, Login, NodeSpec};

/// Asks the live Sentinels which master they name; the most named one wins.
pub(crate) async fn sentinel_master(
    sentinels: &[NodeSpec],
    login: &Login,
    name: &str,
) -> Option<String> {
    let asks = sentinels.iter().map(|s| async move {
        let mut c = probe::connect(&s.host, s.port, login, Duration::from_millis(200))
            .await
            .ok()?;
        let r: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(name)
            .query_async(&mut c)
            .await
            .ok()?;
        r.map(|(h, p)| format!("{h}:{p}"))
    });
    let named = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten();
    probe::most_named(named)
}

/// Waits until the Sentinels name a master other than `old`; `None` on timeout.
pub(crate) async fn new_master(
    sentinels: &[NodeSpec],
    login: &Login,
    name: &str,
    old: &str,
    timeout: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Some(m) = sentinel_master(sentinels, login, name)
            .await
            .filter(|m| m != old)
        {
            return Some(m);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Waits until `node` answers ROLE as a replica with a connected link.
pub(crate) async fn rejoined(node: &NodeSpec, login: &Login, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut c) =
            probe::connect(&node.host, node.port, login, Duration::from_millis(200)).await
        {
            if let Ok(info) = probe::info_replication(&mut c).await {
                if info.get("role").map(String::as_str) == Some("slave")
                    && info.get("master_link_status").map(String::as_str) == Some("up")
                {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
