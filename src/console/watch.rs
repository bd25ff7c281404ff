//! The pollers that fill the feed: a topology snapshot every refresh period (and at once
//! after any Sentinel event), role changes found between snapshots, and every Sentinel's
//! pub/sub channels (PSUBSCRIBE *), reconnecting to Sentinels that go away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::feed::{Feed, Kind};
use super::topology::{self, split_addr, Conns, Snapshot, Votes};
use super::Target;
use crate::topology::probe;

/// Starts the watchers; they run until `stop` turns true.
pub(crate) fn start(feed: Feed, refresh: Duration, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poke = Arc::new(Notify::new());
        let votes = Arc::new(Mutex::new(Votes::default()));
        let events = tokio::spawn(subscribe_all(
            feed.clone(),
            Arc::clone(&poke),
            Arc::clone(&votes),
            stop.clone(),
        ));
        poll(feed, refresh, poke, votes, stop).await;
        let _ = events.await;
    })
}

/// Role changes between two snapshots, as (node, detail).
pub(crate) fn role_changes(before: &Snapshot, after: &Snapshot) -> Vec<(String, String)> {
    let old: HashMap<&str, &str> = before
        .nodes
        .iter()
        .map(|n| (n.addr.as_str(), n.role.as_str()))
        .collect();
    after
        .nodes
        .iter()
        .filter_map(|n| {
            let was = *old.get(n.addr.as_str())?;
            (was != n.role).then(|| {
                let follows = n
                    .following
                    .as_deref()
                    .map(|f| format!(" of {f}"))
                    .unwrap_or_default();
                (n.name.clone(), format!("{was} → {}{follows}", n.role))
            })
        })
        .collect()
}

async fn poll(
    feed: Feed,
    refresh: Duration,
    poke: Arc<Notify>,
    votes: Arc<Mutex<Votes>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut targets = feed.target();
    let mut conns = Conns::default();
    let mut last: Option<(Target, Snapshot)> = None;
    // A node that does not answer within this holds up one round at most.
    let timeout = refresh.clamp(Duration::from_millis(200), Duration::from_millis(1000));
    loop {
        let target = targets.borrow_and_update().clone();
        if let Some(target) = target {
            if last.as_ref().is_some_and(|(t, _)| *t != target) {
                // Connections to the previous topology (an earlier drill run) go.
                conns = Conns::default();
            }
            let v = votes.lock().expect("votes lock").clone();
            let snap = topology::take(&target, &mut conns, &v, timeout).await;
            if let Some((t, before)) = &last {
                if *t == target {
                    for (node, detail) in role_changes(before, &snap) {
                        feed.push(Kind::Role, &node, "role", detail);
                    }
                }
            }
            feed.set_snapshot(snap.clone());
            last = Some((target, snap));
        }
        tokio::select! {
            _ = tokio::time::sleep(refresh) => {}
            _ = poke.notified() => {}
            r = targets.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Subscribes to every Sentinel of the current target, again whenever the target changes.
async fn subscribe_all(
    feed: Feed,
    poke: Arc<Notify>,
    votes: Arc<Mutex<Votes>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut targets = feed.target();
    loop {
        let target = targets.borrow_and_update().clone();
        let (cancel, cancelled) = watch::channel(false);
        let tasks: Vec<_> = target
            .iter()
            .flat_map(|t| {
                t.sentinels
                    .iter()
                    .map(|a| (a.clone(), t.name_of(a), t.sentinel_password.clone()))
            })
            .map(|(addr, name, pw)| {
                tokio::spawn(subscribe(
                    addr,
                    name,
                    pw,
                    feed.clone(),
                    Arc::clone(&poke),
                    Arc::clone(&votes),
                    cancelled.clone(),
                ))
            })
            .collect();
        let done = tokio::select! {
            r = targets.changed() => r.is_err(),
            _ = stop.changed() => true,
        };
        let _ = cancel.send(true);
        for t in tasks {
            let _ = t.await;
        }
        if done || *stop.borrow() {
            return;
        }
        *votes.lock().expect("votes lock") = Votes::default();
    }
}

/// Records one Sentinel's events until `stop`; each one also triggers a snapshot.
async fn subscribe(
    addr: String,
    name: String,
    password: Option<String>,
    feed: Feed,
    poke: Arc<Notify>,
    votes: Arc<Mutex<Votes>>,
    stop: watch::Receiver<bool>,
) {
    let Some((host, port)) = split_addr(&addr) else {
        return;
    };
    probe::follow_sentinel_events(
        &host,
        port,
        &crate::topology::Login::password(password),
        stop,
        |again| {
            if again {
                feed.push(
                    Kind::Console,
                    &name,
                    "resubscribed",
                    "the console hears this Sentinel again".into(),
                );
            }
        },
        |channel, payload| {
            note_vote(&votes, &addr, &channel, &payload);
            feed.push(Kind::Sentinel, &name, &channel, payload);
            poke.notify_one();
        },
    )
    .await;
}

/// Keeps leader votes and elections: `+vote-for-leader <runid> <epoch>` and
/// `+elected-leader master <name> <ip> <port>` (the latter from the winner itself).
fn note_vote(votes: &Mutex<Votes>, sentinel: &str, channel: &str, payload: &str) {
    let mut v = votes.lock().expect("votes lock");
    match channel {
        "+vote-for-leader" => {
            let mut w = payload.split_whitespace();
            if let (Some(id), Some(epoch)) = (w.next(), w.next()) {
                v.votes
                    .insert(sentinel.to_string(), (id.to_string(), epoch.to_string()));
            }
        }
        "+elected-leader" => {
            let epoch = v
                .votes
                .get(sentinel)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| "?".into());
            v.elected = Some((sentinel.to_string(), epoch));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::topology::DataNode;

    fn snap(roles: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            nodes: roles
                .iter()
                .map(|(n, r)| DataNode {
                    name: n.to_string(),
                    addr: format!("{n}:1"),
                    role: r.to_string(),
                    ..DataNode::default()
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn role_changes_name_the_node_and_both_roles() {
        let a = snap(&[("m", "master"), ("r1", "slave"), ("r2", "slave")]);
        let b = snap(&[("m", "down"), ("r1", "master"), ("r2", "slave")]);
        assert_eq!(
            role_changes(&a, &b),
            [
                ("m".to_string(), "master → down".to_string()),
                ("r1".to_string(), "slave → master".to_string())
            ]
        );
        assert!(role_changes(&b, &b).is_empty());
        // A node seen for the first time is not a change.
        assert!(role_changes(&snap(&[]), &b).is_empty());
    }

    #[test]
    fn votes_and_elections_are_kept_per_sentinel() {
        let v = Mutex::new(Votes::default());
        note_vote(&v, "s1:1", "+vote-for-leader", "abcdef 7");
        note_vote(
            &v,
            "s1:1",
            "+elected-leader",
            "master mymaster 127.0.0.1 7000",
        );
        note_vote(&v, "s2:1", "+sdown", "master mymaster 127.0.0.1 7000");
        let v = v.into_inner().unwrap();
        assert_eq!(v.votes["s1:1"], ("abcdef".into(), "7".into()));
        assert_eq!(v.elected, Some(("s1:1".into(), "7".into())));
        assert_eq!(v.votes.len(), 1);
    }
}
