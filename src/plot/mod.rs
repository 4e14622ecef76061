//! `sampo plot`: the figures users look at before they trust a run, drawn
//! from the output file alone (finished, failed, or still being written).
//!
//! Each figure is two steps: its data, computed by a plain function over
//! what the file holds ([`draws`] for traces and corner plots, [`kinds`] for
//! the figures of one kind of work), and its drawing ([`render`]), so that
//! the numbers can be checked without pixels (`--format json` writes them).

pub mod counts;
pub mod draws;
pub mod hist;
pub mod kinds;
pub mod render;
mod render_corner;
mod render_counts;
mod render_kinds;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::jobs::RunSpec;
use crate::output::{ReadError, Reader};
use crate::summary::SummaryError;

/// A kind of figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Figure {
    Trace,
    Corner,
    Diagnostics,
    Smc,
    Transc,
    Batch,
    Paths,
}

impl Figure {
    pub const ALL: [Figure; 7] = [
        Figure::Trace,
        Figure::Corner,
        Figure::Diagnostics,
        Figure::Smc,
        Figure::Transc,
        Figure::Batch,
        Figure::Paths,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Figure::Trace => "trace",
            Figure::Corner => "corner",
            Figure::Diagnostics => "diagnostics",
            Figure::Smc => "smc",
            Figure::Transc => "transc",
            Figure::Batch => "batch",
            Figure::Paths => "paths",
        }
    }
}

/// What a figure is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
    /// The numbers the figure draws.
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
            Format::Json => "json",
        }
    }
}

/// What to draw and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this state (all by default).
    pub state: Option<String>,
    /// Only this figure (every one that applies by default).
    pub figure: Option<Figure>,
    /// Stored rows to drop first (default: the file's `burn_rows`).
    pub burn: Option<u64>,
    /// Keep every `thin`-th stored row after the burn-in.
    pub thin: Option<u64>,
    /// Only these parameters (trace and corner).
    pub params: Option<Vec<String>>,
    /// Known values to mark on the corner plot.
    pub truths: Vec<(String, f64)>,
    pub format: Format,
    /// Pixels per inch (PNG; SVG sizes are in the same pixels).
    pub dpi: u32,
    /// Width and height in inches, instead of the figure's own.
    pub size: Option<(f64, f64)>,
    /// A file for one figure, a directory for several (default:
    /// `<output>-plots/`).
    pub output: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            state: None,
            figure: None,
            burn: None,
            thin: None,
            params: None,
            truths: Vec::new(),
            format: Format::Png,
            dpi: 100,
            size: None,
            output: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// What the user must fix (exit 2): a state, figure or parameter the
    /// file does not have, a figure that does not apply to it, a bad option.
    #[error("{0}")]
    Usage(String),
    /// The file could not be read (exit 1).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A figure could not be drawn or written (exit 1).
    #[error("{0}")]
    Draw(String),
}

impl From<SummaryError> for PlotError {
    fn from(e: SummaryError) -> Self {
        match e {
            SummaryError::Usage(m) => PlotError::Usage(m),
            SummaryError::Read(e) => PlotError::Read(e),
        }
    }
}

/// What a state's group in the file is, and so which figures apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `states/<name>` in emcee's layout (ensemble or chains).
    Emcee {
        independent: bool,
    },
    Smc,
    Batch,
    Paths,
}

impl Source {
    fn figures(&self, has_summary: bool) -> Vec<Figure> {
        match self {
            Source::Emcee { .. } if has_summary => {
                vec![Figure::Trace, Figure::Corner, Figure::Diagnostics]
            }
            Source::Emcee { .. } => vec![Figure::Trace, Figure::Corner],
            Source::Smc => vec![Figure::Smc, Figure::Corner],
            Source::Batch => vec![Figure::Batch],
            Source::Paths => vec![Figure::Paths],
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Source::Emcee { independent: false } => "ensemble",
            Source::Emcee { independent: true } => "chains",
            Source::Smc => "smc",
            Source::Batch => "batch",
            Source::Paths => "paths",
        }
    }
}

/// A state of the file as the figures see it.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    /// Its parameters; for a batch study, the output columns (those
    /// `--params` chooses from).
    pub params: Vec<String>,
    pub source: Source,
}

impl State {
    /// The group holding the state's data.
    pub fn group(&self) -> String {
        match self.source {
            Source::Emcee { .. } => format!("states/{}", self.name),
            Source::Smc => format!("smc/{}", self.name),
            Source::Batch => format!("batch/{}", self.name),
            Source::Paths => format!("paths/{}", self.name),
        }
    }
}

/// One figure to draw: which, of which state (`None`: of the whole file).
#[derive(Debug, Clone)]
pub struct Planned {
    pub figure: Figure,
    pub state: Option<State>,
}

impl Planned {
    /// The file name it gets in a directory of figures.
    pub fn file_stem(&self) -> String {
        match &self.state {
            Some(st) => format!("{}-{}", st.name, self.figure.name()),
            None => self.figure.name().to_string(),
        }
    }
}

/// The states of a file and the groups that hold them.
fn states_of(file: &dyn Reader, spec: &RunSpec) -> Result<Vec<State>, ReadError> {
    let mut out = Vec::new();
    for st in &spec.states {
        let n = &st.name;
        let source = if file.exists(&format!("states/{n}/chain")) {
            let independent = matches!(
                file.attr(&format!("states/{n}"), "independent_chains")?,
                Some(crate::output::Attr::Bool(true))
            );
            Source::Emcee { independent }
        } else if file.exists(&format!("smc/{n}")) {
            Source::Smc
        } else if file.exists(&format!("batch/{n}")) {
            if let Some(outputs) = kinds::attr_strs(file, &format!("batch/{n}"), "outputs")
                .ok()
                .flatten()
            {
                out.push(State {
                    name: n.clone(),
                    params: outputs,
                    source: Source::Batch,
                });
                continue;
            }
            Source::Batch
        } else if file.exists(&format!("paths/{n}")) {
            Source::Paths
        } else {
            continue;
        };
        out.push(State {
            name: n.clone(),
            params: st.params.clone(),
            source,
        });
    }
    Ok(out)
}

/// The figures `options` asks for, each checked to apply to the file.
pub fn plan(
    path: &Path,
    file: &dyn Reader,
    spec: &RunSpec,
    options: &Options,
) -> Result<Vec<Planned>, PlotError> {
    let states = states_of(file, spec)?;
    let names: Vec<&str> = spec.states.iter().map(|s| s.name.as_str()).collect();
    let has_summary = file.exists("summary/rhat");
    let has_transc = file.exists("transc/probability") || file.exists("transc/state");
    let usage = |m: String| PlotError::Usage(format!("{}: {m}", path.display()));
    if let Some(want) = &options.state {
        if !names.contains(&want.as_str()) {
            return Err(usage(format!(
                "no state `{want}` (states: {})",
                names.join(", ")
            )));
        }
        if !states.iter().any(|s| &s.name == want) {
            return Err(usage(format!("state `{want}` has no rows in the file yet")));
        }
    }
    let mut planned = Vec::new();
    for st in states
        .iter()
        .filter(|s| options.state.as_ref().is_none_or(|w| *w == s.name))
    {
        let applies = st.source.figures(has_summary);
        match options.figure {
            Some(f) if applies.contains(&f) => planned.push(Planned {
                figure: f,
                state: Some(st.clone()),
            }),
            Some(Figure::Transc) => {}
            Some(f) if options.state.is_some() => {
                return Err(usage(format!(
                    "figure `{}` does not apply to state `{}` ({}); its figures: {}{}",
                    f.name(),
                    st.name,
                    st.source.describe(),
                    names_of(&applies),
                    missing_summary(f, &st.source, has_summary)
                )))
            }
            Some(_) => {}
            None => planned.extend(applies.into_iter().map(|figure| Planned {
                figure,
                state: Some(st.clone()),
            })),
        }
    }
    if has_transc && matches!(options.figure, None | Some(Figure::Transc)) {
        planned.push(Planned {
            figure: Figure::Transc,
            state: None,
        });
    }
    if planned.is_empty() {
        let what = options.figure.map_or("no figure applies".to_string(), |f| {
            format!("figure `{}` does not apply", f.name())
        });
        let kinds: Vec<String> = states
            .iter()
            .map(|s| format!("{} ({})", s.name, s.source.describe()))
            .collect();
        let why = match options.figure {
            Some(f @ Figure::Diagnostics) => {
                missing_summary(f, &Source::Emcee { independent: false }, has_summary)
            }
            Some(Figure::Transc) => "; the file has no /transc group".to_string(),
            _ => String::new(),
        };
        return Err(usage(format!(
            "{what} to this file: its states are {}{why}",
            if kinds.is_empty() {
                "none yet".to_string()
            } else {
                kinds.join(", ")
            }
        )));
    }
    // Parameters named in --params and --truth must be those of a state drawn.
    let known: Vec<&String> = planned
        .iter()
        .filter_map(|p| p.state.as_ref())
        .flat_map(|s| &s.params)
        .collect();
    let named = options
        .params
        .iter()
        .flatten()
        .chain(options.truths.iter().map(|(n, _)| n));
    for name in named {
        if !known.contains(&name) {
            let mut all: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            all.dedup();
            return Err(usage(format!(
                "no parameter `{name}` in the states drawn (parameters{}: {})",
                if planned
                    .iter()
                    .any(|p| p.state.as_ref().is_some_and(|s| s.source == Source::Batch))
                {
                    " or batch outputs"
                } else {
                    ""
                },
                all.join(", ")
            )));
        }
    }
    Ok(planned)
}

fn names_of(figures: &[Figure]) -> String {
    figures
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_summary(f: Figure, source: &Source, has_summary: bool) -> String {
    if f == Figure::Diagnostics && matches!(source, Source::Emcee { .. }) && !has_summary {
        "; diagnostics need the /summary a run writes when it ends (`sampo summary` \
         computes them from the rows so far)"
            .to_string()
    } else {
        String::new()
    }
}

/// Draws every figure `options` asks for, returning the files written.
pub fn plot(path: &Path, options: &Options) -> Result<Vec<PathBuf>, PlotError> {
    if options.thin == Some(0) {
        return Err(PlotError::Usage("--thin must be at least 1".into()));
    }
    let (file, spec) = crate::summary::open_output(path)?;
    let planned = plan(path, &file, &spec, options)?;
    let targets = targets(path, &planned, options)?;
    // Every figure by default: one with nothing to draw yet (a state of a
    // running file still in its burn-in) is left out with a warning.
    let asked = options.state.is_some() || options.figure.is_some();
    let mut written = Vec::new();
    for (p, target) in planned.iter().zip(targets) {
        let data = match kinds::data(&file, p, options) {
            Err(PlotError::Usage(why)) if !asked => {
                tracing::warn!("{}: left out: {why}", p.file_stem());
                continue;
            }
            other => other?,
        };
        render::write(&data, &target, options.format, options.dpi, options.size)?;
        written.push(target);
    }
    Ok(written)
}

/// Where each figure goes: `-o` itself for one figure, else a file per
/// figure in `-o` or `<output>-plots/`.
fn targets(path: &Path, planned: &[Planned], options: &Options) -> Result<Vec<PathBuf>, PlotError> {
    let ext = options.format.extension();
    if let (Some(out), [_]) = (&options.output, planned) {
        match out.extension().and_then(|e| e.to_str()) {
            _ if out.is_dir() => {}
            Some(e) if e.eq_ignore_ascii_case(ext) => return Ok(vec![out.clone()]),
            Some(e) => {
                return Err(PlotError::Usage(format!(
                    "-o {}: a .{e} file for --format {ext} (name it .{ext}, or give a directory)",
                    out.display()
                )))
            }
            None => {}
        }
    }
    let dir = match &options.output {
        Some(d) => d.clone(),
        None => default_dir(path),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| PlotError::Draw(format!("cannot create {}: {e}", dir.display())))?;
    Ok(planned
        .iter()
        .map(|p| dir.join(format!("{}.{ext}", p.file_stem())))
        .collect())
}

/// `out.h5` (or `out.h5.partial`) → `out-plots/`.
pub fn default_dir(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("sampo");
    let name = name.strip_suffix(".partial").unwrap_or(name);
    let stem = name
        .strip_suffix(".h5")
        .or_else(|| name.strip_suffix(".hdf5"))
        .unwrap_or(name);
    path.with_file_name(format!("{stem}-plots"))
}
