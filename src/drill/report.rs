//! Drill reports: per-run figures and checks, min / median / max over repeats, every
//! client's figures side by side, gate results, rendered as a terminal table, Markdown,
//! or JSON (schema [`SCHEMA`], documented in the README).

use serde::Serialize;

use super::gates::{gate_name, DrillGates};
use super::{ClientFigure, DrillKind, DrillRun, Figure};
use crate::config::HarnessConfig;
use crate::report::{Rows, Table};

/// Identifier and version of the JSON layout.
pub(crate) const SCHEMA: &str = "redis-harness/drill-report/v2";

/// One figure over all runs.
#[derive(Debug, Clone, Serialize)]
pub struct FigureSummary {
    /// Figure name (as in [`Figures`](super::Figures)).
    pub name: &'static str,
    /// Runs that produced a value.
    pub samples: usize,
    /// Smallest value.
    pub min: Option<f64>,
    /// Median value.
    pub median: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

/// One client's figures over all runs.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    /// The client's name.
    pub name: String,
    /// How it follows the master, or its command.
    pub client: String,
    /// Each figure over the runs.
    pub summary: Vec<FigureSummary>,
}

/// One gate's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    /// Gate name, as in `drill.gates`.
    pub gate: String,
    /// The client whose figure it bounds (`None`: a topology figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The threshold.
    pub threshold: f64,
    /// Worst measured value over the runs (`None`: no run produced the figure).
    pub measured: Option<f64>,
    /// Whether every run stayed within it (a gate without samples fails).
    pub passed: bool,
}

/// The topology settings a report was measured with.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Replicas.
    pub replicas: u32,
    /// Sentinels.
    pub sentinels: u32,
    /// Quorum.
    pub quorum: u32,
    /// `down-after-milliseconds`.
    pub down_after_ms: i64,
    /// `failover-timeout`.
    pub failover_timeout_ms: i64,
    /// `min-replicas-to-write`.
    pub min_replicas_to_write: i64,
    /// WAIT replicas per write.
    pub wait_replicas: u32,
    /// Writers × rate.
    pub writers: u32,
    /// Writes per second per writer.
    pub write_rate: u32,
    /// AOF on/off.
    pub aof: bool,
    /// `appendfsync`.
    pub appendfsync: String,
}

/// A whole drill report.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Drill kind.
    pub kind: DrillKind,
    /// Settings.
    pub setup: Setup,
    /// Every run.
    pub runs: Vec<DrillRun>,
    /// The topology's figures over the runs.
    pub summary: Vec<FigureSummary>,
    /// Every client's figures over the runs, in `drill.clients` order.
    pub clients: Vec<ClientSummary>,
    /// Gate verdicts.
    pub gates: Vec<GateResult>,
    /// Every check of every run and every gate passed.
    pub passed: bool,
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Builds the report of `runs` under `cfg`'s gates.
pub(crate) fn build(cfg: &HarnessConfig, kind: DrillKind, runs: Vec<DrillRun>) -> DrillReport {
    build_with_gates(cfg, kind, runs, &cfg.drill.gates)
}

fn summarise(name: &'static str, values: impl Iterator<Item = Option<f64>>) -> FigureSummary {
    let mut v: Vec<f64> = values.flatten().collect();
    v.sort_by(f64::total_cmp);
    FigureSummary {
        name,
        samples: v.len(),
        min: v.first().copied(),
        median: median(&v),
        max: v.last().copied(),
    }
}

/// The gate `gate` on values of every run (`None`: the run did not produce the figure,
/// or lacks the client); a gate without a value in every run fails.
fn gate_result(
    gate: String,
    client: Option<String>,
    threshold: f64,
    values: Vec<Option<f64>>,
) -> GateResult {
    let all = !values.is_empty() && values.iter().all(Option::is_some);
    let measured = values.iter().flatten().copied().reduce(f64::max);
    GateResult {
        gate,
        client,
        threshold,
        measured,
        passed: all && measured.is_some_and(|m| m <= threshold),
    }
}

/// The client names of `runs`, in first-seen order.
fn client_names(runs: &[DrillRun]) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = Vec::new();
    for c in runs.iter().flat_map(|r| &r.clients) {
        if !names.iter().any(|(n, _)| *n == c.name) {
            names.push((c.name.clone(), c.client.clone()));
        }
    }
    names
}

/// Builds the report of `runs` under `gates`.
pub(crate) fn build_with_gates(
    cfg: &HarnessConfig,
    kind: DrillKind,
    runs: Vec<DrillRun>,
    gates: &DrillGates,
) -> DrillReport {
    // An external topology's settings are the ones found on it, not the file's.
    let cfg = runs.first().and_then(|r| r.found.as_deref()).unwrap_or(cfg);
    let summary: Vec<FigureSummary> = Figure::ALL
        .iter()
        .map(|f| summarise(f.name(), runs.iter().map(|r| f.read(&r.figures))))
        .collect();
    let names = client_names(&runs);
    let clients: Vec<ClientSummary> = names
        .iter()
        .map(|(name, client)| ClientSummary {
            name: name.clone(),
            client: client.clone(),
            summary: ClientFigure::ALL
                .iter()
                .map(|f| {
                    summarise(
                        f.name(),
                        runs.iter()
                            .map(|r| r.client(name).and_then(|c| f.read(&c.figures))),
                    )
                })
                .collect(),
        })
        .collect();
    let mut results: Vec<GateResult> = gates
        .set()
        .map(|(figure, threshold)| {
            let values = runs.iter().map(|r| figure.read(&r.figures)).collect();
            gate_result(gate_name(figure.name()), None, threshold, values)
        })
        .collect();
    // Every client that ran, then clients the gates name that did not (they fail).
    let mut gated: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
    gated.extend(
        gates
            .clients
            .keys()
            .filter(|k| !names.iter().any(|(n, _)| n == *k))
            .cloned(),
    );
    for name in gated {
        for (figure, threshold) in gates.for_client(&name).set() {
            let values = runs
                .iter()
                .map(|r| r.client(&name).and_then(|c| figure.read(&c.figures)))
                .collect();
            results.push(gate_result(
                gate_name(figure.name()),
                Some(name.clone()),
                threshold,
                values,
            ));
        }
    }
    let gates = results;
    let passed = runs.iter().all(DrillRun::passed) && gates.iter().all(|g| g.passed);
    DrillReport {
        schema: SCHEMA,
        kind,
        setup: Setup {
            replicas: cfg.topology.replicas,
            sentinels: cfg.topology.sentinels,
            quorum: cfg.topology.quorum,
            down_after_ms: cfg.sentinel.down_after_ms,
            failover_timeout_ms: cfg.sentinel.failover_timeout_ms,
            min_replicas_to_write: cfg.replication.min_replicas_to_write,
            wait_replicas: cfg.drill.wait_replicas,
            writers: cfg.drill.writers,
            write_rate: cfg.drill.write_rate,
            aof: cfg.persistence.aof,
            appendfsync: cfg.persistence.appendfsync.clone(),
        },
        runs,
        summary,
        clients,
        gates,
        passed,
    }
}

impl GateResult {
    /// `max_x`, or `NAME max_x` for a client's gate.
    pub fn label(&self) -> String {
        match &self.client {
            Some(c) => format!("{c} {}", self.gate),
            None => self.gate.clone(),
        }
    }
}

/// `median [min-max]` (or the one value) of a summary.
fn spread(s: &FigureSummary) -> String {
    match (s.min, s.median, s.max) {
        (Some(lo), Some(m), Some(hi)) if lo != hi => {
            format!("{} [{}-{}]", fmt(Some(m)), fmt(Some(lo)), fmt(Some(hi)))
        }
        (_, m, _) => fmt(m),
    }
}

/// `client`, then every client figure's name.
fn client_headers() -> Vec<String> {
    std::iter::once("client")
        .chain(ClientFigure::ALL.iter().map(|f| f.name()))
        .map(String::from)
        .collect()
}

/// Every client side by side: one row per client, one column per figure, each cell the
/// median [min-max] over the runs; the membership API's HTTP load (`--api`) as a last row.
pub(crate) fn clients_table(r: &DrillReport) -> Table {
    let headers = client_headers();
    let mut rows: Rows = r
        .clients
        .iter()
        .map(|c| {
            let mut row = vec![c.name.clone()];
            row.extend(c.summary.iter().map(spread));
            row
        })
        .collect();
    if r.runs.iter().any(|x| x.api.is_some()) {
        let api = |f: Figure| {
            r.summary
                .iter()
                .find(|s| s.name == f.name())
                .map(spread)
                .unwrap_or_else(|| "-".into())
        };
        let mut row = vec!["api (HTTP)".to_string()];
        row.extend(ClientFigure::ALL.iter().map(|f| match f {
            ClientFigure::WriteUnavailableMs => api(Figure::ApiUnavailableMs),
            ClientFigure::FailedOps => api(Figure::ApiErrors),
            _ => "-".into(),
        }));
        rows.push(row);
    }
    Table { headers, rows }
}

/// One row per topology figure: its value in each run, then min / median / max.
fn figures_table(r: &DrillReport) -> Table {
    let mut headers = vec!["figure".to_string()];
    headers.extend(r.runs.iter().map(|x| format!("run {}", x.run)));
    headers.extend(["min", "median", "max"].map(String::from));
    let rows = Figure::ALL
        .iter()
        .zip(&r.summary)
        .map(|(figure, s)| {
            let mut row = vec![figure.name().to_string()];
            row.extend(r.runs.iter().map(|x| fmt(figure.read(&x.figures))));
            row.extend([fmt(s.min), fmt(s.median), fmt(s.max)]);
            row
        })
        .collect();
    Table { headers, rows }
}

fn fmt(v: Option<f64>) -> String {
    // `+ 0.0` turns a negative zero into zero.
    match v.map(|x| x + 0.0) {
        None => "-".into(),
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

/// Failed checks and gates, one line each (empty when everything passed).
pub(crate) fn failures(r: &DrillReport) -> Vec<String> {
    let mut out = Vec::new();
    for run in &r.runs {
        for c in run.checks.iter().filter(|c| !c.passed) {
            out.push(format!("run {}: {}: {}", run.run, c.name, c.detail));
        }
    }
    for g in r.gates.iter().filter(|g| !g.passed) {
        out.push(match g.measured {
            Some(m) => format!(
                "gate {}: measured {} > required {}",
                g.label(),
                fmt(Some(m)),
                fmt(Some(g.threshold))
            ),
            None => format!(
                "gate {}: no run produced this figure{} (required <= {})",
                g.label(),
                if g.client.is_some() {
                    " (is the client in drill.clients?)"
                } else {
                    ""
                },
                fmt(Some(g.threshold))
            ),
        });
    }
    out
}

/// The terminal rendering: topology figures per run and over runs, every client side by
/// side, then checks and gates.
pub(crate) fn terminal(r: &DrillReport) -> String {
    let t = figures_table(r).to_text();
    let c = clients_table(r).to_text();
    let s = &r.setup;
    let mut out = format!(
        "drill {} x{}: {} replicas, {} Sentinels (quorum {}), down-after {} ms, min-replicas-to-write {}, WAIT {}, {} writers x {}/s per model\n{t}\nclients (median [min-max] over the runs):\n{c}\n",
        r.kind, r.runs.len(), s.replicas, s.sentinels, s.quorum, s.down_after_ms, s.min_replicas_to_write, s.wait_replicas, s.writers, s.write_rate
    );
    for run in &r.runs {
        for line in safety_lines(run) {
            out.push_str(&format!("  run {} {line}\n", run.run));
        }
        for c in &run.checks {
            out.push_str(&format!(
                "  run {} {} {}: {}\n",
                run.run,
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
    }
    for g in &r.gates {
        out.push_str(&format!(
            "  gate {} {}: measured {} (required <= {})\n",
            if g.passed { "ok  " } else { "FAIL" },
            g.label(),
            fmt(g.measured),
            fmt(Some(g.threshold))
        ));
    }
    out.push_str(if r.passed {
        "result: PASSED\n"
    } else {
        "result: FAILED\n"
    });
    out
}

/// What a run did to stay safe: the target, the preflight, the hooks, the key cleanup
/// and an abort, one line each (empty for a harness-started topology with nothing to say
/// beyond its cleanup).
pub(crate) fn safety_lines(run: &DrillRun) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &run.target {
        out.push(format!("target: {t}"));
    }
    if !run.preflight.is_empty() {
        let passed = run.preflight.iter().filter(|c| c.passed).count();
        out.push(format!(
            "preflight: {passed}/{} checks passed ({})",
            run.preflight.len(),
            run.preflight
                .iter()
                .map(|c| c.name.trim_start_matches("preflight: ").to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for h in &run.hooks {
        out.push(h.summary());
    }
    if let Some(c) = &run.cleanup {
        out.push(c.summary());
    }
    if let Some(a) = &run.aborted {
        out.push(format!("ABORTED: {a}; the fault was restored at once"));
    }
    out
}

/// `checks` under `title`, one line each with ok/FAIL.
pub(crate) fn checks_text(title: &str, checks: &[super::Check]) -> String {
    let mut out = format!("{title}:\n");
    for c in checks {
        out.push_str(&format!(
            "  {} {}: {}\n",
            if c.passed { "ok  " } else { "FAIL" },
            c.name.trim_start_matches("preflight: "),
            c.detail
        ));
    }
    out
}

/// A dry run's plan for the terminal.
pub(crate) fn plan_text(p: &super::Plan) -> String {
    let nodes = Table::new(
        &["node", "role", "address", "{node} in hooks"],
        p.nodes.iter().map(|n| n.to_vec()).collect(),
    );
    let mut out = format!(
        "DRY RUN: drill {} on {}; nothing will be touched\n\n{}\n",
        p.kind,
        p.target,
        nodes.to_text()
    );
    out.push_str(&checks_text("preflight (as it stands now)", &p.preflight));
    out.push_str("\nfault, step by step:\n");
    for (i, s) in p.steps.iter().enumerate() {
        out.push_str(&format!("  {}. {s}\n", i + 1));
    }
    out.push_str("\ntimings:\n");
    for t in &p.timings {
        out.push_str(&format!("  - {t}\n"));
    }
    out.push_str(&format!(
        "\nclients: {}\nkeys: every key under {}* (a new <run-id> per run), removed at the end with SCAN MATCH + UNLINK\n",
        p.clients.join(", "),
        p.key_prefix
    ));
    out.push_str(if p.ready() {
        "\npreflight passes: run again with --confirm <master_name> to go ahead\n"
    } else {
        "\npreflight FAILS: a drill now would stop before touching anything\n"
    });
    out
}

fn api_line(run: &DrillRun) -> Option<String> {
    let a = run.api.as_ref()?;
    let w = |x: &super::api_load::ApiWindow| {
        format!(
            "{} requests, {} errors, {} HIT / {} MISS / {} BYPASS, p50 {} µs, p99 {} µs, max {} µs",
            x.requests,
            x.errors,
            x.hits,
            x.misses,
            x.bypasses,
            fmt(x.p50_us.map(|v| v as f64)),
            fmt(x.p99_us.map(|v| v as f64)),
            fmt(x.max_us.map(|v| v as f64))
        )
    };
    Some(format!(
        "API overall: {}; fault to healed: {}",
        w(&a.overall),
        w(&a.fault_window)
    ))
}

/// Every check of every run, then every gate: name, `pass` / `**FAIL**`, the measured fact.
fn checks_table(r: &DrillReport) -> Table {
    let verdict = |passed: bool| if passed { "pass" } else { "**FAIL**" }.to_string();
    let mut rows: Rows = Vec::new();
    for run in &r.runs {
        for c in &run.checks {
            rows.push(vec![
                format!("run {}: {}", run.run, c.name),
                verdict(c.passed),
                c.detail.clone(),
            ]);
        }
    }
    for g in &r.gates {
        rows.push(vec![
            format!("gate {}", g.label()),
            verdict(g.passed),
            format!(
                "measured {} (required ≤ {})",
                fmt(g.measured),
                fmt(Some(g.threshold))
            ),
        ]);
    }
    Table::new(&["check", "result", "detail"], rows)
}

/// `run`'s timeline in ms from the fault, from `from_ms` on when given.
pub(crate) fn timeline_table(run: &DrillRun, from_ms: Option<f64>) -> Table {
    let rows = run
        .timeline
        .iter()
        .filter(|e| from_ms.is_none_or(|from| e.at_ms >= from))
        .map(|e| {
            vec![
                format!("{:.0}", e.at_ms),
                e.source.clone(),
                e.event.clone(),
                e.detail.clone(),
            ]
        })
        .collect();
    Table::new(&["at ms", "source", "event", "detail"], rows)
}

/// `run`'s topology figures that have a value: name and value.
pub(crate) fn run_figures_table(run: &DrillRun) -> Table {
    let rows = Figure::ALL
        .iter()
        .filter_map(|f| {
            f.read(&run.figures)
                .map(|v| vec![f.name().to_string(), format!("{v:.1}")])
        })
        .collect();
    Table::new(&["figure", "value"], rows)
}

/// `run`'s clients side by side: one row per client, one column per figure.
pub(crate) fn run_clients_table(run: &DrillRun) -> Table {
    let headers = client_headers();
    let rows = run
        .clients
        .iter()
        .map(|c| {
            let mut row = vec![c.name.clone()];
            row.extend(ClientFigure::ALL.iter().map(|f| fmt(f.read(&c.figures))));
            row
        })
        .collect();
    Table { headers, rows }
}

/// A self-contained HTML page: setup, topology figures, the clients side by side, checks
/// and gates, and the first run's timeline.
pub(crate) fn html(r: &DrillReport) -> String {
    use crate::report::escape;
    let s = &r.setup;
    let mut b = format!(
        "<p class=\"verdict\">{} x{}: <span class=\"{}\">{}</span></p><p>{} replicas, {} Sentinels (quorum {}), down-after {} ms, failover-timeout {} ms, min-replicas-to-write {}, WAIT {}, {} writers × {}/s per model, AOF {} ({}).</p>",
        r.kind,
        r.runs.len(),
        if r.passed { "ok" } else { "bad" },
        if r.passed { "PASSED" } else { "FAILED" },
        s.replicas, s.sentinels, s.quorum, s.down_after_ms, s.failover_timeout_ms, s.min_replicas_to_write, s.wait_replicas, s.writers, s.write_rate,
        if s.aof { "on" } else { "off" }, escape(&s.appendfsync)
    );
    b.push_str("<h2>Clients (median [min-max] over the runs)</h2>");
    b.push_str(&clients_table(r).to_html());
    b.push_str("<ul>");
    for c in &r.clients {
        b.push_str(&format!(
            "<li><code>{}</code>: {}</li>",
            escape(&c.name),
            escape(&c.client)
        ));
    }
    b.push_str("</ul><h2>Topology</h2>");
    b.push_str(&figures_table(r).to_html());
    for run in &r.runs {
        let lines = safety_lines(run);
        if lines.is_empty() {
            continue;
        }
        b.push_str(&format!(
            "<h2>Run {}: target, preflight, hooks, cleanup</h2><ul>",
            run.run
        ));
        for l in lines {
            b.push_str(&format!("<li>{}</li>", escape(&l)));
        }
        b.push_str("</ul>");
        for h in run.hooks.iter().filter(|h| !h.output.is_empty()) {
            b.push_str(&format!(
                "<details><summary>output of hook {} on {}</summary><pre>{}</pre></details>",
                escape(&h.hook),
                escape(&h.node),
                escape(&h.output)
            ));
        }
    }
    b.push_str("<h2>Checks and gates</h2>");
    b.push_str(&checks_table(r).to_html());
    if let Some(run) = r.runs.first() {
        b.push_str(&format!(
            "<h2>Timeline of run {} (ms from the fault)</h2>",
            run.run
        ));
        b.push_str(&timeline_table(run, Some(-500.0)).to_html());
    }
    crate::report::html::page(&format!("redis-harness drill {}", r.kind), &b)
}

/// Markdown for a CI job summary.
pub(crate) fn markdown(r: &DrillReport) -> String {
    let mut out = format!(
        "## Drill `{}` — {}\n\n",
        r.kind,
        if r.passed { "passed" } else { "FAILED" }
    );
    let s = &r.setup;
    out.push_str(&format!(
        "{} replicas, {} Sentinels (quorum {}), down-after {} ms, failover-timeout {} ms, min-replicas-to-write {}, WAIT {}, {} writers × {}/s, AOF {} ({}).\n\n",
        s.replicas, s.sentinels, s.quorum, s.down_after_ms, s.failover_timeout_ms, s.min_replicas_to_write, s.wait_replicas, s.writers, s.write_rate,
        if s.aof { "on" } else { "off" }, s.appendfsync
    ));
    out.push_str(&figures_table(r).to_markdown());
    out.push_str("\n### Clients (median [min-max] over the runs)\n\n");
    out.push_str(&clients_table(r).to_markdown());
    for c in &r.clients {
        out.push_str(&format!("\n- `{}`: {}", c.name, c.client));
    }
    out.push_str("\n\n");
    for run in &r.runs {
        if let Some(line) = api_line(run) {
            out.push_str(&format!("Run {} {line}.\n\n", run.run));
        }
    }
    for run in &r.runs {
        let lines = safety_lines(run);
        if !lines.is_empty() {
            out.push_str(&format!("Run {}:\n\n", run.run));
            for l in lines {
                out.push_str(&format!("- {}\n", l.replace('`', "'")));
            }
            out.push('\n');
        }
        // A hook's output, where it printed any (its summary is in the list above).
        for h in run.hooks.iter().filter(|h| !h.output.is_empty()) {
            out.push_str(&format!(
                "<details><summary>run {}: output of hook {} on {}</summary>\n\n```\n{}\n```\n</details>\n\n",
                run.run,
                h.hook,
                h.node,
                h.output
            ));
        }
    }
    out.push_str(&checks_table(r).to_markdown());
    if let Some(run) = r.runs.first() {
        out.push_str(&format!(
            "\n### Timeline of run {} (ms from the fault)\n\n",
            run.run
        ));
        out.push_str(&timeline_table(run, Some(-500.0)).to_markdown());
    }
    out
}
