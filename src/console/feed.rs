//! What the console shows and who feeds it: the target it watches, the latest topology
//! snapshot, the event log (Sentinel pub/sub, role changes, the drill's actions and the
//! console's own), and the drill in progress with its running tally of writes.
//!
//! Every event carries the wall-clock time it was recorded at (ms since the Unix epoch),
//! so events from every source sit on one clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::topology::Snapshot;
use super::Target;
use crate::drill::{DrillKind, DrillRun, Tally, TimelineEntry, Watch};
use crate::topology::state::TopologyState;

/// Events kept for pages that load later (older ones are dropped).
pub(crate) const LOG_CAP: usize = 2000;

/// Where an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// A Sentinel's pub/sub channel.
    Sentinel,
    /// A data node's role changed (seen by the console's poll).
    Role,
    /// The drill (or `verify`) did something.
    Drill,
    /// The console itself (target changes, commands run with `--allow-write`).
    Console,
}

/// One event on the console's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Event {
    /// Sequence number (SSE event id).
    pub(crate) id: u64,
    /// Wall-clock time it was recorded, ms since the Unix epoch.
    pub(crate) at_ms: u64,
    /// Where it comes from.
    pub(crate) kind: Kind,
    /// Sentinel or node name, `harness` or `console`.
    pub(crate) source: String,
    /// What happened (`+switch-master`, `role`, `fault` ...).
    pub(crate) name: String,
    /// Details (the channel payload, the new role ...).
    pub(crate) detail: String,
}

/// The drill in progress (or the last one).
#[derive(Debug, Clone, Default)]
pub(crate) struct DrillState {
    /// `kill-master run 2`.
    pub(crate) label: String,
    /// When its fault was injected, ms since the Unix epoch.
    pub(crate) fault_at_ms: Option<u64>,
    /// The running tally of each built-in client's writes, by client.
    pub(crate) tallies: Vec<(String, Arc<Tally>)>,
    /// Its judged timeline, once finished (ms from the fault).
    pub(crate) timeline: Vec<TimelineEntry>,
    /// `passed` / `FAILED ...`, once finished.
    pub(crate) verdict: Option<String>,
}

/// Ms since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug)]
struct Inner {
    target: watch::Sender<Option<Target>>,
    snapshot: watch::Sender<Option<Arc<Snapshot>>>,
    log: Mutex<VecDeque<Event>>,
    next_id: AtomicU64,
    events: broadcast::Sender<Event>,
    drill: Mutex<Option<DrillState>>,
    /// Bumped whenever the drill state changes in a way pages should reload for.
    drill_changes: watch::Sender<u64>,
}

/// The console's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Feed(Arc<Inner>);

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// An empty feed watching nothing yet.
    pub(crate) fn new() -> Self {
        Self(Arc::new(Inner {
            target: watch::channel(None).0,
            snapshot: watch::channel(None).0,
            log: Mutex::new(VecDeque::with_capacity(LOG_CAP)),
            next_id: AtomicU64::new(1),
            events: broadcast::channel(1024).0,
            drill: Mutex::new(None),
            drill_changes: watch::channel(0).0,
        }))
    }

    /// Watches `target` from now on (a no-op when it is already the target).
    pub(crate) fn watch(&self, target: Target) {
        let changed = self.0.target.send_if_modified(|t| {
            if t.as_ref() == Some(&target) {
                return false;
            }
            *t = Some(target.clone());
            true
        });
        if changed {
            self.push(
                Kind::Console,
                "console",
                "watching",
                format!(
                    "topology '{}' through Sentinels {}",
                    target.name,
                    target.sentinels.join(", ")
                ),
            );
        }
    }

    /// The target, as it changes.
    pub(crate) fn target(&self) -> watch::Receiver<Option<Target>> {
        self.0.target.subscribe()
    }

    /// The target now.
    pub(crate) fn current_target(&self) -> Option<Target> {
        self.0.target.borrow().clone()
    }

    /// Publishes a new snapshot.
    pub(crate) fn set_snapshot(&self, s: Snapshot) {
        self.0.snapshot.send_replace(Some(Arc::new(s)));
    }

    /// The latest snapshot, as it changes.
    pub(crate) fn snapshots(&self) -> watch::Receiver<Option<Arc<Snapshot>>> {
        self.0.snapshot.subscribe()
    }

    /// The latest snapshot.
    pub(crate) fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.0.snapshot.borrow().clone()
    }

    /// Records an event now and sends it to every live page. Numbering, logging and
    /// sending happen under one lock, so every page sees events in id order.
    pub(crate) fn push(&self, kind: Kind, source: &str, name: &str, detail: String) -> Event {
        let mut log = self.0.log.lock().expect("event log lock");
        let ev = Event {
            id: self.0.next_id.fetch_add(1, Ordering::Relaxed),
            at_ms: now_ms(),
            kind,
            source: source.to_string(),
            name: name.to_string(),
            detail,
        };
        if log.len() == LOG_CAP {
            log.pop_front();
        }
        log.push_back(ev.clone());
        // No live page is not an error.
        let _ = self.0.events.send(ev.clone());
        ev
    }

    /// The id of the newest event (0 before the first).
    pub(crate) fn last_id(&self) -> u64 {
        self.0.next_id.load(Ordering::Relaxed) - 1
    }

    /// Logged events with an id above `after`, oldest first.
    pub(crate) fn since(&self, after: u64) -> Vec<Event> {
        self.0
            .log
            .lock()
            .expect("event log lock")
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect()
    }

    /// Events as they are recorded.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.events.subscribe()
    }

    /// The drill in progress or the last one, if any.
    pub(crate) fn drill(&self) -> Option<DrillState> {
        self.0.drill.lock().expect("drill lock").clone()
    }

    /// Changes of the drill state that pages reload for (a run starts or is judged).
    pub(crate) fn drill_changes(&self) -> watch::Receiver<u64> {
        self.0.drill_changes.subscribe()
    }

    fn update_drill(&self, reload: bool, f: impl FnOnce(&mut DrillState)) {
        f(self
            .0
            .drill
            .lock()
            .expect("drill lock")
            .get_or_insert_with(DrillState::default));
        if reload {
            self.0.drill_changes.send_modify(|n| *n += 1);
        }
    }
}

impl Watch for Feed {
    fn topology(&self, state: &TopologyState) {
        self.watch(Target::from_state(state));
    }

    fn run(&self, kind: DrillKind, run: u32) {
        let label = format!("{kind} run {run}");
        self.update_drill(true, |d| {
            *d = DrillState {
                label: label.clone(),
                ..DrillState::default()
            }
        });
        self.push(Kind::Drill, "harness", "run", label);
    }

    fn fault(&self) {
        let at = now_ms();
        self.update_drill(true, |d| d.fault_at_ms = Some(at));
    }

    fn action(&self, what: &str, detail: &str) {
        self.push(Kind::Drill, "harness", what, detail.to_string());
    }

    fn tally(&self, client: &str, tally: Arc<Tally>) {
        self.update_drill(false, |d| {
            d.tallies.retain(|(c, _)| c != client);
            d.tallies.push((client.to_string(), tally));
        });
    }

    fn finished(&self, run: &DrillRun) {
        let failed: Vec<&str> = run
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        let verdict = if failed.is_empty() {
            "passed".to_string()
        } else {
            format!("FAILED: {}", failed.join(", "))
        };
        let lost: Vec<String> = run
            .clients
            .iter()
            .map(|c| format!("{} {}", c.name, c.figures.lost_text()))
            .collect();
        self.push(
            Kind::Drill,
            "harness",
            "verdict",
            format!("{verdict}; {}", lost.join(", ")),
        );
        self.update_drill(true, |d| {
            d.timeline = run.timeline.clone();
            d.verdict = Some(verdict);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            sentinels: vec!["127.0.0.1:1".into()],
            master_name: "mymaster".into(),
            password: None,
            sentinel_password: None,
            names: vec![],
        }
    }

    #[test]
    fn the_log_keeps_the_newest_events_in_order() {
        let f = Feed::new();
        for i in 0..LOG_CAP + 10 {
            f.push(Kind::Sentinel, "s1", "+sdown", i.to_string());
        }
        let all = f.since(0);
        assert_eq!(all.len(), LOG_CAP);
        assert_eq!(all[0].detail, "10");
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let last = all.last().unwrap().id;
        assert!(f.since(last).is_empty());
        assert_eq!(f.since(last - 1).len(), 1);
    }

    #[test]
    fn a_new_target_is_logged_once() {
        let f = Feed::new();
        f.watch(target("a"));
        f.watch(target("a"));
        f.watch(target("b"));
        let names: Vec<String> = f.since(0).into_iter().map(|e| e.detail).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(f.current_target().unwrap().name, "b");
    }

    #[test]
    fn each_run_has_its_own_fault_time() {
        let f = Feed::new();
        f.run(DrillKind::KillMaster, 1);
        assert_eq!(f.drill().unwrap().label, "kill-master run 1");
        assert!(f.drill().unwrap().fault_at_ms.is_none());
        f.fault();
        assert!(f.drill().unwrap().fault_at_ms.is_some());
        f.run(DrillKind::KillMaster, 2);
        assert!(f.drill().unwrap().fault_at_ms.is_none());
        assert_eq!(f.last_id(), f.since(0).last().unwrap().id);
    }
}
