//! Finds an external topology's nodes and Sentinel settings by asking its Sentinels
//! (`SENTINEL MASTER`, `SENTINEL REPLICAS`); read-only.

use std::time::Duration;

use crate::config::external::split_addr;
use crate::config::ExternalSection;
use crate::topology::auth::Credentials;
use crate::topology::probe::{self, pairs};
use crate::topology::TopologyError;

/// What the Sentinels say, by majority where they differ.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Discovered {
    /// The master most Sentinels name.
    pub master: (String, u16),
    /// Every replica any Sentinel lists (down ones too), sorted.
    pub replicas: Vec<(String, u16)>,
    /// The configured Sentinels, in their order.
    pub sentinels: Vec<(String, u16)>,
    /// The master's quorum.
    pub quorum: u32,
    /// `down-after-milliseconds`.
    pub down_after_ms: i64,
    /// `failover-timeout`.
    pub failover_timeout_ms: i64,
    /// `parallel-syncs`.
    pub parallel_syncs: i64,
}

/// Asks every Sentinel of `ext`; `Err` when none answers about `master_name` (each one's
/// reason in the message).
pub(crate) async fn discover(
    ext: &ExternalSection,
    credentials: &Credentials,
) -> Result<Discovered, TopologyError> {
    let sentinels: Vec<(String, u16)> =
        ext.sentinels.iter().filter_map(|a| split_addr(a)).collect();
    let asks = sentinels
        .iter()
        .map(|(h, p)| ask(h, *p, &ext.master_name, credentials));
    let answers = futures_util::future::join_all(asks).await;
    let mut errors = Vec::new();
    let mut views = Vec::new();
    for ((h, p), a) in sentinels.iter().zip(answers) {
        match a {
            Ok(v) => views.push(v),
            Err(e) => errors.push(format!("{h}:{p}: {e}")),
        }
    }
    if views.is_empty() {
        return Err(TopologyError::External(format!(
            "no Sentinel answered about master '{}': {}",
            ext.master_name,
            errors.join("; ")
        )));
    }
    let master = probe::most_named(views.iter().map(|v| v.master.clone()))
        .and_then(|m| split_addr(&m))
        .expect("at least one view");
    let first = views
        .iter()
        .find(|v| split_addr(&v.master).as_ref() == Some(&master))
        .expect("the majority's view");
    let known = views.iter().map(|v| v.others + 1).max().unwrap_or(0);
    if known > sentinels.len() {
        return Err(TopologyError::External(format!(
            "the Sentinels know {known} Sentinels for '{}' but topology.external.sentinels lists {}; list every one (drills that stop Sentinels, and the checks, must know them all)",
            ext.master_name,
            sentinels.len()
        )));
    }
    let mut replicas: Vec<(String, u16)> = views
        .iter()
        .flat_map(|v| v.replicas.iter().cloned())
        .filter(|r| *r != master)
        .collect();
    replicas.sort();
    replicas.dedup();
    // Hosts reach hooks' command lines: only plain host names and addresses pass.
    for (h, p) in std::iter::once(&master).chain(&replicas) {
        if !crate::config::external::plain_host(h) {
            return Err(TopologyError::External(format!(
                "the Sentinels announce a node as {h:?}:{p}; a host must be letters, digits, '.', '-', '_' or ':' (it is handed to the fault hooks)"
            )));
        }
    }
    Ok(Discovered {
        master,
        replicas,
        sentinels,
        quorum: first.quorum,
        down_after_ms: first.down_after_ms,
        failover_timeout_ms: first.failover_timeout_ms,
        parallel_syncs: first.parallel_syncs,
    })
}

/// One Sentinel's answer.
struct View {
    master: String,
    replicas: Vec<(String, u16)>,
    quorum: u32,
    down_after_ms: i64,
    failover_timeout_ms: i64,
    parallel_syncs: i64,
    /// `num-other-sentinels`.
    others: usize,
}

async fn ask(
    host: &str,
    port: u16,
    master_name: &str,
    credentials: &Credentials,
) -> Result<View, String> {
    let mut c = probe::connect(host, port, &credentials.sentinel, Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    let m: Vec<String> = redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(master_name)
        .query_async(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    let m = pairs(m);
    let get = |k: &str| m.get(k).cloned().unwrap_or_default();
    let num = |k: &str| get(k).parse::<i64>().ok();
    let replicas: Vec<Vec<String>> = redis::cmd("SENTINEL")
        .arg("REPLICAS")
        .arg(master_name)
        .query_async(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    let replicas = replicas
        .into_iter()
        .map(pairs)
        .filter_map(|r| Some((r.get("ip")?.clone(), r.get("port")?.parse().ok()?)))
        .collect();
    Ok(View {
        master: format!("{}:{}", get("ip"), get("port")),
        replicas,
        quorum: num("quorum").unwrap_or(1).max(1) as u32,
        down_after_ms: num("down-after-milliseconds").unwrap_or(30_000),
        failover_timeout_ms: num("failover-timeout").unwrap_or(180_000),
        parallel_syncs: num("parallel-syncs").unwrap_or(1),
        others: num("num-other-sentinels").unwrap_or(0).max(0) as usize,
    })
}
