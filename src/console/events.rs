//! The Events page: the Sentinels' pub/sub stream, role changes, and during a drill its
//! fault and actions, all on one clock, with the running tally of acknowledged, failed and
//! unknown writes, and the drill's judged timeline once a run is over.

use super::feed::{DrillState, Event, Feed, Kind};
use crate::report::escape;

/// Events rendered into a page when it loads (live ones are appended after).
const PAGE_EVENTS: usize = 500;

/// `HH:MM:SS.mmm` (UTC) of ms since the Unix epoch.
pub(crate) fn clock(at_ms: u64) -> String {
    let s = at_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        at_ms % 1000
    )
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Sentinel => "sentinel",
        Kind::Role => "role",
        Kind::Drill => "drill",
        Kind::Console => "console",
    }
}

/// One row of the events table; `fault_at_ms` gives the offset column.
pub(crate) fn row(ev: &Event, fault_at_ms: Option<u64>) -> String {
    let offset = match fault_at_ms {
        Some(f) => format!("{:+} ms", ev.at_ms as i64 - f as i64),
        None => String::new(),
    };
    let class = if ev.name == "+switch-master" || ev.kind == Kind::Role {
        " ev-switch"
    } else {
        ""
    };
    format!(
        "<tr data-id=\"{}\" data-kind=\"{}\" data-event=\"{}\" data-at-ms=\"{}\" class=\"kind-{}{class}\"><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td class=\"name\">{}</td><td class=\"mono\">{}</td></tr>",
        ev.id,
        kind_name(ev.kind),
        escape(&ev.name),
        ev.at_ms,
        kind_name(ev.kind),
        clock(ev.at_ms),
        offset,
        escape(&ev.source),
        escape(&ev.name),
        escape(&ev.detail),
    )
}

/// The running tally of the drill's writes, all built-in clients together and each
/// client's (replaced live).
pub(crate) fn counts(drill: Option<&DrillState>) -> String {
    let Some(d) = drill else {
        return "<div class=\"counts\" id=\"counts\" data-acked=\"0\" data-failed=\"0\" data-unknown=\"0\"><span class=\"note\">no drill is running beside this console</span></div>".into();
    };
    let mut total = [0u64; 3];
    let mut per_client = String::new();
    for (name, t) in &d.tallies {
        let [ok, failed, unknown] = t.counts();
        for (sum, n) in total.iter_mut().zip([ok, failed, unknown]) {
            *sum += n;
        }
        per_client.push_str(&format!(
            "<span class=\"client\" data-client=\"{0}\">{0}: {ok} / {failed} / {unknown}</span>",
            escape(name)
        ));
    }
    let [ok, failed, unknown] = total;
    format!(
        "<div class=\"counts\" id=\"counts\" data-acked=\"{ok}\" data-failed=\"{failed}\" data-unknown=\"{unknown}\"><span>{}</span><span class=\"acked\">acknowledged <b>{ok}</b></span><span class=\"failed\">failed <b>{failed}</b></span><span class=\"unknown\">unknown <b>{unknown}</b></span>{per_client}{}</div>",
        escape(&d.label),
        d.verdict
            .as_ref()
            .map(|v| format!("<span id=\"verdict\">{}</span>", escape(v)))
            .unwrap_or_default()
    )
}

/// The page body.
pub(crate) fn page(feed: &Feed) -> String {
    let drill = feed.drill();
    let fault = drill.as_ref().and_then(|d| d.fault_at_ms);
    let all = feed.since(0);
    let shown = &all[all.len().saturating_sub(PAGE_EVENTS)..];
    let last_id = all.last().map(|e| e.id).unwrap_or(0);
    let mut h = counts(drill.as_ref());
    h.push_str(&format!(
        "<p class=\"note\">Times are UTC on the console's clock{}. Sentinel events arrive over pub/sub; role changes are seen by the console's poll.</p>",
        if fault.is_some() {
            "; the second column is the offset from the drill's fault"
        } else {
            ""
        }
    ));
    h.push_str(&format!(
        "<div class=\"scroll\" id=\"events-scroll\"><table class=\"grid\" id=\"events\"><thead><tr><th>time</th><th>from fault</th><th>source</th><th>event</th><th>detail</th></tr></thead><tbody id=\"events-body\" data-last-id=\"{last_id}\">"
    ));
    for ev in shown {
        h.push_str(&row(ev, fault));
    }
    h.push_str("</tbody></table></div>");
    if let Some(d) = drill.filter(|d| !d.timeline.is_empty()) {
        h.push_str(&format!(
            "<h2>Judged timeline of {} (ms from the fault, drill clock)</h2><table class=\"grid\" id=\"timeline\"><thead><tr><th>ms</th><th>source</th><th>event</th><th>detail</th></tr></thead><tbody>",
            escape(&d.label)
        ));
        for t in &d.timeline {
            h.push_str(&format!(
                "<tr><td class=\"t\">{:+.0}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                t.at_ms,
                escape(&t.source),
                escape(&t.event),
                escape(&t.detail)
            ));
        }
        h.push_str("</tbody></table>");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00.000");
        assert_eq!(clock(86_400_000 + 3_723_045), "01:02:03.045");
    }

    #[test]
    fn rows_carry_the_event_and_the_offset_from_the_fault() {
        let ev = Event {
            id: 7,
            at_ms: 10_500,
            kind: Kind::Sentinel,
            source: "sentinel-1".into(),
            name: "+switch-master".into(),
            detail: "mymaster 127.0.0.1 1 127.0.0.1 2 <x>".into(),
        };
        let r = row(&ev, Some(10_000));
        assert!(r.contains("data-event=\"+switch-master\""));
        assert!(r.contains("+500 ms"));
        assert!(r.contains("&lt;x&gt;"));
        assert!(!row(&ev, None).contains(" ms<"));
    }

    #[test]
    fn counts_show_the_tally() {
        let t = std::sync::Arc::new(crate::drill::Tally::default());
        t.record(crate::drill::history::Outcome::Ok);
        t.record(crate::drill::history::Outcome::Unknown);
        let u = std::sync::Arc::new(crate::drill::Tally::default());
        u.record(crate::drill::history::Outcome::Failed);
        let d = DrillState {
            label: "kill-master run 1".into(),
            tallies: vec![("sentinel-events".into(), t), ("fixed-address".into(), u)],
            ..DrillState::default()
        };
        let h = counts(Some(&d));
        assert!(h.contains("data-acked=\"1\" data-failed=\"1\" data-unknown=\"1\""));
        assert!(h.contains("sentinel-events: 1 / 0 / 1"), "{h}");
        assert!(h.contains("fixed-address: 0 / 1 / 0"), "{h}");
        assert!(counts(None).contains("no drill"));
    }
}
