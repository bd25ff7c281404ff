//! Cache metrics per route: hits, misses, bypasses, errors, coalesced requests, origin
//! calls, skipped stores, entries refused as unproven, answers that were not cacheable
//! (4xx/5xx, no `X-Cache`), and latency of the HIT, MISS and BYPASS paths in microseconds.
//! Served as JSON (`cache/metrics`) and in the Prometheus text format (`/metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

/// How a cached route answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// Served from Redis.
    Hit,
    /// Computed by the handler (and stored).
    Miss,
    /// Computed by the handler without Redis (disabled, down, or breaker open).
    Bypass,
}

impl Outcome {
    /// The `X-Cache` header value.
    pub fn header(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Bypass => "BYPASS",
        }
    }
}

struct RouteStats {
    hits: u64,
    misses: u64,
    bypasses: u64,
    errors: u64,
    coalesced: u64,
    origin_calls: u64,
    stores_skipped: u64,
    unproven: u64,
    uncacheable: u64,
    latency: [Histogram<u64>; 3],
}

impl RouteStats {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        Self {
            hits: 0,
            misses: 0,
            bypasses: 0,
            errors: 0,
            coalesced: 0,
            origin_calls: 0,
            stores_skipped: 0,
            unproven: 0,
            uncacheable: 0,
            latency: [h(), h(), h()],
        }
    }
}

/// Metrics of every cached route.
#[derive(Default)]
pub struct CacheMetrics {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
}

impl std::fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheMetrics")
    }
}

/// Counters that one event adds to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// A Redis call failed or timed out.
    RedisError,
    /// A request waited for another request's identical miss.
    Coalesced,
    /// The handler (database) was called.
    OriginCall,
    /// A computed value was not stored because a write invalidated it meanwhile.
    StoreSkipped,
    /// An entry was found but not served: its tag versions were stale or missing.
    Unproven,
    /// An answer that is not a cache result (a 4xx or 5xx, or a rejected request): it
    /// carries no `X-Cache` and does not count towards the hit rate.
    Uncacheable,
}

impl CacheMetrics {
    fn with<R>(&self, route: &'static str, f: impl FnOnce(&mut RouteStats) -> R) -> R {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        f(routes.entry(route).or_insert_with(RouteStats::new))
    }

    /// Records one answered request.
    pub(crate) fn record(&self, route: &'static str, outcome: Outcome, elapsed: Duration) {
        let us = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        self.with(route, |s| {
            match outcome {
                Outcome::Hit => s.hits += 1,
                Outcome::Miss => s.misses += 1,
                Outcome::Bypass => s.bypasses += 1,
            }
            let _ = s.latency[outcome as usize].record(us);
        });
    }

    /// Counts an event.
    pub(crate) fn event(&self, route: &'static str, event: Event) {
        self.with(route, |s| match event {
            Event::RedisError => s.errors += 1,
            Event::Coalesced => s.coalesced += 1,
            Event::OriginCall => s.origin_calls += 1,
            Event::StoreSkipped => s.stores_skipped += 1,
            Event::Unproven => s.unproven += 1,
            Event::Uncacheable => s.uncacheable += 1,
        });
    }

    /// Totals over all routes: (hits, misses, bypasses, errors).
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes.values().fold((0, 0, 0, 0), |a, s| {
            (
                a.0 + s.hits,
                a.1 + s.misses,
                a.2 + s.bypasses,
                a.3 + s.errors,
            )
        })
    }

    /// Hits over all answered requests, or `None` before the first request.
    pub fn hit_rate(&self) -> Option<f64> {
        let (h, m, b, _) = self.totals();
        let n = h + m + b;
        (n > 0).then(|| h as f64 / n as f64)
    }

    /// Origin (handler) calls for one route.
    pub fn origin_calls(&self, route: &'static str) -> u64 {
        self.with(route, |s| s.origin_calls)
    }

    /// The JSON view served by `cache/metrics`.
    pub fn to_json(&self) -> Value {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut per_route = serde_json::Map::new();
        for (route, s) in routes.iter() {
            let lat = |h: &Histogram<u64>| {
                if h.is_empty() {
                    return Value::Null;
                }
                json!({
                    "count": h.len(), "p50_us": h.value_at_quantile(0.5), "p90_us": h.value_at_quantile(0.9),
                    "p99_us": h.value_at_quantile(0.99), "max_us": h.max(), "mean_us": (h.mean() * 10.0).round() / 10.0,
                })
            };
            let answered = s.hits + s.misses + s.bypasses;
            per_route.insert(
                (*route).to_string(),
                json!({
                    "hits": s.hits, "misses": s.misses, "bypasses": s.bypasses, "errors": s.errors,
                    "coalesced": s.coalesced, "origin_calls": s.origin_calls, "stores_skipped": s.stores_skipped,
                    "unproven": s.unproven, "uncacheable": s.uncacheable,
                    "hit_rate": if answered > 0 { json!(s.hits as f64 / answered as f64) } else { Value::Null },
                    "latency": { "hit": lat(&s.latency[0]), "miss": lat(&s.latency[1]), "bypass": lat(&s.latency[2]) },
                }),
            );
        }
        drop(routes);
        let (h, m, b, e) = self.totals();
        json!({
            "totals": { "hits": h, "misses": m, "bypasses": b, "errors": e, "hit_rate": self.hit_rate() },
            "routes": per_route,
        })
    }

    /// Appends the Prometheus text exposition of these metrics to `out`.
    pub fn write_prometheus(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP membership_cache_requests_total Requests on cached routes by X-Cache result."
        );
        let _ = writeln!(out, "# TYPE membership_cache_requests_total counter");
        for (r, s) in routes.iter() {
            for (res, n) in [("hit", s.hits), ("miss", s.misses), ("bypass", s.bypasses)] {
                let _ = writeln!(
                    out,
                    "membership_cache_requests_total{{route=\"{r}\",result=\"{res}\"}} {n}"
                );
            }
        }
        for (name, help, pick) in [
            (
                "membership_cache_redis_errors_total",
                "Failed or timed-out Redis calls.",
                0,
            ),
            (
                "membership_cache_coalesced_total",
                "Requests that shared another request's miss.",
                1,
            ),
            (
                "membership_cache_origin_calls_total",
                "Handler (database) calls behind cached routes.",
                2,
            ),
            (
                "membership_cache_stores_skipped_total",
                "Computed values not stored because a write invalidated them.",
                3,
            ),
            (
                "membership_cache_unproven_total",
                "Entries found but not served because their tag versions were stale or missing.",
                4,
            ),
            (
                "membership_cache_uncacheable_total",
                "Answers on cached routes that were not cache results (4xx, 5xx).",
                5,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (r, s) in routes.iter() {
                let v = [
                    s.errors,
                    s.coalesced,
                    s.origin_calls,
                    s.stores_skipped,
                    s.unproven,
                    s.uncacheable,
                ][pick];
                let _ = writeln!(out, "{name}{{route=\"{r}\"}} {v}");
            }
        }
        let name = "membership_cache_latency_microseconds";
        let _ = writeln!(
            out,
            "# HELP {name} Latency of cached routes by X-Cache result.\n# TYPE {name} summary"
        );
        for (r, s) in routes.iter() {
            for (i, res) in ["hit", "miss", "bypass"].iter().enumerate() {
                let h = &s.latency[i];
                if h.is_empty() {
                    continue;
                }
                for q in [0.5, 0.9, 0.99] {
                    let _ = writeln!(
                        out,
                        "{name}{{route=\"{r}\",result=\"{res}\",quantile=\"{q}\"}} {}",
                        h.value_at_quantile(q)
                    );
                }
                let sum = h.mean() * h.len() as f64;
                let _ = writeln!(out, "{name}_sum{{route=\"{r}\",result=\"{res}\"}} {sum:.0}");
                let _ = writeln!(
                    out,
                    "{name}_count{{route=\"{r}\",result=\"{res}\"}} {}",
                    h.len()
                );
            }
        }
    }
}
