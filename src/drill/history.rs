//! Jepsen-style client history and its checker: every operation with invoke and
//! completion times and an outcome, a final read after healing, and what follows from
//! them (acknowledged writes lost, outcomes unknown, client-visible outages).
//!
//! Times are microseconds on the drill's monotonic clock; the fault is at `fault_us`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Write or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Adds a unique value.
    Write,
    /// Reads the set size.
    Read,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged (for a write with WAIT: confirmed by the required replicas).
    Ok,
    /// Refused: the operation certainly did not take effect.
    Failed,
    /// No answer in time, the connection dropped mid-flight, or WAIT fell short: it may
    /// or may not have taken effect.
    Unknown,
}

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Write or read.
    pub kind: OpKind,
    /// Client number.
    pub client: u32,
    /// The unique value written (writes only).
    pub value: Option<String>,
    /// When it was sent.
    pub invoke_us: i64,
    /// When it ended.
    pub complete_us: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// The error, when not ok.
    pub error: Option<String>,
}

/// Running counts of write outcomes while a drill runs (for watchers such as the
/// console; the judged figures come from the full history).
#[derive(Debug, Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    unknown: AtomicU64,
    /// When the last write was acknowledged, in µs of [`tally_clock`] (0: never).
    last_ok_us: AtomicU64,
}

/// The process-wide clock of [`Tally::since_last_ok`].
fn tally_clock() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros() as u64
        + 1
}

impl Tally {
    /// How long ago the last write was acknowledged (`None`: none yet).
    pub fn since_last_ok(&self) -> Option<std::time::Duration> {
        let at = self.last_ok_us.load(Ordering::Relaxed);
        (at > 0).then(|| std::time::Duration::from_micros(tally_clock().saturating_sub(at)))
    }

    /// Counts one write's outcome.
    pub fn record(&self, outcome: Outcome) {
        if outcome == Outcome::Ok {
            self.last_ok_us.store(tally_clock(), Ordering::Relaxed);
        }
        let n = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Failed => &self.failed,
            Outcome::Unknown => &self.unknown,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// Acknowledged, failed and unknown writes so far.
    pub fn counts(&self) -> [u64; 3] {
        [&self.ok, &self.failed, &self.unknown].map(|n| n.load(Ordering::Relaxed))
    }
}

/// A recorded drill history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Every operation.
    pub ops: Vec<Op>,
    /// Values present in the final read after healing (`None` if it failed).
    pub final_read: Option<Vec<String>>,
    /// When the fault was injected.
    pub fault_us: i64,
    /// When the client was told to stop: an outage lasts until then at least, even if the
    /// client recorded nothing near the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_us: Option<i64>,
}

/// What the checker concludes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Writes acknowledged.
    pub writes_ok: u64,
    /// Writes refused.
    pub writes_failed: u64,
    /// Writes with unknown outcome.
    pub writes_unknown: u64,
    /// Reads answered.
    pub reads_ok: u64,
    /// Reads refused or unanswered.
    pub reads_not_ok: u64,
    /// Acknowledged writes missing from the final read.
    pub lost_acked_writes: u64,
    /// The same as a percentage of acknowledged writes.
    pub lost_acked_percent: f64,
    /// Up to 20 of the lost values, for the report.
    pub lost_examples: Vec<String>,
    /// Writes recorded as refused that are present in the final read anyway (a refusal
    /// the client misread; should be 0).
    pub refused_but_present: u64,
    /// Longest gap between consecutive acknowledged writes that ends after the fault, in
    /// ms (the client-visible write outage); `None` without acknowledged writes.
    pub write_unavailable_ms: Option<f64>,
    /// The same for reads.
    pub read_unavailable_ms: Option<f64>,
    /// Whether writes were acknowledged again after the fault.
    pub writes_recovered: bool,
}

/// The longest gap between successive `completions` that ends after `fault_us`, as
/// (from, to) in µs, and whether any completion came after the fault; with none after
/// it, the gap runs from the last one to `end_us`. `None` without completions.
pub(crate) fn longest_gap(
    mut completions: Vec<i64>,
    fault_us: i64,
    end_us: i64,
) -> Option<((i64, i64), bool)> {
    completions.sort_unstable();
    let last = *completions.last()?;
    let recovered = last > fault_us;
    let mut gap = (last, last);
    for w in completions.windows(2) {
        if w[1] > fault_us && w[1] - w[0] > gap.1 - gap.0 {
            gap = (w[0], w[1]);
        }
    }
    if !recovered && end_us - last > gap.1 - gap.0 {
        // Never acknowledged again: the outage lasts until the history ends.
        gap = (last, end_us);
    }
    Some((gap, recovered))
}

/// [`longest_gap`] in ms, and whether completions came after the fault.
pub(crate) fn longest_gap_after(
    completions: Vec<i64>,
    fault_us: i64,
    end_us: i64,
) -> (Option<f64>, bool) {
    match longest_gap(completions, fault_us, end_us) {
        Some(((from, to), recovered)) => (Some((to - from) as f64 / 1000.0), recovered),
        None => (None, false),
    }
}

/// The end of the history: its last completion, or when the client was told to stop.
pub(crate) fn end_of(h: &History) -> i64 {
    h.ops
        .iter()
        .map(|o| o.complete_us)
        .chain(h.end_us)
        .max()
        .unwrap_or(h.fault_us)
}

/// Acknowledged writes.
pub fn acked_writes(h: &History) -> impl Iterator<Item = &Op> {
    h.ops
        .iter()
        .filter(|o| o.kind == OpKind::Write && o.outcome == Outcome::Ok)
}

/// Acknowledged writes absent from the final read (none when the final read failed).
pub fn lost_writes(h: &History) -> Vec<&Op> {
    let Some(values) = &h.final_read else {
        return Vec::new();
    };
    let present: HashSet<&str> = values.iter().map(String::as_str).collect();
    acked_writes(h)
        .filter(|o| !present.contains(o.value.as_deref().unwrap_or("")))
        .collect()
}

/// Checks a history.
pub fn analyze(h: &History) -> Analysis {
    let count = |k: OpKind, o: Outcome| {
        h.ops
            .iter()
            .filter(|op| op.kind == k && op.outcome == o)
            .count() as u64
    };
    let end_us = end_of(h);
    let acked: Vec<&Op> = acked_writes(h).collect();
    let lost = lost_writes(h);
    let lost_examples: Vec<String> = lost
        .iter()
        .take(20)
        .filter_map(|o| o.value.clone())
        .collect();
    let lost = lost.len() as u64;
    let refused_but_present = match &h.final_read {
        Some(values) => {
            let present: HashSet<&str> = values.iter().map(String::as_str).collect();
            h.ops
                .iter()
                .filter(|o| o.kind == OpKind::Write && o.outcome == Outcome::Failed)
                .filter(|o| present.contains(o.value.as_deref().unwrap_or("")))
                .count() as u64
        }
        None => 0,
    };
    let writes_ok = acked.len() as u64;
    let (write_gap, writes_recovered) = longest_gap_after(
        acked.iter().map(|o| o.complete_us).collect(),
        h.fault_us,
        end_us,
    );
    let (read_gap, _) = longest_gap_after(
        h.ops
            .iter()
            .filter(|o| o.kind == OpKind::Read && o.outcome == Outcome::Ok)
            .map(|o| o.complete_us)
            .collect(),
        h.fault_us,
        end_us,
    );
    Analysis {
        writes_ok,
        writes_failed: count(OpKind::Write, Outcome::Failed),
        writes_unknown: count(OpKind::Write, Outcome::Unknown),
        reads_ok: count(OpKind::Read, Outcome::Ok),
        reads_not_ok: count(OpKind::Read, Outcome::Failed) + count(OpKind::Read, Outcome::Unknown),
        lost_acked_writes: lost,
        lost_acked_percent: if writes_ok > 0 {
            lost as f64 * 100.0 / writes_ok as f64
        } else {
            0.0
        },
        lost_examples,
        refused_but_present,
        write_unavailable_ms: write_gap,
        read_unavailable_ms: read_gap,
        writes_recovered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &str, at_ms: i64, outcome: Outcome) -> Op {
        Op {
            kind: OpKind::Write,
            client: 0,
            value: Some(v.into()),
            invoke_us: at_ms * 1000 - 300,
            complete_us: at_ms * 1000,
            outcome,
            error: None,
        }
    }

    #[test]
    fn reports_exactly_the_known_lost_write_and_the_outage() {
        let h = History {
            ops: vec![
                w("a", 10, Outcome::Ok),
                w("b", 20, Outcome::Ok),
                w("lost", 30, Outcome::Ok),
                w("maybe", 40, Outcome::Unknown),
                w("refused", 50, Outcome::Failed),
                w("c", 1530, Outcome::Ok),
                w("d", 1540, Outcome::Ok),
            ],
            final_read: Some(vec![
                "a".into(),
                "b".into(),
                "c".into(),
                "d".into(),
                "maybe".into(),
            ]),
            fault_us: 35_000,
            end_us: None,
        };
        let a = analyze(&h);
        assert_eq!(a.writes_ok, 5);
        assert_eq!(a.lost_acked_writes, 1);
        assert_eq!(a.lost_examples, vec!["lost".to_string()]);
        assert!((a.lost_acked_percent - 20.0).abs() < 1e-9);
        assert_eq!(a.writes_unknown, 1);
        assert_eq!(a.writes_failed, 1);
        assert_eq!(a.refused_but_present, 0);
        assert_eq!(a.write_unavailable_ms, Some(1500.0));
        assert!(a.writes_recovered);
    }

    #[test]
    fn no_loss_and_no_outage_when_everything_is_there() {
        let ops: Vec<Op> = (0..100)
            .map(|i| w(&format!("v{i}"), i * 10, Outcome::Ok))
            .collect();
        let final_read = Some(ops.iter().map(|o| o.value.clone().unwrap()).collect());
        let a = analyze(&History {
            ops,
            final_read,
            fault_us: 500_000,
            end_us: None,
        });
        assert_eq!(a.lost_acked_writes, 0);
        assert_eq!(a.write_unavailable_ms, Some(10.0));
    }

    #[test]
    fn writes_that_never_recover_are_unavailable_until_the_end() {
        let mut ops = vec![w("a", 10, Outcome::Ok)];
        ops.push(w("x", 900, Outcome::Failed));
        let a = analyze(&History {
            ops,
            final_read: Some(vec!["a".into(), "x".into()]),
            fault_us: 100_000,
            end_us: None,
        });
        assert!(!a.writes_recovered);
        assert_eq!(a.write_unavailable_ms, Some(890.0));
        assert_eq!(
            a.refused_but_present, 1,
            "a refused write that is present is reported"
        );
    }

    #[test]
    fn a_client_silent_until_stopped_is_unavailable_until_then() {
        // Acknowledged until the fault, then nothing recorded at all (a client stuck on
        // a dead socket): the outage lasts until it was told to stop.
        let a = analyze(&History {
            ops: vec![w("a", 10, Outcome::Ok), w("b", 20, Outcome::Ok)],
            final_read: Some(vec!["a".into(), "b".into()]),
            fault_us: 30_000,
            end_us: Some(5_020_000),
        });
        assert!(!a.writes_recovered);
        assert_eq!(a.write_unavailable_ms, Some(5000.0));
    }
}
