//! # loadtests
//!
//! goose load tests for the membership API contract. They speak only HTTP, so they can
//! be pointed at any backend that implements the same contract.
//!
//! # Layout
//!
//! - `recorder`: every request's latency in microseconds (hdrhistogram) per route
//!   template, cache status value and API instance, status codes, a per-second timeline,
//!   the hit rate; histograms serialized for exact merging.
//! - `cache_status`: which header and values mean hit, miss, bypass ([`CacheVocab`],
//!   presets for our API, nginx, Varnish, CDNs, Cloudflare).
//! - `stale`: the stale-read checker (read-your-writes, bounded staleness, monotonic
//!   reads) over what the cache served.
//! - `merge`: several generators' results as one run (exact, through the histograms).
//! - `mix`: Zipf-skewed popularity and a lock-free random source.
//! - `scenarios`: dashboard, member lookup, lookup and writer users.
//! - [`run_closed`]: a goose run (closed model: N users with think time).
//! - [`run_open`]: a fixed arrival rate (open model), latency measured from each
//!   request's intended send time so that overload is not hidden.

mod cache_status;
mod merge;
mod mix;
mod recorder;
mod scenarios;
mod stale;

use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::GooseAttack;
use serde_json::Value;

pub use cache_status::{CacheClass, CacheVocab, VocabError, PRESETS};
pub use merge::{merge, MergeError};
pub use recorder::{
    HdrSet, HitSplit, InstanceFigures, LoadResults, Recorder, RouteLatency, Second,
};
pub use scenarios::Mix;
pub use stale::{StaleExample, StaleReport, StaleRoute};

/// Raises this process's soft limit of open files to its hard limit: every virtual user
/// holds a connection, and soft limits are often 1024 where hard ones are far higher.
/// Returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    use rlimit::Resource;
    let Ok((soft, hard)) = Resource::NOFILE.get() else {
        return 0;
    };
    if soft < hard && Resource::NOFILE.set(hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// Errors of a load run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target did not answer the catalog requests like the API contract says.
    #[error("target {host} does not serve the membership API contract: {detail}")]
    Target {
        /// Base URL.
        host: String,
        /// What went wrong.
        detail: String,
    },
    /// goose refused the configuration or failed.
    #[error("goose: {0}")]
    Goose(String),
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
}

/// A closed-model run.
#[derive(Debug, Clone)]
pub struct ClosedConfig {
    /// Base URLs of the API instances, e.g. `http://127.0.0.1:5000` (at least one; users
    /// are spread round-robin over them).
    pub hosts: Vec<String>,
    /// What the cache status header says.
    pub vocab: CacheVocab,
    /// This generator's shard of the members it writes: `(k, n)`, members with
    /// `id % n == k` (`(0, 1)`: all).
    pub shard: (u64, u64),
    /// Concurrent virtual users.
    pub users: usize,
    /// Users started per second.
    pub hatch_rate: f64,
    /// Run time after hatching, seconds.
    pub run_time_s: usize,
    /// Scenario mix and think time.
    pub mix: Mix,
    /// Zipf exponent of member popularity.
    pub zipf_s: f64,
    /// Request only this path instead of the scenario mix.
    pub only: Option<String>,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client always builds")
}

async fn get_json(client: &reqwest::Client, host: &str, path: &str) -> Result<Value, LoadError> {
    let err = |d: String| LoadError::Target {
        host: host.to_string(),
        detail: d,
    };
    let resp = client
        .get(format!("{host}{path}"))
        .send()
        .await
        .map_err(|e| err(format!("GET {path}: {e}")))?;
    if !resp.status().is_success() {
        return Err(err(format!("GET {path}: HTTP {}", resp.status())));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| err(format!("GET {path}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| err(format!("GET {path}: not JSON: {e}")))
}

/// Learns the member count and some ID numbers from the target.
pub(crate) async fn catalog(host: &str, zipf_s: f64) -> Result<scenarios::Catalog, LoadError> {
    let client = http();
    let stats = get_json(&client, host, "/api/v1/statistics/system").await?;
    let members = stats["total_members"]
        .as_u64()
        .ok_or_else(|| LoadError::Target {
            host: host.to_string(),
            detail: "statistics/system has no total_members".into(),
        })? as usize;
    let mut id_numbers: Vec<(u64, String)> = Vec::new();
    for page in 1..=10 {
        let list = get_json(
            &client,
            host,
            &format!("/api/v1/members?page_size=100&page={page}"),
        )
        .await?;
        let batch: Vec<(u64, String)> = list["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["id"].as_u64()?, m["id_number"].as_str()?.to_string())))
            .collect();
        if batch.is_empty() {
            break;
        }
        id_numbers.extend(batch);
    }
    Ok(scenarios::Catalog {
        members,
        id_numbers,
        zipf_s,
    })
}

impl ClosedConfig {
    /// The first host (the catalog is read from it).
    pub fn host(&self) -> &str {
        self.hosts.first().map(String::as_str).unwrap_or("")
    }

    /// A recorder for this run: its hosts, vocabulary and shard.
    pub fn recorder(&self) -> Recorder {
        Recorder::with(self.vocab.clone(), self.hosts.clone(), self.shard)
    }

    fn check(&self) -> Result<(), LoadError> {
        if self.users == 0 || self.run_time_s == 0 || self.hatch_rate <= 0.0 {
            return Err(LoadError::Config(
                "users, run time and hatch rate must be positive".into(),
            ));
        }
        if self.hosts.is_empty() {
            return Err(LoadError::Config("no host to load".into()));
        }
        if self.shard.1 == 0 || self.shard.0 >= self.shard.1 {
            return Err(LoadError::Config(format!(
                "shard {}/{}: expected K/N with K below N",
                self.shard.0, self.shard.1
            )));
        }
        self.vocab
            .validate()
            .map_err(|e| LoadError::Config(e.to_string()))
    }
}

/// Runs goose: `users` virtual users over the scenarios for `run_time_s` after hatching.
/// goose's controllers (telnet/WebSocket), its own metrics and report printing are off.
pub async fn run_closed(cfg: &ClosedConfig) -> Result<LoadResults, LoadError> {
    run_closed_into(cfg, Arc::new(cfg.recorder())).await
}

/// [`run_closed`] recording into `rec` (made by [`ClosedConfig::recorder`]), which the
/// caller can watch while the run goes on (progress) and whose start places other events
/// on the results' timeline.
pub async fn run_closed_into(
    cfg: &ClosedConfig,
    rec: Arc<Recorder>,
) -> Result<LoadResults, LoadError> {
    cfg.check()?;
    let cat = catalog(cfg.host(), cfg.zipf_s).await?;
    let g = |e: goose::GooseError| LoadError::Goose(e.to_string());
    let mut attack =
        GooseAttack::initialize_with_config(GooseConfiguration::default()).map_err(g)?;
    match &cfg.only {
        Some(path) => attack = attack.register_scenario(scenarios::single(&rec, path).map_err(g)?),
        None => {
            for s in scenarios::scenarios(&rec, &cat, &cfg.mix).map_err(g)? {
                attack = attack.register_scenario(s);
            }
        }
    }
    let hatch = format!("{}", cfg.hatch_rate);
    let attack = *attack
        .set_default(GooseDefault::Host, cfg.host())
        .map_err(g)?
        .set_default(GooseDefault::Users, cfg.users)
        .map_err(g)?
        .set_default(GooseDefault::HatchRate, hatch.as_str())
        .map_err(g)?
        .set_default(GooseDefault::RunTime, cfg.run_time_s)
        .map_err(g)?
        .set_default(GooseDefault::NoTelnet, true)
        .map_err(g)?
        .set_default(GooseDefault::NoWebSocket, true)
        .map_err(g)?
        .set_default(GooseDefault::NoPrintMetrics, true)
        .map_err(g)?
        .set_default(GooseDefault::NoResetMetrics, true)
        .map_err(g)?
        // Speed: goose's own metrics are never read (the recorder has every request in
        // µs); aggregating them cost the run a message and a map update per transaction.
        .set_default(GooseDefault::NoMetrics, true)
        .map_err(g)?
        .set_default(GooseDefault::Quiet, 1usize)
        .map_err(g)?;
    let started = Instant::now();
    attack.execute().await.map_err(g)?;
    Ok(rec.results("closed", started.elapsed()))
}

/// An open-model run.
#[derive(Debug, Clone)]
pub struct OpenConfig {
    /// Base URL.
    pub host: String,
    /// Requests per second.
    pub rate: f64,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Most requests in flight; requests due while at the limit are counted as errors
    /// (status 0) instead of silently waiting.
    pub max_in_flight: usize,
    /// Zipf exponent of member popularity.
    pub zipf_s: f64,
}

/// Sends requests at a fixed arrival rate regardless of how fast they complete; each
/// latency runs from the request's intended send time, so queueing shows. The mix: 30%
/// statistics/system, 20% analytics/dashboard, 30% members/{id} and 10%
/// members/by-id-number (Zipf-skewed), 10% lookups/provinces.
pub async fn run_open(cfg: &OpenConfig) -> Result<LoadResults, LoadError> {
    run_open_into(cfg, Arc::new(Recorder::new())).await
}

/// [`run_open`] recording into `rec`.
pub async fn run_open_into(cfg: &OpenConfig, rec: Arc<Recorder>) -> Result<LoadResults, LoadError> {
    if cfg.rate <= 0.0 || cfg.duration_s <= 0.0 || cfg.max_in_flight == 0 {
        return Err(LoadError::Config(
            "rate, duration and max in flight must be positive".into(),
        ));
    }
    let cat = catalog(&cfg.host, cfg.zipf_s).await?;
    let zipf = Arc::new(mix::Zipf::new(cat.members, cat.zipf_s));
    let idn_zipf = mix::Zipf::new(cat.id_numbers.len().max(1), cat.zipf_s);
    let client = http();
    let sem = Arc::new(tokio::sync::Semaphore::new(cfg.max_in_flight));
    let total = (cfg.rate * cfg.duration_s).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / cfg.rate);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (route, path) = match i % 10 {
            0..=2 => (
                "/api/v1/statistics/system",
                "/api/v1/statistics/system".to_string(),
            ),
            3..=4 => (
                "/api/v1/analytics/dashboard",
                "/api/v1/analytics/dashboard".to_string(),
            ),
            5..=7 => (
                "/api/v1/members/{id}",
                format!("/api/v1/members/{}", zipf.sample()),
            ),
            8 if !cat.id_numbers.is_empty() => (
                "/api/v1/members/by-id-number/{id_number}",
                format!(
                    "/api/v1/members/by-id-number/{}",
                    cat.id_numbers[idn_zipf.sample() - 1].1
                ),
            ),
            _ => (
                "/api/v1/lookups/provinces",
                "/api/v1/lookups/provinces".to_string(),
            ),
        };
        let Ok(permit) = Arc::clone(&sem).try_acquire_owned() else {
            rec.record(route, None, None, due.elapsed());
            continue;
        };
        let (client, rec, host) = (client.clone(), Arc::clone(&rec), cfg.host.clone());
        tasks.spawn(async move {
            let resp = client.get(format!("{host}{path}")).send().await;
            match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let (class, raw) = rec.vocab().read(r.headers());
                    let _ = r.bytes().await;
                    rec.record_class(route, 0, class, raw.as_deref(), Some(status), due.elapsed());
                }
                Err(_) => rec.record_class(route, 0, CacheClass::None, None, None, due.elapsed()),
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(rec.results("open", start.elapsed()))
}

/// Loads members `1..=n` (the most popular under the Zipf mix) through the cache of
/// every host, 16 at a time, before a measurement. Returns how many answered 2xx.
pub async fn warm_members(hosts: &[String], n: u64) -> Result<u64, LoadError> {
    use futures_util::StreamExt as _;
    let client = http();
    let ok = futures_util::stream::iter(hosts.iter().flat_map(|h| (1..=n).map(move |id| (h, id))))
        .map(|(h, id)| {
            let client = client.clone();
            async move {
                client
                    .get(format!("{h}/api/v1/members/{id}"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(16)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    if ok == 0 && n > 0 {
        return Err(LoadError::Target {
            host: hosts.join(", "),
            detail: format!("none of members 1..={n} could be read"),
        });
    }
    Ok(ok as u64)
}

/// Column headers of [`route_rows`].
pub const ROUTE_HEADERS: [&str; 9] = [
    "route",
    "cache status",
    "class",
    "count",
    "p50 µs",
    "p90 µs",
    "p99 µs",
    "p99.9 µs",
    "max µs",
];

/// One row per route and X-Cache value, as text cells under [`ROUTE_HEADERS`].
pub fn route_rows(r: &LoadResults) -> Vec<Vec<String>> {
    r.routes
        .iter()
        .map(|x| {
            vec![
                x.route.clone(),
                x.cache.clone(),
                x.class.as_str().to_string(),
                x.count.to_string(),
                x.p50_us.to_string(),
                x.p90_us.to_string(),
                x.p99_us.to_string(),
                x.p999_us.to_string(),
                x.max_us.to_string(),
            ]
        })
        .collect()
}

/// The results as a terminal table, one row per route and cache status value, then the
/// stale reads and the instances.
pub fn table(r: &LoadResults) -> String {
    use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(ROUTE_HEADERS.to_vec());
    for row in route_rows(r) {
        t.add_row(row);
    }
    let mut out = format!(
        "{} model: {} requests in {:.1} s = {:.1} req/s, {} errors, hit rate {}\n{t}\n",
        r.model,
        r.requests,
        r.duration_s,
        r.throughput_rps,
        r.errors,
        r.hit_rate
            .map(|h| format!("{:.1}%", h * 100.0))
            .unwrap_or_else(|| "-".into())
    );
    if !r.hit_rate_definition.is_empty() {
        out.push_str(&format!("{}\n", r.hit_rate_definition));
    }
    out.push_str(&stale_text(&r.stale));
    if r.instances.len() > 1 {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
            "instance", "requests", "errors", "hit rate", "p50 µs", "p99 µs",
        ]);
        for i in &r.instances {
            t.add_row(vec![
                i.host.clone(),
                i.requests.to_string(),
                i.errors.to_string(),
                i.hit_rate
                    .map(|h| format!("{:.1}%", h * 100.0))
                    .unwrap_or_else(|| "-".into()),
                i.p50_us.to_string(),
                i.p99_us.to_string(),
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    out
}

/// The stale reads as text: per route, then the first examples.
pub fn stale_text(s: &StaleReport) -> String {
    use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
    if s.routes.is_empty() {
        return "stale reads: nothing to check (no member was written and read)\n".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
        "route",
        "checked",
        "across instances",
        "stale",
        "rate",
        "not judged",
    ]);
    for r in &s.routes {
        t.add_row(vec![
            r.route.clone(),
            r.checked.to_string(),
            r.cross_instance.to_string(),
            r.violations.to_string(),
            format!("{:.2}%", r.rate() * 100.0),
            r.unjudged.to_string(),
        ]);
    }
    let mut out = format!(
        "stale reads: {} of {} checked reads\n{t}\n",
        s.violations(),
        s.checked()
    );
    for e in &s.examples {
        out.push_str(&format!(
            "  {} at {:.1} s: {} member {} via instance {}: expected {:?}, served {:?} ({:.0} ms after it was acknowledged)\n",
            e.kind, e.t_s, e.route, e.member, e.instance, e.expected, e.served, e.age_ms
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn fd_limit_is_raised_to_the_hard_limit() {
        let soft = super::raise_fd_limit();
        let (cur, max) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(soft, cur);
        assert_eq!(cur, max);
    }
}
