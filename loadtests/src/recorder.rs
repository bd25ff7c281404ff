//! Our own latency recording: goose times requests in whole milliseconds, and a cached
//! hit takes well under one. Every request is recorded here in microseconds, per route
//! template and per `X-Cache` value, plus status codes and a per-second timeline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency summary of one (route, X-Cache) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteLatency {
    /// Route template, e.g. `/api/v1/members/{id}`.
    pub route: String,
    /// `HIT`, `MISS`, `BYPASS`, or `-` (no X-Cache header: uncached route or no response).
    pub cache: String,
    /// Requests.
    pub count: u64,
    /// Percentiles in µs.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Maximum.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the start.
    pub t: u64,
    /// Requests completed in it.
    pub requests: u64,
    /// Of those, HITs.
    pub hits: u64,
    /// MISSes.
    pub misses: u64,
    /// BYPASSes.
    pub bypasses: u64,
    /// Errors (non-2xx or no response).
    pub errors: u64,
    /// Median latency of the second, µs.
    #[serde(default)]
    pub p50_us: u64,
    /// p99 latency of the second, µs.
    pub p99_us: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResults {
    /// `closed` (goose users) or `open` (fixed arrival rate).
    pub model: String,
    /// Wall time of the measured part, seconds.
    pub duration_s: f64,
    /// Requests completed.
    pub requests: u64,
    /// Non-2xx responses and requests without a response.
    pub errors: u64,
    /// Requests per second.
    pub throughput_rps: f64,
    /// HIT / (HIT + MISS + BYPASS) over requests that carried X-Cache; `None` without any.
    pub hit_rate: Option<f64>,
    /// Median latency over every request, µs (0 without requests).
    #[serde(default)]
    pub p50_us: u64,
    /// 99th percentile over every request, µs (0 without requests).
    #[serde(default)]
    pub p99_us: u64,
    /// Count per HTTP status (0: no response).
    pub statuses: BTreeMap<u16, u64>,
    /// Latency per route and X-Cache value.
    pub routes: Vec<RouteLatency>,
    /// Per-second timeline.
    pub timeline: Vec<Second>,
}

struct Inner {
    all: Histogram<u64>,
    hist: BTreeMap<(String, String), Histogram<u64>>,
    statuses: BTreeMap<u16, u64>,
    seconds: Vec<(Second, Histogram<u64>)>,
}

/// Thread-safe recorder shared by every virtual user.
pub struct Recorder {
    started: Instant,
    count: AtomicU64,
    inner: Mutex<Inner>,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder; the timeline starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            count: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                all: hist(),
                hist: BTreeMap::new(),
                statuses: BTreeMap::new(),
                seconds: Vec::new(),
            }),
        }
    }

    /// When the timeline started (second 0).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests recorded so far (cheap; for progress display).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Records one request: its route template, X-Cache value, status (`None`: no
    /// response) and latency.
    pub fn record(&self, route: &str, cache: Option<&str>, status: Option<u16>, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 120_000_000);
        let sec = self.started.elapsed().as_secs();
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = g.all.record(us);
        let _ = g
            .hist
            .entry((route.to_string(), cache.unwrap_or("-").to_string()))
            .or_insert_with(hist)
            .record(us);
        *g.statuses.entry(status.unwrap_or(0)).or_default() += 1;
        while g.seconds.len() as u64 <= sec {
            let t = g.seconds.len() as u64;
            g.seconds.push((
                Second {
                    t,
                    ..Default::default()
                },
                hist(),
            ));
        }
        let (s, h) = &mut g.seconds[sec as usize];
        s.requests += 1;
        match cache {
            Some("HIT") => s.hits += 1,
            Some("MISS") => s.misses += 1,
            Some("BYPASS") => s.bypasses += 1,
            _ => {}
        }
        if !ok {
            s.errors += 1;
        }
        let _ = h.record(us);
    }

    /// The results so far, over `duration` of measured time.
    pub fn results(&self, model: &str, duration: Duration) -> LoadResults {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let routes: Vec<RouteLatency> = g
            .hist
            .iter()
            .map(|((route, cache), h)| RouteLatency {
                route: route.clone(),
                cache: cache.clone(),
                count: h.len(),
                p50_us: h.value_at_quantile(0.5),
                p90_us: h.value_at_quantile(0.9),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
                mean_us: (h.mean() * 10.0).round() / 10.0,
            })
            .collect();
        let requests: u64 = g.statuses.values().sum();
        let errors: u64 = g
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let count = |c: &str| {
            routes
                .iter()
                .filter(|r| r.cache == c)
                .map(|r| r.count)
                .sum::<u64>()
        };
        let (h, m, b) = (count("HIT"), count("MISS"), count("BYPASS"));
        let secs = duration.as_secs_f64().max(1e-9);
        LoadResults {
            model: model.to_string(),
            duration_s: (secs * 1000.0).round() / 1000.0,
            requests,
            errors,
            throughput_rps: (requests as f64 / secs * 10.0).round() / 10.0,
            hit_rate: (h + m + b > 0).then(|| h as f64 / (h + m + b) as f64),
            p50_us: if g.all.is_empty() {
                0
            } else {
                g.all.value_at_quantile(0.5)
            },
            p99_us: if g.all.is_empty() {
                0
            } else {
                g.all.value_at_quantile(0.99)
            },
            statuses: g.statuses.clone(),
            routes,
            timeline: g
                .seconds
                .iter()
                .map(|(s, h)| {
                    let q = |p: f64| {
                        if h.is_empty() {
                            0
                        } else {
                            h.value_at_quantile(p)
                        }
                    };
                    Second {
                        p50_us: q(0.5),
                        p99_us: q(0.99),
                        ..s.clone()
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_per_route_and_cache_value() {
        let r = Recorder::new();
        r.record("/a", Some("HIT"), Some(200), Duration::from_micros(180));
        r.record("/a", Some("HIT"), Some(200), Duration::from_micros(220));
        r.record("/a", Some("MISS"), Some(200), Duration::from_micros(5_300));
        r.record("/b", None, None, Duration::from_millis(2));
        let res = r.results("closed", Duration::from_secs(1));
        assert_eq!(res.requests, 4);
        assert_eq!(res.errors, 1);
        assert_eq!(res.hit_rate, Some(2.0 / 3.0));
        let hit = res
            .routes
            .iter()
            .find(|x| x.route == "/a" && x.cache == "HIT")
            .unwrap();
        assert_eq!(hit.count, 2);
        assert!((179..=181).contains(&hit.p50_us), "{hit:?}");
        assert_eq!(res.statuses[&0], 1);
        assert_eq!(res.timeline[0].requests, 4);
    }
}
