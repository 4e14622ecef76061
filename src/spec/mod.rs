//! The run spec's shared parts: the TOML document ([`Table`]), `[run]` and
//! `[parallel]` ([`RunSettings`]), what every state has ([`StateSpec`]),
//! located errors ([`SpecError`]) and the helpers the kinds resolve their own
//! tables with (posteriors, Markov-chain lengths and starts). Each kind of
//! work deserialises its own `[sampler]` table and per-state keys
//! (`jobs::<kind>::spec`); the registry (`jobs`) joins the parts into a
//! `RunSpec`.
//!
//! Parsing and validation have no side effects beyond reading the spec and
//! its data files. Every error is a [`SpecError`] naming file:line:column.

mod document;
mod error;
pub mod markov;
pub mod overrides;
pub mod posterior;
mod raw;
pub mod reference;
pub mod resume;
pub mod schema;

pub use document::{fields_of, Table};
pub use error::{SpecError, SpecSource};
pub use markov::{ChainKeys, ChainTables, Init, InitSpec, Radius};
pub use posterior::RawPosterior;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use raw::{RawParallel, RawPython, RawRun};

use crate::limits::MAX_DURATION_SECS;
pub use crate::limits::NAME_MAX;

/// `[run] checkpoint_every` by default: ten minutes of work at most lost to
/// a kill -9 or a lost node.
pub const DEFAULT_CHECKPOINT_EVERY: f64 = 600.0;

/// Seconds in a duration like "90s", "10m", "4h 30m", "1day" (humantime's
/// forms) or a plain number of seconds; `None` for anything else, or longer
/// than [`MAX_DURATION_SECS`].
pub fn parse_duration(text: &str) -> Option<f64> {
    let secs = match text.parse::<f64>() {
        Ok(secs) => secs,
        Err(_) => humantime::parse_duration(text).ok()?.as_secs_f64(),
    };
    (secs.is_finite() && (0.0..=MAX_DURATION_SECS).contains(&secs)).then_some(secs)
}

/// `[run]` and `[parallel]`, resolved: what every run has.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    pub name: String,
    pub seed: u64,
    pub output: PathBuf,
    pub replicates: usize,
    /// Where `replicates` was written, for the kinds that refuse it.
    pub replicates_span: Option<Range<usize>>,
    pub threads: usize,
    pub rank_timeout: f64,
    pub evaluation_timeout: f64,
    pub checkpoint_every: Option<f64>,
    pub walltime: Option<f64>,
    /// `[python] executable`, as found (absolute when written relative to
    /// the spec), with where it was written.
    pub python_executable: Option<(PathBuf, Range<usize>)>,
}

/// What every state has, whatever its kind: a name and the names of its
/// parameters (or inputs). The rest of a state belongs to its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSpec {
    pub name: String,
    pub params: Vec<String>,
}

impl StateSpec {
    pub fn dim(&self) -> usize {
        self.params.len()
    }
}

/// The shared keys of a `[[states]]` entry.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawStateHead {
    /// The state's name: unique, 1 to 64 bytes, no `/`; its group in the output.
    #[schemars(with = "String")]
    name: Spanned<String>,
    /// A name per parameter (or input); the dimension must match the model's.
    #[schemars(extend("x-default" = "`x0`, `x1`, …"))]
    #[schemars(with = "Option<Vec<String>>")]
    params: Option<Spanned<Vec<String>>>,
}

/// One `[[states]]` entry: its name and `params` as written, and its other
/// keys for its kind to deserialise.
#[derive(Debug, Clone)]
pub struct StateEntry<'a> {
    pub name: String,
    pub name_span: Range<usize>,
    pub params: Option<Spanned<Vec<String>>>,
    /// The entry's span (its `[[states]]` header or inline table).
    pub span: Range<usize>,
    pub keys: Table<'a>,
}

/// A spec split into its parts, before the kinds resolve theirs.
pub struct Parts<'a> {
    pub run: RunSettings,
    /// `[sampler]`, if written (with its `kind`).
    pub sampler: Option<Table<'a>>,
    pub states: Vec<StateEntry<'a>>,
    /// The other top-level tables (second stages), by name.
    pub stages: Vec<(String, Table<'a>)>,
}

/// Resolves the shared parts; the kinds resolve theirs with its helpers, so
/// that every error is located the same way.
pub struct Resolver<'a> {
    pub source: &'a SpecSource,
}

impl<'a> Resolver<'a> {
    pub fn err(&self, span: Range<usize>, message: impl Into<String>) -> SpecError {
        self.source.error_at(Some(span), message)
    }

    /// Splits the document: `[run]`, `[parallel]`, `[sampler]`,
    /// `[[states]]`, and the tables named in `stages`; any other top-level
    /// key is an error.
    pub fn parts(&self, stages: &[&str]) -> Result<Parts<'a>, SpecError> {
        let source = self.source;
        let mut root = Table::parse(source)?;
        let shared = ["run", "parallel", "python", "sampler", "states"];
        let known: Vec<String> = shared.iter().chain(stages).map(|s| s.to_string()).collect();
        if let Some((key, span)) = root.keys().find(|(k, _)| !known.iter().any(|n| n == k)) {
            let tables: Vec<String> = known
                .iter()
                .map(|k| match k.as_str() {
                    "states" => "[[states]]".to_string(),
                    k => format!("[{k}]"),
                })
                .collect();
            let hint = match document::nearest(key, &known) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => String::new(),
            };
            return Err(self.err(
                span,
                format!(
                    "`{key}` is not a table of a run spec (expected {}){hint}",
                    tables.join(", ")
                ),
            ));
        }
        let none = &|_: &str| None;
        let table = |root: &mut Table<'a>, key: &str| {
            root.take(key)
                .map(|v| Table::from_value(v, format!("[{key}]"), source))
                .transpose()
        };
        let run = match table(&mut root, "run")? {
            Some(t) => t.into::<RawRun>(source, none)?.into_inner(),
            None => RawRun::default(),
        };
        let parallel = match table(&mut root, "parallel")? {
            Some(t) => Some(t.into::<RawParallel>(source, none)?.into_inner()),
            None => None,
        };
        let mut run = self.run_settings(run, parallel)?;
        if let Some(t) = table(&mut root, "python")? {
            let python = t.into::<RawPython>(source, none)?.into_inner();
            run.python_executable = python
                .executable
                .map(|e| self.python_executable(&e))
                .transpose()?;
        }
        let sampler = table(&mut root, "sampler")?;
        let states = self.state_entries(&mut root)?;
        let mut stage_tables = Vec::new();
        for name in stages {
            if let Some(t) = table(&mut root, name)? {
                stage_tables.push((name.to_string(), t));
            }
        }
        Ok(Parts {
            run,
            sampler,
            states,
            stages: stage_tables,
        })
    }

    fn state_entries(&self, root: &mut Table<'a>) -> Result<Vec<StateEntry<'a>>, SpecError> {
        let source = self.source;
        let Some(states) = root.take("states") else {
            return Err(source.error_at(
                None,
                "no [[states]]: a run spec needs at least one state (see configs/quickstart.toml)",
            ));
        };
        let span = states.span();
        let toml::de::DeValue::Array(list) = states.into_inner() else {
            return Err(self.err(span, "states must be an array of tables ([[states]])"));
        };
        if list.is_empty() {
            return Err(self.err(span, "states must list at least one state"));
        }
        let mut names = HashSet::new();
        let mut entries = Vec::new();
        for value in list {
            let mut keys = Table::from_value(value, "[[states]]", source)?;
            let head = keys
                .split(fields_of::<RawStateHead>())
                .into::<RawStateHead>(source, &|_| None)?
                .into_inner();
            let name = head.name.get_ref().clone();
            self.check_state_name(&name, head.name.span())?;
            if !names.insert(name.clone()) {
                return Err(self.err(head.name.span(), format!("duplicate state name `{name}`")));
            }
            keys.title = format!("state `{name}`");
            entries.push(StateEntry {
                name,
                name_span: head.name.span(),
                params: head.params,
                span: keys.span(),
                keys,
            });
        }
        Ok(entries)
    }

    fn check_state_name(&self, name: &str, span: Range<usize>) -> Result<(), SpecError> {
        if name.is_empty()
            || name.contains('/')
            || name.contains(char::is_control)
            || name == "."
            || name == ".."
            || name.len() > NAME_MAX
        {
            return Err(self.err(
                span,
                format!(
                    "a state name must be 1 to {NAME_MAX} bytes with no `/` and no control \
                     characters (it names an HDF5 group)"
                ),
            ));
        }
        Ok(())
    }

    /// The state of an entry whose kind has found it has `dim` parameters:
    /// its `params`, checked, or x0, x1, … by default.
    pub fn state_spec(&self, entry: &StateEntry<'_>, dim: usize) -> Result<StateSpec, SpecError> {
        let name = &entry.name;
        let params =
            match &entry.params {
                Some(p) => {
                    if p.get_ref().len() != dim {
                        return Err(self.err(
                            p.span(),
                            format!(
                            "state `{name}`: {} parameter names for a model with {dim} parameters",
                            p.get_ref().len()
                        ),
                        ));
                    }
                    if let Some(bad) = p.get_ref().iter().find(|n| {
                        n.is_empty() || n.len() > NAME_MAX || n.contains(char::is_control)
                    }) {
                        return Err(self.err(
                            p.span(),
                            format!(
                            "parameter name {bad:?}: names must be 1 to {NAME_MAX} bytes with no \
                             control characters"
                        ),
                        ));
                    }
                    let mut seen = HashSet::new();
                    if let Some(dup) = p.get_ref().iter().find(|n| !seen.insert(n.as_str())) {
                        return Err(self.err(p.span(), format!("duplicate parameter name `{dup}`")));
                    }
                    p.get_ref().clone()
                }
                None => (0..dim).map(|i| format!("x{i}")).collect(),
            };
        Ok(StateSpec {
            name: name.clone(),
            params,
        })
    }

    /// `[python] executable`: relative to the spec's folder, an existing
    /// file that may be executed.
    fn python_executable(
        &self,
        written: &Spanned<String>,
    ) -> Result<(PathBuf, Range<usize>), SpecError> {
        let span = written.span();
        let text = written.get_ref();
        if text.trim().is_empty() {
            return Err(self.err(span, "python.executable must not be empty"));
        }
        let base = self.source.path.parent().unwrap_or(Path::new(""));
        let path = base.join(text);
        let refuse = |why: &str| {
            Err(self.err(
                span.clone(),
                format!(
                    "python.executable: {} {why}; name a Python interpreter, such as a \
                     virtual environment's bin/python",
                    path.display()
                ),
            ))
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            return refuse("does not exist");
        };
        if !meta.is_file() {
            return refuse("is not a file");
        }
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return refuse("is not executable");
        }
        // Absolute, the link kept: a venv's bin/python is a link to the
        // base interpreter, and only through the link is it the venv's.
        let path = std::path::absolute(&path).unwrap_or(path);
        Ok((path, span))
    }

    fn run_settings(
        &self,
        run: RawRun,
        parallel: Option<RawParallel>,
    ) -> Result<RunSettings, SpecError> {
        let run = Some(run);
        let name = match run.as_ref().and_then(|r| r.name.as_ref()) {
            Some(n) => {
                let name = n.get_ref();
                if name.trim().is_empty() {
                    return Err(self.err(n.span(), "run.name must not be empty"));
                }
                // It names the default output `<name>.h5` in the working
                // directory: a plain file name, nothing that leaves it.
                if name.contains(['/', '\\'])
                    || name == "."
                    || name == ".."
                    || name.contains(char::is_control)
                {
                    return Err(self.err(
                        n.span(),
                        "run.name must be a plain name (no `/`, no `..`, no control characters): \
                         it names the default output <name>.h5; use run.output or -o for a path",
                    ));
                }
                name.clone()
            }
            None if self.source.path == Path::new("-") => "stdin".to_string(),
            None => self
                .source
                .path
                .file_stem()
                .map_or_else(|| "sampo".to_string(), |s| s.to_string_lossy().into_owned()),
        };
        let seed = run
            .as_ref()
            .and_then(|r| r.seed.as_ref())
            .map_or(0, |s| s.get_ref().0);
        let output = match run.as_ref().and_then(|r| r.output.as_ref()) {
            Some(o) if o.get_ref().trim().is_empty() => {
                return Err(self.err(o.span(), "run.output must not be empty"))
            }
            Some(o) => PathBuf::from(o.get_ref()),
            None => PathBuf::from(format!("{name}.h5")),
        };
        let replicates = match run.as_ref().and_then(|r| r.replicates.as_ref()) {
            Some(r) if *r.get_ref() == 0 => {
                return Err(self.err(r.span(), "run.replicates must be at least 1"))
            }
            Some(r) => *r.get_ref(),
            None => 1,
        };
        let replicates_span = run
            .as_ref()
            .and_then(|r| r.replicates.as_ref())
            .map(Spanned::span);
        let duration = |key: &str, value: Option<&Spanned<String>>, off: bool| {
            let Some(v) = value else {
                return Ok(None);
            };
            let text = v.get_ref().trim();
            if off && matches!(text, "off" | "never" | "0") {
                return Ok(None);
            }
            match parse_duration(text) {
                Some(secs) if secs >= 1.0 => Ok(Some(secs)),
                _ => Err(self.err(
                    v.span(),
                    format!(
                        "run.{key} must be a duration from 1 s to 100 years, like \"90s\", \
                         \"10m\" or \"4h 30m\"{}",
                        if off { " (or \"off\")" } else { "" }
                    ),
                )),
            }
        };
        let checkpoint_every = match run.as_ref().and_then(|r| r.checkpoint_every.as_ref()) {
            None => Some(DEFAULT_CHECKPOINT_EVERY),
            some => duration("checkpoint_every", some, true)?,
        };
        let walltime = duration(
            "walltime",
            run.as_ref().and_then(|r| r.walltime.as_ref()),
            false,
        )?;
        let threads = match parallel.as_ref().and_then(|p| p.threads.as_ref()) {
            Some(t) if *t.get_ref() > crate::limits::MAX_THREADS => {
                return Err(self.err(
                    t.span(),
                    format!(
                        "parallel.threads must be from 0 (decide) to {} per rank",
                        crate::limits::MAX_THREADS
                    ),
                ))
            }
            Some(t) => *t.get_ref(),
            None => 0,
        };

        let rank_timeout = match parallel.as_ref().and_then(|p| p.timeout.as_ref()) {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() >= 1.0 && *t.get_ref() <= 1e7) => {
                return Err(self.err(
                    t.span(),
                    "parallel.timeout must be a number of seconds from 1 to 10000000",
                ))
            }
            Some(t) => *t.get_ref(),
            None => crate::limits::RANK_TIMEOUT.as_secs_f64(),
        };
        let evaluation_timeout = match parallel
            .as_ref()
            .and_then(|p| p.evaluation_timeout.as_ref())
        {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() >= 1.0 && *t.get_ref() <= 1e8) => {
                return Err(self.err(
                    t.span(),
                    "parallel.evaluation_timeout must be a number of seconds from 1 to \
                         100000000",
                ))
            }
            Some(t) => *t.get_ref(),
            None => 10.0 * rank_timeout,
        };

        Ok(RunSettings {
            name,
            seed,
            output,
            replicates,
            replicates_span,
            threads,
            rank_timeout,
            evaluation_timeout,
            checkpoint_every,
            walltime,
            python_executable: None,
        })
    }
}
