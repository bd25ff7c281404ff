//! Renderings of a [`PlanReport`]: the step and projection tables are built once and
//! rendered through [`crate::report`] to the terminal, Markdown and a self-contained HTML
//! page with the latency-against-rate charts.

use super::{Memory, PlanReport, Step};
use crate::report::html::{self, Chart, Series};
use crate::report::{escape, Table};

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

const STEP_HEADERS: [&str; 8] = [
    "phase",
    "offered req/s",
    "achieved req/s",
    "p50 µs",
    "p99 µs",
    "errors",
    "hit rate",
    "SLO",
];

/// Every step, one row each.
fn step_table(r: &PlanReport) -> Table {
    let rows = r
        .steps
        .iter()
        .map(|s| {
            vec![
                s.phase.to_string(),
                format!("{:.0}", s.offered_rps),
                format!("{:.0}", s.achieved_rps),
                s.p50_us.to_string(),
                s.p99_us.to_string(),
                format!("{:.2}%", s.error_rate * 100.0),
                s.hit_rate
                    .map(|h| format!("{:.1}%", h * 100.0))
                    .unwrap_or_else(|| "-".into()),
                if s.ok { "pass" } else { "FAIL" }.into(),
            ]
        })
        .collect();
    Table::new(&STEP_HEADERS, rows)
}

const PROJECTION_HEADERS: [&str; 4] = [
    "members",
    "all cached, per node",
    "20% hot, per node",
    "all cached, all data nodes",
];

/// Every projection, one row each.
fn projection_table(r: &PlanReport) -> Table {
    let rows = r
        .projections
        .iter()
        .map(|p| {
            vec![
                p.members.to_string(),
                mib(p.all_cached_bytes),
                mib(p.hot20_bytes),
                mib(p.all_cached_bytes * r.data_nodes as u64),
            ]
        })
        .collect();
    Table::new(&PROJECTION_HEADERS, rows)
}

fn knee_line(r: &PlanReport) -> String {
    match r.knee_rps {
        Some(k) => format!(
            "knee: {k:.0} req/s with p99 <= {} µs and errors <= {}% (confirmed)",
            r.options.slo_p99_us,
            r.options.max_error_rate * 100.0
        ),
        None => format!(
            "knee: none found; even {:.0} req/s missed p99 <= {} µs / errors <= {}%{}",
            r.options.start_rate,
            r.options.slo_p99_us,
            r.options.max_error_rate * 100.0,
            if r.steps.iter().any(|s| s.ok) {
                " on confirmation"
            } else {
                ""
            }
        ),
    }
}

fn memory_line(m: &Memory) -> String {
    format!(
        "memory: used_memory {} with {} keys; {} members/{{id}} entries at {:.0} B, {} by-id-number entries at {:.0} B (MEMORY USAGE over {} sampled)",
        mib(m.used_memory),
        m.keys,
        m.member_keys,
        m.bytes_per_member_key,
        m.id_number_keys,
        m.bytes_per_id_number_key,
        m.sampled
    )
}

/// Terminal rendering.
pub(crate) fn terminal(r: &PlanReport) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n",
        step_table(r).to_text(),
        knee_line(r),
        memory_line(&r.memory),
        projection_table(r).to_text(),
        "projection: the measured non-member memory stays, member entries scale with the count"
    )
}

/// Markdown rendering.
pub(crate) fn markdown(r: &PlanReport) -> String {
    format!(
        "# redis-harness plan\n\n{}\n\n{}\n{}\n\n{}\n",
        knee_line(r),
        step_table(r).to_markdown(),
        memory_line(&r.memory),
        projection_table(r).to_markdown()
    )
}

/// The self-contained HTML page with the p99-vs-rate chart.
pub(crate) fn html_page(r: &PlanReport) -> String {
    let mut sorted: Vec<&Step> = r.steps.iter().collect();
    sorted.sort_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps));
    let pts = |f: fn(&Step) -> f64| sorted.iter().map(|s| (s.offered_rps, f(s))).collect();
    let slo = r.options.slo_p99_us as f64;
    let chart = Chart {
        title: "Latency against offered rate (open model; µs, logarithmic)".into(),
        x_label: "offered requests per second".into(),
        y_label: "µs".into(),
        series: vec![
            Series {
                name: "p99".into(),
                color: "#d62728",
                points: pts(|s| s.p99_us as f64),
            },
            Series {
                name: "p50".into(),
                color: "#1f77b4",
                points: pts(|s| s.p50_us as f64),
            },
            Series {
                name: "SLO".into(),
                color: "#999999",
                points: sorted.iter().map(|s| (s.offered_rps, slo)).collect(),
            },
        ],
        shades: Vec::new(),
        markers: true,
        log_y: true,
    };
    let tput = Chart {
        title: "Achieved against offered rate".into(),
        x_label: "offered requests per second".into(),
        y_label: "req/s".into(),
        series: vec![
            Series {
                name: "achieved".into(),
                color: "#2ca02c",
                points: pts(|s| s.achieved_rps),
            },
            Series {
                name: "offered".into(),
                color: "#999999",
                points: pts(|s| s.offered_rps),
            },
        ],
        shades: Vec::new(),
        markers: true,
        log_y: false,
    };
    let body = format!(
        "<p class=\"verdict\">{}</p>{}{}<h2>Steps</h2>{}<h2>Memory</h2><p>{}</p>{}",
        escape(&knee_line(r)),
        chart.svg(),
        tput.svg(),
        step_table(r).to_html(),
        escape(&memory_line(&r.memory)),
        projection_table(r).to_html()
    );
    html::page("redis-harness plan", &body)
}

#[cfg(test)]
mod tests {
    use super::super::{project, PlanOptions, SCHEMA};
    use super::*;

    fn report() -> PlanReport {
        let memory = Memory {
            used_memory: 3 * 1024 * 1024,
            keys: 10,
            member_keys: 4,
            bytes_per_member_key: 1000.0,
            ..Default::default()
        };
        let step = |phase, rate: f64, ok| Step {
            phase,
            offered_rps: rate,
            achieved_rps: rate,
            p50_us: 100,
            p99_us: 900,
            error_rate: 0.0,
            hit_rate: Some(0.5),
            ok,
        };
        PlanReport {
            schema: SCHEMA,
            options: PlanOptions {
                slo_p99_us: 1000,
                max_error_rate: 0.01,
                step_s: 1.0,
                start_rate: 100.0,
                max_rate: 200.0,
                resolution: 1.1,
                warmup_s: 0.0,
                members: 10,
                project_members: vec![1000],
                max_in_flight: 10,
            },
            steps: vec![step("ramp", 100.0, true), step("ramp", 200.0, false)],
            knee_rps: Some(100.0),
            confirmed: true,
            projections: vec![project(&memory, 1000)],
            memory,
            data_nodes: 2,
        }
    }

    #[test]
    fn markdown_has_the_knee_the_steps_and_the_projection() {
        let md = markdown(&report());
        assert!(md.starts_with(
            "# redis-harness plan\n\nknee: 100 req/s with p99 <= 1000 µs and errors <= 1% (confirmed)\n\n| phase |"
        ));
        assert!(md.contains("| ramp | 200 | 200 | 100 | 900 | 0.00% | 50.0% | FAIL |\n\nmemory: used_memory 3.0 MiB"));
        assert!(md.ends_with("|\n\n"), "{md:?}");
    }

    #[test]
    fn terminal_and_html_render_the_same_rows() {
        let r = report();
        let t = terminal(&r);
        assert!(t.contains("knee: 100 req/s"));
        let h = html_page(&r);
        assert_eq!(h.matches("<svg").count(), 2);
        assert!(h.contains("<td class=\"fail\">FAIL</td>"));
        assert!(h.contains("<h2>Memory</h2><p>memory: used_memory 3.0 MiB"));
    }
}
