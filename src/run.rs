//! The `run` command: one set-up for one process and for MPI ranks. Rank 0
//! reads the spec and opens the output; every rank learns the spec, loads
//! the plugins and starts its threads; the scheduler runs; rank 0 reports
//! and puts the output in place (or leaves it paused or failed).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mpi::traits::*;
use mpi::Threading;
use tracing::{info, warn};

use crate::cli::RunArgs;
use sampo::exec::mpi::{self as mpi_exec, PeerExit, World};
use sampo::exec::transport::{Alone, MpiTransport, Transport};
use sampo::exec::{
    self, Begin, CheckpointPolicy, ExecSets, Failure, RunEnd, RunStats, Setup, Started,
};
use sampo::jobs::{self, Job, RunSpec};
use sampo::output::{RunInfo, Store};
use sampo::report::{self, Progress};

/// A run that paused (a signal, the wall time) with its checkpoint written:
/// exit 75, and how to go on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Paused(pub String);

pub fn run(args: RunArgs) -> Result<()> {
    exec::signals::install().context("cannot install the signal handlers")?;
    // MPI stays initialised until the run is over (dropping the universe
    // finalises it).
    let mut _universe = None;
    let mut world = World::Alone;
    if mpi_exec::launched_under_mpi() {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
            .context("MPI could not be initialised")?;
        if threading < Threading::Funneled {
            anyhow::bail!("the MPI library provides {threading:?} threading; sampo needs Funneled");
        }
        let comm = universe.world();
        if comm.size() > 1 {
            world = World::Mpi(comm);
        }
        _universe = Some(universe);
    }
    if let (World::Alone, Some(copies)) = (&world, mpi_exec::separate_copies()) {
        return Err(mpi_exec::SeparateCopies(copies).into());
    }
    launch(&args, &world)
}

/// What rank 0 sends the other ranks once the spec is good.
#[derive(serde::Serialize, serde::Deserialize)]
struct Startup {
    spec: RunSpec,
    threads: Option<usize>,
    /// The stage a resumed run begins with, and its carry.
    start: (u32, Vec<u8>),
}

/// Rank 0's part before the others start: the spec read, the output
/// opened, and what the others are told.
struct Prepared {
    startup: Vec<u8>,
    target: PathBuf,
    output: Started,
    timings: ExecSets,
}

/// Rank 0 reads the spec and opens the output; a bad spec fails there with
/// its located error, and every rank leaves with the same exit code.
fn prepare(args: &RunArgs, world: &World, node_ranks: usize) -> Result<Prepared> {
    let spec = Arc::new(RunSpec::from_file_with(&args.spec, &args.set)?);
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    let job = jobs::build(spec.clone());
    let (layout, timings) = exec::layout(job.as_ref());
    layout.check()?;
    let info = RunInfo {
        ranks: world.size(),
        threads: exec::threads_for(args.threads, &spec, node_ranks).0,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        mpi_library: world.library(),
    };
    let begin = match (&args.from, args.resume) {
        (Some(source), _) => Begin::Redo {
            source,
            force: args.force,
        },
        (None, true) => Begin::Resume,
        (None, false) => Begin::New { force: args.force },
    };
    let output = exec::begin(begin, &spec, job.as_ref(), &target, &layout, &info)?;
    let startup = Startup {
        spec: (*spec).clone(),
        threads: args.threads,
        start: output
            .checkpoint
            .as_ref()
            .map_or((0, Vec::new()), |cp| (cp.stage, cp.carry.clone())),
    };
    Ok(Prepared {
        startup: serde_json::to_vec(&startup)?,
        target,
        output,
        timings,
    })
}

fn launch(args: &RunArgs, world: &World) -> Result<()> {
    let started = Instant::now();
    let (rank, size) = (world.rank(), world.size());
    let (node_ranks, node_rank) = world.ranks_on_node();

    let mut prepared = None;
    let mut rank0_error = None;
    let verdict = (rank == 0).then(|| match prepare(args, world, node_ranks) {
        Ok(p) => {
            let bytes = p.startup.clone();
            prepared = Some(p);
            Ok(bytes)
        }
        Err(e) => {
            let code = crate::exit_code(&e);
            rank0_error = Some(e);
            Err(code)
        }
    });
    let payload = match world.broadcast_startup(verdict) {
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
    // Every rank loads the plugins itself (rank 0 did while validating): a
    // library missing on one node or an init failing there stops the job
    // here, before any work, and the rank says why.
    let plugins = spec.prepare_plugins();
    if let Err(e) = &plugins {
        crate::say(&format!("error: rank {rank}: {e}"));
    }
    if !world.all_ok(plugins.is_ok()) {
        if rank != 0 {
            return Ok(());
        }
        if let Some(Prepared { output, .. }) = prepared.take() {
            if args.resume {
                // A resumed file keeps everything: it is only left paused.
                let _ = output.store.pause(&format!(
                    "not resumed: plugins could not be prepared{}",
                    if output.checkpoint.is_some() {
                        ""
                    } else {
                        " (no checkpoint)"
                    }
                ));
            } else {
                output.store.discard();
            }
        }
        crate::say("error: the plugin models could not be prepared on every rank; nothing was run");
        return Err(PeerExit(2).into());
    }
    // From here an evaluation that does not return fails the job.
    sampo::model::eval_watch::limit(Duration::from_secs_f64(spec.evaluation_timeout));
    let (threads, source) = exec::threads_for(startup.threads, &spec, node_ranks);
    exec::build_pool(threads).context("cannot start the thread pool")?;
    if rank == 0 {
        if let Some(warning) = exec::serialized_warning(startup.threads, &spec) {
            warn!("{warning}");
        }
    }
    for warning in exec::layout_warnings(node_ranks, threads) {
        // The node's count is said once per node, the rank's by each rank.
        if node_rank == 0 || !warning.contains("per node") {
            warn!("rank {rank}: {warning}");
        }
    }
    let transport: Box<dyn Transport + '_> = match world {
        World::Alone => Box::new(Alone),
        World::Mpi(comm) => {
            // From here a rank blocked in a collective for longer than the
            // rank timeout ends the job (see `exec::watchdog`).
            exec::watchdog::watch(rank, Duration::from_secs_f64(spec.rank_timeout));
            Box::new(MpiTransport { world: comm })
        }
    };
    let capacity = {
        exec::watchdog::label("gathering every rank's thread count");
        let _in = exec::watchdog::enter();
        world.gather_threads(threads)
    };
    let job = jobs::build(spec.clone());
    let setup = Setup {
        job: job.as_ref(),
        transport: transport.as_ref(),
        capacity,
        started,
        rank_timeout: Duration::from_secs_f64(spec.rank_timeout),
        checkpoints: CheckpointPolicy::for_run(&spec, args.walltime, started),
    };
    if rank == 0 {
        if let Some(warning) = setup.checkpoints.short_budget(started) {
            warn!("{warning}");
        }
    }
    if rank != 0 {
        // As above: rank 0 reports a failure and exits non-zero for the job.
        exec::run_worker(&setup, startup.start);
        return Ok(());
    }
    let Prepared {
        output: Started {
            mut store,
            checkpoint,
        },
        timings,
        target,
        ..
    } = prepared.expect("rank 0 prepared the run");
    let plan = job.plan(0);
    let layout = match (size, exec::mode(plan.tasks(), size, job.shareable(0))) {
        (1, _) => "1 rank".to_string(),
        (_, exec::Mode::Queue) => format!("{size} ranks, tasks from a queue"),
        (_, exec::Mode::Groups(g)) => {
            format!(
                "{size} ranks, tasks shared within {} group(s) of ranks",
                g.len()
            )
        }
    };
    info!(
        "run `{}`: {} task(s), {layout} × {threads} thread(s) ({source}), seed {}, output {}",
        spec.name,
        plan.tasks(),
        spec.seed,
        target.display()
    );
    let (total, unit) = job.work();
    let mut progress = Progress::new(total, unit, args.quiet);
    let result = exec::run_root(
        &setup,
        store.as_mut(),
        timings,
        &mut progress,
        checkpoint.as_ref(),
    );
    progress.finish();
    match result {
        Err(failure) if !failure.unresponsive.is_empty() => {
            let partial = store.abandon(&failure.message);
            crate::say(&format!(
                "error: {}\n  rank(s) {:?} did not stop within {} s: aborting the job",
                failure.explain(&partial),
                failure.unresponsive,
                exec::STOP_GRACE.as_secs(),
            ));
            world.abort(1)
        }
        result => conclude(job.as_ref(), store, result, size, args.quiet),
    }
}

/// Rank 0 after the scheduler: the closing report, rename into place.
/// On failure the output stays `.partial`, marked failed; paused, it stays
/// `.partial` with its checkpoint, marked paused (exit 75).
fn conclude(
    job: &dyn Job,
    mut store: Box<dyn Store>,
    result: std::result::Result<RunEnd, Failure>,
    ranks: usize,
    quiet: bool,
) -> Result<()> {
    let stats = match result {
        Ok(RunEnd::Paused { why, .. }) => {
            let partial = store.pause(&why)?;
            return Err(Paused(format!(
                "{why}: checkpoint written to {}; go on with: {}",
                partial.display(),
                resume_command()
            ))
            .into());
        }
        Ok(RunEnd::Complete(stats)) => Ok(stats),
        Err(failure) => Err(failure),
    };
    let mut table = Vec::new();
    let finished = stats.and_then(|stats: RunStats| {
        job.report(store.as_mut(), &mut table)
            .map_err(|e| Failure {
                cause: exec::Cause::of_job(&e),
                message: format!("writing the summary: {e}"),
                unresponsive: Vec::new(),
            })?;
        Ok(stats)
    });
    let stats = match finished {
        Ok(stats) => stats,
        Err(failure) => {
            let partial = store.abandon(&failure.message);
            anyhow::bail!("{}", failure.explain(&partial));
        }
    };
    let path: PathBuf = store.finish()?;
    if stats.nan_evaluations > 0 {
        warn!(
            "{} of {} evaluations returned NaN (treated as −∞); per task in /timings/nan_evaluations",
            stats.nan_evaluations, stats.evaluations
        );
    }
    if ranks > 1 {
        info!("{}", report::load_balance(&stats.busy));
    }
    if !quiet {
        let mut out = std::io::stdout().lock();
        out.write_all(&table)
            .and_then(|()| writeln!(out, "wrote {}", path.display()))
            .and_then(|()| out.flush())
            .with_context(|| {
                format!(
                    "the run is complete in {}, but its summary could not be written to standard \
                     output",
                    path.display()
                )
            })?;
    }
    Ok(())
}

/// The command that resumes this run: the same, with `--resume` (and
/// without `--force`).
fn resume_command() -> String {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--force")
        .collect();
    if !args.iter().any(|a| a == "--resume") {
        let at = args.iter().position(|a| a == "run").map_or(0, |i| i + 1);
        args.insert(at, "--resume".into());
    }
    format!("sampo {}", args.join(" "))
}
