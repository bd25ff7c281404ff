//! The judge: figures, checks and the timeline of one drill run, computed from what was
//! recorded — the operation history, ROLE samples, Sentinel events and the harness's own
//! actions, all on the drill clock. Pure functions without I/O, so every rule is tested
//! on synthetic records.

use std::time::Duration;

use super::figures::ClientFigures;
use super::history::{self, Analysis, History, OpKind, Outcome};
use super::observe::{RoleSample, SentinelEvent};
use super::{ApiReport, Check, DrillKind, Figures, TimelineEntry};
use crate::config::PersistenceSection;

/// Microseconds on the drill clock to milliseconds.
pub(crate) fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// Something the harness did (fault, observation, restore), on the drill clock.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Action {
    /// When, in µs on the drill clock.
    pub t_us: i64,
    /// `fault`, `observed` or `restore`.
    pub what: String,
    /// What exactly.
    pub detail: String,
}

/// How the wait for a healthy topology ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Healing {
    /// Whether the topology was healthy.
    pub healthy: bool,
    /// Why not.
    pub problem: Option<String>,
    /// The master the topology agreed on.
    pub current_master: Option<String>,
    /// When the wait ended, in µs on the drill clock.
    pub at_us: i64,
}

/// How the wait for the faulted node to rejoin as a replica ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejoin {
    /// The node's name.
    pub node: String,
    /// Whether it answered as a connected replica in time.
    pub rejoined: bool,
    /// How long we waited.
    pub timeout: Duration,
}

/// What one client recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientRecord<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its operations and the final read.
    pub history: &'a History,
    /// What went wrong with it (a rejected history, an early exit): each fails a check.
    pub problems: &'a [String],
    /// Its history was rejected (nothing of it counts, nothing was read back).
    pub rejected: bool,
}

/// Everything one run recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// Drill kind.
    pub kind: DrillKind,
    /// Whether the fault, as injected, must cause a failover.
    pub expects_failover: bool,
    /// When the fault was injected.
    pub fault_us: i64,
    /// Every client's record.
    pub clients: &'a [ClientRecord<'a>],
    /// ROLE answers of every data node.
    pub samples: &'a [RoleSample],
    /// Every Sentinel event.
    pub events: &'a [SentinelEvent],
    /// The harness's actions.
    pub actions: &'a [Action],
    /// The rejoin wait, when the fault had a node to rejoin.
    pub rejoin: Option<&'a Rejoin>,
    /// The healing wait.
    pub healing: &'a Healing,
    /// The API's side, with `--api`.
    pub api: Option<&'a ApiReport>,
    /// `host:port` of every replica before the fault.
    pub replica_addrs: &'a [String],
    /// The persistence settings (for `restart-all`).
    pub persistence: &'a PersistenceSection,
}

/// The judge's findings.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// The topology's figures.
    pub figures: Figures,
    /// Each client's figures and checker results, in the order of [`Record::clients`].
    pub clients: Vec<(ClientFigures, Analysis)>,
    /// Pass/fail checks, failover check first, then each client's (named after it).
    pub checks: Vec<Check>,
    /// Sentinel events, harness actions, role changes and clients' outages, by time.
    pub timeline: Vec<TimelineEntry>,
}

/// Judges one run.
pub(crate) fn judge(r: &Record<'_>) -> Verdict {
    let figures = figures(r);
    let mut checks = checks(r, &figures);
    let mut clients = Vec::new();
    for c in r.clients {
        let analysis = history::analyze(c.history);
        checks.extend(client_checks(r, c, &analysis));
        clients.push((client_figures(&analysis, c.history), analysis));
    }
    Verdict {
        figures,
        clients,
        checks,
        timeline: timeline(r),
    }
}

/// A client's figures from its checked history; no loss figures without a final read.
pub(crate) fn client_figures(analysis: &Analysis, h: &History) -> ClientFigures {
    let read = h.final_read.is_some();
    ClientFigures {
        write_unavailable_ms: analysis.write_unavailable_ms,
        read_unavailable_ms: analysis.read_unavailable_ms,
        acked_writes: analysis.writes_ok,
        lost_acked_writes: read.then_some(analysis.lost_acked_writes),
        lost_acked_percent: read.then_some(analysis.lost_acked_percent),
        unknown_ops: count(h, Outcome::Unknown),
        failed_ops: count(h, Outcome::Failed),
    }
}

/// One client's checks, named after it: what went wrong with it, its final read, refused
/// writes, and for `restart-all` the persistence promise.
fn client_checks(r: &Record<'_>, c: &ClientRecord<'_>, analysis: &Analysis) -> Vec<Check> {
    let named = |name: &str| format!("{}: {name}", c.name);
    let mut checks: Vec<Check> = c
        .problems
        .iter()
        .map(|p| Check {
            name: named("client ran as the protocol says"),
            passed: false,
            detail: p.clone(),
        })
        .collect();
    checks.push(Check {
        name: named("final read"),
        passed: c.history.final_read.is_some(),
        detail: match &c.history.final_read {
            Some(v) => format!("{} values read back", v.len()),
            None if c.rejected => "not done: its history was rejected".into(),
            None => "the final read failed".into(),
        },
    });
    checks.push(Check {
        name: named("refused writes absent"),
        passed: analysis.refused_but_present == 0,
        detail: format!(
            "{} writes recorded as refused were found anyway",
            analysis.refused_but_present
        ),
    });
    if r.kind == DrillKind::RestartAll {
        let killed_us = r
            .actions
            .iter()
            .find(|a| a.what == "fault")
            .map(|a| a.t_us)
            .unwrap_or(r.fault_us);
        let mut check = persistence_check(r.persistence, c.history, killed_us);
        check.name = named(&check.name);
        checks.push(check);
    }
    checks
}

/// Fault → the first `name` event after the fault (with `master_only`, about the master).
pub(crate) fn first_event(
    events: &[SentinelEvent],
    fault_us: i64,
    name: &str,
    master_only: bool,
) -> Option<f64> {
    events
        .iter()
        .find(|e| {
            e.event == name
                && e.t_us >= fault_us
                && (!master_only || e.payload.starts_with("master "))
        })
        .map(|e| ms(e.t_us - fault_us))
}

/// The first `+switch-master` after the fault.
pub(crate) fn switch_master(events: &[SentinelEvent], fault_us: i64) -> Option<&SentinelEvent> {
    events
        .iter()
        .find(|e| e.event == "+switch-master" && e.t_us >= fault_us)
}

/// The new master's `host:port` named by a `+switch-master` payload
/// (`<name> <old-host> <old-port> <new-host> <new-port>`).
pub(crate) fn switched_to(e: &SentinelEvent) -> Option<String> {
    let p: Vec<&str> = e.payload.split_whitespace().collect();
    (p.len() == 5).then(|| format!("{}:{}", p[3], p[4]))
}

/// Fault → `node` first answers ROLE as a connected replica (only where a failover was
/// expected: elsewhere the node never stopped being what it was).
pub(crate) fn rejoin_ms(
    failover: bool,
    samples: &[RoleSample],
    node: &str,
    fault_us: i64,
) -> Option<f64> {
    if !failover {
        return None;
    }
    samples
        .iter()
        .find(|r| r.node == node && r.t_us > fault_us && r.role == "slave" && r.connected)
        .map(|r| ms(r.t_us - fault_us))
}

/// Total time, in ms, during which at least two nodes answered ROLE with `master`
/// (each poll round counts until the next round).
pub(crate) fn two_masters_ms(samples: &[RoleSample]) -> f64 {
    // (round, first answer time, masters in the round), in round order.
    let mut rounds: Vec<(u64, i64, usize)> = Vec::new();
    for s in samples {
        match rounds.last_mut() {
            Some(r) if r.0 == s.round => {
                r.1 = r.1.min(s.t_us);
                r.2 += usize::from(s.role == "master");
            }
            _ => rounds.push((s.round, s.t_us, usize::from(s.role == "master"))),
        }
    }
    rounds
        .windows(2)
        .filter(|w| w[0].2 >= 2)
        .map(|w| (w[1].1 - w[0].1) as f64 / 1000.0)
        .fold(0.0, |a, b| a + b)
}

fn count(h: &History, outcome: Outcome) -> u64 {
    h.ops.iter().filter(|o| o.outcome == outcome).count() as u64
}

/// The topology's figures of a run.
pub(crate) fn figures(r: &Record<'_>) -> Figures {
    let f = r.fault_us;
    Figures {
        sdown_ms: first_event(r.events, f, "+sdown", true),
        detection_ms: first_event(r.events, f, "+odown", true),
        promotion_ms: switch_master(r.events, f).map(|e| ms(e.t_us - f)),
        two_masters_ms: two_masters_ms(r.samples),
        rejoin_ms: r
            .rejoin
            .and_then(|j| rejoin_ms(r.expects_failover, r.samples, &j.node, f)),
        heal_ms: r.healing.healthy.then(|| ms(r.healing.at_us - f)),
        tilt_events: r.events.iter().filter(|e| e.event == "+tilt").count() as u64,
        api_errors: r.api.map(|a| a.overall.errors),
        api_bypasses: r.api.map(|a| a.overall.bypasses),
        api_fault_p99_us: r.api.and_then(|a| a.fault_window.p99_us.map(|v| v as f64)),
        api_unavailable_ms: r.api.and_then(|a| a.unavailable_ms),
    }
}

/// Whether a failover happened when one had to (promoting a former replica), or did not
/// when none may.
pub(crate) fn failover_check(
    failover: bool,
    events: &[SentinelEvent],
    fault_us: i64,
    replica_addrs: &[String],
) -> Check {
    let switch = switch_master(events, fault_us);
    let new_master = switch.and_then(switched_to);
    if failover {
        Check {
            name: "failover promoted a former replica".into(),
            passed: new_master
                .as_ref()
                .is_some_and(|m| replica_addrs.contains(m)),
            detail: match (&new_master, switch) {
                (Some(m), Some(e)) => {
                    format!(
                        "+switch-master to {m} after {:.0} ms",
                        ms(e.t_us - fault_us)
                    )
                }
                _ => "no +switch-master".into(),
            },
        }
    } else {
        Check {
            name: "no failover happened".into(),
            passed: switch.is_none(),
            detail: match &new_master {
                Some(m) => format!("unexpected +switch-master to {m}"),
                None => "no +switch-master".into(),
            },
        }
    }
}

/// Whether the old master rejoined as a replica (only where a failover was expected).
pub(crate) fn rejoin_check(failover: bool, rejoin: Option<&Rejoin>) -> Option<Check> {
    let j = rejoin.filter(|_| failover)?;
    Some(Check {
        name: "old master rejoined as a replica".into(),
        passed: j.rejoined,
        detail: if j.rejoined {
            format!("{} follows the new master", j.node)
        } else {
            format!(
                "{} did not rejoin within {} ms",
                j.node,
                j.timeout.as_millis()
            )
        },
    })
}

/// The topology's checks of a run: failover, rejoin, healing.
pub(crate) fn checks(r: &Record<'_>, figures: &Figures) -> Vec<Check> {
    let mut checks = vec![failover_check(
        r.expects_failover,
        r.events,
        r.fault_us,
        r.replica_addrs,
    )];
    checks.extend(rejoin_check(r.expects_failover, r.rejoin));
    checks.push(Check {
        name: "topology healed".into(),
        passed: r.healing.healthy,
        detail: match &r.healing.problem {
            None => format!(
                "healthy around {} after {:.0} ms",
                r.healing.current_master.as_deref().unwrap_or("?"),
                figures.heal_ms.unwrap_or(0.0)
            ),
            Some(p) => p.clone(),
        },
    });
    checks
}

/// What the fsync policy promises for acknowledged writes when every process is killed:
/// `always` loses none; `everysec` may lose those acknowledged in the last 2 s (Redis
/// postpones the AOF write for up to 2 s while a background fsync runs, and still
/// replies); `no` and RDB-only promise nothing.
pub(crate) fn persistence_check(p: &PersistenceSection, h: &History, killed_us: i64) -> Check {
    let lost = history::lost_writes(h);
    let acked = history::acked_writes(h).count();
    let oldest_ms = lost
        .iter()
        .map(|o| (killed_us - o.complete_us) as f64 / 1000.0)
        .fold(f64::NAN, f64::max);
    let (window_ms, promise) = match (p.aof, p.appendfsync.as_str()) {
        (true, "always") => (
            Some(0.0),
            "AOF appendfsync always: nothing acknowledged may be lost",
        ),
        (true, "everysec") => (
            Some(2000.0),
            "AOF appendfsync everysec: only writes acknowledged in the last 2 s may be lost",
        ),
        (true, _) => (
            None,
            "AOF appendfsync no: the OS decides when data is durable; nothing is promised",
        ),
        (false, _) if !p.rdb_save.trim().is_empty() => (
            None,
            "RDB snapshots only: writes since the last snapshot are not promised",
        ),
        _ => (None, "persistence off: nothing is promised"),
    };
    let passed = match window_ms {
        Some(w) => lost.is_empty() || oldest_ms <= w,
        None => true,
    };
    let age = if lost.is_empty() {
        String::new()
    } else {
        format!(", the oldest acknowledged {oldest_ms:.0} ms before the kill")
    };
    Check {
        name: "acknowledged writes survived the restart".into(),
        passed,
        detail: format!("{} of {acked} lost{age} ({promise})", lost.len()),
    }
}

/// Role samples where a node's (role, following, connected) changed.
pub(crate) fn role_changes(samples: &[RoleSample]) -> Vec<RoleSample> {
    let mut last: std::collections::HashMap<&str, (&str, Option<&str>, bool)> = Default::default();
    let mut out = Vec::new();
    for s in samples {
        let cur = (s.role.as_str(), s.following.as_deref(), s.connected);
        if last.get(s.node.as_str()) != Some(&cur) {
            last.insert(&s.node, cur);
            out.push(s.clone());
        }
    }
    out
}

/// Sentinel events (without `__sentinel__` hellos), harness actions and role changes,
/// in ms from the fault, by time.
pub(crate) fn timeline(r: &Record<'_>) -> Vec<TimelineEntry> {
    let f = r.fault_us;
    let mut timeline: Vec<TimelineEntry> = r
        .events
        .iter()
        .filter(|e| !e.event.starts_with("__sentinel__"))
        .map(|e| TimelineEntry {
            at_ms: ms(e.t_us - f),
            source: e.sentinel.clone(),
            event: e.event.clone(),
            detail: e.payload.clone(),
        })
        .collect();
    timeline.extend(r.actions.iter().map(|a| TimelineEntry {
        at_ms: ms(a.t_us - f),
        source: "harness".into(),
        event: a.what.clone(),
        detail: a.detail.clone(),
    }));
    timeline.extend(role_changes(r.samples).into_iter().map(|s| {
        TimelineEntry {
            at_ms: ms(s.t_us - f),
            source: s.node.clone(),
            event: format!("role {}", s.role),
            detail: s
                .following
                .as_ref()
                .map(|f| {
                    format!(
                        "following {f}{}",
                        if s.connected { "" } else { " (link down)" }
                    )
                })
                .unwrap_or_default(),
        }
    }));
    for c in r.clients {
        timeline.extend(outage_marks(c, f));
    }
    timeline.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    timeline
}

/// Where a client's writes stopped being acknowledged after the fault, and where its
/// longest outage ended (or that it never did).
pub(crate) fn outage_marks(c: &ClientRecord<'_>, fault_us: i64) -> Vec<TimelineEntry> {
    let h = c.history;
    let Some(failing) = h
        .ops
        .iter()
        .find(|o| o.kind == OpKind::Write && o.invoke_us >= fault_us && o.outcome != Outcome::Ok)
    else {
        return Vec::new();
    };
    let mark = |at_us: i64, event: &str, detail: String| TimelineEntry {
        at_ms: ms(at_us - fault_us),
        source: c.name.to_string(),
        event: event.into(),
        detail,
    };
    let mut out = vec![mark(
        failing.complete_us,
        "writes failing",
        format!(
            "first write not acknowledged: {:?}{}",
            failing.outcome,
            failing
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
    )];
    let acked = history::acked_writes(h).map(|o| o.complete_us).collect();
    if let Some(((from, to), recovered)) = history::longest_gap(acked, fault_us, history::end_of(h))
    {
        let without = format!(
            "after {:.0} ms without an acknowledged write",
            ms(to - from)
        );
        if !recovered {
            out.push(mark(to, "writes never acknowledged again", without));
        } else if to >= failing.complete_us {
            out.push(mark(to, "writes acknowledged again", without));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::history::{Op, OpKind};

    const FAULT_US: i64 = 10_000_000;

    fn op(kind: OpKind, v: &str, complete_ms: i64, outcome: Outcome) -> Op {
        Op {
            kind,
            client: 0,
            value: (kind == OpKind::Write).then(|| v.into()),
            invoke_us: complete_ms * 1000 - 100,
            complete_us: complete_ms * 1000,
            outcome,
            error: None,
        }
    }

    fn write(v: &str, complete_ms: i64) -> Op {
        op(OpKind::Write, v, complete_ms, Outcome::Ok)
    }

    fn event(t_ms: i64, sentinel: &str, name: &str, payload: &str) -> SentinelEvent {
        SentinelEvent {
            t_us: t_ms * 1000,
            sentinel: sentinel.into(),
            event: name.into(),
            payload: payload.into(),
        }
    }

    fn sample(round: u64, t_ms: i64, node: &str, role: &str) -> RoleSample {
        RoleSample {
            round,
            t_us: t_ms * 1000,
            node: node.into(),
            role: role.into(),
            following: None,
            connected: false,
        }
    }

    fn replica_of(mut s: RoleSample, master: &str, connected: bool) -> RoleSample {
        s.role = "slave".into();
        s.following = Some(master.into());
        s.connected = connected;
        s
    }

    /// A kill-master failover as Sentinels report it: a stale event before the fault,
    /// a Sentinel's own +sdown, then the master's +sdown, +odown and +switch-master.
    fn failover_events() -> Vec<SentinelEvent> {
        vec![
            event(
                9_000,
                "sentinel-1",
                "+sdown",
                "master mymaster 127.0.0.1 7000",
            ),
            event(
                10_100,
                "sentinel-2",
                "+sdown",
                "sentinel 127.0.0.1:26381 @ mymaster",
            ),
            event(
                10_200,
                "sentinel-1",
                "+sdown",
                "master mymaster 127.0.0.1 7000",
            ),
            event(10_300, "sentinel-1", "__sentinel__:hello", "hello"),
            event(
                10_400,
                "sentinel-2",
                "+odown",
                "master mymaster 127.0.0.1 7000 #quorum 2/2",
            ),
            event(
                11_500,
                "sentinel-2",
                "+switch-master",
                "mymaster 127.0.0.1 7000 127.0.0.1 7001",
            ),
        ]
    }

    struct Fixture {
        kind: DrillKind,
        history: History,
        samples: Vec<RoleSample>,
        events: Vec<SentinelEvent>,
        actions: Vec<Action>,
        rejoin: Option<Rejoin>,
        healing: Healing,
        replicas: Vec<String>,
        persistence: PersistenceSection,
    }

    impl Fixture {
        fn kill_master() -> Self {
            Fixture {
                kind: DrillKind::KillMaster,
                history: History {
                    ops: vec![
                        write("a", 9_900),
                        op(OpKind::Write, "b", 10_500, Outcome::Failed),
                        op(OpKind::Write, "c", 11_000, Outcome::Unknown),
                        write("d", 12_900),
                        op(OpKind::Read, "", 9_950, Outcome::Ok),
                        op(OpKind::Read, "", 12_000, Outcome::Ok),
                    ],
                    final_read: Some(vec!["a".into(), "d".into()]),
                    fault_us: FAULT_US,
                    end_us: None,
                },
                samples: vec![
                    sample(1, 9_990, "master", "master"),
                    sample(1, 9_990, "replica-1", "slave"),
                    sample(2, 11_600, "master", "down"),
                    sample(2, 11_600, "replica-1", "master"),
                    replica_of(sample(3, 12_000, "master", "x"), "127.0.0.1:7001", false),
                    sample(3, 12_000, "replica-1", "master"),
                    replica_of(sample(4, 12_500, "master", "x"), "127.0.0.1:7001", true),
                    sample(4, 12_500, "replica-1", "master"),
                ],
                events: failover_events(),
                actions: vec![Action {
                    t_us: FAULT_US + 5,
                    what: "fault".into(),
                    detail: "SIGKILL master".into(),
                }],
                rejoin: Some(Rejoin {
                    node: "master".into(),
                    rejoined: true,
                    timeout: Duration::from_secs(30),
                }),
                healing: Healing {
                    healthy: true,
                    problem: None,
                    current_master: Some("127.0.0.1:7001".into()),
                    at_us: 14_000_000,
                },
                replicas: vec!["127.0.0.1:7001".into()],
                persistence: PersistenceSection::default(),
            }
        }

        fn clients(&self) -> [ClientRecord<'_>; 1] {
            [ClientRecord {
                name: "app",
                history: &self.history,
                problems: &[],
                rejected: false,
            }]
        }

        fn record<'a>(&'a self, clients: &'a [ClientRecord<'a>]) -> Record<'a> {
            Record {
                kind: self.kind,
                expects_failover: self.kind.expects_failover(),
                fault_us: FAULT_US,
                clients,
                samples: &self.samples,
                events: &self.events,
                actions: &self.actions,
                rejoin: self.rejoin.as_ref(),
                healing: &self.healing,
                api: None,
                replica_addrs: &self.replicas,
                persistence: &self.persistence,
            }
        }
    }

    #[test]
    fn detection_and_promotion_count_only_master_events_after_the_fault() {
        let e = failover_events();
        assert_eq!(first_event(&e, FAULT_US, "+sdown", true), Some(200.0));
        assert_eq!(first_event(&e, FAULT_US, "+sdown", false), Some(100.0));
        assert_eq!(first_event(&e, FAULT_US, "+odown", true), Some(400.0));
        assert_eq!(first_event(&e, FAULT_US, "+tilt", false), None);
        let switch = switch_master(&e, FAULT_US).unwrap();
        assert_eq!(switched_to(switch).as_deref(), Some("127.0.0.1:7001"));
        assert!(
            switch_master(&e, 12_000_000).is_none(),
            "only after the fault"
        );
    }

    #[test]
    fn figures_of_a_kill_master_run() {
        let fx = Fixture::kill_master();
        let clients = fx.clients();
        let v = judge(&fx.record(&clients));
        let f = &v.figures;
        assert_eq!(f.sdown_ms, Some(200.0));
        assert_eq!(f.detection_ms, Some(400.0));
        assert_eq!(f.promotion_ms, Some(1500.0));
        let c = &v.clients[0].0;
        assert_eq!(
            c.write_unavailable_ms,
            Some(3000.0),
            "a at 9.9 s to d at 12.9 s"
        );
        assert_eq!(c.read_unavailable_ms, Some(2050.0));
        assert_eq!((c.acked_writes, c.lost_acked_writes), (2, Some(0)));
        assert_eq!((c.unknown_ops, c.failed_ops), (1, 1));
        assert_eq!(f.two_masters_ms, 0.0, "the old master was down, not master");
        assert_eq!(
            f.rejoin_ms,
            Some(2500.0),
            "the first connected replica answer"
        );
        assert_eq!(f.heal_ms, Some(4000.0));
        assert_eq!(f.tilt_events, 0);
        assert_eq!(f.api_errors, None);
    }

    #[test]
    fn two_masters_counts_rounds_not_timestamps() {
        // Round 1 ends late (a dead node timed out) and round 2 starts 1 ms later: the
        // single master of each round must not add up to two.
        let s = vec![
            sample(1, 100, "a", "master"),
            sample(1, 100, "b", "down"),
            sample(2, 101, "a", "master"),
            sample(2, 101, "b", "slave"),
            sample(3, 150, "a", "master"),
            sample(3, 150, "b", "master"),
            sample(4, 200, "a", "master"),
            sample(4, 200, "b", "slave"),
        ];
        assert_eq!(two_masters_ms(&s), 50.0);
        assert_eq!(two_masters_ms(&s[..4]).to_string(), "0", "no negative zero");
    }

    #[test]
    fn a_failover_must_promote_a_former_replica() {
        let e = failover_events();
        let ok = failover_check(
            DrillKind::KillMaster.expects_failover(),
            &e,
            FAULT_US,
            &["127.0.0.1:7001".into()],
        );
        assert!(ok.passed, "{ok:?}");
        assert_eq!(ok.name, "failover promoted a former replica");
        assert_eq!(ok.detail, "+switch-master to 127.0.0.1:7001 after 1500 ms");
        let stranger = failover_check(
            DrillKind::PauseMaster.expects_failover(),
            &e,
            FAULT_US,
            &["127.0.0.1:7002".into()],
        );
        assert!(!stranger.passed, "promoted a node that was not a replica");
        let none = failover_check(
            DrillKind::Partition.expects_failover(),
            &e[..5],
            FAULT_US,
            &[],
        );
        assert!(!none.passed);
        assert_eq!(none.detail, "no +switch-master");
    }

    #[test]
    fn no_failover_may_happen_where_none_is_expected() {
        let e = failover_events();
        for kind in [
            DrillKind::KillReplica,
            DrillKind::KillSentinels,
            DrillKind::RestartAll,
            DrillKind::PauseSentinel,
        ] {
            let c = failover_check(
                kind.expects_failover(),
                &e,
                FAULT_US,
                &["127.0.0.1:7001".into()],
            );
            assert_eq!(c.name, "no failover happened");
            assert!(!c.passed, "{kind}");
            assert_eq!(c.detail, "unexpected +switch-master to 127.0.0.1:7001");
            let before = failover_check(kind.expects_failover(), &e, 12_000_000, &[]);
            assert!(
                before.passed,
                "a switch before the fault is not this drill's"
            );
        }
    }

    #[test]
    fn rejoin_is_judged_only_where_a_failover_was_expected() {
        let fx = Fixture::kill_master();
        assert_eq!(
            rejoin_ms(
                DrillKind::KillMaster.expects_failover(),
                &fx.samples,
                "master",
                FAULT_US
            ),
            Some(2500.0)
        );
        assert_eq!(
            rejoin_ms(
                DrillKind::KillReplica.expects_failover(),
                &fx.samples,
                "master",
                FAULT_US
            ),
            None
        );
        assert_eq!(
            rejoin_ms(
                DrillKind::KillMaster.expects_failover(),
                &fx.samples,
                "replica-1",
                FAULT_US
            ),
            None
        );
        let late = Rejoin {
            node: "master".into(),
            rejoined: false,
            timeout: Duration::from_millis(1234),
        };
        let c = rejoin_check(DrillKind::SentinelFailover.expects_failover(), Some(&late)).unwrap();
        assert!(!c.passed);
        assert_eq!(c.detail, "master did not rejoin within 1234 ms");
        assert!(rejoin_check(DrillKind::KillReplica.expects_failover(), Some(&late)).is_none());
        assert!(rejoin_check(DrillKind::KillMaster.expects_failover(), None).is_none());
    }

    #[test]
    fn checks_come_in_order_and_name_what_failed() {
        let mut fx = Fixture::kill_master();
        let clients = fx.clients();
        let v = judge(&fx.record(&clients));
        let names: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "failover promoted a former replica",
                "old master rejoined as a replica",
                "topology healed",
                "app: final read",
                "app: refused writes absent",
            ]
        );
        assert!(v.checks.iter().all(|c| c.passed), "{:?}", v.checks);
        assert_eq!(
            v.checks[2].detail,
            "healthy around 127.0.0.1:7001 after 4000 ms"
        );

        fx.healing = Healing {
            healthy: false,
            problem: Some("two masters".into()),
            current_master: None,
            at_us: 14_000_000,
        };
        fx.history.final_read = Some(vec!["a".into(), "b".into()]);
        let problems = ["history rejected: line 3: not a history record".to_string()];
        let clients = [
            ClientRecord {
                name: "app",
                history: &fx.history,
                problems: &[],
                rejected: false,
            },
            ClientRecord {
                name: "myapp",
                history: &History::default(),
                problems: &problems,
                rejected: true,
            },
        ];
        let v = judge(&fx.record(&clients));
        assert_eq!(v.figures.heal_ms, None);
        let failed: Vec<(&str, &str)> = v
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| (c.name.as_str(), c.detail.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                ("topology healed", "two masters"),
                (
                    "app: refused writes absent",
                    "1 writes recorded as refused were found anyway"
                ),
                (
                    "myapp: client ran as the protocol says",
                    "history rejected: line 3: not a history record"
                ),
                ("myapp: final read", "not done: its history was rejected"),
            ]
        );
        assert_eq!(
            v.clients[0].0.lost_acked_writes,
            Some(1),
            "d is missing now"
        );
        assert_eq!(
            v.clients[1].0.lost_acked_writes, None,
            "nothing was read back"
        );
        assert_eq!(
            v.clients[1].0.acked_writes, 0,
            "nothing of a rejected history counts"
        );
    }

    #[test]
    fn restart_all_is_judged_against_the_kill_time() {
        let mut fx = Fixture::kill_master();
        fx.kind = DrillKind::RestartAll;
        fx.events.clear();
        fx.persistence.appendfsync = "always".into();
        fx.history.ops = vec![write("old", 8_000), write("recent", 9_000)];
        fx.history.final_read = Some(vec!["old".into()]);
        // The kill came 2.5 s after the fault was declared: `recent` was 3.5 s old.
        fx.actions[0].t_us = FAULT_US + 2_500_000;
        let clients = fx.clients();
        let v = judge(&fx.record(&clients));
        let last = v.checks.last().unwrap();
        assert_eq!(last.name, "app: acknowledged writes survived the restart");
        assert!(!last.passed);
        assert!(
            last.detail
                .starts_with("1 of 2 lost, the oldest acknowledged 3500 ms before the kill"),
            "{}",
            last.detail
        );
        assert_eq!(v.checks[0].name, "no failover happened");
        assert!(v.checks[0].passed);
    }

    #[test]
    fn everysec_may_lose_only_the_last_two_seconds() {
        let h = History {
            ops: vec![write("old", 1000), write("recent", 9500)],
            final_read: Some(vec!["old".into()]),
            fault_us: 10_000_000,
            end_us: None,
        };
        let everysec = PersistenceSection::default();
        let c = persistence_check(&everysec, &h, 10_000_000);
        assert!(c.passed, "{c:?}");
        assert!(
            c.detail
                .starts_with("1 of 2 lost, the oldest acknowledged 500 ms before the kill"),
            "{}",
            c.detail
        );
        let always = PersistenceSection {
            appendfsync: "always".into(),
            ..Default::default()
        };
        assert!(!persistence_check(&always, &h, 10_000_000).passed);
        let h_old = History {
            final_read: Some(vec!["recent".into()]),
            ..h.clone()
        };
        assert!(
            !persistence_check(&everysec, &h_old, 10_000_000).passed,
            "a write 9 s old is outside the promise"
        );
        let off = PersistenceSection {
            aof: false,
            rdb_save: String::new(),
            ..Default::default()
        };
        assert!(persistence_check(&off, &h_old, 10_000_000).passed);
    }

    #[test]
    fn timeline_merges_events_actions_and_role_changes_by_time() {
        let fx = Fixture::kill_master();
        let clients = fx.clients();
        let t = timeline(&fx.record(&clients));
        let rows: Vec<(f64, &str, &str)> = t
            .iter()
            .map(|e| (e.at_ms, e.source.as_str(), e.event.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                (-1000.0, "sentinel-1", "+sdown"),
                (-10.0, "master", "role master"),
                (-10.0, "replica-1", "role slave"),
                (0.005, "harness", "fault"),
                (100.0, "sentinel-2", "+sdown"),
                (200.0, "sentinel-1", "+sdown"),
                (400.0, "sentinel-2", "+odown"),
                (500.0, "app", "writes failing"),
                (1500.0, "sentinel-2", "+switch-master"),
                (1600.0, "master", "role down"),
                (1600.0, "replica-1", "role master"),
                (2000.0, "master", "role slave"),
                (2500.0, "master", "role slave"),
                (2900.0, "app", "writes acknowledged again"),
            ],
            "no Sentinel hellos, one row per role change, each client's outage"
        );
        assert_eq!(t[11].detail, "following 127.0.0.1:7001 (link down)");
        assert_eq!(t[12].detail, "following 127.0.0.1:7001");
        assert_eq!(t[13].detail, "after 3000 ms without an acknowledged write");
    }
}
