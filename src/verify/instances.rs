//! The per-instance figures of a run with several API instances (host, requests, errors,
//! hit rate, p50, p99), as a Markdown section and an HTML section of the `verify` / `load`
//! report. A run with one instance gets neither: its figures are the run's.

use loadtests::LoadResults;

use crate::report::{markdown_table, Table};

/// Column headers (the terminal table of `loadtests::table` has the same).
const HEADERS: [&str; 6] = [
    "instance", "requests", "errors", "hit rate", "p50 µs", "p99 µs",
];

/// One row per instance; `None` with fewer than two.
fn rows(l: &LoadResults) -> Option<Vec<Vec<String>>> {
    (l.instances.len() > 1).then(|| {
        l.instances
            .iter()
            .map(|i| {
                vec![
                    i.host.clone(),
                    i.requests.to_string(),
                    i.errors.to_string(),
                    i.hit_rate
                        .map(|h| format!("{:.1}%", h * 100.0))
                        .unwrap_or_else(|| "-".into()),
                    i.p50_us.to_string(),
                    i.p99_us.to_string(),
                ]
            })
            .collect()
    })
}

/// The Markdown section (empty with one instance).
pub(crate) fn markdown(l: &LoadResults) -> String {
    match rows(l) {
        Some(rows) => format!(
            "\n## API instances ({})\n\n{}",
            rows.len(),
            markdown_table(&HEADERS, &rows)
        ),
        None => String::new(),
    }
}

/// The HTML section (empty with one instance).
pub(crate) fn html(l: &LoadResults) -> String {
    match rows(l) {
        Some(rows) => format!(
            "<h2>API instances ({})</h2>{}",
            rows.len(),
            Table::new(&HEADERS, rows).to_html()
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtests::InstanceFigures;

    fn instance(host: &str, requests: u64, hit_rate: Option<f64>) -> InstanceFigures {
        InstanceFigures {
            host: host.into(),
            requests,
            errors: 1,
            hit_rate,
            p50_us: 250,
            p99_us: 4100,
            ..Default::default()
        }
    }

    #[test]
    fn only_several_instances_get_a_section() {
        let mut l = LoadResults {
            instances: vec![instance("http://127.0.0.1:1", 10, Some(0.9))],
            ..Default::default()
        };
        assert_eq!(markdown(&l), "");
        assert_eq!(html(&l), "");
        l.instances
            .push(instance("http://127.0.0.1:2", 12, None::<f64>));
        let md = markdown(&l);
        assert!(md.contains("## API instances (2)"), "{md}");
        assert!(
            md.contains("| http://127.0.0.1:1 | 10 | 1 | 90.0% | 250 | 4100 |"),
            "{md}"
        );
        assert!(
            md.contains("| http://127.0.0.1:2 | 12 | 1 | - | 250 | 4100 |"),
            "{md}"
        );
        let h = html(&l);
        assert!(h.contains("<h2>API instances (2)</h2><table>"), "{h}");
        assert!(h.contains("<td>http://127.0.0.1:2</td><td>12</td>"), "{h}");
    }
}
