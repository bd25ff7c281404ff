//! Stale-read checking under load: what the cache served, judged against what was written.
//!
//! Writers give every write a value no one else writes (`<tag>-<seq>` in `first_name`),
//! and one member is written by one user at a time, so each member's writes form a
//! sequence with known invoke and completion times. A read of the member that starts
//! after a write completed must serve that write's value or a later one (the bound is the
//! completion time of the latest write acknowledged before the read was sent; a write
//! still in flight may or may not be visible). Each user also checks that it never sees an
//! older value of a member than one it saw before (monotonic reads). A writer reads back
//! what it wrote at once (read-your-writes).
//!
//! The values are only known to the process that wrote them: with several load
//! generators, each writes its own shard of members (`id % shards == shard`) and a value
//! written by another generator is counted as not judged.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// How many violation examples a run keeps.
const EXAMPLES: usize = 10;

/// Stale-read figures of one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StaleRoute {
    /// Route template.
    pub route: String,
    /// Reads that had something to check (a write acknowledged before them, or an
    /// earlier read by the same user).
    pub checked: u64,
    /// Reads that served an older value than they had to.
    pub violations: u64,
    /// Checked reads whose bound came from a write through another API instance than
    /// the read (cross-instance invalidation).
    #[serde(default)]
    pub cross_instance: u64,
    /// Reads that served a value another load-generator process wrote (two generators
    /// writing the same members: give each its own `--shard`).
    #[serde(default)]
    pub unjudged: u64,
}

impl StaleRoute {
    /// Violations per checked read (0 without checked reads).
    pub fn rate(&self) -> f64 {
        if self.checked == 0 {
            0.0
        } else {
            self.violations as f64 / self.checked as f64
        }
    }
}

/// One stale read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleExample {
    /// Route template.
    pub route: String,
    /// The member read.
    pub member: u64,
    /// `read-your-writes`, `bounded` (another user's write) or `monotonic`.
    pub kind: String,
    /// The value the read had to serve (or a later one).
    pub expected: String,
    /// The value it served.
    pub served: String,
    /// How long before the read the expected value had been acknowledged (monotonic:
    /// since the user saw it), ms.
    pub age_ms: f64,
    /// API instance the read went to (index into the run's hosts).
    pub instance: usize,
    /// Seconds into the run.
    pub t_s: f64,
}

/// Stale-read figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StaleReport {
    /// What was checked, in words.
    pub method: String,
    /// Per route.
    pub routes: Vec<StaleRoute>,
    /// The first violations.
    pub examples: Vec<StaleExample>,
}

impl StaleReport {
    /// Checked reads over every route.
    pub fn checked(&self) -> u64 {
        self.routes.iter().map(|r| r.checked).sum()
    }

    /// Violations over every route.
    pub fn violations(&self) -> u64 {
        self.routes.iter().map(|r| r.violations).sum()
    }
}

/// One write of a member.
#[derive(Debug)]
struct Write {
    value: String,
    /// The API instance it went through.
    instance: usize,
    /// `None`: not acknowledged (failed or no answer); it may or may not have happened.
    done: Option<Instant>,
}

#[derive(Debug, Default)]
struct Member {
    writing: bool,
    writes: Vec<Write>,
}

#[derive(Default)]
struct State {
    members: HashMap<u64, Member>,
    /// (user, member) → (index of the newest write seen, when).
    seen: HashMap<(usize, u64), (usize, Instant)>,
    routes: BTreeMap<String, StaleRoute>,
    examples: Vec<StaleExample>,
}

/// A write in progress: the member is held until [`StaleChecker::written`].
#[derive(Debug)]
pub struct Ticket {
    /// The member.
    pub member: u64,
    /// The unique value to write.
    pub value: String,
}

/// The shared register of writes and the judge of reads.
pub struct StaleChecker {
    started: Instant,
    tag: String,
    shard: (u64, u64),
    state: Mutex<State>,
}

impl StaleChecker {
    /// A checker whose values start with `tag` and whose writers take members with
    /// `id % shards == shard` (`(0, 1)`: all of them).
    pub fn new(started: Instant, tag: &str, shard: (u64, u64)) -> Self {
        Self {
            started,
            tag: tag.to_string(),
            shard: (shard.0, shard.1.max(1)),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this generator writes `member`.
    pub fn owns(&self, member: u64) -> bool {
        member % self.shard.1 == self.shard.0
    }

    /// Takes `member` for a write, unless another user is writing it or it belongs to
    /// another generator's shard.
    pub fn claim(&self, member: u64, instance: usize) -> Option<Ticket> {
        if !self.owns(member) {
            return None;
        }
        let mut s = self.lock();
        let m = s.members.entry(member).or_default();
        if m.writing {
            return None;
        }
        m.writing = true;
        // One sequence for the whole process: values stay unique across its runs.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let value = format!("{}-{seq}", self.tag);
        // Registered before it is sent: a read may see it while it is in flight.
        m.writes.push(Write {
            value: value.clone(),
            instance,
            done: None,
        });
        Some(Ticket { member, value })
    }

    /// Ends a write: `acked` when the API answered 2xx (the completion time is now).
    pub fn written(&self, t: Ticket, acked: bool) {
        let now = Instant::now();
        let mut s = self.lock();
        let m = s.members.entry(t.member).or_default();
        m.writing = false;
        if let Some(w) = m.writes.iter_mut().rev().find(|w| w.value == t.value) {
            w.done = acked.then_some(now);
        }
    }

    /// The value a read of `member` sent now must serve (or a later one), if any.
    pub fn expected(&self, member: u64) -> Option<String> {
        let s = self.lock();
        let m = s.members.get(&member)?;
        m.writes
            .iter()
            .rev()
            .find(|w| w.done.is_some())
            .map(|w| w.value.clone())
    }

    /// Whether reads of `member` can be judged at all (it has been written).
    pub fn tracked(&self, member: u64) -> bool {
        self.lock().members.contains_key(&member)
    }

    /// Judges a read of `member` by `user` through `instance`, sent at `sent`, that
    /// served `served` (the `first_name`). `own_write`: the user's read-back of its own
    /// write.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        route: &str,
        user: usize,
        member: u64,
        instance: usize,
        sent: Instant,
        served: &str,
        own_write: bool,
    ) {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(m) = s.members.get(&member) else {
            return;
        };
        // The newest write acknowledged before the read was sent.
        let bound = m
            .writes
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| w.done.is_some_and(|d| d <= sent));
        let idx = m.writes.iter().rposition(|w| w.value == served);
        let ours = served.starts_with(&self.tag) && served[self.tag.len()..].starts_with('-');
        let seen = s.seen.get(&(user, member)).copied();
        if let Some(i) = idx {
            if seen.is_none_or(|(j, _)| i > j) {
                s.seen.insert((user, member), (i, sent));
            }
        }
        if bound.is_none() && seen.is_none() {
            return;
        }
        let r = s
            .routes
            .entry(route.to_string())
            .or_insert_with(|| StaleRoute {
                route: route.to_string(),
                ..Default::default()
            });
        r.checked += 1;
        if bound.is_some_and(|(_, w)| w.instance != instance) {
            r.cross_instance += 1;
        }
        if idx.is_none() && served.contains('-') && !ours && looks_generated(served) {
            r.unjudged += 1;
            return;
        }
        // An unknown value is the one from before the load: older than any write.
        let older = |k: usize| idx.is_none_or(|i| i < k);
        let mut violation = None;
        if let Some((k, w)) = bound {
            if older(k) {
                let age = sent.saturating_duration_since(w.done.unwrap_or(sent));
                violation = Some((
                    if own_write {
                        "read-your-writes"
                    } else {
                        "bounded"
                    },
                    w.value.clone(),
                    age,
                ));
            }
        }
        if violation.is_none() {
            if let Some((j, at)) = seen {
                if older(j) {
                    violation = Some(("monotonic", m.writes[j].value.clone(), sent - at.min(sent)));
                }
            }
        }
        if let Some((kind, expected, age)) = violation {
            r.violations += 1;
            if s.examples.len() < EXAMPLES {
                s.examples.push(StaleExample {
                    route: route.to_string(),
                    member,
                    kind: kind.to_string(),
                    expected,
                    served: served.to_string(),
                    age_ms: (age.as_secs_f64() * 1e4).round() / 10.0,
                    instance,
                    t_s: (sent.saturating_duration_since(self.started).as_secs_f64() * 10.0)
                        .round()
                        / 10.0,
                });
            }
        }
    }

    /// The figures so far.
    pub fn report(&self) -> StaleReport {
        let s = self.lock();
        StaleReport {
            method: METHOD.to_string(),
            routes: s.routes.values().cloned().collect(),
            examples: s.examples.clone(),
        }
    }
}

/// What the check covers, for the reports.
pub const METHOD: &str = "writers put a unique first_name on a member (one writer per member at a time) and read it back; every read of a written member through members/{id} or members/by-id-number must serve the newest value acknowledged before the read was sent, or a later one, and never an older one than the same user saw before";

/// A value in the generators' form `<tag>-<seq>` (`tag` is `L` and hex digits).
fn looks_generated(v: &str) -> bool {
    v.split_once('-').is_some_and(|(t, n)| {
        t.starts_with('L')
            && t[1..].chars().all(|c| c.is_ascii_hexdigit())
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
    })
}

/// This process's tag for its values: `L` and the pid and clock in hex, the same for
/// every run of the process (so a value left by an earlier run of it is known to be
/// older than this run's writes).
pub fn new_tag() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("L{:x}{:x}", std::process::id(), nanos & 0xfff)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ck() -> StaleChecker {
        StaleChecker::new(Instant::now(), "Lab", (0, 1))
    }

    #[test]
    fn a_read_after_an_acknowledged_write_must_see_it() {
        let c = ck();
        let t = c.claim(7, 0).unwrap();
        assert!(c.claim(7, 0).is_none(), "one writer per member at a time");
        let v1 = t.value.clone();
        c.written(t, true);
        let sent = Instant::now();
        c.check("/m", 1, 7, 0, sent, &v1, true);
        // The value from before the load, read by another user after the write: stale.
        c.check("/m", 2, 7, 1, sent, "Alice", false);
        let r = c.report();
        assert_eq!((r.checked(), r.violations()), (2, 1));
        let e = &r.examples[0];
        assert_eq!(
            (e.kind.as_str(), e.expected.as_str(), e.served.as_str()),
            ("bounded", v1.as_str(), "Alice")
        );
        assert_eq!(e.instance, 1);
    }

    #[test]
    fn a_write_in_flight_may_or_may_not_be_seen() {
        let c = ck();
        let t1 = c.claim(1, 0).unwrap();
        let v1 = t1.value.clone();
        c.written(t1, true);
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        let t2 = c.claim(1, 0).unwrap();
        let v2 = t2.value.clone();
        c.written(t2, true);
        // Sent before v2 was acknowledged: v1 and v2 are both fine.
        c.check("/m", 3, 1, 0, sent, &v1, false);
        c.check("/m", 4, 1, 0, sent, &v2, false);
        assert_eq!(c.report().violations(), 0);
        // Sent after: v1 is stale now.
        c.check("/m", 5, 1, 0, Instant::now(), &v1, false);
        assert_eq!(c.report().violations(), 1);
    }

    #[test]
    fn going_back_is_a_monotonic_violation() {
        let c = ck();
        let t1 = c.claim(1, 0).unwrap();
        let sent = Instant::now();
        let t2v = {
            let v1 = t1.value.clone();
            c.written(t1, false); // unacknowledged: sets no bound
            let t2 = c.claim(1, 0).unwrap();
            let v2 = t2.value.clone();
            c.written(t2, false);
            (v1, v2)
        };
        c.check("/m", 9, 1, 0, sent, &t2v.1, false);
        c.check("/m", 9, 1, 0, sent, &t2v.0, false);
        let r = c.report();
        assert_eq!(r.violations(), 1, "{r:?}");
        assert_eq!(r.examples[0].kind, "monotonic");
    }

    #[test]
    fn other_generators_values_and_shards() {
        let c = StaleChecker::new(Instant::now(), "Lab", (1, 2));
        assert!(c.claim(2, 0).is_none(), "member 2 is shard 0's");
        let t = c.claim(3, 0).unwrap();
        c.written(t, true);
        c.check("/m", 1, 3, 0, Instant::now(), "Lcd-4", false);
        let r = c.report();
        assert_eq!((r.routes[0].unjudged, r.violations()), (1, 0));
        assert!(looks_generated(&format!("{}-12", new_tag())));
        assert!(!looks_generated("Mary-Jane"));
    }
}
