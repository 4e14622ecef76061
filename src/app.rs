//! The `run` and `check` commands: spec → plan → executor → output → report.

use std::io::Write;

use anyhow::{Context, Result};
use tracing::{info, warn};

use crate::cli::{CheckArgs, Cli, Command, RunArgs};
use sampo::exec::{self, resolve_threads, ThreadSource};
use sampo::output::{self, OutputWriter, RunInfo};
use sampo::report::{self, Progress};
use sampo::spec::RunSpec;

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
    }
}

/// Threads per rank for a single-process run.
fn local_threads(cli: Option<usize>, spec: &RunSpec) -> (usize, ThreadSource) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok();
    resolve_threads(cli, spec.threads, slurm.as_deref(), cores, 1)
}

fn run(args: RunArgs) -> Result<()> {
    let spec = RunSpec::from_file(&args.spec)?;
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    output::check_target(&target, args.force)?;
    let (threads, source) = local_threads(args.threads, &spec);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sampo-worker-{i}"))
        .build()
        .context("cannot start the thread pool")?;
    let tasks = exec::plan(&spec);
    info!(
        "run `{}`: {} task(s), 1 rank × {threads} thread(s) ({source}), seed {}, output {}",
        spec.name,
        tasks.len(),
        spec.seed,
        target.display()
    );

    let mut writer =
        OutputWriter::create(&target, args.force, &spec, &RunInfo { ranks: 1, threads })?;
    let total: u64 = tasks
        .iter()
        .map(|t| {
            let e = &spec.states[t.state].ensemble;
            (e.walkers * e.steps) as u64
        })
        .sum();
    let mut progress = Progress::new(total, args.quiet);
    let result = exec::run_local(&spec, &tasks, &pool, &mut writer, &mut progress);
    progress.finish();

    let finished = result.map_err(anyhow::Error::from).and_then(|records| {
        writer.write_timings(&spec, &records)?;
        let reports = report::summarize(&spec, &writer, &records)?;
        Ok((records, reports))
    });
    let (records, reports) = match finished {
        Ok(done) => done,
        Err(e) => {
            let partial = writer.abandon(&format!("{e:#}"));
            return Err(e.context(format!(
                "run failed; the incomplete output is left at {}",
                partial.display()
            )));
        }
    };
    let path = writer.finish()?;
    for r in records.iter().filter(|r| r.stats.nan_evaluations > 0) {
        warn!(
            "state `{}` replicate {}: {} of {} evaluations returned NaN (treated as −∞)",
            spec.states[r.task.state].name,
            r.task.replicate,
            r.stats.nan_evaluations,
            r.stats.evaluations
        );
    }
    if !args.quiet {
        let mut out = std::io::stdout().lock();
        report::print_table(&mut out, &reports, spec.replicates)?;
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result<()> {
    let spec = RunSpec::from_file(&args.spec)?;
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    let (threads, source) = local_threads(args.threads, &spec);
    let tasks = exec::plan(&spec);
    let mut out = std::io::stdout().lock();
    writeln!(out, "spec      {} (ok)", spec.path.display())?;
    writeln!(
        out,
        "run       name `{}`, seed {}, {} replicate(s)",
        spec.name, spec.seed, spec.replicates
    )?;
    let status = match output::check_target(&target, false) {
        Ok(()) => "new".to_string(),
        Err(e) => format!("{e}"),
    };
    writeln!(out, "output    {} ({status})", target.display())?;
    writeln!(
        out,
        "layout    1 rank × {threads} thread(s) ({source}); under mpiexec, see README"
    )?;
    writeln!(out, "states")?;
    let width = spec
        .states
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(5);
    writeln!(
        out,
        "  {:<width$} {:>4} {:>7} {:>7} {:>6} {:>4} {:>8}  moves / init / model",
        "name", "dim", "walkers", "steps", "burn", "thin", "cost_us"
    )?;
    for st in &spec.states {
        let e = &st.ensemble;
        let moves: Vec<String> = e
            .moves
            .iter()
            .map(|m| format!("{}×{}", m.weight, move_label(&m.kind)))
            .collect();
        let init = match &e.init {
            sampo::sampler::Init::Prior => "prior".to_string(),
            sampo::sampler::Init::Ball { .. } => "ball".to_string(),
        };
        writeln!(
            out,
            "  {:<width$} {:>4} {:>7} {:>7} {:>6} {:>4} {:>8}  {} / {init} / {}",
            st.name,
            st.dim(),
            e.walkers,
            e.steps,
            e.burn,
            e.thin,
            st.cost_us,
            moves.join(" + "),
            model_name(&st.model),
        )?;
    }
    let bytes: usize = tasks
        .iter()
        .map(|t| {
            let st = &spec.states[t.state];
            st.ensemble.stored_rows() * st.ensemble.walkers * (st.dim() + 1) * 8
        })
        .sum();
    writeln!(
        out,
        "tasks     {} ({} replicate(s) × {} state(s))",
        tasks.len(),
        spec.replicates,
        spec.states.len()
    )?;
    writeln!(
        out,
        "size      about {} (chains and log-probabilities)",
        human_bytes(bytes as f64)
    )?;
    Ok(())
}

fn model_name(m: &sampo::spec::ModelSpec) -> &'static str {
    use sampo::spec::ModelSpec::*;
    match m {
        Gaussian { .. } => "gaussian",
        GaussianMixture { .. } => "gaussian-mixture",
        Rosenbrock { .. } => "rosenbrock",
        Funnel { .. } => "funnel",
        PolynomialRegression { .. } => "polynomial-regression",
    }
}

/// A move as a short label, e.g. `stretch(a=2)`.
fn move_label(m: &sampo::sampler::Move) -> String {
    use sampo::sampler::Move::*;
    match m {
        Stretch { a } => format!("stretch(a={a})"),
        De { gamma0, sigma } => format!("de(gamma0={gamma0:.3}, sigma={sigma})"),
        Walk { s } => format!("walk(s={s})"),
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}
