//! `redis-harness verify` and `redis-harness load`.

use std::process::ExitCode;

use anyhow::Context;

use super::{LoadArgs, RunArgs, VerifyArgs, EXIT_CHECK_FAILED};
use crate::config::HarnessConfig;
use crate::gate::Targets;
use crate::progress::Progress;
use crate::verify::{self, report, Options, Profile};

fn options(args: &RunArgs, default_targets: bool) -> anyhow::Result<Options> {
    let mut profile = Profile::named(&args.profile).with_context(|| {
        format!(
            "unknown profile {:?}: expected quick, ci or full",
            args.profile
        )
    })?;
    if let Some(v) = args.users {
        profile.users = v;
    }
    if let Some(v) = args.run_time {
        profile.load_s = v;
    }
    if let Some(v) = args.warmup {
        profile.warmup_s = v;
    }
    if let Some(v) = args.writer_percent {
        profile.writer_percent = v;
    }
    if let Some(v) = args.think_ms {
        profile.think_ms = v;
    }
    anyhow::ensure!(args.members > 0, "--members must be at least 1");
    let targets = match &args.targets {
        Some(p) => Targets::load(p)?,
        None if default_targets => {
            Targets::parse(verify::DEFAULT_TARGETS, "built-in targets/verify.yaml")?
        }
        None => Targets::default(),
    };
    let baseline = if args.baseline.is_empty() {
        None
    } else {
        Some(super::gate::merged(&args.baseline)?)
    };
    Ok(Options {
        profile,
        targets,
        baseline,
        hosts: Vec::new(),
        vocab: loadtests::CacheVocab::default(),
        warm_members: args.warm_members,
        members: args.members,
        api_instances: args.api_instances,
        watch: None,
        stop: None,
    })
}

async fn execute(
    cfg: HarnessConfig,
    mut opts: Options,
    out: &std::path::Path,
    console: Option<&super::ConsoleFlags>,
) -> anyhow::Result<ExitCode> {
    cfg.validate()
        .map_err(|p| anyhow::anyhow!("invalid settings:\n  - {}", p.join("\n  - ")))?;
    let console = match console {
        Some(flags) => super::console::beside(flags).await?,
        None => None,
    };
    opts.watch = super::console::watcher(&console);
    let progress = Progress::new();
    let mut rep = if cfg.backend == crate::config::BackendKind::External {
        // A topology the harness did not start cannot be torn down: Ctrl-C makes the
        // drill restore its fault at once, and the run ends with its keys removed.
        opts.stop = Some(super::signal::subscribe());
        let rep = match verify::run(&cfg, &opts, &progress).await {
            Ok(rep) => rep,
            Err(verify::VerifyError::Drill(crate::drill::DrillError::Preflight { checks })) => {
                eprint!(
                    "{}",
                    crate::drill::report::checks_text("preflight", &checks)
                );
                eprintln!("the preflight failed; nothing was touched");
                return Ok(ExitCode::from(super::EXIT_PREFLIGHT));
            }
            Err(e) => return Err(e.into()),
        };
        anyhow::ensure!(
            !super::signal::received(),
            "interrupted; the fault was restored and the run's keys removed"
        );
        rep
    } else {
        // Ctrl-C drops the pipeline, which stops the API and kills every node it started.
        tokio::select! {
            r = verify::run(&cfg, &opts, &progress) => r?,
            _ = super::up::shutdown_signal() => anyhow::bail!("interrupted; everything started was stopped"),
        }
    };
    super::console::stop(console).await;
    let files = report::write_all(&mut rep, out)
        .with_context(|| format!("writing the reports into {}", out.display()))?;
    print!("{}", report::terminal(&rep));
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    Ok(if rep.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHECK_FAILED)
    })
}

/// `verify`: the whole pipeline with the kill-master drill and the default targets.
pub(super) async fn run_verify(cfg: HarnessConfig, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut opts = options(&args.run, true)?;
    if let Some(f) = args.fault_at {
        opts.profile.fault_at_s = Some(f);
    }
    if opts.profile.fault_at_s.is_some() {
        super::confirmed(
            &cfg,
            "verify (kill-master under load)",
            args.confirm.as_deref(),
        )?;
    }
    execute(cfg, opts, &args.run.out, Some(&args.console)).await
}

/// `load`: the load alone, against our stack or `--host`.
pub(super) async fn run_load(cfg: HarnessConfig, args: LoadArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.host.is_empty() || args.run.api_instances == 1,
        "--api-instances starts our own API instances; it cannot be combined with --host"
    );
    let mut opts = options(&args.run, false)?;
    opts.profile.fault_at_s = None;
    opts.hosts = args.host.clone();
    opts.vocab = match &args.cache_status {
        Some(p) => loadtests::CacheVocab::preset(p)?,
        None => cfg.load.vocab()?,
    };
    execute(cfg, opts, &args.run.out, None).await
}
