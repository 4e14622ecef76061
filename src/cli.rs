//! Command-line definitions (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  sampo check configs/quickstart.toml        validate and show the plan
  sampo run configs/quickstart.toml          sample into quickstart.h5
  sampo run spec.toml -o out.h5 --threads 4  choose output and threads
  mpiexec -n 4 sampo run spec.toml           the same spec across 4 ranks
  sampo summary out.h5                       diagnostics of a finished or running output
  sampo summary out.h5 --format csv | head   the same as CSV (or json)
  sampo new chains --states 2 > spec.toml    a commented starter spec
  sampo schema > sampo.schema.json           the spec's JSON Schema, for editors
  sampo plot out.h5                          every figure that applies, into out-plots/
  sampo plot out.h5 --kind corner -o c.svg   one figure, as SVG

Exit codes: 0 success, 2 bad spec or usage, 1 runtime failure, 75 paused (go on with --resume).";

#[derive(Debug, Parser)]
#[command(name = "sampo", version, long_version = long_version(), about = "Monte Carlo engine for HPC: ensemble MCMC, independent chains, tempered SMC with evidence, trans-conceptual model choice, batch forward evaluation and stochastic-process paths, from one TOML run spec, locally or under mpiexec, into one HDF5 file", after_help = EXAMPLES)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a spec and write its samples to an HDF5 file.
    Run(RunArgs),
    /// Validate a spec and print the resolved plan, without sampling.
    Check(CheckArgs),
    /// Diagnostics of an output (finished, failed, or still being written):
    /// mean, sd, MCSE, 5/50/95%, bulk/tail ESS, R-hat, τ, acceptance, flags.
    Summary(SummaryArgs),
    /// Print a commented starter spec of a kind, which `sampo check` accepts
    /// as it is.
    New(NewArgs),
    /// Print the run spec's JSON Schema (TOML editors complete and check a
    /// spec from it), or the spec reference as Markdown.
    Schema {
        #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
        format: SchemaFormat,
    },
    /// Print the man page (roff) of sampo, or of one of its commands.
    Man {
        /// A command (run, check, summary, new, schema, …).
        #[arg(value_parser = command_arg)]
        command: Option<String>,
    },
    /// Figures of an output (finished, failed, or still being written):
    /// traces, corner plots, diagnostics, SMC schedules, state
    /// probabilities, batch bands, path fans.
    Plot(PlotArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The kind of work.
    #[arg(value_parser = kind_arg)]
    pub kind: sampo::jobs::Kind,
    /// States (copies of the kind's example state, to edit).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub states: u64,
    /// Add a second stage's table (`transc`: trans-conceptual model choice
    /// between the states; at least two states).
    #[arg(long, value_parser = stage_arg)]
    pub stage: Option<String>,
}

fn command_arg(s: &str) -> Result<String, String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    if names.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a command; expected one of {}",
            names.join(", ")
        ))
    }
}

fn kind_arg(s: &str) -> Result<sampo::jobs::Kind, String> {
    let kinds = sampo::jobs::Kind::ALL;
    kinds
        .iter()
        .copied()
        .find(|k| k.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            format!("`{s}` is not a kind; expected one of {}", names.join(", "))
        })
}

fn stage_arg(s: &str) -> Result<String, String> {
    let stages = sampo::jobs::starter::stages();
    if stages.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a stage; expected one of {}",
            stages.join(", ")
        ))
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemaFormat {
    /// JSON Schema (2020-12).
    Json,
    /// The reference page (docs/spec-reference.md).
    Markdown,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A sampo output (.h5, or a .partial being written or left by a failed run).
    pub file: PathBuf,
    /// Only this state.
    #[arg(long)]
    pub state: Option<String>,
    /// Stored rows to drop first (default: the file's burn_rows attribute).
    #[arg(long)]
    pub burn: Option<u64>,
    /// Keep every N-th stored row after the burn-in (as emcee's get_chain(thin=N)).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub thin: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A sampo output (.h5, or a .partial being written or left by a failed run).
    pub file: PathBuf,
    /// Only this state.
    #[arg(long)]
    pub state: Option<String>,
    /// Only this figure (default: every one that applies to the file).
    #[arg(long, value_enum)]
    pub kind: Option<PlotKind>,
    /// Stored rows to drop first (default: the file's burn_rows attribute).
    #[arg(long)]
    pub burn: Option<u64>,
    /// Keep every N-th stored row after the burn-in (as emcee's get_chain(thin=N)).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub thin: Option<u64>,
    /// Only these parameters, comma-separated (trace and corner); for batch, the output columns histogrammed.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub params: Option<Vec<String>>,
    /// Known values to mark on the corner plot, e.g. --truth x=0,y=1.
    #[arg(long, value_delimiter = ',', value_name = "A=1,B=2", value_parser = truth_arg)]
    pub truth: Vec<(String, f64)>,
    /// Image format; json writes the numbers each figure draws.
    #[arg(long, value_enum, default_value_t = PlotFormat::Png)]
    pub format: PlotFormat,
    /// Pixels per inch (fonts and lines scale with it).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(20..=600))]
    pub dpi: u32,
    /// Size in inches, WIDTHxHEIGHT (default: each figure's own).
    #[arg(long, value_name = "WxH", value_parser = size_arg)]
    pub size: Option<(f64, f64)>,
    /// A file for one figure, a directory for several (default: <output>-plots/).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

fn size_arg(s: &str) -> Result<(f64, f64), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT (inches, e.g. 8x5)"))?;
    let inches = |v: &str| -> Result<f64, String> {
        match v.trim().parse::<f64>() {
            Ok(x) if (1.0..=100.0).contains(&x) => Ok(x),
            _ => Err(format!("`{v}` in `{s}` is not a size from 1 to 100 inches")),
        }
    };
    Ok((inches(w)?, inches(h)?))
}

fn truth_arg(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` in `{s}` is not a number"))?;
    Ok((name.trim().to_string(), value))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlotKind {
    Trace,
    Corner,
    Diagnostics,
    Smc,
    Transc,
    Batch,
    Paths,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlotFormat {
    Png,
    Svg,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SummaryFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run spec (TOML; `-` reads it from standard input).
    pub spec: PathBuf,
    /// Override a spec value, e.g. --set run.seed=3 --set sampler.steps=5000
    /// or --set states.gauss.steps=4000 (recorded in the output).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output file (default: [run] output, else <name>.h5).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Rayon threads per rank (default: [parallel] threads, SLURM_CPUS_PER_TASK, or the cores).
    #[arg(short = 't', long, value_parser = threads_arg)]
    pub threads: Option<usize>,
    /// Overwrite an existing output (or a .partial left by a failed run).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Go on with a paused (or killed) run from the last checkpoint in its
    /// <output>.partial, with any number of ranks × threads; the results are
    /// those of an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    /// Redo only the last stage (the trans-conceptual one) on the samples of
    /// a complete output, into a new output (SOURCE is only read). The spec
    /// may differ from SOURCE's in its [transc] table only.
    #[arg(long, value_name = "SOURCE", conflicts_with = "resume")]
    pub from: Option<PathBuf>,
    /// Wall-time budget (e.g. 4h, 90m): checkpoint and exit 75 before it is
    /// up (default: [run] walltime, else SLURM's job end time if known).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub walltime: Option<f64>,
    /// No progress and no summary table; errors and warnings only.
    #[arg(short, long)]
    pub quiet: bool,
}

fn duration_arg(s: &str) -> Result<f64, String> {
    match sampo::spec::parse_duration(s) {
        Some(secs) if secs >= 1.0 => Ok(secs),
        _ => Err(format!(
            "`{s}` is not a duration from 1 s to 100 years (e.g. 90s, 10m, 4h 30m)"
        )),
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The run spec (TOML; `-` reads it from standard input).
    pub spec: PathBuf,
    /// Override a spec value, as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output file to check, as for `run`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Threads per rank to plan with, as for `run`.
    #[arg(short = 't', long, value_parser = threads_arg)]
    pub threads: Option<usize>,
    /// MPI ranks to plan for (as in `mpiexec -n RANKS`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub ranks: u64,
    /// Ranks per node to plan for (default: all ranks on this node).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ranks_per_node: Option<u64>,
}

/// `--threads`: 0 (decide) to [`sampo::exec::MAX_THREADS`].
fn threads_arg(s: &str) -> Result<usize, String> {
    let max = sampo::exec::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "threads per rank must be a whole number from 0 (decide) to {max}"
        )),
    }
}

/// `sampo --version`: the version, the git commit, and the HDF5 and MPI
/// libraries this binary runs with.
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(version_text)
}

fn version_text() -> String {
    let (a, b, c) = hdf5::library_version();
    let mpi = mpi::environment::library_version()
        .ok()
        .and_then(|v| v.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{} (git {})\nHDF5 {a}.{b}.{c}\nMPI: {}",
        env!("CARGO_PKG_VERSION"),
        env!("SAMPO_GIT_HASH"),
        // Some MPI libraries count the string's terminating NUL in its length.
        mpi.trim_matches(|c: char| c.is_whitespace() || c == '\0')
    )
}
