//! Talks to running nodes over the Redis protocol: readiness checks and live status.
//!
//! Everything here works on addresses only, so every backend shares it.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisConnectionInfo};
use serde::{Deserialize, Serialize};

use super::auth::{Credentials, Login};
use super::spec::{NodeKind, NodeSpec};

/// Timeout for connecting to and hearing back from a node during probes.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Opens a connection to `host:port`, logging in with `login`; `timeout` bounds both
/// connecting and every answer.
pub async fn connect(
    host: &str,
    port: u16,
    login: &Login,
    timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    connect_with(host, port, login, timeout, timeout).await
}

/// A client of `host:port`, logging in with `login`.
fn client(host: &str, port: u16, login: &Login) -> redis::RedisResult<redis::Client> {
    let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(user) = &login.username {
        settings = settings.set_username(user);
    }
    if let Some(pw) = &login.password {
        settings = settings.set_password(pw);
    }
    let info = (host.to_string(), port)
        .into_connection_info()?
        .set_redis_settings(settings);
    redis::Client::open(info)
}

/// [`connect`] with separate bounds on connecting and on each answer.
pub async fn connect_with(
    host: &str,
    port: u16,
    login: &Login,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let client = client(host, port, login)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Calls `on_event(channel, payload)` for every event Sentinel `host:port` publishes
/// (PSUBSCRIBE *), reconnecting every 200 ms while it is away, until `stop` turns true.
/// `on_subscribed(again)` is called on each subscription (`again`: not the first).
pub async fn follow_sentinel_events(
    host: &str,
    port: u16,
    login: &Login,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut on_subscribed: impl FnMut(bool),
    mut on_event: impl FnMut(String, String),
) {
    use futures_util::StreamExt as _;
    let mut again = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let ps = match client(host, port, login) {
            Ok(c) => tokio::time::timeout(Duration::from_millis(500), c.get_async_pubsub())
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        if let Some(mut ps) = ps {
            // A Sentinel frozen at this moment must not hold the follower past `stop`.
            let subscribed = tokio::select! {
                r = tokio::time::timeout(Duration::from_millis(500), ps.psubscribe("*")) => {
                    matches!(r, Ok(Ok(())))
                }
                _ = stop.changed() => return,
            };
            if subscribed {
                on_subscribed(again);
                again = true;
                let mut stream = ps.on_message();
                loop {
                    tokio::select! {
                        msg = stream.next() => match msg {
                            Some(m) => on_event(
                                m.get_channel_name().to_string(),
                                m.get_payload::<String>().unwrap_or_default(),
                            ),
                            None => break,
                        },
                        _ = stop.changed() => return,
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Parses the text of `INFO` into `field -> value`.
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Parses a `k1=v1,k2=v2` value such as INFO's `slave0` field.
pub fn parse_kv_list(text: &str) -> HashMap<String, String> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `INFO replication` on a data node.
pub async fn info_replication(
    con: &mut MultiplexedConnection,
) -> redis::RedisResult<HashMap<String, String>> {
    let text: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(con)
        .await?;
    Ok(parse_info(&text))
}

/// Turns a flat `[k1, v1, k2, v2 ...]` reply (as SENTINEL MASTER gives) into a map.
pub(crate) fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    flat.chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

/// What one Sentinel reports about the monitored master.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelView {
    /// Master address it names (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub master: Option<String>,
    /// Flags of the master (`master`, or with `s_down`, `o_down` ...).
    pub master_flags: String,
    /// Replicas it is in touch with ([`in_touch`]).
    pub healthy_replicas: Vec<String>,
    /// Other Sentinels it is in touch with ([`in_touch`]).
    pub other_sentinels: u32,
}

/// Whether a Sentinel is in touch with a replica or another Sentinel, from that
/// instance's entry in `SENTINEL REPLICAS` / `SENTINEL SENTINELS`: its link is up, it is
/// not down, and it has answered a PING at least once.
///
/// Knowing an instance proves nothing when it was written into the Sentinel's config
/// (`known-replica`, `known-sentinel`), and the `disconnected` flag clears as soon as a
/// connection is *attempted*. An answered PING is the proof: Sentinel pings on every
/// (re)connect, and until the first PONG its pending-ping clock (`last-ping-sent`) runs
/// from the moment the instance was created, as its last-answer clock
/// (`last-ok-ping-reply`) does; the PONG zeroes the first, and from then on a ping in
/// flight is always younger than the last answer.
pub fn in_touch(entry: &HashMap<String, String>) -> bool {
    let flags = entry.get("flags").map(String::as_str).unwrap_or("");
    let down = flags
        .split(',')
        .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
    let ms = |k: &str| entry.get(k).and_then(|v| v.parse::<i64>().ok());
    let answered = match (ms("last-ping-sent"), ms("last-ok-ping-reply")) {
        (Some(0), _) => true,
        (Some(pending), Some(answer)) => pending < answer,
        _ => false,
    };
    !down && answered
}

/// Asks a Sentinel what it knows about `master_name`.
pub async fn sentinel_view(
    con: &mut MultiplexedConnection,
    master_name: &str,
) -> redis::RedisResult<SentinelView> {
    let addr: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(master_name)
        .query_async(con)
        .await?;
    let master: Vec<String> = redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(master_name)
        .query_async(con)
        .await?;
    let master = pairs(master);
    let replicas: Vec<Vec<String>> = redis::cmd("SENTINEL")
        .arg("REPLICAS")
        .arg(master_name)
        .query_async(con)
        .await?;
    let healthy_replicas = replicas
        .into_iter()
        .map(pairs)
        .filter(in_touch)
        .filter_map(|r| Some(format!("{}:{}", r.get("ip")?, r.get("port")?)))
        .collect();
    let sentinels: Vec<Vec<String>> = redis::cmd("SENTINEL")
        .arg("SENTINELS")
        .arg(master_name)
        .query_async(con)
        .await?;
    let other_sentinels = sentinels.into_iter().map(pairs).filter(in_touch).count() as u32;
    Ok(SentinelView {
        master: addr.map(|(h, p)| format!("{h}:{p}")),
        master_flags: master.get("flags").cloned().unwrap_or_default(),
        healthy_replicas,
        other_sentinels,
    })
}

/// Live state of one node, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// What it was started as.
    pub kind: NodeKind,
    /// `host:port`.
    pub address: String,
    /// Process id (process backend) when known.
    pub pid: Option<u32>,
    /// Whether it answered.
    pub reachable: bool,
    /// Live role: `master`, `slave`, `sentinel`, or `down`.
    pub role: String,
    /// For a replica: the master it follows and whether the link is up.
    pub following: Option<String>,
    /// For a replica: `master_link_status`.
    pub link_up: Option<bool>,
    /// Replication offset (data nodes).
    pub offset: Option<i64>,
    /// Bytes behind its master (replicas; from the master's offset).
    pub lag_bytes: Option<i64>,
    /// For a Sentinel: what it reports.
    pub sentinel: Option<SentinelView>,
    /// Why it is unreachable, when it is.
    pub error: Option<String>,
}

/// Probes one node.
pub async fn node_status(
    node: &NodeSpec,
    pid: Option<u32>,
    credentials: &Credentials,
    master_name: &str,
) -> NodeStatus {
    let mut st = NodeStatus {
        name: node.name.clone(),
        kind: node.kind,
        address: node.addr(),
        pid,
        reachable: false,
        role: "down".into(),
        following: None,
        link_up: None,
        offset: None,
        lag_bytes: None,
        sentinel: None,
        error: None,
    };
    let is_sentinel = node.kind == NodeKind::Sentinel;
    let login = credentials.for_kind(node.kind);
    let mut con = match connect(&node.host, node.port, login, PROBE_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            st.error = Some(e.to_string());
            return st;
        }
    };
    if is_sentinel {
        match sentinel_view(&mut con, master_name).await {
            Ok(view) => {
                st.reachable = true;
                st.role = "sentinel".into();
                st.sentinel = Some(view);
            }
            Err(e) => st.error = Some(e.to_string()),
        }
        return st;
    }
    match info_replication(&mut con).await {
        Ok(info) => {
            st.reachable = true;
            st.role = info.get("role").cloned().unwrap_or_else(|| "?".into());
            if st.role == "slave" {
                st.following = Some(format!(
                    "{}:{}",
                    info.get("master_host").map(String::as_str).unwrap_or("?"),
                    info.get("master_port").map(String::as_str).unwrap_or("?")
                ));
                st.link_up = Some(info.get("master_link_status").map(String::as_str) == Some("up"));
                st.offset = info.get("slave_repl_offset").and_then(|v| v.parse().ok());
            } else {
                st.offset = info.get("master_repl_offset").and_then(|v| v.parse().ok());
            }
        }
        Err(e) => st.error = Some(e.to_string()),
    }
    st
}

/// Probes every node concurrently and fills in replica lag from the live master's offset.
pub async fn topology_status(
    nodes: &[(NodeSpec, Option<u32>)],
    credentials: &Credentials,
    master_name: &str,
) -> Vec<NodeStatus> {
    let probes = nodes
        .iter()
        .map(|(n, pid)| node_status(n, *pid, credentials, master_name));
    let mut all = futures_util::future::join_all(probes).await;
    let masters: HashMap<String, i64> = all
        .iter()
        .filter(|s| s.role == "master")
        .filter_map(|s| Some((s.address.clone(), s.offset?)))
        .collect();
    for s in all.iter_mut().filter(|s| s.role == "slave") {
        if let (Some(f), Some(off)) = (&s.following, s.offset) {
            if let Some(m) = masters.get(f) {
                s.lag_bytes = Some((m - off).max(0));
            }
        }
    }
    all
}

/// The address named most often (ties: the smallest address, so the answer is stable);
/// `None` when nothing was named. Used to pick the master the Sentinels agree on.
pub fn most_named(names: impl IntoIterator<Item = String>) -> Option<String> {
    let mut votes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for n in names {
        *votes.entry(n).or_default() += 1;
    }
    let best = votes.values().copied().max()?;
    votes.into_iter().find(|(_, n)| *n == best).map(|(m, _)| m)
}

/// What keeps a topology from being healthy around `master`, or `None` when it is:
/// exactly one node in role master, every other data node linked to it, and every Sentinel
/// naming it, seeing all `replicas` and the other `sentinels - 1` Sentinels.
///
/// `up` uses it as its readiness rule (with the initial master); `status` with the master
/// the Sentinels agree on, since after a failover that is another node.
pub fn health_problem(
    statuses: &[NodeStatus],
    master: &str,
    replicas: usize,
    sentinels: usize,
) -> Option<String> {
    let mut problems = Vec::new();
    let masters: Vec<_> = statuses.iter().filter(|s| s.role == "master").collect();
    if masters.len() != 1 {
        problems.push(format!("{} nodes claim to be master", masters.len()));
    }
    for s in statuses {
        if !s.reachable {
            problems.push(format!("{} is not answering", s.name));
        } else if s.kind != NodeKind::Sentinel && s.address != master {
            if s.following.as_deref() != Some(master) || s.link_up != Some(true) {
                problems.push(format!("{} has no live link to master {master}", s.name));
            }
        } else if let Some(v) = &s.sentinel {
            if v.master.as_deref() != Some(master) || v.master_flags != "master" {
                problems.push(format!(
                    "{} does not see a healthy master at {master}",
                    s.name
                ));
            } else if v.healthy_replicas.len() < replicas {
                problems.push(format!(
                    "{} sees {}/{replicas} replicas",
                    s.name,
                    v.healthy_replicas.len()
                ));
            } else if (v.other_sentinels as usize) < sentinels.saturating_sub(1) {
                problems.push(format!(
                    "{} sees {}/{} other Sentinels",
                    s.name,
                    v.other_sentinels,
                    sentinels - 1
                ));
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_named_takes_the_majority_then_the_smallest() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            most_named(v(&["b:1", "a:1", "b:1"])).as_deref(),
            Some("b:1")
        );
        assert_eq!(most_named(v(&["b:1", "a:1"])).as_deref(), Some("a:1"));
        assert_eq!(most_named(Vec::new()), None);
    }

    #[test]
    fn in_touch_needs_a_live_link_and_an_answered_ping() {
        let entry = |flags: &str, sent: &str, ok: &str| {
            HashMap::from([
                ("flags".to_string(), flags.to_string()),
                ("last-ping-sent".to_string(), sent.to_string()),
                ("last-ok-ping-reply".to_string(), ok.to_string()),
            ])
        };
        // Known from the config, connection attempted, no PONG yet: both clocks run from
        // the instance's creation.
        assert!(!in_touch(&entry("sentinel", "180", "180")));
        assert!(!in_touch(&entry("slave", "181", "180")));
        // The first PONG zeroes the pending-ping clock.
        assert!(in_touch(&entry("sentinel", "0", "3")));
        // Later, a ping in flight is younger than the last answer.
        assert!(in_touch(&entry("slave", "1", "1001")));
        // Down or disconnected, whatever the clocks say.
        assert!(!in_touch(&entry("sentinel,disconnected", "0", "3")));
        assert!(!in_touch(&entry("s_down,slave", "0", "3")));
        // An entry without the clocks is not evidence.
        assert!(!in_touch(&HashMap::from([(
            "flags".to_string(),
            "sentinel".to_string()
        )])));
    }

    #[test]
    fn parses_info_and_kv_lists() {
        let info = parse_info(
            "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\n",
        );
        assert_eq!(info["role"], "master");
        let slave = parse_kv_list(&info["slave0"]);
        assert_eq!(slave["port"], "7001");
        assert_eq!(slave["offset"], "42");
    }
}
