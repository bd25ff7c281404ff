//! `drill --api`: HTTP load against the membership API (Sentinel mode, on the drill's
//! topology) through the fault, recording status codes, `X-Cache` values and latency in
//! microseconds on the drill clock.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::clock::Clock;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiSample {
    /// When it was sent.
    pub t_us: i64,
    /// HTTP status, or 0 when no response arrived.
    pub status: u16,
    /// `X-Cache` header.
    pub cache: Option<String>,
    /// Latency.
    pub latency_us: u64,
}

/// Requests in a time window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiWindow {
    /// Requests sent.
    pub requests: u64,
    /// Responses that were not 2xx, or no response.
    pub errors: u64,
    /// `X-Cache: HIT`.
    pub hits: u64,
    /// `X-Cache: MISS`.
    pub misses: u64,
    /// `X-Cache: BYPASS` (answered from the database without Redis).
    pub bypasses: u64,
    /// Latency percentiles in µs.
    pub p50_us: Option<u64>,
    /// 99th percentile.
    pub p99_us: Option<u64>,
    /// Maximum.
    pub max_us: Option<u64>,
}

/// The longest gap, in ms, between 2xx responses (by completion) ending after
/// `fault_us`: the API's client-visible outage.
pub(crate) fn unavailable_ms(samples: &[ApiSample], fault_us: i64) -> Option<f64> {
    let done: Vec<i64> = samples
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .map(|s| s.t_us + s.latency_us as i64)
        .collect();
    let end = samples
        .iter()
        .map(|s| s.t_us + s.latency_us as i64)
        .max()
        .unwrap_or(fault_us);
    super::history::longest_gap_after(done, fault_us, end).0
}

/// Summarises the samples sent within `[from_us, to_us]`.
pub(crate) fn window(samples: &[ApiSample], from_us: i64, to_us: i64) -> ApiWindow {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut w = ApiWindow::default();
    for s in samples
        .iter()
        .filter(|s| s.t_us >= from_us && s.t_us <= to_us)
    {
        w.requests += 1;
        if !(200..300).contains(&s.status) {
            w.errors += 1;
        }
        match s.cache.as_deref() {
            Some("HIT") => w.hits += 1,
            Some("MISS") => w.misses += 1,
            Some("BYPASS") => w.bypasses += 1,
            _ => {}
        }
        let _ = h.record(s.latency_us.clamp(1, 60_000_000));
    }
    if !h.is_empty() {
        w.p50_us = Some(h.value_at_quantile(0.5));
        w.p99_us = Some(h.value_at_quantile(0.99));
        w.max_us = Some(h.max());
    }
    w
}

/// The paths requested, in turn: the cached statistics, the dashboard, and 200 members.
fn path(seq: u64) -> String {
    match seq % 3 {
        0 => "/api/v1/statistics/system".into(),
        1 => "/api/v1/analytics/dashboard".into(),
        _ => format!("/api/v1/members/{}", 1 + (seq / 3) % 200),
    }
}

/// Running HTTP clients.
pub(crate) struct ApiLoad {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Vec<ApiSample>>>,
}

impl ApiLoad {
    /// Starts `clients` clients at `rate` requests per second each against `base`.
    pub(crate) fn start(base: String, clock: Clock, clients: u32, rate: u32) -> Self {
        let (stop, rx) = watch::channel(false);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client without TLS always builds");
        let tasks = (0..clients)
            .map(|c| {
                let (http, base, mut rx) = (http.clone(), base.clone(), rx.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(
                        1.0 / f64::from(rate.max(1)),
                    ));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut seq = u64::from(c);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = rx.changed() => return out,
                        }
                        let t_us = clock.now_us();
                        let started = Instant::now();
                        let resp = http.get(format!("{base}{}", path(seq))).send().await;
                        let (status, cache) = match resp {
                            Ok(r) => {
                                let cache = r
                                    .headers()
                                    .get("x-cache")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let status = r.status().as_u16();
                                let _ = r.bytes().await;
                                (status, cache)
                            }
                            Err(_) => (0, None),
                        };
                        out.push(ApiSample {
                            t_us,
                            status,
                            cache,
                            latency_us: started.elapsed().as_micros() as u64,
                        });
                        seq += u64::from(clients.max(1));
                    }
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the clients and returns every sample.
    pub(crate) async fn stop(self) -> Vec<ApiSample> {
        let _ = self.stop.send(true);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all.sort_by_key(|s| s.t_us);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_errors_and_cache_values() {
        let s = |t, status, cache: &str, lat| ApiSample {
            t_us: t,
            status,
            cache: Some(cache.into()),
            latency_us: lat,
        };
        let samples = vec![
            s(0, 200, "HIT", 100),
            s(10, 200, "BYPASS", 5000),
            s(20, 0, "", 2_000_000),
            s(30, 200, "MISS", 900),
            s(99, 200, "HIT", 50),
        ];
        let w = window(&samples, 5, 40);
        assert_eq!(
            (w.requests, w.errors, w.bypasses, w.misses, w.hits),
            (3, 1, 1, 1, 0)
        );
        assert!(w.max_us.unwrap() >= 1_999_000);
    }
}
