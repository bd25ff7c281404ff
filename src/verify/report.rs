//! The `verify` / `load` report: one JSON document (schema [`SCHEMA`]) with the load
//! results (the same layout `loadtest --json` writes, so `gate` reads either), the drill
//! report and every verdict; rendered as terminal tables, Markdown, JUnit XML and a
//! self-contained HTML page with charts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use loadtests::LoadResults;
use serde::Serialize;

use super::{cache, Profile};
use crate::drill::report::DrillReport;
use crate::gate::{self, Verdict};
use crate::report::html::{self, Chart, Series, Shade};
use crate::report::{escape, markdown_table, Table};

/// Identifier and version of the JSON layout.
pub(crate) const SCHEMA: &str = "redis-harness/verify-report/v1";

/// How long a phase took.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Phase {
    /// `up`, `api start`, `warm-up`, `load`, `down`.
    pub name: String,
    /// Seconds.
    pub seconds: f64,
}

/// A judged run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifyReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// `verify` (with the drill) or `load`.
    pub kind: &'static str,
    /// Sizes.
    pub profile: Profile,
    /// The external target, when one was loaded instead of our own stack.
    pub host: Option<String>,
    /// Members in the API's database.
    pub members: u64,
    /// Start, Unix seconds.
    pub started_unix_s: u64,
    /// Wall time of the whole run, seconds.
    pub duration_s: f64,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// The warm-up's results (not gated).
    pub warmup: Option<LoadResults>,
    /// The measured load.
    pub load: LoadResults,
    /// The fault on the load's timeline: seconds from its start to the fault and to the
    /// healed topology.
    pub fault_window_s: Option<(f64, f64)>,
    /// The kill-master drill under load.
    pub drill: Option<DrillReport>,
    /// Every target's verdict.
    pub verdicts: Vec<Verdict>,
    /// All verdicts passed.
    pub passed: bool,
    /// On an external topology: the API's keys, removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<crate::topology::keys::Cleanup>,
    /// Where the files were written.
    pub output_dir: PathBuf,
}

use loadtests::{route_rows, ROUTE_HEADERS};

fn headline(r: &VerifyReport) -> String {
    let l = &r.load;
    format!(
        "{} requests in {:.1} s = {:.1} req/s, {} errors ({:.3}%), hit rate {}, p50 {} µs, p99 {} µs",
        l.requests,
        l.duration_s,
        l.throughput_rps,
        l.errors,
        if l.requests > 0 {
            l.errors as f64 * 100.0 / l.requests as f64
        } else {
            0.0
        },
        l.hit_rate
            .map(|h| format!("{:.1}%", h * 100.0))
            .unwrap_or_else(|| "-".into()),
        l.p50_us,
        l.p99_us
    )
}

fn fault_line(r: &VerifyReport) -> Option<String> {
    let d = r.drill.as_ref()?;
    let run = d.runs.first()?;
    let f = &run.figures;
    let o = |v: Option<f64>| {
        v.map(|v| format!("{v:.0} ms"))
            .unwrap_or_else(|| "-".into())
    };
    let clients: Vec<String> = run
        .clients
        .iter()
        .map(|c| {
            format!(
                "{}: write outage {}, {}",
                c.name,
                o(c.figures.write_unavailable_ms),
                c.figures.lost_text()
            )
        })
        .collect();
    Some(format!(
        "kill-master at {} s of the load: promotion {}, healed after {}, {:.0} ms with two masters; {}",
        r.fault_window_s.map(|w| format!("{:.1}", w.0)).unwrap_or_else(|| "?".into()),
        o(f.promotion_ms),
        o(f.heal_ms),
        f.two_masters_ms,
        clients.join("; ")
    ))
}

/// Terminal rendering: headline, routes, drill table, verdicts.
pub(crate) fn terminal(r: &VerifyReport) -> String {
    let mut o = format!(
        "\n{} profile '{}': {}\n",
        r.kind,
        r.profile.name,
        headline(r)
    );
    o.push_str(&loadtests::table(&r.load));
    if let Some(h) = cache::hit_split_line(&r.load) {
        let _ = writeln!(o, "{h}");
    }
    o.push('\n');
    if let Some(d) = &r.drill {
        o.push_str(&crate::drill::report::terminal(d));
        if let Some(f) = fault_line(r) {
            let _ = writeln!(o, "{f}");
        }
    }
    if let Some(c) = &r.cleanup {
        let _ = writeln!(o, "{}", c.summary());
    }
    for v in &r.verdicts {
        let _ = writeln!(
            o,
            "{} {}: measured {}, required {}",
            if v.passed { "ok  " } else { "FAIL" },
            v.name,
            v.measured_text(),
            v.required
        );
    }
    let failed = r.verdicts.iter().filter(|v| !v.passed).count();
    let _ = writeln!(
        o,
        "{}: {} of {} targets passed in {:.0} s",
        if r.passed { "PASSED" } else { "FAILED" },
        r.verdicts.len() - failed,
        r.verdicts.len(),
        r.duration_s
    );
    o
}

/// Markdown for a CI job summary.
pub(crate) fn markdown(r: &VerifyReport) -> String {
    let mut o = format!(
        "# redis-harness {} ({}): {}\n\n{}\n\n",
        r.kind,
        r.profile.name,
        if r.passed { "passed" } else { "**FAILED**" },
        headline(r)
    );
    if let Some(f) = fault_line(r) {
        let _ = writeln!(o, "{f}\n");
    }
    o.push_str(&gate::markdown(&r.verdicts));
    o.push_str("\n## What the cache served\n\n");
    if let Some(h) = cache::hit_split_line(&r.load) {
        let _ = writeln!(o, "{h}\n");
    }
    let _ = writeln!(o, "{}\n", r.load.hit_rate_definition);
    let _ = writeln!(o, "{}\n", cache::stale_line(&r.load.stale));
    if !r.load.stale.routes.is_empty() {
        o.push_str(&cache::stale_table(&r.load.stale).to_markdown());
        if !r.load.stale.examples.is_empty() {
            o.push_str("\nFirst stale reads:\n\n");
            o.push_str(&cache::examples_table(&r.load.stale).to_markdown());
        }
        let _ = writeln!(o, "\nMethod: {}", r.load.stale.method);
    }
    o.push_str("\n## Latency per route and cache status\n\n");
    o.push_str(&markdown_table(&ROUTE_HEADERS, &route_rows(&r.load)));
    o.push_str(&super::instances::markdown(&r.load));
    if let Some(d) = &r.drill {
        o.push('\n');
        o.push_str(&crate::drill::report::markdown(d));
    }
    o
}

/// The charts of a load timeline, with the fault window shaded.
pub(crate) fn charts(l: &LoadResults, fault: Option<(f64, f64)>) -> Vec<Chart> {
    let shades: Vec<Shade> = fault
        .map(|(a, b)| Shade {
            from: a,
            to: b,
            label: "kill-master → healed".into(),
        })
        .into_iter()
        .collect();
    let t = |f: &dyn Fn(&loadtests::Second) -> Option<f64>| -> Vec<(f64, f64)> {
        l.timeline
            .iter()
            .filter_map(|s| f(s).map(|v| (s.t as f64, v)))
            .collect()
    };
    let any = |s: &loadtests::Second| s.requests > 0;
    vec![
        Chart {
            title: "Latency per second (µs, logarithmic)".into(),
            log_y: true,
            x_label: "seconds into the load".into(),
            y_label: "µs".into(),
            series: vec![
                Series {
                    name: "p50".into(),
                    color: "#1f77b4",
                    points: t(&|s| any(s).then_some(s.p50_us as f64)),
                },
                Series {
                    name: "p99".into(),
                    color: "#d62728",
                    points: t(&|s| any(s).then_some(s.p99_us as f64)),
                },
            ],
            shades: shades.clone(),
            markers: false,
        },
        Chart {
            title: "Throughput (requests per second)".into(),
            x_label: "seconds into the load".into(),
            y_label: "req/s".into(),
            series: vec![
                Series {
                    name: "completed".into(),
                    color: "#2ca02c",
                    points: t(&|s| Some(s.requests as f64)),
                },
                Series {
                    name: "errors".into(),
                    color: "#d62728",
                    points: t(&|s| Some(s.errors as f64)),
                },
                Series {
                    name: "BYPASS".into(),
                    color: "#ff7f0e",
                    points: t(&|s| Some(s.bypasses as f64)),
                },
            ],
            shades: shades.clone(),
            markers: false,
            log_y: false,
        },
        Chart {
            title: "Hit rate per second (%)".into(),
            x_label: "seconds into the load".into(),
            y_label: "%".into(),
            series: vec![Series {
                name: "HIT / (HIT+MISS+BYPASS)".into(),
                color: "#9467bd",
                points: t(&|s| {
                    let n = s.hits + s.misses + s.bypasses;
                    (n > 0).then(|| s.hits as f64 * 100.0 / n as f64)
                }),
            }],
            shades,
            markers: false,
            log_y: false,
        },
    ]
}

/// The self-contained HTML page.
pub(crate) fn html_page(r: &VerifyReport) -> String {
    let mut b = format!(
        "<p class=\"verdict {}\">{}</p><p>{}</p>",
        if r.passed { "ok" } else { "bad" },
        if r.passed { "PASSED" } else { "FAILED" },
        escape(&headline(r))
    );
    if let Some(f) = fault_line(r) {
        let _ = write!(b, "<p>{}</p>", escape(&f));
    }
    for c in charts(&r.load, r.fault_window_s) {
        b.push_str(&c.svg());
    }
    b.push_str("<h2>Targets</h2>");
    b.push_str(&gate::verdict_table(&r.verdicts, "FAIL").to_html());
    b.push_str("<h2>What the cache served</h2>");
    if let Some(h) = cache::hit_split_line(&r.load) {
        let _ = write!(b, "<p>{}</p>", escape(&h));
    }
    let _ = write!(
        b,
        "<p>{}</p><p>{}</p>",
        escape(&r.load.hit_rate_definition),
        escape(&cache::stale_line(&r.load.stale))
    );
    if !r.load.stale.routes.is_empty() {
        b.push_str(&cache::stale_table(&r.load.stale).to_html());
        if !r.load.stale.examples.is_empty() {
            b.push_str("<h3>First stale reads</h3>");
            b.push_str(&cache::examples_table(&r.load.stale).to_html());
        }
        let _ = write!(b, "<p class=\"note\">{}</p>", escape(&r.load.stale.method));
    }
    b.push_str("<h2>Latency per route and cache status (µs)</h2>");
    b.push_str(&Table::new(&ROUTE_HEADERS, route_rows(&r.load)).to_html());
    b.push_str(&super::instances::html(&r.load));
    if let Some(d) = &r.drill {
        b.push_str("<h2>Drill</h2>");
        if let Some(run) = d.runs.first() {
            b.push_str(&crate::drill::report::run_figures_table(run).to_html());
            b.push_str("<h3>Clients</h3>");
            b.push_str(&crate::drill::report::run_clients_table(run).to_html());
            b.push_str("<h3>Timeline (ms from the fault)</h3>");
            b.push_str(&crate::drill::report::timeline_table(run, None).to_html());
        }
    }
    b.push_str("<h2>Phases</h2>");
    let rows: Vec<Vec<String>> = r
        .phases
        .iter()
        .map(|p| vec![p.name.clone(), format!("{:.1}", p.seconds)])
        .collect();
    b.push_str(&Table::new(&["phase", "seconds"], rows).to_html());
    html::page(
        &format!("redis-harness {} — profile {}", r.kind, r.profile.name),
        &b,
    )
}

/// Writes `report.json`, `load.json` (gate-compatible), `report.md`, `junit.xml` and
/// `report.html` into `dir`; returns the paths.
pub(crate) fn write_all(r: &mut VerifyReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    r.output_dir = dir.to_path_buf();
    let files = vec![
        (
            "report.json",
            serde_json::to_string_pretty(&*r).expect("report serialises"),
        ),
        (
            "load.json",
            serde_json::to_string_pretty(&r.load).expect("results serialise"),
        ),
        ("report.md", markdown(r)),
        ("junit.xml", gate::junit(&r.verdicts)),
        ("report.html", html_page(r)),
    ];
    crate::report::write_files(dir, files)
}
