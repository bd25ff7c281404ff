//! Targets and gates over load-test results (`loadtest --json`): hit rate, error rate,
//! throughput, latency percentiles per route and X-Cache value, and regressions against a
//! baseline run (a ratio with an absolute floor, so sub-millisecond noise does not fail a
//! build). Every target yields a verdict; a target whose metric has no samples fails.
//!
//! - [`Targets`]: the YAML targets file.
//! - [`evaluate`]: results (+ baseline) → verdicts.
//! - [`junit`] / [`markdown`] / [`verdict_table`]: CI-native renderings, through the
//!   shared `crate::report` pieces.

use std::fmt::Write as _;
use std::path::Path;

use loadtests::LoadResults;

use crate::drill::gates::DrillGates;
use crate::drill::report::DrillReport;
use crate::report::{escape, Table};
use serde::{Deserialize, Serialize};

/// Errors loading a targets file.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The file could not be read.
    #[error("cannot read targets file {0}")]
    Read(String, #[source] std::io::Error),
    /// The YAML is malformed or has unknown keys.
    #[error("invalid targets file {file}: {message}")]
    Parse {
        /// File.
        file: String,
        /// Parser message (names the field and position).
        message: String,
    },
    /// Values break a rule.
    #[error("invalid targets file {file}:\n  - {}", .problems.join("\n  - "))]
    Invalid {
        /// File.
        file: String,
        /// One line per broken rule.
        problems: Vec<String>,
    },
}

/// A latency target for one route (and optionally one X-Cache value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyTarget {
    /// Route template as recorded, e.g. `/api/v1/members/{id}`.
    pub route: String,
    /// A raw cache status value (`HIT`, `MISS`, `BYPASS`, nginx's `STALE` ...), or absent
    /// for every value together (worst of them).
    #[serde(default)]
    pub cache: Option<String>,
    /// Highest allowed p50 in µs.
    #[serde(default)]
    pub p50_us: Option<u64>,
    /// Highest allowed p99 in µs.
    #[serde(default)]
    pub p99_us: Option<u64>,
}

/// Regression limits against a baseline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineRules {
    /// A latency fails when it exceeds the baseline by this factor ...
    pub max_latency_ratio: f64,
    /// ... and by at least this many µs.
    pub latency_floor_us: u64,
    /// Throughput fails when it falls below the baseline divided by this factor.
    pub max_throughput_drop_ratio: f64,
}

impl Default for BaselineRules {
    fn default() -> Self {
        Self {
            max_latency_ratio: 1.25,
            latency_floor_us: 500,
            max_throughput_drop_ratio: 1.25,
        }
    }
}

/// The targets file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// Lowest allowed hit rate (0-1) over the whole load.
    pub hit_rate_min: Option<f64>,
    /// Lowest allowed hit rate (0-1) in steady state, outside the fault window(s).
    pub hit_rate_steady_min: Option<f64>,
    /// Most stale reads allowed (reads that served an older value than an acknowledged
    /// write; see the load's stale-read check). Our own API is held to 0 when unset.
    pub max_stale_reads: Option<u64>,
    /// Highest allowed error rate (0-1).
    pub error_rate_max: Option<f64>,
    /// Lowest allowed throughput, requests per second.
    pub throughput_min_rps: Option<f64>,
    /// Highest allowed p99 over every request, µs.
    pub p99_max_us: Option<u64>,
    /// Latency targets.
    pub latency: Vec<LatencyTarget>,
    /// Baseline regression limits (used with `--baseline`).
    pub baseline: BaselineRules,
    /// Drill thresholds (the same keys as `drill.gates` in harness.yaml), checked against
    /// the failover drill of `verify`; a threshold set here overrides the config's.
    pub drill: DrillGates,
}

impl Targets {
    /// Loads and validates a targets file.
    pub fn load(path: &Path) -> Result<Self, GateError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| GateError::Read(file.clone(), e))?;
        Self::parse(&text, &file)
    }

    /// Parses and validates targets; `file` names them in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, GateError> {
        let file = file.to_string();
        let t: Targets = serde_yaml_ng::from_str(text).map_err(|e| GateError::Parse {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let mut p = Vec::new();
        if t.hit_rate_min.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            p.push(format!(
                "hit_rate_min: between 0 and 1 (got {})",
                t.hit_rate_min.unwrap_or_default()
            ));
        }
        if t.hit_rate_steady_min
            .is_some_and(|v| !(0.0..=1.0).contains(&v))
        {
            p.push(format!(
                "hit_rate_steady_min: between 0 and 1 (got {})",
                t.hit_rate_steady_min.unwrap_or_default()
            ));
        }
        if t.error_rate_max.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            p.push(format!(
                "error_rate_max: between 0 and 1 (got {})",
                t.error_rate_max.unwrap_or_default()
            ));
        }
        if t.throughput_min_rps.is_some_and(|v| v < 0.0) {
            p.push("throughput_min_rps: must not be negative".into());
        }
        for (i, l) in t.latency.iter().enumerate() {
            if l.p50_us.is_none() && l.p99_us.is_none() {
                p.push(format!(
                    "latency[{i}] ({}): names no percentile (p50_us, p99_us)",
                    l.route
                ));
            }
            if l.cache.as_ref().is_some_and(|c| c.trim().is_empty()) {
                p.push(format!(
                    "latency[{i}].cache: a cache status value as the responses carry it (HIT, MISS, STALE ...), or absent for all"
                ));
            }
        }
        let b = &t.baseline;
        if b.max_latency_ratio < 1.0 || b.max_throughput_drop_ratio < 1.0 {
            p.push("baseline: ratios must be at least 1".into());
        }
        if p.is_empty() {
            Ok(t)
        } else {
            Err(GateError::Invalid { file, problems: p })
        }
    }
}

/// One target's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// What was checked, e.g. `p99 /api/v1/statistics/system HIT`.
    pub name: String,
    /// Measured value (`None`: no samples).
    pub measured: Option<f64>,
    /// Requirement, as text (`<= 5000 µs`).
    pub required: String,
    /// Whether it held.
    pub passed: bool,
    /// For pass/fail checks without a number: what was observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Verdict {
    /// The measured value as text: the number, the observation, or `no samples`.
    pub fn measured_text(&self) -> String {
        match (self.measured, &self.detail) {
            (Some(v), _) => number(v),
            (None, Some(d)) => d.clone(),
            (None, None) => "no samples".into(),
        }
    }
}

/// A number for people: integers as such, others with at most four decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn verdict(
    name: String,
    measured: Option<f64>,
    required: String,
    ok: impl Fn(f64) -> bool,
) -> Verdict {
    Verdict {
        passed: measured.is_some_and(&ok),
        name,
        measured,
        required,
        detail: None,
    }
}

/// The worst percentile over the matching (route, cache) entries.
fn percentile(r: &LoadResults, route: &str, cache: Option<&str>, p99: bool) -> Option<f64> {
    r.routes
        .iter()
        .filter(|x| x.route == route && cache.is_none_or(|c| x.cache == c) && x.count > 0)
        .map(|x| if p99 { x.p99_us } else { x.p50_us } as f64)
        .reduce(f64::max)
}

/// Checks `r` against the targets and, when given, against a baseline run.
pub fn evaluate(r: &LoadResults, t: &Targets, baseline: Option<&LoadResults>) -> Vec<Verdict> {
    let mut out = Vec::new();
    if let Some(min) = t.hit_rate_min {
        out.push(verdict(
            "hit rate".into(),
            r.hit_rate,
            format!(">= {min}"),
            |v| v >= min,
        ));
    }
    if let Some(min) = t.hit_rate_steady_min {
        let steady = r
            .hit_split
            .clone()
            .unwrap_or_else(|| r.split_hits(&[]))
            .steady;
        out.push(verdict(
            "hit rate (steady state)".into(),
            steady,
            format!(">= {min}"),
            |v| v >= min,
        ));
    }
    if let Some(max) = t.max_stale_reads {
        let checked = r.stale.checked();
        let mut v = verdict(
            "stale reads".into(),
            (checked > 0).then_some(r.stale.violations() as f64),
            format!("<= {max}"),
            |v| v <= max as f64,
        );
        if checked == 0 {
            v.detail = Some("no read could be checked (no member written and read)".into());
        }
        out.push(v);
    }
    if let Some(max) = t.error_rate_max {
        let rate = (r.requests > 0).then(|| r.errors as f64 / r.requests as f64);
        out.push(verdict(
            "error rate".into(),
            rate,
            format!("<= {max}"),
            |v| v <= max,
        ));
    }
    if let Some(min) = t.throughput_min_rps {
        let rps = (r.requests > 0).then_some(r.throughput_rps);
        out.push(verdict(
            "throughput rps".into(),
            rps,
            format!(">= {min}"),
            |v| v >= min,
        ));
    }
    if let Some(max) = t.p99_max_us {
        out.push(verdict(
            "p99 all requests".into(),
            (r.requests > 0).then_some(r.p99_us as f64),
            format!("<= {max} µs"),
            |v| v <= max as f64,
        ));
    }
    for l in &t.latency {
        let label = format!("{} {}", l.route, l.cache.as_deref().unwrap_or("any"));
        for (p99, limit) in [(false, l.p50_us), (true, l.p99_us)] {
            if let Some(limit) = limit {
                let m = percentile(r, &l.route, l.cache.as_deref(), p99);
                let name = format!("{} {label}", if p99 { "p99" } else { "p50" });
                out.push(verdict(name, m, format!("<= {limit} µs"), |v| {
                    v <= limit as f64
                }));
            }
        }
    }
    if let Some(b) = baseline {
        let rules = &t.baseline;
        for old in &b.routes {
            for (p99, old_v) in [(false, old.p50_us), (true, old.p99_us)] {
                let new_v = percentile(r, &old.route, Some(&old.cache), p99);
                let allowed = (old_v as f64 * rules.max_latency_ratio)
                    .max(old_v as f64 + rules.latency_floor_us as f64);
                let name = format!(
                    "regression {} {} {}",
                    if p99 { "p99" } else { "p50" },
                    old.route,
                    old.cache
                );
                out.push(verdict(
                    name,
                    new_v,
                    format!(
                        "<= {allowed:.0} µs (baseline {old_v} × {} or + {} µs)",
                        rules.max_latency_ratio, rules.latency_floor_us
                    ),
                    |v| v <= allowed,
                ));
            }
        }
        let min = b.throughput_rps / rules.max_throughput_drop_ratio;
        let rps = (r.requests > 0).then_some(r.throughput_rps);
        out.push(verdict(
            "regression throughput rps".into(),
            rps,
            format!(
                ">= {min:.1} (baseline {} / {})",
                b.throughput_rps, rules.max_throughput_drop_ratio
            ),
            |v| v >= min,
        ));
    }
    out
}

/// The drill gates of `targets` merged over `config`'s: a threshold set in the targets
/// file wins.
pub fn merge_drill_gates(config: &DrillGates, targets: &DrillGates) -> DrillGates {
    config.overridden_by(targets)
}

/// A drill report as verdicts: every check of every run (a failed check fails), then
/// every gate (worst run against the threshold; no samples fails).
pub fn drill_verdicts(r: &DrillReport) -> Vec<Verdict> {
    let mut out = Vec::new();
    for run in &r.runs {
        for c in &run.checks {
            out.push(Verdict {
                name: format!("drill {} run {}: {}", r.kind, run.run, c.name),
                measured: None,
                required: "holds".into(),
                passed: c.passed,
                detail: Some(c.detail.clone()),
            });
        }
    }
    for g in &r.gates {
        out.push(Verdict {
            name: format!("drill {} {}", r.kind, g.label()),
            measured: g.measured,
            required: format!("<= {}", g.threshold),
            passed: g.passed,
            detail: None,
        });
    }
    out
}

/// JUnit XML: one test case per target, failed targets with a failure element.
pub fn junit(verdicts: &[Verdict]) -> String {
    let failures = verdicts.iter().filter(|v| !v.passed).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"redis-harness\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"gates\" tests=\"{}\" failures=\"{failures}\">\n",
        verdicts.len(),
        verdicts.len()
    );
    for v in verdicts {
        let _ = write!(
            out,
            "    <testcase classname=\"gates\" name=\"{}\"",
            escape(&v.name)
        );
        if v.passed {
            out.push_str("/>\n");
        } else {
            let _ = write!(
                out,
                ">\n      <failure message=\"measured {} required {}\"/>\n    </testcase>\n",
                escape(&v.measured_text()),
                escape(&v.required)
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The verdicts as a table (target, measured, required, result); `fail` is the result
/// cell of a failed target (`FAIL`, or `**FAIL**` for Markdown).
pub fn verdict_table(verdicts: &[Verdict], fail: &str) -> Table {
    let rows = verdicts
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.measured_text(),
                v.required.clone(),
                if v.passed { "pass" } else { fail }.into(),
            ]
        })
        .collect();
    Table::new(&["target", "measured", "required", "result"], rows)
}

/// Markdown table for a CI job summary.
pub fn markdown(verdicts: &[Verdict]) -> String {
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    format!(
        "## Gates: {} of {} passed\n\n{}",
        verdicts.len() - failed,
        verdicts.len(),
        verdict_table(verdicts, "**FAIL**").to_markdown()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HarnessConfig;
    use crate::drill::{
        Check, ClientFigure, ClientFigures, ClientRun, DrillKind, DrillRun, Figures,
    };

    fn run(promotion_ms: f64, healed: bool) -> DrillRun {
        DrillRun {
            kind: DrillKind::KillMaster,
            run: 1,
            fault_after_ms: 1000.0,
            old_master: "127.0.0.1:1".into(),
            new_master: None,
            figures: Figures {
                promotion_ms: Some(promotion_ms),
                two_masters_ms: 3.0,
                ..Default::default()
            },
            clients: ["sentinel-events", "fixed-address"]
                .into_iter()
                .map(|name| ClientRun {
                    name: name.into(),
                    client: "model".into(),
                    figures: ClientFigures {
                        acked_writes: 100,
                        lost_acked_writes: Some(if name == "fixed-address" { 40 } else { 1 }),
                        lost_acked_percent: Some(if name == "fixed-address" { 40.0 } else { 1.0 }),
                        ..Default::default()
                    },
                    analysis: Default::default(),
                    notes: Vec::new(),
                    history: None,
                })
                .collect(),
            checks: vec![Check {
                name: "topology healed".into(),
                passed: healed,
                detail: if healed { "healthy" } else { "two masters" }.into(),
            }],
            timeline: Vec::new(),
            api: None,
            run_id: "r1".into(),
            key_prefix: "harness:drill:r1:".into(),
            preflight: Vec::new(),
            aborted: None,
            cleanup: None,
            hooks: Vec::new(),
            target: None,
            found: None,
            fault_instant: None,
        }
    }

    #[test]
    fn drill_thresholds_from_the_targets_file_override_the_config() {
        let t = Targets::parse(
            "drill:\n  max_promotion_ms: 5000\n  max_two_masters_ms: 10\n",
            "t.yaml",
        )
        .unwrap();
        let config = DrillGates {
            max_promotion_ms: Some(60_000),
            max_unknown_ops: Some(3),
            ..Default::default()
        };
        let g = merge_drill_gates(&config, &t.drill);
        assert_eq!(g.max_promotion_ms, Some(5000));
        assert_eq!(g.max_two_masters_ms, Some(10));
        assert_eq!(g.max_unknown_ops, Some(3));
        let t = Targets::parse("drill:\n  max_lost_acked_percent: 0.5\n", "t.yaml").unwrap();
        let config = DrillGates {
            max_lost_acked_percent: Some(1.0),
            max_api_errors: Some(0),
            ..Default::default()
        };
        let g = merge_drill_gates(&config, &t.drill);
        assert_eq!(
            g.shared().set().collect::<Vec<_>>(),
            [(ClientFigure::LostAckedPercent, 0.5)]
        );
        assert_eq!(g.max_api_errors, Some(0));
        let e = Targets::parse("drill:\n  max_promotion: 5000\n", "t.yaml").unwrap_err();
        assert!(e.to_string().contains("max_promotion"), "{e}");
    }

    #[test]
    fn drill_checks_and_gates_become_verdicts() {
        let gates = DrillGates {
            max_promotion_ms: Some(5000),
            max_two_masters_ms: Some(10),
            ..Default::default()
        };
        let cfg = HarnessConfig::default();
        let rep = crate::drill::report::build_with_gates(
            &cfg,
            DrillKind::KillMaster,
            vec![run(7000.0, false)],
            &gates,
        );
        let v = drill_verdicts(&rep);
        let find = |n: &str| v.iter().find(|x| x.name == n).unwrap();
        let check = find("drill kill-master run 1: topology healed");
        assert!(!check.passed);
        assert_eq!(check.measured_text(), "two masters");
        let promo = find("drill kill-master max_promotion_ms");
        assert!(!promo.passed);
        assert_eq!(promo.measured, Some(7000.0));
        assert!(find("drill kill-master max_two_masters_ms").passed);

        let rep = crate::drill::report::build_with_gates(
            &cfg,
            DrillKind::KillMaster,
            vec![run(4000.0, true)],
            &gates,
        );
        assert!(drill_verdicts(&rep).iter().all(|v| v.passed));

        // Client gates bound every client; a client named under `clients` has its own.
        let t = Targets::parse(
            "drill:\n  max_lost_acked_percent: 5\n  clients:\n    fixed-address: {max_lost_acked_percent: 50}\n    myapp: {max_lost_acked_writes: 0}\n",
            "t.yaml",
        )
        .unwrap();
        let rep = crate::drill::report::build_with_gates(
            &cfg,
            DrillKind::KillMaster,
            vec![run(4000.0, true)],
            &t.drill,
        );
        let v = drill_verdicts(&rep);
        let find = |n: &str| v.iter().find(|x| x.name == n).unwrap();
        let se = find("drill kill-master sentinel-events max_lost_acked_percent");
        assert!(se.passed && se.measured == Some(1.0), "{se:?}");
        let fixed = find("drill kill-master fixed-address max_lost_acked_percent");
        assert!(fixed.passed && fixed.measured == Some(40.0), "{fixed:?}");
        let missing = find("drill kill-master myapp max_lost_acked_writes");
        assert!(!missing.passed, "a gated client that did not run fails");
        assert_eq!(missing.measured, None);
    }

    #[test]
    fn markdown_and_junit_render_the_verdicts() {
        let v = vec![
            verdict("hit rate".into(), Some(0.5), ">= 0.9".into(), |x| x >= 0.9),
            verdict("p99 <x> 'y'".into(), Some(10.0), "<= 20 µs".into(), |x| {
                x <= 20.0
            }),
        ];
        assert_eq!(
            markdown(&v),
            "## Gates: 1 of 2 passed\n\n| target | measured | required | result |\n|---|---|---|---|\n\
             | hit rate | 0.5 | >= 0.9 | **FAIL** |\n| p99 <x> 'y' | 10 | <= 20 µs | pass |\n"
        );
        let j = junit(&v);
        assert!(j.contains("tests=\"2\" failures=\"1\""), "{j}");
        assert!(
            j.contains("<failure message=\"measured 0.5 required &gt;= 0.9\"/>"),
            "{j}"
        );
        assert!(j.contains("name=\"p99 &lt;x&gt; &apos;y&apos;\"/>"), "{j}");
    }

    #[test]
    fn numbers_print_short() {
        assert_eq!(number(0.6206461383139829), "0.6206");
        assert_eq!(number(7000.0), "7000");
        assert_eq!(number(0.5), "0.5");
    }
}
