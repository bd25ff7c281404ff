//! The Sentinels' reconnect pace while `up` waits for them.
//!
//! Every Sentinel is told its peers in its config, so no hello round is awaited. But a
//! Sentinel that tries a peer before that peer listens (Sentinels started together race
//! each other) tries again only after its ping period, a second by default. While `up`
//! waits, the period is lowered with `SENTINEL DEBUG ping-period`; it is put back to the
//! value read before, and checked, before the topology counts as ready. A Sentinel that
//! does not know `SENTINEL DEBUG` (before Redis 7.0) keeps its own pace.

use redis::aio::MultiplexedConnection;

use super::auth::Login;
use super::probe;
use super::spec::NodeSpec;
use super::TopologyError;

/// Ping period (ms) while `up` waits: a failed connection is retried within a timer tick.
const HURRIED_MS: i64 = 20;

/// Sentinels whose ping period was lowered, with the value to put back.
#[derive(Debug, Default)]
pub(crate) struct Hurried {
    sentinels: Vec<(NodeSpec, i64)>,
}

/// The `PING-PERIOD` a Sentinel reports, `None` when it has no `SENTINEL DEBUG`.
async fn ping_period(con: &mut MultiplexedConnection) -> Option<i64> {
    let flat: Vec<String> = redis::cmd("SENTINEL")
        .arg("DEBUG")
        .query_async(con)
        .await
        .ok()?;
    probe::pairs(flat)
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ping-period"))
        .and_then(|(_, v)| v.parse().ok())
}

/// Sets a Sentinel's ping period to `ms` on `con` and returns the period it had before
/// (`None`: it has no `SENTINEL DEBUG`, nothing was set).
async fn set_ping_period(
    con: &mut MultiplexedConnection,
    node: &NodeSpec,
    ms: i64,
) -> Result<Option<i64>, TopologyError> {
    let Some(before) = ping_period(con).await else {
        return Ok(None);
    };
    let _: () = redis::cmd("SENTINEL")
        .arg("DEBUG")
        .arg("ping-period")
        .arg(ms)
        .query_async(con)
        .await
        .map_err(|e| failed(node, format!("SENTINEL DEBUG ping-period {ms}: {e}")))?;
    Ok(Some(before))
}

fn failed(node: &NodeSpec, detail: String) -> TopologyError {
    TopologyError::Start {
        node: node.name.clone(),
        detail,
    }
}

async fn connect(node: &NodeSpec, login: &Login) -> Result<MultiplexedConnection, TopologyError> {
    probe::connect(&node.host, node.port, login, probe::PROBE_TIMEOUT)
        .await
        .map_err(|e| failed(node, format!("connecting to set its ping period: {e}")))
}

/// Lowers the ping period of every Sentinel in `sentinels` that supports it.
pub(crate) async fn hurry(sentinels: &[NodeSpec], login: &Login) -> Result<Hurried, TopologyError> {
    let mut hurried = Hurried::default();
    for s in sentinels {
        let mut con = connect(s, login).await?;
        if let Some(before) = set_ping_period(&mut con, s, HURRIED_MS).await? {
            hurried.sentinels.push((s.clone(), before));
        }
    }
    Ok(hurried)
}

impl Hurried {
    /// Puts every lowered ping period back and checks that it is back.
    pub(crate) async fn restore(self, login: &Login) -> Result<(), TopologyError> {
        for (s, before) in self.sentinels {
            let mut con = connect(&s, login).await?;
            set_ping_period(&mut con, &s, before).await?;
            let now = ping_period(&mut con).await;
            if now != Some(before) {
                return Err(failed(
                    &s,
                    format!("its ping period is {now:?} ms after being put back to {before} ms"),
                ));
            }
        }
        Ok(())
    }
}
