//! Renderings of a [`BenchReport`]: the criterion, ratio and redis-benchmark tables are
//! built once and rendered through [`crate::report`] to the terminal and Markdown.

use super::BenchReport;
use crate::report::Table;

fn dur(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The criterion estimates, the ratios and redis-benchmark, in that order.
fn tables(r: &BenchReport) -> [Table; 3] {
    let criterion = r
        .criterion
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                dur(e.mean_ns),
                format!("± {}", dur(e.mean_ci_ns)),
                dur(e.median_ns),
            ]
        })
        .collect();
    let ratios = r
        .ratios
        .iter()
        .map(|x| vec![x.name.clone(), format!("{:.2}x", x.ratio)])
        .collect();
    let baseline = r
        .redis_benchmark
        .iter()
        .map(|x| {
            vec![
                x.test.clone(),
                x.clients.to_string(),
                format!("{:.0}", x.rps),
                format!("{:.3}", x.avg_ms),
                format!("{:.3}", x.p50_ms),
                format!("{:.3}", x.p99_ms),
            ]
        })
        .collect();
    [
        Table::new(&["benchmark", "mean", "95% CI", "median"], criterion),
        Table::new(&["ratio", "value"], ratios),
        Table::new(
            &[
                "redis-benchmark",
                "clients",
                "req/s",
                "avg ms",
                "p50 ms",
                "p99 ms",
            ],
            baseline,
        ),
    ]
}

/// Terminal rendering.
pub(crate) fn terminal(r: &BenchReport) -> String {
    tables(r).iter().map(|t| t.to_text() + "\n").collect()
}

/// Markdown rendering.
pub(crate) fn markdown(r: &BenchReport) -> String {
    let mut o = String::from("# redis-harness bench\n\n");
    for t in tables(r) {
        o.push_str(&t.to_markdown());
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::{Estimate, Ratio, RedisBenchmark, SCHEMA};
    use super::*;

    #[test]
    fn markdown_renders_the_three_tables() {
        let r = BenchReport {
            schema: SCHEMA,
            criterion: vec![Estimate {
                id: "redis/raw_get".into(),
                mean_ns: 25_000.0,
                median_ns: 24_000.0,
                mean_ci_ns: 500.0,
            }],
            ratios: vec![Ratio {
                name: "hit / get".into(),
                of: "a".into(),
                to: "b".into(),
                ratio: 1.5,
            }],
            redis_benchmark: vec![RedisBenchmark {
                test: "GET".into(),
                clients: 1,
                rps: 40_000.0,
                avg_ms: 0.025,
                p50_ms: 0.023,
                p99_ms: 0.047,
            }],
            payload_bytes: 1024,
        };
        assert_eq!(
            markdown(&r),
            "# redis-harness bench\n\n\
             | benchmark | mean | 95% CI | median |\n|---|---|---|---|\n\
             | redis/raw_get | 25.0 µs | ± 500 ns | 24.0 µs |\n\n\
             | ratio | value |\n|---|---|\n| hit / get | 1.50x |\n\n\
             | redis-benchmark | clients | req/s | avg ms | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n\
             | GET | 1 | 40000 | 0.025 | 0.023 | 0.047 |\n\n"
        );
        assert_eq!(terminal(&r).matches("redis/raw_get").count(), 1);
    }
}
