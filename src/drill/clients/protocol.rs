//! The history an external client writes: one JSON object per line per operation, times
//! on CLOCK_MONOTONIC in nanoseconds (the README's "Your own client" documents it). The
//! checker turns it into operations on the drill clock and rejects a malformed history
//! with the line number and the problem: a broken line never counts as a success.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::drill::clock::Clock;
use crate::drill::history::{Op, OpKind, Outcome};

/// One line as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default = "write")]
    op: LineOp,
    key: String,
    #[serde(default)]
    value: Option<String>,
    invoke_ns: i64,
    complete_ns: i64,
    outcome: LineOutcome,
    #[serde(default)]
    error: Option<String>,
}

fn write() -> LineOp {
    LineOp::Write
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LineOp {
    Write,
    Read,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LineOutcome {
    Ok,
    Fail,
    Unknown,
}

/// What the history must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct Rules<'a> {
    /// Every key starts with it.
    pub prefix: &'a str,
    /// The drill clock (to place CLOCK_MONOTONIC times on it).
    pub clock: Clock,
    /// CLOCK_MONOTONIC when the client was started, and when it was stopped: every time
    /// lies within (with a second's slack for clocks read around the call).
    pub window_ns: (i64, i64),
    /// The client was killed (SIGKILL): a last line without a newline was cut off, not
    /// written wrong.
    pub killed: bool,
}

/// A checked history.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// Operations on the drill clock, in invoke order.
    pub ops: Vec<Op>,
    /// Every key a write names.
    pub keys: BTreeSet<String>,
    /// The last line was cut off by the kill and not counted.
    pub cut_off: bool,
}

/// A line that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub(crate) struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

const SLACK_NS: i64 = 1_000_000_000;

/// Checks `text` under `rules`.
pub(crate) fn check(text: &str, rules: &Rules<'_>) -> Result<Checked, LineError> {
    let mut out = Checked::default();
    let mut values: HashMap<String, usize> = HashMap::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let (lo, hi) = (rules.window_ns.0 - SLACK_NS, rules.window_ns.1 + SLACK_NS);
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let err = |problem: String| LineError { line: n, problem };
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            Err(_) if n == lines.len() && !complete && rules.killed => {
                out.cut_off = true;
                continue;
            }
            Err(e) => return Err(err(format!("not a history record: {e}"))),
        };
        if !line.key.starts_with(rules.prefix) || line.key.len() == rules.prefix.len() {
            return Err(err(format!(
                "key {:?} is outside the client's key space (it must start with {:?})",
                line.key, rules.prefix
            )));
        }
        for (field, t) in [
            ("invoke_ns", line.invoke_ns),
            ("complete_ns", line.complete_ns),
        ] {
            if t < lo || t > hi {
                return Err(err(format!(
                    "{field} {t} is not on CLOCK_MONOTONIC while the client ran ({} to {} ns); \
                     time operations with time.monotonic_ns() or clock_gettime(CLOCK_MONOTONIC)",
                    rules.window_ns.0, rules.window_ns.1
                )));
            }
        }
        if line.complete_ns < line.invoke_ns {
            return Err(err(format!(
                "complete_ns {} is before invoke_ns {}",
                line.complete_ns, line.invoke_ns
            )));
        }
        let kind = match line.op {
            LineOp::Write => OpKind::Write,
            LineOp::Read => OpKind::Read,
        };
        let value = match (kind, line.value) {
            (OpKind::Write, None) => {
                return Err(err("a write needs the \"value\" it wrote".into()));
            }
            (OpKind::Write, Some(v)) => {
                if let Some(first) = values.insert(v.clone(), n) {
                    return Err(err(format!(
                        "value {v:?} was already written on line {first}; every write needs a unique value"
                    )));
                }
                out.keys.insert(line.key.clone());
                Some(v)
            }
            (OpKind::Read, _) => None,
        };
        out.ops.push(Op {
            kind,
            client: 0,
            value,
            invoke_us: rules.clock.us_of_monotonic_ns(line.invoke_ns),
            complete_us: rules.clock.us_of_monotonic_ns(line.complete_ns),
            outcome: match line.outcome {
                LineOutcome::Ok => Outcome::Ok,
                LineOutcome::Fail => Outcome::Failed,
                LineOutcome::Unknown => Outcome::Unknown,
            },
            error: line.error,
        });
    }
    out.ops.sort_by_key(|o| o.invoke_us);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(killed: bool) -> (Rules<'static>, i64) {
        let clock = Clock::start();
        let now = Clock::monotonic_ns();
        (
            Rules {
                prefix: "harness:drill:app:",
                clock,
                window_ns: (now, now + 10_000_000_000),
                killed,
            },
            now,
        )
    }

    fn line(t: i64, key: &str, value: &str, outcome: &str) -> String {
        format!(
            r#"{{"key":"{key}","value":"{value}","invoke_ns":{t},"complete_ns":{},"outcome":"{outcome}"}}"#,
            t + 1_000_000
        )
    }

    #[test]
    fn a_good_history_becomes_operations_on_the_drill_clock() {
        let (r, t) = rules(false);
        let text = format!(
            "{}\n{}\n\n{{\"op\":\"read\",\"key\":\"harness:drill:app:set\",\"invoke_ns\":{},\"complete_ns\":{},\"outcome\":\"unknown\",\"error\":\"timeout\"}}\n",
            line(t + 5_000_000, "harness:drill:app:a", "a", "ok"),
            line(t + 6_000_000, "harness:drill:app:set", "b", "fail"),
            t + 7_000_000,
            t + 8_000_000
        );
        let c = check(&text, &r).unwrap();
        assert_eq!(c.ops.len(), 3);
        assert_eq!(c.ops[0].outcome, Outcome::Ok);
        assert_eq!(c.ops[1].outcome, Outcome::Failed);
        assert_eq!(c.ops[2].kind, OpKind::Read);
        assert_eq!(c.ops[2].error.as_deref(), Some("timeout"));
        assert_eq!(
            c.keys.iter().collect::<Vec<_>>(),
            ["harness:drill:app:a", "harness:drill:app:set"]
        );
        // 5 ms after the window start is about 5000 µs on the drill clock started with it.
        assert!(
            (c.ops[0].invoke_us - 5000).abs() < 200_000,
            "{}",
            c.ops[0].invoke_us
        );
        assert_eq!(c.ops[0].complete_us - c.ops[0].invoke_us, 1000);
    }

    #[test]
    fn every_malformed_line_is_rejected_with_its_number() {
        let (r, t) = rules(false);
        let good = line(t, "harness:drill:app:a", "a", "ok");
        let cases = [
            ("{not json".to_string(), "not a history record"),
            (good.replace("\"ok\"", "\"done\""), "unknown variant `done`"),
            (good.replace("\"outcome\"", "\"outcom\""), "unknown field `outcom`"),
            (good.replace("harness:drill:app:a", "other:a"), "outside the client's key space"),
            (good.replace("harness:drill:app:a", "harness:drill:app:"), "outside the client's key space"),
            (line(1_700_000_000_000_000_000, "harness:drill:app:b", "b", "ok"), "not on CLOCK_MONOTONIC"),
            (
                format!(r#"{{"key":"harness:drill:app:b","value":"b","invoke_ns":{},"complete_ns":{t},"outcome":"ok"}}"#, t + 5),
                "before invoke_ns",
            ),
            (
                format!(r#"{{"key":"harness:drill:app:b","invoke_ns":{t},"complete_ns":{t},"outcome":"ok"}}"#),
                "needs the \"value\"",
            ),
            (line(t, "harness:drill:app:c", "a", "ok"), "already written on line 1"),
            (r#"{"key":"harness:drill:app:b","value":"b","invoke_ns":"soon","complete_ns":1,"outcome":"ok"}"#.to_string(), "invalid type"),
        ];
        for (bad, want) in cases {
            let text = format!("{good}\n{bad}\n");
            let e = check(&text, &r).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
            assert!(e.to_string().contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn a_last_line_cut_off_counts_only_when_the_client_was_killed() {
        let (r, t) = rules(false);
        let text = format!(
            "{}\n{{\"key\":\"harness:dri",
            line(t, "harness:drill:app:a", "a", "ok")
        );
        assert_eq!(check(&text, &r).unwrap_err().line, 2);
        let (mut killed, _) = rules(true);
        killed.window_ns = r.window_ns;
        let c = check(&text, &killed).unwrap();
        assert!(c.cut_off);
        assert_eq!(c.ops.len(), 1);
        // A complete last line without a newline still counts.
        let text = line(t, "harness:drill:app:a", "a", "ok");
        assert_eq!(check(&text, &r).unwrap().ops.len(), 1);
    }
}
