//! The commands: `run` (in `run.rs`), `check`, `summary` and
//! `completions`, each from its parsed arguments to what it prints.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::cli::{
    CheckArgs, Cli, Command, NewArgs, PlotArgs, PlotFormat, PlotKind, SchemaFormat, SummaryArgs,
    SummaryFormat,
};
use sampo::exec;
use sampo::jobs::{self, RunSpec};
use sampo::output;

pub fn dispatch(cli: Cli) -> Result<()> {
    let result = match cli.command {
        Command::Run(args) => crate::run::run(args),
        Command::Check(args) => check(args),
        Command::Summary(args) => summary(args),
        Command::New(args) => new(args),
        Command::Schema { format } => schema(format),
        Command::Man { command } => man(command.as_deref()),
        Command::Plot(args) => plot(args),
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

/// `sampo new`: a starter spec on stdout.
fn new(args: NewArgs) -> Result<()> {
    let mut states = args.states as usize;
    if args.stage.is_some() {
        states = states.max(2);
    }
    let text = jobs::starter::starter(args.kind, states, args.stage.as_deref());
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `sampo schema`: the JSON Schema, or the reference page.
fn schema(format: SchemaFormat) -> Result<()> {
    let schema = jobs::spec_schema();
    let text = match format {
        SchemaFormat::Json => serde_json::to_string_pretty(&schema)? + "\n",
        SchemaFormat::Markdown => sampo::spec::reference::markdown(&schema),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `sampo man [COMMAND]`: the man page, from the clap definitions.
fn man(command: Option<&str>) -> Result<()> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let page = match command {
        None => cli,
        Some(name) => {
            let sub = cli.find_subcommand(name).cloned();
            let title: &'static str = Box::leak(format!("sampo-{name}").into_boxed_str());
            sub.expect("checked by the parser").name(title)
        }
    };
    let mut out = std::io::stdout().lock();
    // The help text has UTF-8 (τ, ×): this first line tells man's
    // preprocessor so, whatever the reader's locale.
    out.write_all(b"'\\\" -*- coding: UTF-8 -*-\n")?;
    clap_mangen::Man::new(page).render(&mut out)?;
    Ok(())
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

/// `sampo plot`: draws the figures and prints the path of each.
fn plot(args: PlotArgs) -> Result<()> {
    use sampo::plot::{self, Figure, Format, Options};
    let figure = args.kind.map(|k| match k {
        PlotKind::Trace => Figure::Trace,
        PlotKind::Corner => Figure::Corner,
        PlotKind::Diagnostics => Figure::Diagnostics,
        PlotKind::Smc => Figure::Smc,
        PlotKind::Transc => Figure::Transc,
        PlotKind::Batch => Figure::Batch,
        PlotKind::Paths => Figure::Paths,
    });
    let format = match args.format {
        PlotFormat::Png => Format::Png,
        PlotFormat::Svg => Format::Svg,
        PlotFormat::Json => Format::Json,
    };
    let options = Options {
        state: args.state,
        figure,
        burn: args.burn,
        thin: args.thin,
        params: args.params,
        truths: args.truth,
        format,
        dpi: args.dpi,
        size: args.size,
        output: args.output,
    };
    let written = plot::plot(&args.file, &options)?;
    let mut out = std::io::stdout().lock();
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result<()> {
    let spec = Arc::new(RunSpec::from_file_with(&args.spec, &args.set)?);
    let target = args.output.clone().unwrap_or_else(|| spec.output.clone());
    let ranks = args.ranks as usize;
    let per_node = args.ranks_per_node.map_or(ranks, |n| n as usize).min(ranks);
    let (threads, source) = exec::threads_for(args.threads, &spec, per_node);
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
    for warning in exec::layout_warnings(per_node, threads) {
        writeln!(out, "warning   {warning}")?;
    }
    if let Some(warning) = exec::serialized_warning(args.threads, &spec) {
        writeln!(out, "warning   {warning}")?;
    }
    job.describe(&mut out)?;
    writeln!(out, "tasks     {}", plan.tasks())?;
    size_line(&mut out, job.as_ref(), &spec, &target)?;
    Ok(())
}

/// The output's size as `check` shows it: an upper bound from the layout
/// (every chunk whole, `/timings`, the last checkpoint, HDF5's own
/// structures), and a warning when the output's filesystem has less free.
fn size_line(
    out: &mut dyn Write,
    job: &dyn jobs::Job,
    spec: &RunSpec,
    target: &std::path::Path,
) -> Result<()> {
    let hints = job.size_hints();
    let (layout, _) = exec::layout(job);
    let rows_of = |d: &output::DatasetDecl| {
        if d.path.starts_with("timings/") || d.path == exec::FinalSets::TASKS {
            return hints.task_runs;
        }
        if d.path == exec::FinalSets::BYTES {
            return hints.final_states;
        }
        hints
            .growing_rows
            .iter()
            .find(|(p, _)| *p == d.path)
            .map_or(0, |(_, n)| *n)
    };
    let root: u64 = exec::root_attrs(spec)
        .iter()
        .map(|(name, value)| 256 + name.len() as u64 + value.bytes())
        .sum();
    // The last checkpoint: the resolved spec and the rows written per
    // dataset (the tasks' final states are rows of the layout's).
    let checkpoint = (spec.resolved_json().to_string().len() as u64)
        .saturating_add(64 * layout.datasets.len() as u64 + (4 << 10));
    let bytes = layout.size_bound(&rows_of, root).saturating_add(checkpoint);
    let shown = output::human_bytes(bytes as f64);
    match &hints.assumes {
        None => writeln!(out, "size      at most about {shown} ({bytes} bytes)")?,
        Some(what) => writeln!(
            out,
            "size      about {shown} ({bytes} bytes) if the run takes {what} (it decides how \
             many)"
        )?,
    }
    if let Some(free) = output::free_bytes(target) {
        if free < bytes {
            writeln!(
                out,
                "warning   the output may take {shown}, more than the {} free on its \
                 filesystem",
                output::human_bytes(free as f64)
            )?;
        }
    }
    Ok(())
}
