//! Our own latency recording: goose times requests in whole milliseconds, and a cached
//! hit takes well under one. Every request is recorded here in microseconds, per route
//! template and per cache status value (classified by the run's vocabulary), per API
//! instance, plus status codes, a per-second timeline and the stale-read checker; the
//! histograms are kept serialized in the results so that runs merge exactly.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::cache_status::{CacheClass, CacheVocab};
use crate::stale::{StaleChecker, StaleReport};

/// Latency summary of one (route, cache status value) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteLatency {
    /// Route template, e.g. `/api/v1/members/{id}`.
    pub route: String,
    /// The raw cache status value (`HIT`, `STALE`, `Age: 3` ...), or `-` (none: an
    /// uncached route or no response).
    pub cache: String,
    /// How the value counts (the run's cache-status vocabulary).
    #[serde(default)]
    pub class: CacheClass,
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
    /// Of those, hits (by the vocabulary).
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Bypasses.
    pub bypasses: u64,
    /// Errors (non-2xx or no response).
    pub errors: u64,
    /// Median latency of the second, µs.
    #[serde(default)]
    pub p50_us: u64,
    /// p99 latency of the second, µs.
    pub p99_us: u64,
}

/// The figures of one API instance (one host of the run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceFigures {
    /// Base URL.
    pub host: String,
    /// Requests sent to it.
    pub requests: u64,
    /// Errors among them.
    pub errors: u64,
    /// Hits, misses and bypasses among them.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Bypasses.
    pub bypasses: u64,
    /// Hit rate of its responses.
    pub hit_rate: Option<f64>,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
}

/// Serialized HDR histograms (V2 + deflate, base64) of a run, so that results from several
/// load generators merge exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HdrSet {
    /// Every request.
    pub all: String,
    /// Per route and cache status value, in the order of [`LoadResults::routes`].
    pub routes: Vec<String>,
    /// Per instance, in the order of [`LoadResults::instances`].
    pub instances: Vec<String>,
}

/// Hit rates inside and outside the fault window(s).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HitSplit {
    /// Outside every fault window.
    pub steady: Option<f64>,
    /// Inside a fault window.
    pub fault: Option<f64>,
    /// Counted responses (hits + misses + bypasses) outside.
    pub steady_counted: u64,
    /// Counted responses inside.
    pub fault_counted: u64,
    /// The windows, seconds into the run (whole seconds of the timeline that overlap one
    /// count as inside).
    pub windows: Vec<(f64, f64)>,
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
    /// hits / (hits + misses + bypasses) over responses with a counted cache status;
    /// `None` without any.
    pub hit_rate: Option<f64>,
    /// How the hit rate was counted, in words.
    #[serde(default)]
    pub hit_rate_definition: String,
    /// Median latency over every request, µs (0 without requests).
    #[serde(default)]
    pub p50_us: u64,
    /// 99th percentile over every request, µs (0 without requests).
    #[serde(default)]
    pub p99_us: u64,
    /// Count per HTTP status (0: no response).
    pub statuses: BTreeMap<u16, u64>,
    /// Latency per route and cache status value.
    pub routes: Vec<RouteLatency>,
    /// Per-second timeline.
    pub timeline: Vec<Second>,
    /// Per API instance (one entry per host).
    #[serde(default)]
    pub instances: Vec<InstanceFigures>,
    /// Stale reads: what the cache served, judged against what was written.
    #[serde(default)]
    pub stale: StaleReport,
    /// The histograms behind the percentiles, for exact merging.
    #[serde(default)]
    pub hdr: HdrSet,
    /// Hit rates in steady state and inside the fault window(s) (without a fault: all
    /// steady).
    #[serde(default)]
    pub hit_split: Option<HitSplit>,
    /// Load generators merged into these results (1 for a single run).
    #[serde(default = "one")]
    pub generators: u32,
}

fn one() -> u32 {
    1
}

impl LoadResults {
    /// Records the fault windows (seconds into the run) and splits the hit rate by them.
    pub fn set_fault_windows(&mut self, windows: &[(f64, f64)]) {
        self.hit_split = Some(self.split_hits(windows));
    }

    /// Hit rates inside and outside `windows` (seconds into the run).
    pub fn split_hits(&self, windows: &[(f64, f64)]) -> HitSplit {
        let mut c = [(0u64, 0u64); 2];
        for s in &self.timeline {
            let (a, b) = (s.t as f64, s.t as f64 + 1.0);
            let inside = windows.iter().any(|(f, t)| a < *t && *f < b) as usize;
            c[inside].0 += s.hits;
            c[inside].1 += s.hits + s.misses + s.bypasses;
        }
        let rate = |(h, n): (u64, u64)| (n > 0).then(|| h as f64 / n as f64);
        HitSplit {
            steady: rate(c[0]),
            fault: rate(c[1]),
            steady_counted: c[0].1,
            fault_counted: c[1].1,
            windows: windows.to_vec(),
        }
    }
}

/// Counted classes of some responses.
#[derive(Clone, Copy, Default)]
struct Classes {
    hits: u64,
    misses: u64,
    bypasses: u64,
}

impl Classes {
    fn add(&mut self, c: CacheClass) {
        match c {
            CacheClass::Hit => self.hits += 1,
            CacheClass::Miss => self.misses += 1,
            CacheClass::Bypass => self.bypasses += 1,
            CacheClass::Other | CacheClass::None => {}
        }
    }
}

struct Instance {
    hist: Histogram<u64>,
    classes: Classes,
    requests: u64,
    errors: u64,
}

struct Inner {
    all: Histogram<u64>,
    /// route → raw cache value → (class, latencies)
    hist: HashMap<String, HashMap<String, (CacheClass, Histogram<u64>)>>,
    statuses: BTreeMap<u16, u64>,
    seconds: Vec<(Second, Histogram<u64>)>,
    instances: Vec<Instance>,
}

/// Thread-safe recorder shared by every virtual user.
pub struct Recorder {
    started: Instant,
    count: AtomicU64,
    vocab: CacheVocab,
    hosts: Vec<String>,
    stale: StaleChecker,
    inner: Mutex<Inner>,
}

pub(crate) fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// A histogram as base64 of its V2 + deflate serialization.
pub(crate) fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut buf = Vec::new();
    hdrhistogram::serialization::V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("a histogram serializes into memory");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// The histogram of [`encode`].
pub(crate) fn decode(s: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("not base64: {e}"))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HDR histogram: {e:?}"))
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder for one host and our API's cache vocabulary; the timeline starts
    /// now.
    pub fn new() -> Self {
        Self::with(CacheVocab::default(), vec![String::new()], (0, 1))
    }

    /// An empty recorder for `hosts` (the API instances, at least one), reading cache
    /// status with `vocab`; its writers take the members of `shard` (`(k, n)`: `id % n
    /// == k`).
    pub fn with(vocab: CacheVocab, hosts: Vec<String>, shard: (u64, u64)) -> Self {
        let hosts = if hosts.is_empty() {
            vec![String::new()]
        } else {
            hosts
        };
        let started = Instant::now();
        Self {
            started,
            count: AtomicU64::new(0),
            stale: StaleChecker::new(started, &crate::stale::new_tag(), shard),
            inner: Mutex::new(Inner {
                all: hist(),
                hist: HashMap::new(),
                statuses: BTreeMap::new(),
                seconds: Vec::new(),
                instances: hosts
                    .iter()
                    .map(|_| Instance {
                        hist: hist(),
                        classes: Classes::default(),
                        requests: 0,
                        errors: 0,
                    })
                    .collect(),
            }),
            vocab,
            hosts,
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

    /// The cache-status vocabulary.
    pub fn vocab(&self) -> &CacheVocab {
        &self.vocab
    }

    /// The hosts (API instances).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The stale-read checker.
    pub fn stale(&self) -> &StaleChecker {
        &self.stale
    }

    /// Records one request with a raw cache status value (classified by the
    /// vocabulary), on the first instance.
    pub fn record(&self, route: &str, cache: Option<&str>, status: Option<u16>, latency: Duration) {
        let class = self.vocab.classify(cache, None);
        self.record_class(route, 0, class, cache, status, latency);
    }

    /// Records one request: its route template, the instance it went to, its cache class
    /// and raw value, its status (`None`: no response) and latency.
    pub fn record_class(
        &self,
        route: &str,
        instance: usize,
        class: CacheClass,
        cache: Option<&str>,
        status: Option<u16>,
        latency: Duration,
    ) {
        let us = (latency.as_micros() as u64).clamp(1, 120_000_000);
        let sec = self.started.elapsed().as_secs() as usize;
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = g.all.record(us);
        let raw = cache.unwrap_or("-");
        let by_value = match g.hist.get_mut(route) {
            Some(m) => m,
            None => g.hist.entry(route.to_string()).or_default(),
        };
        match by_value.get_mut(raw) {
            Some((_, h)) => {
                let _ = h.record(us);
            }
            None => {
                let mut h = hist();
                let _ = h.record(us);
                by_value.insert(raw.to_string(), (class, h));
            }
        }
        *g.statuses.entry(status.unwrap_or(0)).or_default() += 1;
        if let Some(i) = g.instances.get_mut(instance) {
            let _ = i.hist.record(us);
            i.classes.add(class);
            i.requests += 1;
            i.errors += u64::from(!ok);
        }
        while g.seconds.len() <= sec {
            let t = g.seconds.len() as u64;
            g.seconds.push((
                Second {
                    t,
                    ..Default::default()
                },
                hist(),
            ));
        }
        let (s, h) = &mut g.seconds[sec];
        s.requests += 1;
        match class {
            CacheClass::Hit => s.hits += 1,
            CacheClass::Miss => s.misses += 1,
            CacheClass::Bypass => s.bypasses += 1,
            CacheClass::Other | CacheClass::None => {}
        }
        if !ok {
            s.errors += 1;
        }
        let _ = h.record(us);
    }

    /// The results so far, over `duration` of measured time.
    pub fn results(&self, model: &str, duration: Duration) -> LoadResults {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(&String, &String, CacheClass, &Histogram<u64>)> = g
            .hist
            .iter()
            .flat_map(|(route, m)| m.iter().map(move |(v, (c, h))| (route, v, *c, h)))
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let routes: Vec<RouteLatency> = rows
            .iter()
            .map(|(route, cache, class, h)| summary(route, cache, *class, h))
            .collect();
        let statuses = g.statuses.clone();
        let instances: Vec<InstanceFigures> = g
            .instances
            .iter()
            .zip(&self.hosts)
            .map(|(i, host)| instance_figures(host, i.requests, i.errors, i.classes, &i.hist))
            .collect();
        let hdr = HdrSet {
            all: encode(&g.all),
            routes: rows.iter().map(|r| encode(r.3)).collect(),
            instances: g.instances.iter().map(|i| encode(&i.hist)).collect(),
        };
        let timeline = g
            .seconds
            .iter()
            .map(|(s, h)| Second {
                p50_us: quantile(h, 0.5),
                p99_us: quantile(h, 0.99),
                ..s.clone()
            })
            .collect();
        let mut stale = self.stale.report();
        if stale.routes.is_empty() {
            stale.method = String::new();
        }
        assemble(Assembled {
            model,
            duration_s: duration.as_secs_f64(),
            all: &g.all,
            statuses,
            routes,
            timeline,
            instances,
            stale,
            hdr,
            definition: self.vocab.definition(),
            generators: 1,
            windows: Vec::new(),
        })
    }
}

/// What [`assemble`] builds results from.
pub(crate) struct Assembled<'a> {
    pub(crate) model: &'a str,
    pub(crate) duration_s: f64,
    pub(crate) all: &'a Histogram<u64>,
    pub(crate) statuses: BTreeMap<u16, u64>,
    pub(crate) routes: Vec<RouteLatency>,
    pub(crate) timeline: Vec<Second>,
    pub(crate) instances: Vec<InstanceFigures>,
    pub(crate) stale: StaleReport,
    pub(crate) hdr: HdrSet,
    pub(crate) definition: String,
    pub(crate) generators: u32,
    pub(crate) windows: Vec<(f64, f64)>,
}

/// Results from their parts: totals, rates and percentiles are derived here, the same
/// way for one run and for merged ones.
pub(crate) fn assemble(a: Assembled<'_>) -> LoadResults {
    let requests: u64 = a.statuses.values().sum();
    let errors: u64 = a
        .statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let mut c = Classes::default();
    for r in &a.routes {
        match r.class {
            CacheClass::Hit => c.hits += r.count,
            CacheClass::Miss => c.misses += r.count,
            CacheClass::Bypass => c.bypasses += r.count,
            CacheClass::Other | CacheClass::None => {}
        }
    }
    let secs = a.duration_s.max(1e-9);
    let mut r = LoadResults {
        model: a.model.to_string(),
        duration_s: (secs * 1000.0).round() / 1000.0,
        requests,
        errors,
        throughput_rps: (requests as f64 / secs * 10.0).round() / 10.0,
        hit_rate: rate(c),
        hit_rate_definition: a.definition,
        p50_us: quantile(a.all, 0.5),
        p99_us: quantile(a.all, 0.99),
        statuses: a.statuses,
        routes: a.routes,
        timeline: a.timeline,
        instances: a.instances,
        stale: a.stale,
        hdr: a.hdr,
        hit_split: None,
        generators: a.generators,
    };
    r.set_fault_windows(&a.windows);
    r
}

fn rate(c: Classes) -> Option<f64> {
    let n = c.hits + c.misses + c.bypasses;
    (n > 0).then(|| c.hits as f64 / n as f64)
}

pub(crate) fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

/// The summary row of one route and cache value.
pub(crate) fn summary(
    route: &str,
    cache: &str,
    class: CacheClass,
    h: &Histogram<u64>,
) -> RouteLatency {
    RouteLatency {
        route: route.to_string(),
        cache: cache.to_string(),
        class,
        count: h.len(),
        p50_us: quantile(h, 0.5),
        p90_us: quantile(h, 0.9),
        p99_us: quantile(h, 0.99),
        p999_us: quantile(h, 0.999),
        max_us: h.max(),
        mean_us: (h.mean() * 10.0).round() / 10.0,
    }
}

fn instance_figures(
    host: &str,
    requests: u64,
    errors: u64,
    c: Classes,
    h: &Histogram<u64>,
) -> InstanceFigures {
    InstanceFigures {
        host: host.to_string(),
        requests,
        errors,
        hits: c.hits,
        misses: c.misses,
        bypasses: c.bypasses,
        hit_rate: rate(c),
        p50_us: quantile(h, 0.5),
        p99_us: quantile(h, 0.99),
    }
}

/// An instance's figures from merged parts.
pub(crate) fn instance_from(parts: &[&InstanceFigures], h: &Histogram<u64>) -> InstanceFigures {
    let c = Classes {
        hits: parts.iter().map(|p| p.hits).sum(),
        misses: parts.iter().map(|p| p.misses).sum(),
        bypasses: parts.iter().map(|p| p.bypasses).sum(),
    };
    instance_figures(
        &parts.first().map(|p| p.host.clone()).unwrap_or_default(),
        parts.iter().map(|p| p.requests).sum(),
        parts.iter().map(|p| p.errors).sum(),
        c,
        h,
    )
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
