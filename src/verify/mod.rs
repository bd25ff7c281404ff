//! `verify`, the main job, and `load`: bring up the topology, start the membership API in
//! Sentinel mode, warm the cache, load it with goose and (for `verify`) kill the master
//! under that load, then check every gate and write the reports.
//!
//! - [`Profile`]: the sizes of `quick`, `ci` and `full`.
//! - [`run`]: the pipeline; every process it starts is stopped when it returns, fails or
//!   is dropped (Ctrl-C).
//! - [`report`]: the report (JSON schema [`report::SCHEMA`]) and its renderings.

mod cache;
mod instances;
pub(crate) mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtests::{CacheVocab, ClosedConfig, LoadResults, Mix};

use crate::config::HarnessConfig;
use crate::drill::{self, DrillError, DrillKind};
use crate::gate::{self, Targets};
use crate::progress::Progress;
use crate::stack::{Api, StackError};
use crate::topology::{Topology, TopologyError};

/// The built-in targets of `verify` (used without `--targets`).
pub(crate) const DEFAULT_TARGETS: &str = include_str!("../../targets/verify.yaml");

/// Errors that stop a run before it could be judged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    /// The topology failed to start or stop.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The membership API failed to start.
    #[error(transparent)]
    Api(#[from] StackError),
    /// The drill could not run.
    #[error(transparent)]
    Drill(#[from] DrillError),
    /// The load test failed.
    #[error("load test: {0}")]
    Load(#[from] loadtests::LoadError),
    /// Settings out of range.
    #[error("{0}")]
    Config(String),
}

/// Sizes of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Profile {
    /// `quick`, `ci`, `full` or `custom`.
    pub name: String,
    /// Concurrent goose users.
    pub users: usize,
    /// Users started per second.
    pub hatch_rate: f64,
    /// Warm-up load before measuring, seconds (not gated).
    pub warmup_s: usize,
    /// Measured load, seconds.
    pub load_s: usize,
    /// Seconds into the measured load when the master is killed (`None`: no drill).
    pub fault_at_s: Option<u64>,
    /// Share of writer users, percent.
    pub writer_percent: usize,
    /// Think time between transactions, ms (min, max).
    pub think_ms: (u64, u64),
    /// Zipf exponent of member popularity.
    pub zipf_s: f64,
}

impl Profile {
    /// The named profile: `quick` (about two minutes end to end), `ci`, `full`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        let p = |users, warmup_s, load_s, fault_at_s| Profile {
            name: name.to_string(),
            users,
            hatch_rate: 50.0,
            warmup_s,
            load_s,
            fault_at_s: Some(fault_at_s),
            writer_percent: 5,
            think_ms: (20, 80),
            zipf_s: 1.1,
        };
        match name {
            "quick" => Some(p(32, 5, 40, 10)),
            "ci" => Some(p(64, 10, 90, 30)),
            "full" => Some(p(200, 20, 300, 60)),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), VerifyError> {
        let mut p = Vec::new();
        if self.users == 0 || self.load_s == 0 || self.hatch_rate <= 0.0 {
            p.push("users, load seconds and hatch rate must be positive".to_string());
        }
        if self.writer_percent > 100 {
            p.push("writer percent must be 0-100".into());
        }
        if self.think_ms.0 > self.think_ms.1 {
            p.push("think time: min above max".into());
        }
        if let Some(f) = self.fault_at_s {
            if f >= self.load_s as u64 {
                p.push(format!(
                    "the fault ({f} s) must fall inside the load ({} s)",
                    self.load_s
                ));
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(VerifyError::Config(p.join("; ")))
        }
    }

    fn closed(&self, hosts: &[String], vocab: &CacheVocab, run_time_s: usize) -> ClosedConfig {
        ClosedConfig {
            hosts: hosts.to_vec(),
            vocab: vocab.clone(),
            shard: (0, 1),
            users: self.users,
            hatch_rate: self.hatch_rate,
            run_time_s,
            mix: Mix {
                writer_percent: self.writer_percent,
                think: (
                    Duration::from_millis(self.think_ms.0),
                    Duration::from_millis(self.think_ms.1),
                ),
            },
            zipf_s: self.zipf_s,
            only: None,
        }
    }
}

/// What a run is given.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Sizes.
    pub profile: Profile,
    /// Targets (load and drill thresholds).
    pub targets: Targets,
    /// Earlier load results to compare against.
    pub baseline: Option<LoadResults>,
    /// Load these URLs (instances of one API) instead of starting a topology and the API
    /// (no drill then); empty: our own stack.
    pub hosts: Vec<String>,
    /// What the cache status header says.
    pub vocab: CacheVocab,
    /// Members read through the cache before the measured load (after the warm-up).
    pub warm_members: u64,
    /// Members generated into the API's database.
    pub members: u64,
    /// API instances to start (1: in-process; more: separate processes on the same
    /// topology and database, loaded round-robin).
    pub api_instances: usize,
    /// Turns true on Ctrl-C: the drill restores its fault at once (external topologies,
    /// which the pipeline cannot simply tear down).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Told about the topology and the drill as they happen (the console).
    pub watch: Option<std::sync::Arc<dyn drill::Watch>>,
}

/// Runs the pipeline and returns the judged report. Everything started is stopped before
/// it returns, and when the future is dropped.
pub(crate) async fn run(
    cfg: &HarnessConfig,
    opts: &Options,
    progress: &Progress,
) -> Result<report::VerifyReport, VerifyError> {
    opts.profile.check()?;
    if !(1..=16).contains(&opts.api_instances) {
        return Err(VerifyError::Config(format!(
            "API instances: {} is not within 1-16",
            opts.api_instances
        )));
    }
    if !opts.hosts.is_empty() && opts.api_instances > 1 {
        return Err(VerifyError::Config(
            "API instances are started on our own topology; a host to load starts nothing".into(),
        ));
    }
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut phases = Vec::new();
    let mut phase_start = Instant::now();
    let mut mark = |name: &str, phases: &mut Vec<report::Phase>| {
        phases.push(report::Phase {
            name: name.to_string(),
            seconds: (phase_start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        });
        phase_start = Instant::now();
    };
    let external_host = !opts.hosts.is_empty();
    let drill_wanted = opts.profile.fault_at_s.is_some() && !external_host;
    let (step0, steps) = if external_host { (0, 2) } else { (2, 5) };

    let mut cfg = cfg.clone();
    cfg.name = format!("{}-verify", cfg.name);
    let mut stack = None;
    let mut api_prefix = None;
    let hosts: Vec<String> = match external_host {
        true => opts
            .hosts
            .iter()
            .map(|h| h.trim_end_matches('/').to_string())
            .collect(),
        false => {
            progress.step(1, steps, &format!("bringing up topology '{}'", cfg.name));
            let topo = Topology::open(&cfg).await?;
            if topo.is_external() && drill_wanted {
                // The steady state is checked before the load writes anything.
                drill::preflight_on(&topo, DrillKind::KillMaster).await?;
            }
            if let Some(w) = &opts.watch {
                w.topology(topo.state());
            }
            mark("up", &mut phases);
            progress.step(
                2,
                steps,
                &match opts.api_instances {
                    1 => format!(
                        "starting the membership API (SQLite, {} members, Sentinel mode)",
                        opts.members
                    ),
                    n => format!(
                        "starting {n} membership API instances as separate processes (one SQLite database, {} members, Sentinel mode)",
                        opts.members
                    ),
                },
            );
            // On a topology the harness did not start, the API writes under the run's
            // own prefix, removed when it stops.
            let prefix = topo.is_external().then(|| {
                format!(
                    "{}{}:{}:",
                    cfg.key_prefix,
                    if drill_wanted { "verify" } else { "load" },
                    drill::new_run_id()
                )
            });
            let api = match Api::start(&topo, opts.members, prefix.as_deref(), opts.api_instances)
                .await
            {
                Ok(api) => api,
                Err(e) => {
                    // Instances that started before one failed may have warmed the cache.
                    if let Some(p) = prefix.as_deref() {
                        remove_api_keys(&topo, p).await;
                    }
                    return Err(e.into());
                }
            };
            api_prefix = prefix;
            mark("api start", &mut phases);
            let bases = api.hosts();
            if bases.len() > 1 {
                progress.note(&format!(
                    "{} API instances started: {}",
                    bases.len(),
                    bases.join(", ")
                ));
            }
            stack = Some((topo, api));
            bases
        }
    };
    let host = hosts.join(", ");
    let p = &opts.profile;
    let warmup = if p.warmup_s > 0 {
        progress.step(
            step0 + 1,
            steps,
            &format!(
                "warm-up: {} users for {} s against {host}",
                p.users, p.warmup_s
            ),
        );
        let r = match loadtests::run_closed(&p.closed(&hosts, &opts.vocab, p.warmup_s)).await {
            Ok(r) => r,
            Err(e) => {
                stop_stack(stack.take(), api_prefix.as_deref()).await?;
                return Err(e.into());
            }
        };
        mark("warm-up", &mut phases);
        Some(r)
    } else {
        None
    };

    progress.step(
        step0 + 2,
        steps,
        &format!(
            "load: {} users for {} s{}",
            p.users,
            p.load_s,
            match (drill_wanted, p.fault_at_s) {
                (true, Some(f)) => format!(", killing the master at {f} s"),
                _ => String::new(),
            }
        ),
    );
    if opts.warm_members > 0 {
        progress.note(&format!(
            "reading members 1..={} through the cache of {host}",
            opts.warm_members
        ));
        if let Err(e) = loadtests::warm_members(&hosts, opts.warm_members).await {
            stop_stack(stack.take(), api_prefix.as_deref()).await?;
            return Err(e.into());
        }
    }
    let load_cfg = p.closed(&hosts, &opts.vocab, p.load_s);
    let rec = Arc::new(load_cfg.recorder());
    let load = async {
        // On an external topology Ctrl-C ends the load too (the drill restores its fault
        // on the same signal), so that the API's keys are removed at once.
        let mut stop = opts.stop.clone();
        let run = loadtests::run_closed_into(&load_cfg, Arc::clone(&rec));
        match stop.as_mut() {
            Some(s) => tokio::select! {
                r = run => r.map_err(VerifyError::from),
                _ = s.wait_for(|v| *v) => Err(VerifyError::Config("interrupted".into())),
            },
            None => run.await.map_err(VerifyError::from),
        }
    };
    let ticker = progress.load_bar(p.load_s as u64 + p.users as u64 / p.hatch_rate as u64, &rec);
    let drill_fut = async {
        match (&mut stack, p.fault_at_s) {
            (Some((topo, _)), Some(at)) if drill_wanted => {
                let run = drill::run_on(
                    topo,
                    DrillKind::KillMaster,
                    1,
                    Duration::from_secs(at),
                    false,
                    opts.watch.clone(),
                    opts.stop.clone(),
                )
                .await?;
                Ok::<_, VerifyError>(Some(run))
            }
            _ => Ok(None),
        }
    };
    let (load, drill_run) = tokio::join!(load, drill_fut);
    ticker.finish();
    mark("load", &mut phases);
    // Stopped (and an external topology's API keys removed) before any error returns.
    let had_stack = stack.is_some();
    if had_stack {
        progress.step(steps, steps, "stopping the API and the topology");
    }
    let cleanup = stop_stack(stack.take(), api_prefix.as_deref()).await?;
    if had_stack {
        mark("down", &mut phases);
    }
    let mut load = load?;
    let drill_run = drill_run?;

    let fault_window = drill_run.as_ref().and_then(|r| {
        let at = r.fault_instant?.checked_duration_since(rec.started())?;
        let from = at.as_secs_f64();
        let to = match r.figures.heal_ms {
            Some(h) => from + h / 1000.0,
            None => load.duration_s.max(from),
        };
        Some((from, to))
    });
    load.set_fault_windows(&fault_window.into_iter().collect::<Vec<_>>());
    let drill_report = drill_run.map(|run| {
        let gates = gate::merge_drill_gates(&cfg.drill.gates, &opts.targets.drill);
        drill::report::build_with_gates(&cfg, DrillKind::KillMaster, vec![run], &gates)
    });
    // Our own API is held to no stale read at all; another one only when asked.
    let mut targets = opts.targets.clone();
    if !external_host && targets.max_stale_reads.is_none() {
        targets.max_stale_reads = Some(0);
    }
    let mut verdicts = gate::evaluate(&load, &targets, opts.baseline.as_ref());
    if let Some(d) = &drill_report {
        verdicts.extend(gate::drill_verdicts(d));
    } else if drill_wanted {
        verdicts.push(gate::Verdict {
            name: "drill kill-master".into(),
            measured: None,
            required: "runs".into(),
            passed: false,
            detail: Some("the drill did not run".into()),
        });
    }

    let passed = verdicts.iter().all(|v| v.passed);
    Ok(report::VerifyReport {
        schema: report::SCHEMA,
        kind: if drill_wanted { "verify" } else { "load" },
        profile: p.clone(),
        host: external_host.then(|| host.clone()),
        members: opts.members,
        started_unix_s: started_unix,
        duration_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        phases,
        warmup,
        load,
        fault_window_s: fault_window,
        drill: drill_report,
        verdicts,
        passed,
        cleanup,
        output_dir: PathBuf::new(),
    })
}
/// Stops the API and the topology of `stack`; on an external topology, first removes the
/// API's keys under `prefix` (returned).
async fn stop_stack(
    stack: Option<(Topology, Api)>,
    prefix: Option<&str>,
) -> Result<Option<crate::topology::keys::Cleanup>, VerifyError> {
    let Some((topo, api)) = stack else {
        return Ok(None);
    };
    api.stop().await;
    let mut cleanup = None;
    if let Some(prefix) = prefix {
        cleanup = Some(remove_api_keys(&topo, prefix).await);
    }
    topo.down().await?;
    Ok(cleanup)
}

/// Removes the API's keys under `prefix` from `topo`'s current master.
async fn remove_api_keys(topo: &Topology, prefix: &str) -> crate::topology::keys::Cleanup {
    let master = topo.status().await.current_master;
    let login = topo.state().credentials().data;
    crate::topology::keys::remove_prefix(master.as_deref(), &login, prefix).await
}
