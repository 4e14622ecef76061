//! The `run` and `check` commands: spec → plan → executor → output → report.

use std::io::Write;

use std::sync::Arc;

use anyhow::{Context, Result};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use tracing::{info, warn};

use crate::cli::{CheckArgs, Cli, Command, RunArgs};
use sampo::exec::mpi as mpi_exec;
use sampo::exec::mpi::PeerExit;
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

/// Threads per rank: `--threads`, `[parallel] threads`, SLURM, or the node's
/// cores shared among its ranks.
fn threads_for(cli: Option<usize>, spec: &RunSpec, ranks_on_node: usize) -> (usize, ThreadSource) {
    let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok();
    resolve_threads(
        cli,
        spec.threads,
        slurm.as_deref(),
        node_cores(),
        ranks_on_node,
    )
}

/// Cores online on this node, whatever this process is bound to.
fn node_cores() -> usize {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        bound_cores()
    }
}

/// Cores this process may run on (its affinity mask).
fn bound_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Walker-steps of the whole run, for progress.
fn total_walker_steps(spec: &RunSpec, tasks: &[exec::Task]) -> u64 {
    tasks
        .iter()
        .map(|t| {
            let e = &spec.states[t.state].ensemble;
            (e.walkers * e.steps) as u64
        })
        .sum()
}

fn run(args: RunArgs) -> Result<()> {
    if mpi_exec::launched_under_mpi() {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
            .context("MPI could not be initialised")?;
        if threading < Threading::Funneled {
            anyhow::bail!("the MPI library provides {threading:?} threading; sampo needs Funneled");
        }
        let world = universe.world();
        if world.size() > 1 {
            return run_mpi(args, &world);
        }
    }
    run_single(args)
}

/// One process: the local executor on a pool of its own.
fn run_single(args: RunArgs) -> Result<()> {
    let spec = RunSpec::from_file(&args.spec)?;
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    output::check_target(&target, args.force)?;
    let (threads, source) = threads_for(args.threads, &spec, 1);
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
    let mut progress = Progress::new(total_walker_steps(&spec, &tasks), args.quiet);
    let result = exec::run_local(&spec, &tasks, &pool, &mut writer, &mut progress);
    progress.finish();
    conclude(
        &spec,
        writer,
        result.map_err(anyhow::Error::from),
        1,
        args.quiet,
    )
}

/// Rank 0 after the executor: timings, summaries, rename into place, table.
/// On failure the output stays `.partial`, marked failed.
fn conclude(
    spec: &RunSpec,
    writer: OutputWriter,
    result: Result<Vec<exec::TaskRecord>>,
    ranks: usize,
    quiet: bool,
) -> Result<()> {
    let finished = result.and_then(|records| {
        writer.write_timings(spec, &records)?;
        let reports = report::summarize(spec, &writer, &records)?;
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
    if ranks > 1 {
        info!(
            "{}",
            report::load_balance(spec, &records, ranks, &mpi_exec::mode(records.len(), ranks))
        );
    }
    if !quiet {
        let mut out = std::io::stdout().lock();
        report::print_table(&mut out, &reports, spec.replicates)?;
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(())
}

/// What rank 0 sends the other ranks once the spec is good.
#[derive(serde::Serialize, serde::Deserialize)]
struct Startup {
    spec: RunSpec,
    threads: Option<usize>,
}

/// Rank 0 reads the spec and creates the output; every rank then runs its
/// part. A bad spec fails on rank 0 with the located error, and every rank
/// leaves with the same exit code.
fn run_mpi(args: RunArgs, world: &SimpleCommunicator) -> Result<()> {
    let rank = world.rank();
    let size = world.size() as usize;
    let (node_ranks, node_rank) = mpi_exec::ranks_on_node(world);

    let mut prepared = None;
    let mut rank0_error = None;
    let verdict = (rank == 0).then(|| {
        let attempt = (|| -> Result<(Vec<u8>, OutputWriter, RunSpec)> {
            let spec = RunSpec::from_file(&args.spec)?;
            let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
            output::check_target(&target, args.force)?;
            let (threads, _) = threads_for(args.threads, &spec, node_ranks);
            let writer = OutputWriter::create(
                &target,
                args.force,
                &spec,
                &RunInfo {
                    ranks: size,
                    threads,
                },
            )?;
            let startup = Startup {
                spec: spec.clone(),
                threads: args.threads,
            };
            Ok((serde_json::to_vec(&startup)?, writer, spec))
        })();
        match attempt {
            Ok((bytes, writer, spec)) => {
                prepared = Some((writer, spec));
                Ok(bytes)
            }
            Err(e) => {
                let code = crate::exit_code(&e);
                rank0_error = Some(e);
                Err(code)
            }
        }
    });
    let payload = match mpi_exec::broadcast_startup(world, verdict) {
        Ok(p) => p,
        Err(code) if rank == 0 => {
            return Err(rank0_error.unwrap_or_else(|| PeerExit(code).into()));
        }
        // Other ranks leave with 0 and let rank 0's exit code speak for the
        // job: a non-zero exit elsewhere makes mpiexec kill rank 0, possibly
        // before it has printed why.
        Err(_) => return Ok(()),
    };
    let startup: Startup =
        serde_json::from_slice(&payload).context("decoding the spec from rank 0")?;
    let spec = Arc::new(startup.spec);
    let (threads, source) = threads_for(startup.threads, &spec, node_ranks);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sampo-worker-{i}"))
        .build_global()
        .context("cannot start the thread pool")?;
    if node_rank == 0 && node_ranks * threads > node_cores() {
        warn!(
            "{node_ranks} rank(s) × {threads} thread(s) on this node oversubscribe its {} core(s)",
            node_cores()
        );
    }
    if threads > bound_cores() {
        warn!(
            "rank {rank} runs {threads} threads but is bound to {} core(s); \
             launch with `mpiexec --bind-to none` or `--map-by slot:PE={threads}` (see README)",
            bound_cores()
        );
    }
    let tasks = exec::plan(&spec);

    if rank != 0 {
        // As above: rank 0 reports a failure and exits non-zero for the job.
        mpi_exec::run_worker(world, &spec, &tasks);
        return Ok(());
    }
    let (mut writer, _) = prepared.expect("rank 0 prepared the run");
    info!(
        "run `{}`: {} task(s), {size} ranks × {threads} thread(s) ({source}), {}, seed {}",
        spec.name,
        tasks.len(),
        match mpi_exec::mode(tasks.len(), size) {
            mpi_exec::Mode::Queue => "tasks from a queue".to_string(),
            mpi_exec::Mode::Groups(g) =>
                format!("walkers shared within {} group(s) of ranks", g.len()),
        },
        spec.seed
    );
    let mut progress = Progress::new(total_walker_steps(&spec, &tasks), args.quiet);
    let result = mpi_exec::run_rank0(world, spec.clone(), &tasks, &mut writer, &mut progress);
    progress.finish();
    match result {
        Ok(records) => conclude(&spec, writer, Ok(records), size, args.quiet),
        Err(failure) if failure.unresponsive.is_empty() => {
            conclude(&spec, writer, Err(failure.error.into()), size, args.quiet)
        }
        Err(failure) => {
            let partial = writer.abandon(&failure.error.to_string());
            eprintln!(
                "error: {}; rank(s) {:?} did not stop within {} s, aborting the job; \
                 the incomplete output is left at {}",
                failure.error,
                failure.unresponsive,
                mpi_exec::STOP_GRACE.as_secs(),
                partial.display()
            );
            world.abort(1)
        }
    }
}

fn check(args: CheckArgs) -> Result<()> {
    let spec = RunSpec::from_file(&args.spec)?;
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    let ranks = args.ranks as usize;
    let per_node = args.ranks_per_node.map_or(ranks, |n| n as usize).min(ranks);
    let (threads, source) = threads_for(args.threads, &spec, per_node);
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
    let mode = match mpi_exec::mode(tasks.len(), ranks) {
        _ if ranks == 1 => "one process".to_string(),
        mpi_exec::Mode::Queue => "tasks from rank 0's queue, longest first".to_string(),
        mpi_exec::Mode::Groups(groups) => {
            let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            format!("fewer tasks than ranks: walkers shared within groups of {sizes:?} rank(s)")
        }
    };
    writeln!(
        out,
        "layout    {ranks} rank(s) × {threads} thread(s) ({source}); {mode}"
    )?;
    if per_node * threads > node_cores() {
        writeln!(
            out,
            "warning   {per_node} rank(s) × {threads} thread(s) per node oversubscribe its {} core(s)",
            node_cores()
        )?;
    }
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
