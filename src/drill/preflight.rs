//! The steady-state check before a fault (read-only): one master that every Sentinel
//! names, a quorum that can authorise a failover, replicas linked and within lag, no
//! failover under way, a replica that can be promoted, and whatever the fault itself
//! needs. A drill whose preflight fails touches nothing.

use std::time::Duration;

use super::fault::Fault;
use super::Check;
use crate::config::external::PreflightSection;
use crate::topology::{probe, NodeKind, StatusReport, Topology};

/// Runs every check on `topo` for `fault`; `expects_failover` adds the promotable-replica
/// check.
pub(crate) async fn run(topo: &Topology, fault: &dyn Fault, expects_failover: bool) -> Vec<Check> {
    let limits = topo
        .config()
        .topology
        .external
        .as_ref()
        .map(|e| e.preflight.clone())
        .unwrap_or_default();
    let status = topo.status().await;
    let creds = topo.state().credentials();
    let mut checks = vec![agreed_master(&status)];
    let sentinels: Vec<_> = status
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Sentinel)
        .collect();
    let mut quorum = Vec::new();
    for s in &sentinels {
        let Some((host, port)) = crate::config::external::split_addr(&s.address) else {
            continue;
        };
        let answer = match probe::connect(&host, port, &creds.sentinel, probe::PROBE_TIMEOUT).await
        {
            Ok(mut c) => redis::cmd("SENTINEL")
                .arg("CKQUORUM")
                .arg(&topo.config().topology.master_name)
                .query_async::<String>(&mut c)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        quorum.push((s.name.clone(), answer));
    }
    checks.push(quorum_check(&quorum));
    checks.push(failover_idle(&status));
    let master = status.current_master.clone();
    let replica_info = replica_facts(topo, &status, master.as_deref()).await;
    checks.push(replicas_linked(&status, master.as_deref()));
    checks.push(replica_lag(&replica_info, &limits));
    if expects_failover {
        checks.push(promotable(&replica_info));
    }
    checks.push(Check {
        name: "preflight: the fault can be injected".into(),
        passed: true,
        detail: String::new(),
    });
    let last = checks.last_mut().expect("just pushed");
    match fault.check(topo).await {
        Ok(()) => last.detail = "yes".into(),
        Err(reason) => {
            last.passed = false;
            last.detail = reason;
        }
    }
    checks
}

fn check(name: &str, problems: Vec<String>, ok: String) -> Check {
    Check {
        name: format!("preflight: {name}"),
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            ok
        } else {
            problems.join("; ")
        },
    }
}

/// Every Sentinel names the same master, and it is the only data node in role master.
fn agreed_master(status: &StatusReport) -> Check {
    let mut problems = Vec::new();
    let named: Vec<(String, Option<String>)> = status
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Sentinel)
        .map(|n| {
            (
                n.name.clone(),
                n.sentinel.as_ref().and_then(|v| v.master.clone()),
            )
        })
        .collect();
    let m = status.current_master.clone().unwrap_or_default();
    for (s, n) in &named {
        match n {
            None => problems.push(format!("{s} names no master (not answering?)")),
            Some(a) if *a != m => problems.push(format!("{s} names {a}, the others {m}")),
            Some(_) => {}
        }
    }
    let masters: Vec<&str> = status
        .nodes
        .iter()
        .filter(|n| n.role == "master")
        .map(|n| n.address.as_str())
        .collect();
    if masters != [m.as_str()] {
        problems.push(format!(
            "data nodes in role master: {} (want only {m})",
            if masters.is_empty() {
                "none".to_string()
            } else {
                masters.join(", ")
            }
        ));
    }
    check(
        "one master that every Sentinel names",
        problems,
        format!("{m}, named by all {} Sentinels", named.len()),
    )
}

/// `SENTINEL CKQUORUM` on every Sentinel answers OK.
fn quorum_check(answers: &[(String, Result<String, String>)]) -> Check {
    let problems: Vec<String> = answers
        .iter()
        .filter_map(|(s, a)| match a {
            Ok(_) => None,
            Err(e) => Some(format!("{s}: {e}")),
        })
        .collect();
    let ok = answers
        .iter()
        .find_map(|(s, a)| a.as_ref().ok().map(|t| format!("{s}: {t}")))
        .unwrap_or_default();
    check("quorum reachable (SENTINEL CKQUORUM)", problems, ok)
}

/// No Sentinel sees the master down or a failover under way.
fn failover_idle(status: &StatusReport) -> Check {
    let problems = status
        .nodes
        .iter()
        .filter_map(|n| {
            let v = n.sentinel.as_ref()?;
            (v.master_flags != "master")
                .then(|| format!("{} flags the master {}", n.name, v.master_flags))
        })
        .collect();
    check(
        "no failover in progress",
        problems,
        "every Sentinel flags the master just `master`".into(),
    )
}

/// Every replica answers, follows the master and has its link up.
fn replicas_linked(status: &StatusReport, master: Option<&str>) -> Check {
    let m = master.unwrap_or("?");
    let data: Vec<_> = status
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Sentinel && Some(n.address.as_str()) != master)
        .collect();
    let problems = data
        .iter()
        .filter_map(|n| {
            if !n.reachable {
                Some(format!("{} at {} is not answering", n.name, n.address))
            } else if n.following.as_deref() != Some(m) || n.link_up != Some(true) {
                Some(format!(
                    "{} at {} has no live link to {m}",
                    n.name, n.address
                ))
            } else {
                None
            }
        })
        .collect();
    check(
        "replicas linked",
        problems,
        format!("{} replicas linked to {m}", data.len()),
    )
}

/// One linked replica: address, bytes behind, seconds since its last ack, priority.
type Replica = (String, Option<i64>, Option<i64>, Option<i64>);

/// What the master and each replica say about replication (read-only INFO).
#[derive(Debug, Default)]
struct ReplicaFacts {
    /// Every linked replica.
    replicas: Vec<Replica>,
    /// What could not be read.
    problems: Vec<String>,
}

async fn replica_facts(
    topo: &Topology,
    status: &StatusReport,
    master: Option<&str>,
) -> ReplicaFacts {
    let mut facts = ReplicaFacts::default();
    let Some((mh, mp)) = master.and_then(crate::config::external::split_addr) else {
        facts.problems.push("no master to ask".into());
        return facts;
    };
    let creds = topo.state().credentials();
    let t = Duration::from_secs(1);
    let lags: std::collections::HashMap<String, i64> =
        match probe::connect(&mh, mp, &creds.data, t).await {
            Ok(mut c) => match probe::info_replication(&mut c).await {
                Ok(info) => info
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit())
                    })
                    .filter_map(|(_, v)| {
                        let kv = probe::parse_kv_list(v);
                        Some((
                            format!("{}:{}", kv.get("ip")?, kv.get("port")?),
                            kv.get("lag")?.parse().ok()?,
                        ))
                    })
                    .collect(),
                Err(e) => {
                    facts
                        .problems
                        .push(format!("INFO replication on the master: {e}"));
                    Default::default()
                }
            },
            Err(e) => {
                facts.problems.push(format!("cannot reach the master: {e}"));
                Default::default()
            }
        };
    for n in status.nodes.iter().filter(|n| {
        n.kind != NodeKind::Sentinel
            && Some(n.address.as_str()) != master
            && n.link_up == Some(true)
    }) {
        let priority = match crate::config::external::split_addr(&n.address) {
            Some((h, p)) => match probe::connect(&h, p, &creds.data, t).await {
                Ok(mut c) => probe::info_replication(&mut c)
                    .await
                    .ok()
                    .and_then(|i| i.get("slave_priority").and_then(|v| v.parse().ok())),
                Err(_) => None,
            },
            None => None,
        };
        facts.replicas.push((
            n.address.clone(),
            n.lag_bytes,
            lags.get(&n.address).copied(),
            priority,
        ));
    }
    facts
}

/// Every linked replica within the byte and second limits.
fn replica_lag(facts: &ReplicaFacts, limits: &PreflightSection) -> Check {
    let mut problems = facts.problems.clone();
    for (addr, bytes, secs, _) in &facts.replicas {
        if bytes.is_some_and(|b| b as u64 > limits.max_replica_lag_bytes) {
            problems.push(format!(
                "{addr} is {} bytes behind (limit {})",
                bytes.unwrap_or(0),
                limits.max_replica_lag_bytes
            ));
        }
        match secs {
            Some(s) if *s as u64 > limits.max_replica_lag_s => problems.push(format!(
                "{addr} last acknowledged {s} s ago (limit {})",
                limits.max_replica_lag_s
            )),
            None => problems.push(format!("the master does not list {addr} with a lag")),
            _ => {}
        }
    }
    let worst = facts.replicas.iter().filter_map(|r| r.1).max().unwrap_or(0);
    check(
        "replicas within lag",
        problems,
        format!(
            "at most {worst} bytes behind (limits {} bytes, {} s)",
            limits.max_replica_lag_bytes, limits.max_replica_lag_s
        ),
    )
}

/// At least one linked replica with a priority above 0.
fn promotable(facts: &ReplicaFacts) -> Check {
    let n = facts
        .replicas
        .iter()
        .filter(|r| r.3.is_none_or(|p| p > 0))
        .count();
    let problems = if n == 0 {
        vec!["no linked replica with replica-priority above 0: Sentinel cannot promote any".into()]
    } else {
        Vec::new()
    };
    check(
        "a replica can be promoted",
        problems,
        format!("{n} linked replica(s) with replica-priority above 0"),
    )
}
