//! Observers that run through a drill: ROLE polled on every data node every 50 ms, and
//! every Sentinel's pub/sub events, all on the drill clock.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::clock::Clock;
use crate::topology::{probe, Credentials, Login, NodeSpec};

/// Poll period of ROLE.
pub(crate) const ROLE_PERIOD: Duration = Duration::from_millis(50);

/// One ROLE answer (or its absence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoleSample {
    /// Poll round (all nodes are polled together once per round).
    pub round: u64,
    /// When the answer arrived.
    pub t_us: i64,
    /// Node name.
    pub node: String,
    /// `master`, `slave`, or `down` (no answer within the poll).
    pub role: String,
    /// For a replica: `host:port` it follows.
    pub following: Option<String>,
    /// For a replica: whether its link state is `connected`.
    pub connected: bool,
}

/// One Sentinel event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentinelEvent {
    /// When it arrived.
    pub t_us: i64,
    /// Sentinel node name.
    pub sentinel: String,
    /// Event (channel) name, e.g. `+odown`.
    pub event: String,
    /// Its payload.
    pub payload: String,
}

fn parse_role(v: &[redis::Value]) -> (String, Option<String>, bool) {
    let s = |i: usize| match v.get(i) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        Some(redis::Value::Int(n)) => n.to_string(),
        _ => String::new(),
    };
    match s(0).as_str() {
        "slave" => (
            "slave".into(),
            Some(format!("{}:{}", s(1), s(2))),
            s(3) == "connected",
        ),
        other => (other.to_string(), None, false),
    }
}

/// Polls ROLE on `nodes` until `stop` turns true; returns every sample.
pub(crate) fn poll_roles(
    nodes: Vec<NodeSpec>,
    login: Login,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Vec<RoleSample>> {
    tokio::spawn(async move {
        let mut cons: Vec<Option<MultiplexedConnection>> = vec![None; nodes.len()];
        let mut out = Vec::new();
        let mut round = 0u64;
        let mut tick = tokio::time::interval(ROLE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let polls = nodes.iter().zip(cons.iter_mut()).map(|(n, slot)| {
                let login = &login;
                async move {
                    let timeout = ROLE_PERIOD * 2;
                    if slot.is_none() {
                        *slot = probe::connect(&n.host, n.port, login, timeout).await.ok();
                    }
                    let answer = match slot.as_mut() {
                        Some(c) => tokio::time::timeout(
                            timeout,
                            redis::cmd("ROLE").query_async::<Vec<redis::Value>>(c),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok),
                        None => None,
                    };
                    if answer.is_none() {
                        *slot = None;
                    }
                    (n.name.clone(), answer)
                }
            });
            round += 1;
            for (node, answer) in futures_util::future::join_all(polls).await {
                let (role, following, connected) = match answer {
                    Some(v) => parse_role(&v),
                    None => ("down".into(), None, false),
                };
                out.push(RoleSample {
                    round,
                    t_us: clock.now_us(),
                    node,
                    role,
                    following,
                    connected,
                });
            }
        }
        out
    })
}

/// Records every event of every Sentinel (PSUBSCRIBE *), reconnecting to Sentinels that
/// go away and come back, until `stop` turns true.
pub(crate) fn record_events(
    sentinels: Vec<NodeSpec>,
    login: Login,
    clock: Clock,
    stop: watch::Receiver<bool>,
) -> JoinHandle<Vec<SentinelEvent>> {
    tokio::spawn(async move {
        let tasks: Vec<_> = sentinels
            .into_iter()
            .map(|s| {
                let stop = stop.clone();
                let login = login.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    probe::follow_sentinel_events(
                        &s.host,
                        s.port,
                        &login,
                        stop,
                        |_| {},
                        |event, payload| {
                            out.push(SentinelEvent {
                                t_us: clock.now_us(),
                                sentinel: s.name.clone(),
                                event,
                                payload,
                            })
                        },
                    )
                    .await;
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all.sort_by_key(|e| e.t_us);
        all
    })
}

/// Both observers of a drill, running until [`Observers::stop`].
pub(crate) struct Observers {
    stop: watch::Sender<bool>,
    roles: JoinHandle<Vec<RoleSample>>,
    events: JoinHandle<Vec<SentinelEvent>>,
}

impl Observers {
    /// Starts polling ROLE on `data_nodes` and recording every event of `sentinels`.
    pub(crate) fn start(
        data_nodes: Vec<NodeSpec>,
        sentinels: Vec<NodeSpec>,
        credentials: &Credentials,
        clock: Clock,
    ) -> Self {
        let (stop, rx) = watch::channel(false);
        Self {
            roles: poll_roles(data_nodes, credentials.data.clone(), clock, rx.clone()),
            events: record_events(sentinels, credentials.sentinel.clone(), clock, rx),
            stop,
        }
    }

    /// Stops both; returns the ROLE samples and the Sentinel events.
    pub(crate) async fn stop(self) -> (Vec<RoleSample>, Vec<SentinelEvent>) {
        let _ = self.stop.send(true);
        let samples = self.roles.await.unwrap_or_default();
        let events = self.events.await.unwrap_or_default();
        (samples, events)
    }
}
