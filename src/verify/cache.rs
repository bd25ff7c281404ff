//! What the cache served, for the verify/load reports: the hit rate split into steady
//! state and the fault window, how it is counted, and the stale reads per route with
//! their first examples.

use loadtests::{LoadResults, StaleReport};

use crate::report::Table;

fn pct(v: Option<f64>) -> String {
    v.map(|h| format!("{:.1}%", h * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// `hit rate: steady state 85.2% (12,345 counted), fault window 41.0% (2,001 counted)`.
pub(crate) fn hit_split_line(l: &LoadResults) -> Option<String> {
    let s = l.hit_split.as_ref()?;
    let mut o = format!(
        "hit rate: steady state {} ({} counted)",
        pct(s.steady),
        s.steady_counted
    );
    if !s.windows.is_empty() {
        let w: Vec<String> = s
            .windows
            .iter()
            .map(|(a, b)| format!("{a:.1}-{b:.1} s"))
            .collect();
        o.push_str(&format!(
            ", fault window {} ({} counted; {})",
            pct(s.fault),
            s.fault_counted,
            w.join(", ")
        ));
    }
    Some(o)
}

/// The stale reads per route.
pub(crate) fn stale_table(s: &StaleReport) -> Table {
    Table::new(
        &[
            "route",
            "checked reads",
            "across instances",
            "stale",
            "rate",
            "not judged",
        ],
        s.routes
            .iter()
            .map(|r| {
                vec![
                    r.route.clone(),
                    r.checked.to_string(),
                    r.cross_instance.to_string(),
                    r.violations.to_string(),
                    format!("{:.2}%", r.rate() * 100.0),
                    r.unjudged.to_string(),
                ]
            })
            .collect(),
    )
}

/// The first stale reads.
pub(crate) fn examples_table(s: &StaleReport) -> Table {
    Table::new(
        &[
            "kind", "at s", "route", "member", "instance", "expected", "served", "age ms",
        ],
        s.examples
            .iter()
            .map(|e| {
                vec![
                    e.kind.clone(),
                    format!("{:.1}", e.t_s),
                    e.route.clone(),
                    e.member.to_string(),
                    e.instance.to_string(),
                    e.expected.clone(),
                    e.served.clone(),
                    format!("{:.0}", e.age_ms),
                ]
            })
            .collect(),
    )
}

/// A one-line summary of the stale reads.
pub(crate) fn stale_line(s: &StaleReport) -> String {
    if s.routes.is_empty() {
        "stale reads: nothing to check (no member was written and read)".into()
    } else {
        format!(
            "stale reads: {} of {} checked reads",
            s.violations(),
            s.checked()
        )
    }
}
