//! The `run` and `check` commands: spec → plan → executor → output → report.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use tracing::{info, warn};

use crate::cli::{CheckArgs, Cli, Command, RunArgs, SummaryArgs, SummaryFormat};
use sampo::exec::mpi as mpi_exec;
use sampo::exec::mpi::PeerExit;
use sampo::exec::transport::{Alone, MpiTransport};
use sampo::exec::{
    self, resolve_threads, Checkpoint, CheckpointPolicy, RunEnd, Setup, ThreadSource, TimingSets,
};
use sampo::jobs;
use sampo::jobs::RunSpec;
use sampo::output::hdf5::CreateError;
use sampo::output::{self, Attr, Hdf5Store, RunInfo, Store};
use sampo::report::{self, Progress};

pub fn dispatch(cli: Cli) -> Result<()> {
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
        Command::Summary(args) => summary(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "sampo", &mut std::io::stdout());
            Ok(())
        }
    };
    // Plugins' contexts are freed (sampo_free) once nothing uses them.
    sampo::model::plugin::release_all();
    result
}

/// `sampo summary`: prints to stdout (a closed pipe, `| head`, ends it
/// quietly: see `main`).
fn summary(args: SummaryArgs) -> Result<()> {
    use sampo::summary::{self, Format, Options};
    let options = Options {
        state: args.state,
        burn: args.burn,
        thin: args.thin,
    };
    let format = match args.format {
        SummaryFormat::Table => Format::Table,
        SummaryFormat::Csv => Format::Csv,
        SummaryFormat::Json => Format::Json,
    };
    let document = summary::summarise(&args.file, &options)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    summary::write(&mut out, &document, format)?;
    out.flush()?;
    Ok(())
}

/// Threads per rank: `--threads`, `[parallel] threads`, SLURM, or the CPUs
/// this process may run on (shared among the ranks of the node when every
/// rank may run anywhere on it).
fn threads_for(cli: Option<usize>, spec: &RunSpec, ranks_on_node: usize) -> (usize, ThreadSource) {
    let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok();
    let (bound, node) = (bound_cores(), node_cores());
    // A rank bound to part of the node (mpiexec --map-by slot:PE=n, srun
    // --cpus-per-task) owns those CPUs; one free to roam shares the node.
    let ranks_sharing = if bound < node { 1 } else { ranks_on_node };
    let chosen = resolve_threads(cli, spec.threads, slurm.as_deref(), bound, ranks_sharing);
    // A library with global state (Fortran COMMON blocks) runs one call at a
    // time per process: more threads would only wait for each other.
    let plugins = spec.plugins();
    let serialized = plugins
        .iter()
        .find(|(_, p)| p.safety == sampo::model::plugin::ThreadSafety::Serialized);
    match serialized {
        Some((state, _)) if chosen.0 > 1 => {
            if cli.is_some_and(|n| n > 1) || spec.threads > 1 {
                warn!(
                    "state `{}`: its plugin is serialized (one call at a time per process), so \
                     each rank runs 1 thread, not {}; use more ranks (mpiexec -n N) to go faster",
                    state, chosen.0
                );
            }
            (1, ThreadSource::SerializedPlugin)
        }
        _ => chosen,
    }
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

/// CPUs this process may run on: its affinity mask and its cgroup quota
/// (both are what `available_parallelism` reads on Linux).
fn bound_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Warns when a rank runs more threads than the CPUs it may use.
fn warn_if_bound(threads: usize, rank: i32) {
    let bound = bound_cores();
    if threads > bound {
        warn!(
            "rank {rank} runs {threads} threads but may use only {bound} CPU(s) \
             (affinity mask or cgroup quota); under mpiexec launch with `--bind-to none` or \
             `--map-by slot:PE={threads}`, under SLURM with `--cpus-per-task={threads}` (see README)"
        );
    }
}

fn build_pool(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sampo-worker-{i}"))
        .build_global()
        .context("cannot start the thread pool")
}

fn run(args: RunArgs) -> Result<()> {
    exec::signals::install().context("cannot install the signal handlers")?;
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
    if let Some(copies) = mpi_exec::separate_copies() {
        return Err(mpi_exec::SeparateCopies(copies).into());
    }
    run_single(args)
}

/// The root attributes that describe the run (provenance is added by the store).
fn root_attrs(spec: &RunSpec) -> Vec<(String, Attr)> {
    let resolved = spec.resolved_json();
    vec![
        ("name".into(), Attr::Str(spec.name.clone())),
        ("spec".into(), Attr::Str(spec.text.clone())),
        (
            "spec_path".into(),
            Attr::Str(spec.path.display().to_string()),
        ),
        ("resolved_spec".into(), Attr::Str(resolved.to_string())),
        ("seed".into(), Attr::U64(spec.seed)),
        ("overrides".into(), Attr::Strs(spec.overrides.clone())),
        ("replicates".into(), Attr::U64(spec.replicates as u64)),
    ]
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// A run that paused (a signal, the wall time) with its checkpoint written:
/// exit 75, and how to go on.
#[derive(Debug)]
pub(crate) struct Paused(pub String);

impl std::fmt::Display for Paused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Paused {}

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

/// The output store: created, or with `--resume` reopened (the spec must
/// be the file's but for free settings, or ask for more steps: then the
/// run is extended), with the checkpoint to go on from.
fn open_output(
    args: &RunArgs,
    spec: &RunSpec,
    job: &dyn jobs::Job,
    target: &std::path::Path,
    layout: &output::Layout,
    info: &RunInfo,
) -> Result<(Hdf5Store, Option<Checkpoint>)> {
    if let Some(source) = &args.from {
        return derive_output(args, spec, job, source, target, layout, info);
    }
    if !args.resume {
        output::preflight(target, args.force)?;
        let store = Hdf5Store::create(target, args.force, layout, &root_attrs(spec), info)?;
        return Ok((store, None));
    }
    let partial = output::partial_path(target);
    // Set when the spec asks for more steps than the file's run took.
    let extending = std::cell::Cell::new(false);
    let accept = |attribute: &str, state: Option<&[u8]>| {
        // The spec the last checkpoint belongs to: an extension interrupted
        // before its end records it there, with the tasks' new places.
        let of_checkpoint = state
            .and_then(|b| Checkpoint::decode(b).ok())
            .map(|cp| cp.spec)
            .filter(|s| !s.is_empty());
        let recorded = of_checkpoint.as_deref().unwrap_or(attribute);
        let changed = sampo::spec::resume::changed_keys(recorded, &spec.resolved_json())?;
        if changed.is_empty() {
            return Ok(());
        }
        let why = if changed.iter().all(|c| c.starts_with("sampler.")) {
            let old: RunSpec = serde_json::from_str(recorded)
                .map_err(|e| format!("the file's resolved spec is unreadable: {e}"))?;
            match job.extends(&old) {
                Ok(()) => {
                    extending.set(true);
                    return Ok(());
                }
                Err(why) => format!(" ({why})"),
            }
        } else {
            String::new()
        };
        Err(format!(
            "cannot resume {}: the spec differs from the run's in what decides the results \
             (only threads, timeouts, checkpoint_every and walltime may change, and steps may \
             rise){why}:\n  {}",
            if partial.exists() { &partial } else { target }.display(),
            changed.join("\n  ")
        ))
    };
    let from_complete = !partial.exists() && target.exists();
    let (mut store, state) = if from_complete {
        let accept_complete = |recorded: &str, state: Option<&[u8]>| {
            accept(recorded, state)?;
            if extending.get() {
                Ok(())
            } else {
                Err(format!(
                    "{} is complete: there is nothing to resume (a spec with more steps \
                     extends it)",
                    target.display()
                ))
            }
        };
        Hdf5Store::extend(target, layout, info, &accept_complete)?
    } else {
        Hdf5Store::reopen(target, layout, info, &accept)?
    };
    let checkpoint = match state {
        Some(bytes) => Some(
            Checkpoint::decode(&bytes)
                .map_err(|e| CreateError::Refused(format!("{}: {e}", store.partial().display())))?,
        ),
        None => {
            warn!(
                "{} has no checkpoint (the run stopped before its first): starting again from \
                 the beginning",
                store.partial().display()
            );
            None
        }
    };
    let checkpoint = if extending.get() {
        // Every task placed in the longer run (reading the file only), then
        // one checkpoint with the new spec: the extension's only change.
        let extended = checkpoint
            .map(|cp| cp.extended(job, &mut store))
            .transpose();
        match extended {
            Err(e) => {
                let why = format!("cannot extend {}: {e}", target.display());
                if from_complete {
                    store.discard();
                } else {
                    let _ = store.pause(&format!("not resumed: {why}"));
                }
                return Err(CreateError::Refused(why).into());
            }
            Ok(Some(mut cp)) => {
                cp.spec = spec.resolved_json().to_string();
                store.flush()?;
                store.checkpoint(&cp.encode())?;
                store.restamp(&root_attrs(spec), layout)?;
                Some(cp)
            }
            Ok(None) => {
                store.restamp(&root_attrs(spec), layout)?;
                None
            }
        }
    } else {
        checkpoint
    };
    if let Some(cp) = &checkpoint {
        info!(
            "resuming from the checkpoint of {}: stage {}, {} task(s) done, {} to go on from \
             their snapshot",
            store.partial().display(),
            cp.stage,
            cp.done.iter().map(|r| r.end - r.start).sum::<u64>(),
            cp.ready.len() + cp.waiting.len()
        );
    }
    Ok((store, checkpoint))
}

/// `--from SOURCE`: a new output holding SOURCE's earlier stages, and the
/// checkpoint that starts the last stage (its carry computed from them).
fn derive_output(
    args: &RunArgs,
    spec: &RunSpec,
    job: &dyn jobs::Job,
    source: &std::path::Path,
    target: &std::path::Path,
    layout: &output::Layout,
    info: &RunInfo,
) -> Result<(Hdf5Store, Option<Checkpoint>)> {
    let (last, Some(stage)) = (job.stages() - 1, spec.second_stage.as_ref()) else {
        return Err(CreateError::Refused(
            "--from redoes the second stage of a run (a [transc] table): this spec has none".into(),
        )
        .into());
    };
    // The second stage's own table, as the resolved spec records it, and
    // its output group: what `--from` replaces.
    let table = stage.name();
    let same = |a: &std::path::Path, b: &std::path::Path| {
        std::fs::canonicalize(a)
            .ok()
            .is_some_and(|a| Some(a) == std::fs::canonicalize(b).ok())
    };
    if same(source, target) || same(source, &output::partial_path(target)) {
        return Err(CreateError::Refused(format!(
            "--from {} would write over its source: choose another output with -o",
            source.display()
        ))
        .into());
    }
    output::preflight(target, args.force)?;
    let accept = |recorded: &str, _: Option<&[u8]>| {
        let changed = sampo::spec::resume::changed_keys(recorded, &spec.resolved_json())?;
        let other: Vec<&String> = changed
            .iter()
            .filter(|c| !c.starts_with("second_stage"))
            .collect();
        if other.is_empty() {
            return Ok(());
        }
        Err(format!(
            "cannot redo the last stage from {}: the spec differs from its run in more than \
             [{table}]:\n  {}",
            source.display(),
            other
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    };
    let mut store = Hdf5Store::derive(
        source,
        target,
        args.force,
        layout,
        &[table, "checkpoint"],
        &accept,
    )?;
    store.restamp(&root_attrs(spec), layout)?;
    for (name, value) in [
        ("from", Attr::Str(source.display().to_string())),
        ("status", Attr::Str("running".into())),
        ("ranks", Attr::U64(info.ranks as u64)),
        ("threads_per_rank", Attr::U64(info.threads as u64)),
        ("command_line", Attr::Str(info.command_line.clone())),
        ("mpi_library", Attr::Str(info.mpi_library.clone())),
    ] {
        store.set_attr("/", name, value)?;
    }
    let carry = match job.finish_stage(last - 1, &mut store) {
        Ok(c) => c,
        Err(e) => {
            store.discard();
            return Err(CreateError::Refused(format!(
                "{}: the earlier stages cannot be used: {e}",
                source.display()
            ))
            .into());
        }
    };
    let timing_rows = layout
        .find("timings/stage")
        .map_or(0, |d| store.rows_written(d));
    info!(
        "redoing stage {last} from the samples of {}",
        source.display()
    );
    let checkpoint = Checkpoint {
        stage: last,
        carry,
        timing_rows,
        ..Checkpoint::default()
    };
    Ok((store, Some(checkpoint)))
}

/// Periodic checkpoints and the wall-time deadline: `--walltime`, `[run]
/// walltime`, or SLURM's job end time (`SLURM_JOB_END_TIME`, seconds since
/// the epoch) when it is set.
fn checkpoint_policy(spec: &RunSpec, walltime: Option<f64>, started: Instant) -> CheckpointPolicy {
    let budget = walltime.or(spec.walltime).or_else(|| {
        let end: f64 = std::env::var("SLURM_JOB_END_TIME")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        (end > now).then(|| end - now + started.elapsed().as_secs_f64())
    });
    CheckpointPolicy {
        every: spec.checkpoint_every.map(Duration::from_secs_f64),
        deadline: budget
            .map(|b| CheckpointPolicy::deadline_for(started, Duration::from_secs_f64(b))),
    }
}

/// One process: the scheduler with no other rank.
fn run_single(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let spec = Arc::new(RunSpec::from_file_with(&args.spec, &args.set)?);
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    let (threads, source) = threads_for(args.threads, &spec, 1);
    warn_if_bound(threads, 0);
    build_pool(threads)?;
    let job = jobs::build(spec.clone());
    job.layout().check()?;
    let tasks = job.plan(0).tasks();
    info!(
        "run `{}`: {tasks} task(s), 1 rank × {threads} thread(s) ({source}), seed {}, output {}",
        spec.name,
        spec.seed,
        target.display()
    );
    let (layout, timings) = exec::layout(job.as_ref());
    let info = RunInfo {
        ranks: 1,
        threads,
        command_line: command_line(),
        mpi_library: String::new(),
    };
    let (mut store, checkpoint) = open_output(&args, &spec, job.as_ref(), &target, &layout, &info)?;
    let setup = Setup {
        job: job.as_ref(),
        transport: &Alone,
        capacity: vec![threads],
        started: Instant::now(),
        rank_timeout: Duration::from_secs_f64(spec.rank_timeout),
        checkpoints: checkpoint_policy(&spec, args.walltime, started),
    };
    let result = execute(&setup, &mut store, timings, checkpoint.as_ref(), args.quiet);
    conclude(
        job.as_ref(),
        store,
        result.map_err(|f| f.message),
        1,
        args.quiet,
    )
}

/// Rank 0: the scheduler with a progress bar, from the start or a checkpoint.
fn execute(
    setup: &Setup<'_>,
    store: &mut Hdf5Store,
    timings: TimingSets,
    checkpoint: Option<&Checkpoint>,
    quiet: bool,
) -> std::result::Result<RunEnd, exec::Failure> {
    let (total, unit) = setup.job.work();
    let mut progress = Progress::new(total, unit, quiet);
    let result = exec::run_root(setup, store, timings, &mut progress, checkpoint);
    progress.finish();
    result
}

/// Rank 0 after the scheduler: the closing report, rename into place.
/// On failure the output stays `.partial`, marked failed; paused, it stays
/// `.partial` with its checkpoint, marked paused (exit 75).
fn conclude(
    job: &dyn jobs::Job,
    mut store: Hdf5Store,
    result: std::result::Result<RunEnd, String>,
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
        Err(message) => Err(message),
    };
    let mut table = Vec::new();
    let finished = stats.and_then(|stats| {
        job.report(&mut store, &mut table)
            .map_err(|e| format!("writing the summary: {e}"))?;
        Ok(stats)
    });
    let stats = match finished {
        Ok(stats) => stats,
        Err(message) => {
            let partial = store.abandon(&message);
            anyhow::bail!("{}", failure_text(&message, &partial));
        }
    };
    let path = store.finish()?;
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
        out.write_all(&table)?;
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(())
}

/// A failed run's message: one line that says what happened and what to
/// do, then the details.
fn failure_text(message: &str, partial: &std::path::Path) -> String {
    let (what, advice) = if message.contains("no space left") {
        ("no space left on device", "free space on its filesystem")
    } else if message.contains("has not answered") {
        (
            "a rank stopped answering",
            "find out why (or raise [parallel] timeout)",
        )
    } else if message.contains("evaluation failed") {
        (
            "an evaluation failed",
            "fix the model (or its prior) at the parameters below",
        )
    } else {
        ("see the cause below", "fix it")
    };
    format!(
        "the run failed ({what}); every row written so far is kept in {} (status `failed`): \
         {advice}, then start again with `--force`, or go on from its last checkpoint with \
         `--resume`\n  cause: {message}",
        partial.display()
    )
}

/// What rank 0 sends the other ranks once the spec is good.
#[derive(serde::Serialize, serde::Deserialize)]
struct Startup {
    spec: RunSpec,
    threads: Option<usize>,
    /// The stage a resumed run begins with, and its carry.
    start: (u32, Vec<u8>),
}

/// Rank 0 reads the spec and creates the output; every rank then runs its
/// part. A bad spec fails on rank 0 with the located error, and every rank
/// leaves with the same exit code.
fn run_mpi(args: RunArgs, world: &SimpleCommunicator) -> Result<()> {
    let started = Instant::now();
    let rank = world.rank();
    let size = world.size() as usize;
    let (node_ranks, node_rank) = mpi_exec::ranks_on_node(world);

    let mut prepared = None;
    let mut rank0_error = None;
    let verdict = (rank == 0).then(|| {
        type Prepared = (Vec<u8>, Hdf5Store, TimingSets, Option<Checkpoint>);
        let attempt = (|| -> Result<Prepared> {
            let spec = Arc::new(RunSpec::from_file_with(&args.spec, &args.set)?);
            let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
            let job = jobs::build(spec.clone());
            let (layout, timings) = exec::layout(job.as_ref());
            layout.check()?;
            let info = RunInfo {
                ranks: size,
                threads: threads_for(args.threads, &spec, node_ranks).0,
                command_line: command_line(),
                mpi_library: mpi::environment::library_version().unwrap_or_default(),
            };
            let (store, checkpoint) =
                open_output(&args, &spec, job.as_ref(), &target, &layout, &info)?;
            let startup = Startup {
                spec: (*spec).clone(),
                threads: args.threads,
                start: checkpoint
                    .as_ref()
                    .map_or((0, Vec::new()), |cp| (cp.stage, cp.carry.clone())),
            };
            Ok((serde_json::to_vec(&startup)?, store, timings, checkpoint))
        })();
        match attempt {
            Ok((bytes, store, timings, checkpoint)) => {
                prepared = Some((store, timings, checkpoint));
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
    // Every rank loads the plugins itself (rank 0 did while validating): a
    // library missing on one node or an init failing there stops the job
    // here, before any work, and the rank says why.
    let posteriors = spec.posteriors().unwrap_or_default();
    let prepared_here =
        sampo::model::prepare_plugins(spec.states.iter().map(|s| s.name.as_str()).zip(posteriors));
    if let Err(e) = &prepared_here {
        eprintln!("error: rank {rank}: {e}");
    }
    if !mpi_exec::all_ok(world, prepared_here.is_ok()) {
        if rank != 0 {
            return Ok(());
        }
        if let Some((store, _, checkpoint)) = prepared.take() {
            if args.resume {
                // A resumed file keeps everything: it is only left paused.
                let _ = store.pause(&format!(
                    "not resumed: plugins could not be prepared{}",
                    if checkpoint.is_some() {
                        ""
                    } else {
                        " (no checkpoint)"
                    }
                ));
            } else {
                store.discard();
            }
        }
        eprintln!("error: the plugin models could not be prepared on every rank; nothing was run");
        return Err(PeerExit(2).into());
    }
    let (threads, source) = threads_for(startup.threads, &spec, node_ranks);
    build_pool(threads)?;
    if node_rank == 0 && node_ranks * threads > node_cores() {
        warn!(
            "{node_ranks} rank(s) × {threads} thread(s) on this node oversubscribe its {} core(s)",
            node_cores()
        );
    }
    warn_if_bound(threads, rank);
    // From here a rank blocked in a collective for longer than the rank
    // timeout ends the job (see `exec::watchdog`).
    exec::watchdog::watch(rank as usize, Duration::from_secs_f64(spec.rank_timeout));
    let capacity = {
        exec::watchdog::label("gathering every rank's thread count");
        let _in = exec::watchdog::enter();
        mpi_exec::gather_threads(world, threads)
    };
    let job = jobs::build(spec.clone());
    let transport = MpiTransport { world };
    let setup = Setup {
        job: job.as_ref(),
        transport: &transport,
        capacity,
        started,
        rank_timeout: Duration::from_secs_f64(spec.rank_timeout),
        checkpoints: checkpoint_policy(&spec, args.walltime, started),
    };
    if rank != 0 {
        // As above: rank 0 reports a failure and exits non-zero for the job.
        exec::run_worker(&setup, startup.start);
        return Ok(());
    }
    let (mut store, timings, checkpoint) = prepared.expect("rank 0 prepared the run");
    let plan = job.plan(0);
    info!(
        "run `{}`: {} task(s), {size} ranks × {threads} thread(s) ({source}), {}, seed {}",
        spec.name,
        plan.tasks(),
        match exec::mode(plan.tasks(), size, job.shareable(0)) {
            exec::Mode::Queue => "tasks from a queue".to_string(),
            exec::Mode::Groups(g) => format!("tasks shared within {} group(s) of ranks", g.len()),
        },
        spec.seed
    );
    let result = execute(&setup, &mut store, timings, checkpoint.as_ref(), args.quiet);
    match result {
        Ok(stats) => conclude(job.as_ref(), store, Ok(stats), size, args.quiet),
        Err(failure) if failure.unresponsive.is_empty() => {
            conclude(job.as_ref(), store, Err(failure.message), size, args.quiet)
        }
        Err(failure) => {
            let partial = store.abandon(&failure.message);
            eprintln!(
                "error: {}\n  rank(s) {:?} did not stop within {} s: aborting the job",
                failure_text(&failure.message, &partial),
                failure.unresponsive,
                exec::STOP_GRACE.as_secs(),
            );
            world.abort(1)
        }
    }
}

fn check(args: CheckArgs) -> Result<()> {
    let spec = Arc::new(RunSpec::from_file_with(&args.spec, &args.set)?);
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    let ranks = args.ranks as usize;
    let per_node = args.ranks_per_node.map_or(ranks, |n| n as usize).min(ranks);
    let (threads, source) = threads_for(args.threads, &spec, per_node);
    let job = jobs::build(spec.clone());
    job.layout().check()?;
    let plan = job.plan(0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "spec      {} (ok)", spec.path.display())?;
    writeln!(
        out,
        "run       name `{}`, seed {}, {} replicate(s)",
        spec.name, spec.seed, spec.replicates
    )?;
    // What `run` would refuse even with --force is an error here too.
    output::preflight(&target, true)?;
    let status = match output::check_target(&target, false) {
        Ok(()) => "new".to_string(),
        Err(e) => format!("{e}"),
    };
    writeln!(out, "output    {} ({status})", target.display())?;
    let every = spec.checkpoint_every.map_or("off".to_string(), |s| {
        humantime::format_duration(Duration::from_secs_f64(s)).to_string()
    });
    let walltime = spec.walltime.map_or(
        "none (SIGTERM/SIGUSR1 also pause: exit 75, then --resume)".to_string(),
        |s| {
            format!(
                "{} (pause with a checkpoint before it, exit 75)",
                humantime::format_duration(Duration::from_secs_f64(s))
            )
        },
    );
    writeln!(
        out,
        "pauses    checkpoint every {every}; wall time {walltime}"
    )?;
    let mode = match exec::mode(plan.tasks(), ranks, job.shareable(0)) {
        _ if ranks == 1 => "one process".to_string(),
        exec::Mode::Queue => "tasks from rank 0's queue, longest first".to_string(),
        exec::Mode::Groups(groups) => {
            let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            format!("fewer tasks than ranks: each task shared within a group of {sizes:?} rank(s)")
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
    if threads > bound_cores() {
        writeln!(
            out,
            "warning   {threads} thread(s) per rank, but this process may use only {} CPU(s)",
            bound_cores()
        )?;
    }
    job.describe(&mut out)?;
    writeln!(out, "tasks     {}", plan.tasks())?;
    Ok(())
}
