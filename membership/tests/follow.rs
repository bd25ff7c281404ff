//! `Follow::Promotion`: the Sentinel-aware link follows a real `SENTINEL FAILOVER` at the
//! promotion of the selected replica, before any `+switch-master` could move it
//! (`Follow::Announcement`); and, on events published by hand, it moves only to a server
//! answering ROLE master.
//!
//! No durations are asserted. In the failover the order is made certain instead: a second
//! replica (never promoted: `replica-priority 0`) is paused through the failover, so the
//! only Sentinel cannot finish it (it waits for that replica to be reconfigured, or to be
//! down for `down-after-milliseconds`, set to a minute) and cannot publish
//! `+switch-master` until the test resumes it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::sentinel::Sentinel;
use common::*;
use futures_util::StreamExt;
use membership::{Follow, RedisAuth, RedisLink, RedisTarget};

const NAME: &str = "followmaster";

/// What happened, in the order the test saw it.
type Log = Arc<Mutex<Vec<String>>>;

fn log(l: &Log, what: String) {
    l.lock().unwrap().push(what);
}

fn seen(l: &Log) -> Vec<String> {
    l.lock().unwrap().clone()
}

/// Sends one PING through `link`; errors are expected while it moves.
async fn ping(link: &RedisLink) {
    let _ = link
        .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
        .await;
}

/// Waits (at most `within`, a guard against hanging, not a measurement) until `done`.
async fn wait_for<F, Fut>(what: &str, within: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `INFO replication` of `server`, or nothing when it cannot answer right now (a busy
/// machine can time a connection out while a replica syncs): the wait asks again.
async fn info(server: &RedisServer) -> String {
    let ask = async {
        let mut con = redis::Client::open(format!("redis://{}/", server.addr()))?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("INFO")
            .arg("replication")
            .query_async::<String>(&mut con)
            .await
    };
    ask.await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_moves_the_link_before_switch_master_is_published() {
    let master = RedisServer::start();
    let of = master.port().to_string();
    let chosen = RedisServer::start_with(&["--replicaof", "127.0.0.1", &of]);
    let held =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &of, "--replica-priority", "0"]);
    wait_for("both replicas in sync", Duration::from_secs(20), || async {
        info(&master).await.contains("connected_slaves:2")
            && info(&chosen).await.contains("master_link_status:up")
            && info(&held).await.contains("master_link_status:up")
    })
    .await;
    let sentinel = Sentinel::start(
        NAME,
        master.port(),
        &[
            "sentinel down-after-milliseconds {name} 60000",
            "sentinel failover-timeout {name} 180000",
        ],
    );
    // Both replicas known from their own INFO: the chosen one in sync, the held one
    // never to be promoted.
    let field = |r: &std::collections::HashMap<String, String>, k: &str| {
        r.get(k).cloned().unwrap_or_default()
    };
    let (chosen_port, held_port) = (chosen.port().to_string(), held.port().to_string());
    wait_for(
        "the Sentinel knows both replicas",
        Duration::from_secs(30),
        || async {
            let rs = sentinel.replicas(NAME).await;
            let ok = |port: &str, k: &str, v: &str| {
                rs.iter().any(|r| {
                    field(r, "port") == port && field(r, "flags") == "slave" && field(r, k) == v
                })
            };
            ok(&chosen_port, "master-link-status", "ok") && ok(&held_port, "slave-priority", "0")
        },
    )
    .await;

    let target = RedisTarget::Sentinel {
        sentinels: vec![("127.0.0.1".to_string(), sentinel.port())],
        master_name: NAME.to_string(),
    };
    let timeout = Duration::from_millis(500);
    let promotion = RedisLink::with(target.clone(), RedisAuth::default(), 0, timeout);
    let announcement = RedisLink::with(target, RedisAuth::default(), 0, timeout);
    for link in [&promotion, &announcement] {
        ping(link).await;
        assert_eq!(link.address(), Some(master.addr()));
    }

    let events: Log = Arc::default();
    let mut watchers = Vec::new();
    for (link, follow, name) in [
        (&promotion, Follow::Promotion, "promotion"),
        (&announcement, Follow::Announcement, "announcement"),
    ] {
        let l = Arc::clone(&events);
        let w = link.watch_sentinels(follow, move || log(&l, format!("{name} link reset")));
        watchers.push(w.expect("a Sentinel target has a watcher"));
    }
    // The test's own view of the Sentinel's events.
    let mut ps = redis::Client::open(format!("redis://127.0.0.1:{}/", sentinel.port()))
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    ps.subscribe(&["+selected-slave", "+promoted-slave", "+switch-master"])
        .await
        .unwrap();
    let l = Arc::clone(&events);
    watchers.push(tokio::spawn(async move {
        let mut stream = ps.on_message();
        while let Some(m) = stream.next().await {
            let payload: String = m.get_payload().unwrap_or_default();
            log(&l, format!("{} {payload}", m.get_channel_name()));
        }
    }));
    // Every subscription in place: 3 channels for Promotion, 1 for Announcement, 3 here.
    wait_for("every subscription", Duration::from_secs(10), || async {
        sentinel.subscriptions().await == 7
    })
    .await;

    held.pause(true);
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(NAME)
        .query_async(&mut sentinel.con().await)
        .await
        .expect("SENTINEL FAILOVER");
    wait_for(
        "the Promotion link moves to the chosen replica",
        Duration::from_secs(30),
        || async {
            ping(&promotion).await;
            ping(&announcement).await;
            promotion.address() == Some(chosen.addr())
        },
    )
    .await;
    let before = seen(&events);
    let log_tail = || {
        format!(
            "events: {:#?}\nSentinel {}",
            seen(&events),
            sentinel.log_tail()
        )
    };
    assert!(
        !before.iter().any(|e| e.starts_with("+switch-master")),
        "moved only after +switch-master; {}",
        log_tail()
    );
    assert!(
        before.contains(&"promotion link reset".to_string()),
        "{}",
        log_tail()
    );
    // The +switch-master route has not moved: the old master is still a master.
    assert_eq!(
        announcement.address(),
        Some(master.addr()),
        "{}",
        log_tail()
    );
    assert_eq!(promotion.master_changes(), 1, "{}", log_tail());
    // The link writes on the new master.
    promotion
        .run(|mut c| async move {
            redis::cmd("SET")
                .arg("follow:k")
                .arg("v")
                .query_async::<()>(&mut c)
                .await
        })
        .await
        .expect("a write through the moved link");

    // Let the failover finish: +switch-master moves the Announcement link too, and the
    // Promotion link stays where it is.
    held.pause(false);
    let switched = format!(
        "+switch-master {NAME} 127.0.0.1 {} 127.0.0.1 {chosen_port}",
        of
    );
    wait_for(
        "+switch-master, then the Announcement link moves",
        Duration::from_secs(60),
        || async {
            ping(&promotion).await;
            ping(&announcement).await;
            seen(&events).contains(&switched) && announcement.address() == Some(chosen.addr())
        },
    )
    .await;
    let all = seen(&events);
    let first = |e: &str| all.iter().position(|x| x.starts_with(e)).unwrap();
    assert!(
        first("promotion link reset") < first("+switch-master"),
        "{}",
        log_tail()
    );
    assert_eq!(promotion.address(), Some(chosen.addr()), "{}", log_tail());
    assert_eq!(promotion.master_changes(), 1, "{}", log_tail());
    assert_eq!(announcement.master_changes(), 1, "{}", log_tail());

    for w in watchers {
        w.abort();
    }
}

/// Calls of ROLE `server` has answered.
async fn role_calls(server: &RedisServer) -> u64 {
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut server.con().await)
        .await
        .expect("INFO commandstats");
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_role:calls="))
        .and_then(|v| v.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Clients of `server` whose last command was ROLE: the watches polling it.
async fn role_pollers(server: &RedisServer) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut server.con().await)
        .await
        .expect("CLIENT LIST");
    list.lines().filter(|l| l.contains(" cmd=role ")).count()
}

async fn replicaof(server: &RedisServer, master: Option<&RedisServer>) {
    let mut cmd = redis::cmd("REPLICAOF");
    match master {
        Some(m) => cmd.arg("127.0.0.1").arg(m.port()),
        None => cmd.arg("NO").arg("ONE"),
    };
    let _: () = cmd
        .query_async(&mut server.con().await)
        .await
        .expect("REPLICAOF");
}

/// The events a failover's leader publishes, sent by hand to a plain redis-server standing
/// in for the Sentinel (a Sentinel does not let clients publish): the link moves only to a
/// replica that answers ROLE master, polls a selected one with one watch, never follows a
/// stale event back, and its watches stop with the watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_events_move_the_link_only_to_a_server_answering_master() {
    let fake_sentinel = RedisServer::start();
    let a = RedisServer::start();
    let b = RedisServer::start();
    replicaof(&b, Some(&a)).await;
    let event = |channel: &str, replica: &RedisServer| {
        let p = replica.port();
        let payload = format!("slave 127.0.0.1:{p} 127.0.0.1 {p} @ {NAME} 127.0.0.1 1");
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        let server = &fake_sentinel;
        async move {
            let _: i64 = cmd.query_async(&mut server.con().await).await.unwrap();
        }
    };

    let link = RedisLink::with(
        RedisTarget::Sentinel {
            sentinels: vec![("127.0.0.1".to_string(), fake_sentinel.port())],
            master_name: NAME.to_string(),
        },
        RedisAuth::default(),
        0,
        Duration::from_millis(500),
    );
    let resets: Log = Arc::default();
    let r = Arc::clone(&resets);
    let watcher = link
        .watch_sentinels(Follow::Promotion, move || log(&r, "reset".into()))
        .expect("a Sentinel target has a watcher");
    wait_for(
        "the three subscriptions",
        Duration::from_secs(10),
        || async { fake_sentinel.info_u64("pubsub_channels").await == 3 },
    )
    .await;

    // A promoted replica that answers master: the link moves to it.
    event("+promoted-slave", &a).await;
    wait_for("the link on a", Duration::from_secs(10), || async {
        ping(&link).await;
        link.address() == Some(a.addr())
    })
    .await;
    assert_eq!(seen(&resets).len(), 1);

    // A selected replica that is not promoted yet: polled (by one watch, however many
    // events name it), and not followed while it answers slave.
    event("+selected-slave", &b).await;
    event("+selected-slave", &b).await;
    event("+promoted-slave", &b).await;
    wait_for("b polled", Duration::from_secs(10), || async {
        role_calls(&b).await >= 3
    })
    .await;
    assert_eq!(role_pollers(&b).await, 1, "one watch per replica");
    ping(&link).await;
    assert_eq!(link.address(), Some(a.addr()));
    assert_eq!(seen(&resets).len(), 1);
    // Promoted: the watch moves the link without another event.
    replicaof(&b, None).await;
    wait_for("the link on b", Duration::from_secs(10), || async {
        ping(&link).await;
        link.address() == Some(b.addr())
    })
    .await;
    assert_eq!(seen(&resets).len(), 2);

    // A stale event naming the old master, now a replica: polled, never followed.
    replicaof(&a, Some(&b)).await;
    let calls = role_calls(&a).await;
    event("+promoted-slave", &a).await;
    wait_for("a polled", Duration::from_secs(10), || async {
        role_calls(&a).await >= calls + 3
    })
    .await;
    ping(&link).await;
    assert_eq!(link.address(), Some(b.addr()));
    assert_eq!(seen(&resets).len(), 2);
    assert_eq!(link.master_changes(), 1);

    // Aborting the watcher stops the watch still polling a.
    assert_eq!(role_pollers(&a).await, 1);
    watcher.abort();
    wait_for(
        "no watch left polling a",
        Duration::from_secs(10),
        || async { role_pollers(&a).await == 0 },
    )
    .await;
}
