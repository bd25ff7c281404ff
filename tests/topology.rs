//! The process backend against real redis-server binaries on free loopback ports.

mod common;

use std::time::{Duration, Instant};

use common::*;
use redis_harness::topology::{probe, NodeKind, StopOutcome, Topology, TopologyError};

/// A connection to `host:port` without a password.
async fn con(host: &str, port: u16) -> redis::aio::MultiplexedConnection {
    probe::connect(
        host,
        port,
        &redis_harness::topology::Login::none(),
        Duration::from_secs(2),
    )
    .await
    .unwrap()
}

/// `CONFIG SET name value`.
async fn config_set(c: &mut redis::aio::MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(c)
        .await
        .unwrap();
}

/// Writes `n` keys `<prefix><i>`.
async fn fill(c: &mut redis::aio::MultiplexedConnection, prefix: &str, n: usize) {
    for i in 0..n {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg(i)
            .query_async(c)
            .await
            .unwrap();
    }
}

/// `SENTINEL <args>` as a flat list of pairs.
async fn sentinel_pairs(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> Vec<std::collections::HashMap<String, String>> {
    let rows: Vec<Vec<String>> = redis::cmd("SENTINEL")
        .arg(args)
        .query_async(c)
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| {
            r.chunks(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect()
        })
        .collect()
}

async fn get_master_addr_by_name(addr: &str, name: &str) -> Option<String> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut c = con(host, port.parse().unwrap()).await;
    let r: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(name)
        .query_async(&mut c)
        .await
        .unwrap();
    r.map(|(h, p)| format!("{h}:{p}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_replicates_writes_and_sentinels_name_the_master_then_down_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "basic");
    let topo = Topology::up(&cfg).await.expect("topology comes up");
    let info = topo.connection_info();
    let state = topo.state().clone();
    assert_eq!(state.nodes.len(), 6);

    // A write on the master is readable on every replica.
    let master = state.initial_master();
    let mut m = con(&master.spec.host, master.spec.port).await;
    let _: () = redis::cmd("SET")
        .arg("harness:probe")
        .arg("v1")
        .query_async(&mut m)
        .await
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query_async(&mut m)
        .await
        .unwrap();
    assert_eq!(acked, 2, "both replicas acknowledged the write");
    for r in state
        .nodes
        .iter()
        .filter(|n| n.spec.kind == NodeKind::Replica)
    {
        let mut c = con(&r.spec.host, r.spec.port).await;
        let v: Option<String> = redis::cmd("GET")
            .arg("harness:probe")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(
            v.as_deref(),
            Some("v1"),
            "replica {} has the write",
            r.spec.name
        );
    }

    // Every Sentinel names the master.
    for s in &info.sentinels {
        assert_eq!(
            get_master_addr_by_name(s, "mymaster").await.as_deref(),
            Some(info.master.as_str())
        );
    }

    // Each Sentinel was told its peers (no hello round awaited) and really sees them: by
    // the ids they give themselves, each having answered a PING; and the pace that `up`
    // hurried is back at the default second.
    let sentinels: Vec<_> = state
        .nodes
        .iter()
        .filter(|n| n.spec.kind == NodeKind::Sentinel)
        .collect();
    let mut ids = std::collections::HashMap::new();
    for s in &sentinels {
        let mut c = con(&s.spec.host, s.spec.port).await;
        let id: String = redis::cmd("SENTINEL")
            .arg("MYID")
            .query_async(&mut c)
            .await
            .unwrap();
        ids.insert(s.spec.addr(), id);
        let debug: Vec<String> = redis::cmd("SENTINEL")
            .arg("DEBUG")
            .query_async(&mut c)
            .await
            .unwrap();
        let period = debug
            .chunks(2)
            .find(|kv| kv[0].eq_ignore_ascii_case("ping-period"))
            .map(|kv| kv[1].clone());
        assert_eq!(
            period.as_deref(),
            Some("1000"),
            "{}: {debug:?}",
            s.spec.name
        );
    }
    for s in &sentinels {
        let mut c = con(&s.spec.host, s.spec.port).await;
        let peers = sentinel_pairs(&mut c, &["SENTINELS", "mymaster"]).await;
        assert_eq!(peers.len(), 2, "{}: {peers:?}", s.spec.name);
        for p in &peers {
            let addr = format!("{}:{}", p["ip"], p["port"]);
            assert_eq!(p.get("runid"), ids.get(&addr), "{}: {p:?}", s.spec.name);
            assert!(probe::in_touch(p), "{} about {addr}: {p:?}", s.spec.name);
        }
        let replicas = sentinel_pairs(&mut c, &["REPLICAS", "mymaster"]).await;
        assert_eq!(replicas.len(), 2, "{}: {replicas:?}", s.spec.name);
        assert!(replicas.iter().all(probe::in_touch), "{replicas:?}");
    }

    // The status report (the `status --json` payload) agrees.
    let status = topo.status().await;
    let json: serde_json::Value = serde_json::to_value(&status).unwrap();
    assert_eq!(json["healthy"], true, "{json:#}");
    assert_eq!(json["current_master"], info.master.as_str());
    assert_eq!(json["nodes"].as_array().unwrap().len(), 6);
    for n in json["nodes"].as_array().unwrap() {
        let expected = match n["kind"].as_str().unwrap() {
            "master" => "master",
            "replica" => "slave",
            _ => "sentinel",
        };
        assert_eq!(n["role"], expected);
        assert!(
            n["pid"].as_u64().is_some(),
            "pid recorded for {}",
            n["name"]
        );
    }

    let dir = topo.dir().to_path_buf();
    let report = topo.down().await.unwrap();
    assert!(report.ports_still_open.is_empty(), "{report:?}");
    assert!(
        processes_under(&dir).is_empty(),
        "no node process survives down"
    );
    for n in &state.nodes {
        assert!(
            !port_open(&n.spec.addr()),
            "{} still accepts connections",
            n.spec.addr()
        );
    }
    assert!(!dir.join("state.json").exists(), "state file removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_topology_refuses_unauthenticated_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path(), "auth");
    cfg.password = Some("s3cr3t-pw".into());
    let topo = Topology::up(&cfg)
        .await
        .expect("password topology comes up");
    let master = topo.state().initial_master().spec.clone();

    let mut anon = probe::connect(
        &master.host,
        master.port,
        &redis_harness::topology::Login::none(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async::<()>(&mut anon)
        .await
        .expect_err("unauthenticated write must be refused");
    assert!(err.to_string().contains("NOAUTH"), "{err}");

    let wrong = probe::connect(
        &master.host,
        master.port,
        &redis_harness::topology::Login::password(Some("wrong".to_string())),
        Duration::from_secs(2),
    )
    .await;
    assert!(wrong.is_err(), "a wrong password is refused");

    let mut authed = probe::connect(
        &master.host,
        master.port,
        &redis_harness::topology::Login::password(Some("s3cr3t-pw".to_string())),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut authed)
        .await
        .unwrap();
    let v: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut authed)
        .await
        .unwrap();
    assert_eq!(v, "v");

    // Sentinels authenticate to the data nodes and still see both replicas.
    let status = topo.status().await;
    assert!(status.healthy, "{:?}", status.problem);
    for s in status.nodes.iter().filter(|n| n.kind == NodeKind::Sentinel) {
        assert_eq!(s.sentinel.as_ref().unwrap().healthy_replicas.len(), 2);
    }
    topo.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_topologies_at_once_do_not_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let a = test_config(tmp.path(), "one");
    let b = test_config(tmp.path(), "two");
    let (ta, tb) = tokio::join!(Topology::up(&a), Topology::up(&b));
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    let ports = |t: &Topology| {
        t.state()
            .nodes
            .iter()
            .map(|n| n.spec.port)
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (ports(&ta), ports(&tb));
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} vs {pb:?}");
    let (sa, sb) = tokio::join!(ta.status(), tb.status());
    assert!(
        sa.healthy && sb.healthy,
        "{:?} / {:?}",
        sa.problem,
        sb.problem
    );
    assert_ne!(sa.current_master, sb.current_master);
    ta.down().await.unwrap();
    // b is untouched by a's teardown.
    assert!(tb.status().await.healthy);
    tb.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_start_fails_up_and_everything_started_is_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path(), "busy");
    // Find six consecutive free ports, then occupy the one sentinel-1 would take.
    let base = loop {
        let p = redis_harness::topology::spec::free_ports("127.0.0.1", 1).unwrap()[0];
        let base = p.saturating_sub(3).max(1024);
        let all_free =
            (base..base + 6).all(|q| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok());
        if all_free && base + 6 < 65535 {
            break base;
        }
    };
    let _blocker = std::net::TcpListener::bind(("127.0.0.1", base + 3)).unwrap();
    cfg.ports.base = Some(i64::from(base));
    let err = Topology::up(&cfg)
        .await
        .expect_err("sentinel-1 cannot bind");
    match &err {
        TopologyError::Start { node, detail } => {
            assert_eq!(node, "sentinel-1");
            assert!(
                detail.contains("in use"),
                "log tail names the cause: {detail}"
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(
        processes_under(tmp.path()).is_empty(),
        "failed up left processes"
    );
    for q in [base, base + 1, base + 2, base + 4] {
        assert!(!port_open(&format!("127.0.0.1:{q}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_timeout_fails_with_the_last_problem_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path(), "slow");
    cfg.readiness_timeout_ms = 1;
    let started = Instant::now();
    let err = Topology::up(&cfg).await.expect_err("1 ms is too short");
    assert!(matches!(err, TopologyError::NotReady { .. }), "{err}");
    assert!(err.to_string().contains("not ready after"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(processes_under(tmp.path()).is_empty());
}

#[tokio::test]
async fn missing_redis_server_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path(), "nobin");
    cfg.redis_server = "/nonexistent/bin/redis-server".into();
    let err = Topology::up(&cfg).await.expect_err("binary is missing");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/bin/redis-server"), "{msg}");
    assert!(msg.contains("apt-get install redis-server"), "{msg}");
}

#[test]
fn a_panicking_test_leaves_no_process_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "panics");
    let dir = tmp.path().to_path_buf();
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let _topo = Topology::up(&cfg).await.unwrap();
            assert!(!processes_under(&dir).is_empty());
            panic!("simulated test failure while the topology is up");
        })
    })
    .join();
    assert!(result.is_err(), "the inner test panicked");
    assert!(
        processes_under(tmp.path()).is_empty(),
        "drop on unwind killed every node"
    );
}

/// The readiness trap: a master lists a replica among its connected replicas as soon as
/// the replica asks for a sync, long before the data has arrived. Such a replica is not
/// ready; only its own `master_link_status:up` counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_still_in_its_initial_sync_is_not_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "trap");
    let mut topo = Topology::up(&cfg).await.expect("topology comes up");
    let state = topo.state().clone();
    let master = state.initial_master().spec.clone();
    let replica = topo.node("replica-1").unwrap().spec.clone();
    let mut m = con(&master.host, master.port).await;
    fill(&mut m, "harness:trap:", 40).await;
    // 50 ms per key: the full sync the restarted replica needs takes about 2 s.
    config_set(&mut m, "rdb-key-save-delay", "50000").await;
    topo.restart("replica-1").await.unwrap();

    let mut caught = None;
    let until = Instant::now() + Duration::from_secs(20);
    while caught.is_none() && Instant::now() < until {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut m)
            .await
            .unwrap();
        let listed = info
            .lines()
            .find(|l| l.starts_with("slave") && l.contains(&format!("port={},", replica.port)));
        if let Some(line) = listed.filter(|l| !l.contains("state=online")) {
            let status = topo.status().await;
            caught = Some((line.to_string(), status));
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (line, status) = caught.expect("the master listed replica-1 while it was syncing");
    assert!(info_connected(&mut m).await >= 2, "{line}");
    assert!(!status.healthy, "{line}: {status:?}");
    let problem = status.problem.unwrap_or_default();
    assert!(
        problem.contains("replica-1 has no live link"),
        "{line}: {problem}"
    );
    config_set(&mut m, "rdb-key-save-delay", "0").await;
    let healed = topo.wait_healthy(Duration::from_secs(30)).await;
    assert!(healed.healthy, "{healed:?}");
    topo.down().await.unwrap();
}

async fn info_connected(m: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(m)
        .await
        .unwrap();
    probe::parse_info(&info)["connected_slaves"]
        .parse()
        .unwrap()
}

/// Redis refuses SIGTERM while it writes its initial AOF ("Writing initial AOF, can't
/// exit"), as a replica does just after its first sync, which a fast `up` followed by
/// `down` meets. `down` asks again until it can exit, rather than killing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_asks_again_a_node_writing_its_initial_aof_instead_of_killing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = test_config(tmp.path(), "aof");
    let topo = Topology::up(&cfg).await.expect("topology comes up");
    let replica = topo.node("replica-1").unwrap().clone();
    let mut r = con(&replica.spec.host, replica.spec.port).await;
    // Data to write, slowly (100 ms per key), into a new initial AOF.
    config_set(&mut r, "appendonly", "no").await;
    let master = topo.state().initial_master().spec.clone();
    let mut m = con(&master.host, master.port).await;
    fill(&mut m, "harness:aof:", 15).await;
    let _: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query_async(&mut m)
        .await
        .unwrap();
    config_set(&mut r, "rdb-key-save-delay", "100000").await;
    config_set(&mut r, "appendonly", "yes").await;
    let report = topo.down().await.unwrap();
    let log = std::fs::read_to_string(&replica.log_file).unwrap();
    assert!(log.contains("Writing initial AOF, can't exit"), "{log}");
    let outcome = report
        .nodes
        .iter()
        .find(|(n, _)| n == "replica-1")
        .map(|(_, o)| *o);
    assert_eq!(outcome, Some(StopOutcome::Terminated), "{report:?}");
    assert!(report.ports_still_open.is_empty(), "{report:?}");
}
