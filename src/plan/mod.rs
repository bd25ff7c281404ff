//! Capacity planning: step an open-model load up until the p99 or the error rate breaks
//! the SLO, bisect the knee, confirm it, and project Redis memory for other member counts
//! from the measured bytes per cached member.
//!
//! - [`run`]: the search on our own topology and API.
//! - `knee`: the search itself, a pure function of a "measure this rate" callback.
//! - [`Memory`] / [`project`]: measured bytes per key and the projection.
//! - [`report`]: renderings ([`report::terminal`], [`report::markdown`],
//!   [`report::html_page`]).

pub(crate) mod knee;
pub(crate) mod report;

use std::sync::Arc;
use std::time::Duration;

use loadtests::{OpenConfig, Recorder};
use serde::Serialize;

use crate::config::HarnessConfig;
use crate::progress::Progress;
use crate::stack::{ApiServer, StackError};
use crate::topology::{probe, Topology, TopologyError};

/// Errors that stop a plan before it could report.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// Options out of range; nothing was started.
    #[error("plan: {0}")]
    Options(&'static str),
    /// The topology failed to start or stop.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The membership API failed to start.
    #[error(transparent)]
    Api(#[from] StackError),
    /// The load generator failed.
    #[error("load test: {0}")]
    Load(#[from] loadtests::LoadError),
    /// Reading the master's memory failed.
    #[error("memory probe: {0}")]
    MemoryProbe(#[from] redis::RedisError),
}

/// Identifier and version of the JSON layout.
pub(crate) const SCHEMA: &str = "redis-harness/plan-report/v1";

/// What the search is held to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanOptions {
    /// Highest allowed p99 over all requests, µs.
    pub slo_p99_us: u64,
    /// Highest allowed error rate (0-1).
    pub max_error_rate: f64,
    /// Seconds per step.
    pub step_s: f64,
    /// First rate, requests per second.
    pub start_rate: f64,
    /// Never offer more than this.
    pub max_rate: f64,
    /// Bisection stops when the bracket is narrower than this ratio (e.g. 1.1).
    pub resolution: f64,
    /// Warm-up seconds at the start rate before the first step (not judged).
    pub warmup_s: f64,
    /// Members generated into the API's database.
    pub members: u64,
    /// Member counts to project Redis memory for.
    pub project_members: Vec<u64>,
    /// Requests in flight at most (requests due beyond it count as errors).
    pub max_in_flight: usize,
}

/// One load step.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    /// `ramp`, `bisect` or `confirm`.
    pub phase: &'static str,
    /// Offered rate, requests per second.
    pub offered_rps: f64,
    /// Completed per second.
    pub achieved_rps: f64,
    /// Median, µs (from the intended send time).
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Errors / requests.
    pub error_rate: f64,
    /// Hit rate.
    pub hit_rate: Option<f64>,
    /// Within the SLO.
    pub ok: bool,
}

/// Measured memory of the master after the run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Memory {
    /// `used_memory`.
    pub used_memory: u64,
    /// `used_memory_dataset`.
    pub used_memory_dataset: u64,
    /// Keys in the database.
    pub keys: u64,
    /// Cached `members/{id}` entries.
    pub member_keys: u64,
    /// Mean `MEMORY USAGE` of a sampled `members/{id}` entry, bytes.
    pub bytes_per_member_key: f64,
    /// Cached `members/by-id-number/...` entries.
    pub id_number_keys: u64,
    /// Mean `MEMORY USAGE` of a sampled by-id-number entry, bytes.
    pub bytes_per_id_number_key: f64,
    /// Entries sampled for the means.
    pub sampled: u64,
}

/// Projected Redis memory for a member count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Projection {
    /// Members.
    pub members: u64,
    /// Every member cached under both keys, bytes per data node.
    pub all_cached_bytes: u64,
    /// The same with 20% of the members hot (cached), bytes per data node.
    pub hot20_bytes: u64,
}

/// The plan report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The search settings.
    pub options: PlanOptions,
    /// Every step in order.
    pub steps: Vec<Step>,
    /// Highest offered rate that met the SLO and was confirmed.
    pub knee_rps: Option<f64>,
    /// Whether the knee held again when re-run.
    pub confirmed: bool,
    /// Measured memory.
    pub memory: Memory,
    /// Projections.
    pub projections: Vec<Projection>,
    /// Data nodes (master + replicas) each holding the whole dataset.
    pub data_nodes: u32,
}

/// Projects memory: the non-member part stays, member entries scale with the count.
pub(crate) fn project(m: &Memory, members: u64) -> Projection {
    let member_total = m.member_keys as f64 * m.bytes_per_member_key
        + m.id_number_keys as f64 * m.bytes_per_id_number_key;
    let fixed = (m.used_memory as f64 - member_total).max(0.0);
    let per_member = m.bytes_per_member_key + m.bytes_per_id_number_key;
    Projection {
        members,
        all_cached_bytes: (fixed + members as f64 * per_member) as u64,
        hot20_bytes: (fixed + members as f64 * 0.2 * per_member) as u64,
    }
}

async fn step(
    host: &str,
    rate: f64,
    o: &PlanOptions,
    phase: &'static str,
    progress: &Progress,
) -> Result<Step, loadtests::LoadError> {
    let rec = Arc::new(Recorder::new());
    let bar = progress.load_bar(o.step_s.ceil() as u64, &rec);
    let r = loadtests::run_open_into(
        &OpenConfig {
            host: host.to_string(),
            rate,
            duration_s: o.step_s,
            max_in_flight: o.max_in_flight,
            zipf_s: 1.1,
        },
        rec,
    )
    .await;
    bar.finish();
    let r = r?;
    let error_rate = if r.requests > 0 {
        r.errors as f64 / r.requests as f64
    } else {
        1.0
    };
    let s = Step {
        phase,
        offered_rps: rate,
        achieved_rps: r.throughput_rps,
        p50_us: r.p50_us,
        p99_us: r.p99_us,
        error_rate,
        hit_rate: r.hit_rate,
        ok: r.requests > 0 && r.p99_us <= o.slo_p99_us && error_rate <= o.max_error_rate,
    };
    eprintln!(
        "  {phase} {rate:.0} req/s: p99 {} µs, errors {:.2}%, {}",
        s.p99_us,
        error_rate * 100.0,
        if s.ok {
            "within the SLO"
        } else {
            "beyond the SLO"
        }
    );
    Ok(s)
}

async fn memory(topo: &Topology) -> Result<Memory, redis::RedisError> {
    let m = &topo.state().initial_master().spec;
    let login = topo.state().credentials().data;
    let mut c = probe::connect(&m.host, m.port, &login, Duration::from_secs(2)).await?;
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await?;
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut mem = Memory {
        used_memory: field("used_memory"),
        used_memory_dataset: field("used_memory_dataset"),
        keys: redis::cmd("DBSIZE").query_async(&mut c).await?,
        ..Default::default()
    };
    let mut cursor = 0u64;
    let (mut by_id, mut by_idn) = (Vec::new(), Vec::new());
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("*member:/api/v1/members/*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await?;
        for k in keys {
            if k.contains("/by-id-number/") {
                by_idn.push(k);
            } else {
                by_id.push(k);
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    mem.member_keys = by_id.len() as u64;
    mem.id_number_keys = by_idn.len() as u64;
    for (keys, out) in [
        (&by_id, &mut mem.bytes_per_member_key),
        (&by_idn, &mut mem.bytes_per_id_number_key),
    ] {
        let sample: Vec<&String> = keys.iter().take(200).collect();
        let mut total = 0u64;
        let mut n = 0u64;
        for k in sample {
            let b: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(k)
                .query_async(&mut c)
                .await?;
            if let Some(b) = b {
                total += b;
                n += 1;
            }
        }
        *out = if n > 0 { total as f64 / n as f64 } else { 0.0 };
        mem.sampled += n;
    }
    Ok(mem)
}

/// Brings up the topology and the API, warms up, searches the knee, measures memory,
/// tears everything down.
pub(crate) async fn run(
    cfg: &HarnessConfig,
    o: &PlanOptions,
    progress: &Progress,
) -> Result<PlanReport, PlanError> {
    if o.slo_p99_us == 0
        || o.step_s <= 0.0
        || o.start_rate <= 0.0
        || o.max_rate < o.start_rate
        || o.resolution <= 1.0
        || !(0.0..=1.0).contains(&o.max_error_rate)
    {
        return Err(PlanError::Options(
            "SLO, step and rates must be positive, max rate >= start rate, resolution > 1, error rate 0-1",
        ));
    }
    let mut cfg = cfg.clone();
    cfg.name = format!("{}-plan", cfg.name);
    progress.step(1, 5, &format!("bringing up topology '{}'", cfg.name));
    let topo = Topology::up(&cfg).await?;
    progress.step(2, 5, "starting the membership API");
    let api = ApiServer::start(&topo, o.members, None).await?;
    let host = api.base().to_string();
    progress.step(
        3,
        5,
        &format!("warm-up at {:.0} req/s for {} s", o.start_rate, o.warmup_s),
    );
    if o.warmup_s > 0.0 {
        loadtests::run_open(&OpenConfig {
            host: host.clone(),
            rate: o.start_rate,
            duration_s: o.warmup_s,
            max_in_flight: o.max_in_flight,
            zipf_s: 1.1,
        })
        .await?;
    }
    progress.step(
        4,
        5,
        &format!(
            "searching the highest rate with p99 <= {} µs and errors <= {}%",
            o.slo_p99_us,
            o.max_error_rate * 100.0
        ),
    );
    let knee = knee::search(o, |phase, rate| step(&host, rate, o, phase, progress)).await?;
    progress.step(5, 5, "measuring memory and tearing down");
    let memory = memory(&topo).await?;
    api.stop().await;
    topo.down().await?;
    let projections = o
        .project_members
        .iter()
        .map(|&n| project(&memory, n))
        .collect();
    Ok(PlanReport {
        schema: SCHEMA,
        options: o.clone(),
        confirmed: knee.confirmed(),
        steps: knee.steps,
        knee_rps: knee.knee_rps,
        memory,
        projections,
        data_nodes: 1 + cfg.topology.replicas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_scales_member_entries_and_keeps_the_rest() {
        let m = Memory {
            used_memory: 10_000_000,
            member_keys: 1000,
            bytes_per_member_key: 1000.0,
            id_number_keys: 500,
            bytes_per_id_number_key: 1200.0,
            ..Default::default()
        };
        // Fixed part: 10,000,000 - 1,000,000 - 600,000 = 8,400,000.
        let p = project(&m, 100_000);
        assert_eq!(p.all_cached_bytes, 8_400_000 + 100_000 * 2200);
        assert_eq!(p.hot20_bytes, 8_400_000 + 20_000 * 2200);
    }
}
