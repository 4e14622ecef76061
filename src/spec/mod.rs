//! The run spec: TOML → `RunSpec`, validated, with defaults filled in.
//!
//! Parsing and validation have no side effects beyond reading the spec and its
//! data files. Every error is a [`SpecError`] naming file:line:column.

mod error;
pub mod overrides;
mod raw;
pub mod resume;

pub use error::{SpecError, SpecSource};
pub use raw::{
    InitSpec, ModelSpec, MoveSpec, MutationKind, PriorSpec, ProposalSpec, Radius, RawStop,
};

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::jobs::SamplerSpec;
use crate::model::{self, Posterior, RegressionData};
use raw::RawSpec;
pub(crate) use raw::{RawSampler, RawState, RawTransc};

/// The longest state or parameter name, in bytes: names are stored as
/// fixed-length strings of this width.
pub const NAME_MAX: usize = 64;

/// How walkers or chains start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Init {
    /// Independent draws from the prior.
    Prior,
    /// center + radius ⊙ N(0, I).
    Ball { center: Vec<f64>, radius: Vec<f64> },
}

impl Init {
    /// As `sampo check` shows it.
    pub fn label(&self) -> &'static str {
        match self {
            Init::Prior => "prior",
            Init::Ball { .. } => "ball",
        }
    }
}

/// `[run] checkpoint_every` by default: ten minutes of work at most lost to
/// a kill -9 or a lost node.
pub const DEFAULT_CHECKPOINT_EVERY: f64 = 600.0;

/// Seconds in a duration like "90s", "10m", "4h 30m", "1day" (humantime's
/// forms) or a plain number of seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs);
    }
    humantime::parse_duration(text)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// A validated run spec with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub seed: u64,
    /// The kind of work and its resolved settings (`[sampler]`).
    pub sampler: SamplerSpec,
    pub output: PathBuf,
    pub replicates: usize,
    /// Rayon threads per rank; 0 = decide from SLURM or the machine.
    pub threads: usize,
    /// Seconds a worker rank may stay silent (`[parallel] timeout`).
    pub rank_timeout: f64,
    /// Seconds between checkpoints (`[run] checkpoint_every`; `None`: off).
    pub checkpoint_every: Option<f64>,
    /// Wall-time budget in seconds (`[run] walltime`).
    pub walltime: Option<f64>,
    pub states: Vec<StateSpec>,
    /// `[transc]`: trans-conceptual sampling after the per-state stage.
    #[serde(default)]
    pub transc: Option<crate::jobs::transc::TranscSpec>,
    /// The spec file, as given, and its text (recorded in the output), with
    /// the `--set` overrides applied; the overrides themselves.
    pub path: PathBuf,
    /// Left out of the resolved spec a file records (it has `spec`).
    #[serde(default)]
    pub text: String,
    pub overrides: Vec<String>,
}

/// One state (model): its parameters, likelihood and prior.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSpec {
    pub name: String,
    pub params: Vec<String>,
    pub model: ModelSpec,
    /// The regression data file's contents, read during validation.
    pub data: Option<RegressionData>,
    /// A plugin model's library, as validation found it.
    pub plugin: Option<PluginSpec>,
    pub prior: PriorSpec,
    /// Busy-wait per evaluation, in microseconds (emulates a costly model).
    pub cost_us: u64,
}

/// A plugin model, resolved: the library's absolute path, the `config` table
/// as JSON, and the library's declared thread safety.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginSpec {
    pub path: PathBuf,
    pub config_json: String,
    pub safety: model::plugin::ThreadSafety,
}

impl StateSpec {
    pub fn dim(&self) -> usize {
        self.params.len()
    }

    /// The model as `sampo check` shows it: its kind, and for a plugin the
    /// library's file name and declared thread safety.
    pub fn model_label(&self) -> String {
        match &self.plugin {
            Some(p) => format!(
                "plugin {} ({})",
                p.path.file_name().unwrap_or_default().to_string_lossy(),
                p.safety.label()
            ),
            None => self.model.kind_name().to_string(),
        }
    }
}

impl RunSpec {
    /// Reads, parses and validates a spec file (`-`: standard input).
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        Self::from_source(&SpecSource::read(path)?)
    }

    /// As [`Self::from_file`], with `--set key=value` overrides applied to
    /// the text first (and recorded in `overrides`).
    pub fn from_file_with(path: &Path, sets: &[String]) -> anyhow::Result<Self> {
        let mut source = SpecSource::read(path)?;
        source.text = overrides::apply(&source.text, sets)?;
        let mut spec = Self::from_source(&source)?;
        spec.overrides = sets.to_vec();
        Ok(spec)
    }

    /// Parses and validates spec text. Relative data paths are taken from the
    /// directory of `source.path`.
    pub fn from_source(source: &SpecSource) -> Result<Self, SpecError> {
        let raw: RawSpec = toml::from_str(&source.text)
            .map_err(|e| source.error_at(e.span(), e.message().trim_end().to_string()))?;
        Resolver { source }.resolve(raw)
    }
}

/// Turns the raw TOML into a [`RunSpec`]; the kinds' resolvers use its
/// helpers so that every error is located the same way.
pub(crate) struct Resolver<'a> {
    source: &'a SpecSource,
}

impl Resolver<'_> {
    pub(crate) fn err(&self, span: Range<usize>, message: impl Into<String>) -> SpecError {
        self.source.error_at(Some(span), message)
    }

    fn resolve(&self, raw: RawSpec) -> Result<RunSpec, SpecError> {
        let run = raw.run;
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
            .map_or(0, |s| *s.get_ref());
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
                        "run.{key} must be a duration of at least 1 s, like \"90s\", \"10m\" or \
                         \"4h 30m\"{}",
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
        let threads = match raw.parallel.as_ref().and_then(|p| p.threads.as_ref()) {
            Some(t) if *t.get_ref() > crate::exec::MAX_THREADS => {
                return Err(self.err(
                    t.span(),
                    format!(
                        "parallel.threads must be from 0 (decide) to {} per rank",
                        crate::exec::MAX_THREADS
                    ),
                ))
            }
            Some(t) => *t.get_ref(),
            None => 0,
        };

        let rank_timeout = match raw.parallel.as_ref().and_then(|p| p.timeout.as_ref()) {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() >= 1.0 && *t.get_ref() <= 1e7) => {
                return Err(self.err(
                    t.span(),
                    "parallel.timeout must be a number of seconds from 1 to 10000000",
                ))
            }
            Some(t) => *t.get_ref(),
            None => crate::exec::RANK_TIMEOUT.as_secs_f64(),
        };

        let Some(states_raw) = raw.states else {
            return Err(self.source.error_at(
                None,
                "no [[states]]: a run spec needs at least one state (see configs/quickstart.toml)",
            ));
        };
        if states_raw.get_ref().is_empty() {
            return Err(self.err(states_raw.span(), "states must list at least one state"));
        }
        let mut names = HashSet::new();
        let mut states = Vec::new();
        for st in states_raw.get_ref() {
            let state = self.resolve_state(st)?;
            if !names.insert(state.name.clone()) {
                return Err(self.err(
                    st.get_ref().name.span(),
                    format!("duplicate state name `{}`", state.name),
                ));
            }
            states.push(state);
        }
        let sampler = crate::jobs::resolve_sampler(&crate::jobs::SamplerContext {
            resolver: self,
            raw: raw.sampler.as_ref(),
            raw_states: states_raw.get_ref(),
            states: &states,
            replicates: (replicates, replicates_span),
        })?;
        let transc =
            crate::jobs::transc::resolve(self, raw.transc.as_ref(), &states, replicates, &sampler)?;
        Ok(RunSpec {
            name,
            seed,
            sampler,
            output,
            replicates,
            threads,
            rank_timeout,
            checkpoint_every,
            walltime,
            states,
            transc,
            path: self.source.path.clone(),
            text: self.source.text.clone(),
            overrides: Vec::new(),
        })
    }

    fn resolve_state(&self, spanned: &Spanned<RawState>) -> Result<StateSpec, SpecError> {
        let st = spanned.get_ref();
        let name = st.name.get_ref().clone();
        if name.is_empty()
            || name.contains('/')
            || name.contains(char::is_control)
            || name == "."
            || name == ".."
            || name.len() > NAME_MAX
        {
            return Err(self.err(
                st.name.span(),
                format!(
                    "a state name must be 1 to {NAME_MAX} bytes with no `/` and no control \
                     characters (it names an HDF5 group)"
                ),
            ));
        }
        let model_err =
            |e: model::BuildError| self.err(st.model.span(), format!("state `{name}`: model.{e}"));
        let prior_err =
            |e: model::BuildError| self.err(st.prior.span(), format!("state `{name}`: prior.{e}"));

        // Dimensions: model, prior and params must agree.
        let prior = model::Prior::from_spec(st.prior.get_ref()).map_err(prior_err)?;
        let dim = model::model_dim(st.model.get_ref()).unwrap_or(prior.dim());
        if prior.dim() != dim {
            return Err(self.err(
                st.prior.span(),
                format!(
                    "state `{name}`: the prior has {} parameters but the model has {dim}",
                    prior.dim()
                ),
            ));
        }
        let params =
            match &st.params {
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
                                "parameter name {bad:?}: names must be 1 to {NAME_MAX} bytes \
                             with no control characters"
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

        // Data files are read now, relative to the spec's directory.
        let data = match st.model.get_ref() {
            ModelSpec::PolynomialRegression { data, .. } => {
                let base = self.source.path.parent().unwrap_or(Path::new(""));
                let path = base.join(data);
                Some(RegressionData::load(&path).map_err(|e| {
                    self.err(st.model.span(), format!("state `{name}`: model.data: {e}"))
                })?)
            }
            _ => None,
        };
        // A plugin's library, relative to the spec's directory; loaded, its
        // ABI checked and its init run below (by `Posterior::from_state`).
        let plugin = match st.model.get_ref() {
            ModelSpec::Plugin { library, config } => {
                let config_json = match config {
                    None => "{}".to_string(),
                    Some(c @ serde_json::Value::Object(_)) => c.to_string(),
                    Some(_) => {
                        return Err(self.err(
                            st.model.span(),
                            format!("state `{name}`: model.config must be a table"),
                        ))
                    }
                };
                let base = self.source.path.parent().unwrap_or(Path::new(""));
                let path = base.join(library);
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                let lib = model::plugin::Library::load(&path)
                    .map_err(|e| self.err(st.model.span(), format!("state `{name}`: model.{e}")))?;
                Some(PluginSpec {
                    path,
                    config_json,
                    safety: lib.safety(),
                })
            }
            _ => {
                model::build_likelihood(st.model.get_ref(), data.as_ref()).map_err(model_err)?;
                None
            }
        };

        let state = StateSpec {
            name: name.clone(),
            params,
            model: st.model.get_ref().clone(),
            data,
            plugin,
            prior: st.prior.get_ref().clone(),
            cost_us: st.cost_us.as_ref().map_or(0, |c| *c.get_ref()),
        };
        // Builds once more exactly as the run will, so nothing can fail later.
        Posterior::from_state(&state).map_err(model_err)?;
        Ok(state)
    }

    /// Refuses a state whose every starting point would be at −∞ (a prior
    /// and likelihood that do not overlap, a density that underflows, an
    /// init outside the posterior): draws up to 64 points as the run's
    /// init would and evaluates them, so that `check` finds what `run`
    /// would fail on.
    pub(crate) fn check_start(
        &self,
        state: &Spanned<RawState>,
        sampler: Option<&RawSampler>,
        resolved: &StateSpec,
        init: &Init,
    ) -> Result<(), SpecError> {
        use rand::RngExt;
        const TRIES: usize = 64;
        let posterior = Posterior::from_state(resolved).map_err(|e| {
            self.err(
                state.get_ref().model.span(),
                format!("state `{}`: model.{e}", resolved.name),
            )
        })?;
        let mut rng = crate::seed::TaskKey {
            seed: 0,
            state: 0,
            replicate: u64::MAX,
        }
        .stream(0);
        let mut x = vec![0.0; resolved.dim()];
        let mut failure = None;
        for _ in 0..TRIES {
            match init {
                Init::Prior => posterior.prior().sample(&mut rng, &mut x),
                Init::Ball { center, radius } => {
                    for ((xi, c), r) in x.iter_mut().zip(center).zip(radius) {
                        *xi = c + r * rng.sample::<f64, _>(rand_distr::StandardNormal);
                    }
                }
            }
            match posterior.log_prob(&x) {
                Ok(lp) if lp.is_finite() => return Ok(()),
                Ok(_) => {}
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let st = state.get_ref();
        let span = st
            .init
            .as_ref()
            .or_else(|| sampler.and_then(|s| s.init.as_ref()))
            .map_or(st.model.span(), Spanned::span);
        let from = match init {
            Init::Prior => "prior draws",
            Init::Ball { .. } => "points of the init ball",
        };
        Err(self.err(
            span,
            match failure {
                Some(e) => format!("state `{}`: the model fails at its starting points: {e}", resolved.name),
                None => format!(
                    "state `{}`: none of {TRIES} {from} has a finite log-probability (the prior and \
                     the likelihood do not overlap there, or the density underflows): every \
                     walker or chain would start at −∞; check the model, the prior and the init",
                    resolved.name
                ),
            },
        ))
    }

    /// How chains or walkers start, from the state's `init` or `[sampler]`'s.
    pub(crate) fn resolve_init(
        &self,
        state: &Spanned<RawState>,
        sampler: Option<&RawSampler>,
        prior: &model::Prior,
        name: &str,
    ) -> Result<Init, SpecError> {
        let st = state.get_ref();
        let dim = prior.dim();
        let Some(s) = st
            .init
            .as_ref()
            .or_else(|| sampler.and_then(|s| s.init.as_ref()))
        else {
            return Ok(Init::Prior);
        };
        let here = |msg: String| self.err(s.span(), format!("state `{name}`: init.{msg}"));
        match s.get_ref() {
            InitSpec::Prior => Ok(Init::Prior),
            InitSpec::Ball { center, radius } => {
                if center.len() != dim {
                    return Err(here(format!(
                        "center has {} entries but the state has {dim} parameters",
                        center.len()
                    )));
                }
                let radius = match radius {
                    Radius::Scalar(r) => vec![*r; dim],
                    Radius::PerParam(r) if r.len() == dim => r.clone(),
                    Radius::PerParam(r) => {
                        return Err(here(format!(
                            "radius has {} entries but the state has {dim} parameters",
                            r.len()
                        )))
                    }
                };
                if center.iter().any(|c| !c.is_finite()) {
                    return Err(here("center: expected finite numbers".into()));
                }
                if radius.iter().any(|r| !(r.is_finite() && *r >= 0.0)) {
                    return Err(here("radius: expected finite non-negative numbers".into()));
                }
                if prior.log_density(center) == f64::NEG_INFINITY {
                    return Err(here("center is outside the prior's support".into()));
                }
                Ok(Init::Ball {
                    center: center.clone(),
                    radius,
                })
            }
        }
    }

    /// A per-state value wins over the `[sampler]` one; the span points at
    /// whichever was written, or at the state when both were defaulted.
    pub(crate) fn pick<T: Copy>(
        &self,
        state: &Spanned<RawState>,
        own: Option<&Spanned<T>>,
        shared: Option<&Spanned<T>>,
        default: T,
    ) -> (T, Range<usize>) {
        own.or(shared)
            .map_or((default, state.span()), |s| (*s.get_ref(), s.span()))
    }

    /// steps, burn and thin of one state, checked against each other.
    pub(crate) fn resolve_steps(
        &self,
        state: &Spanned<RawState>,
        sampler: Option<&RawSampler>,
        name: &str,
        default_steps: usize,
    ) -> Result<(usize, usize, usize), SpecError> {
        let st = state.get_ref();
        let (steps, steps_span) = self.pick(
            state,
            st.steps.as_ref(),
            sampler.and_then(|s| s.steps.as_ref()),
            default_steps,
        );
        let (burn, burn_span) = self.pick(
            state,
            st.burn.as_ref(),
            sampler.and_then(|s| s.burn.as_ref()),
            steps / 4,
        );
        let (thin, thin_span) = self.pick(state, None, sampler.and_then(|s| s.thin.as_ref()), 1);
        if steps == 0 {
            return Err(self.err(
                steps_span,
                format!("state `{name}`: steps must be at least 1"),
            ));
        }
        if thin == 0 {
            return Err(self.err(thin_span, "thin must be at least 1"));
        }
        if steps < thin {
            return Err(self.err(
                steps_span,
                format!("state `{name}`: steps ({steps}) must be at least thin ({thin})"),
            ));
        }
        if burn >= steps {
            return Err(self.err(
                burn_span,
                format!("state `{name}`: burn ({burn}) must be less than steps ({steps})"),
            ));
        }
        Ok((steps, burn, thin))
    }

    /// As [`Self::resolve_steps`]; with `[sampler.stop]` (`max_steps`
    /// given), the length is `max_steps` and `steps` must be left out.
    pub(crate) fn resolve_length(
        &self,
        state: &Spanned<RawState>,
        sampler: Option<&RawSampler>,
        name: &str,
        default_steps: usize,
        max_steps: Option<usize>,
    ) -> Result<(usize, usize, usize), SpecError> {
        let (steps, burn, thin) = self.resolve_steps(state, sampler, name, default_steps)?;
        let Some(max_steps) = max_steps else {
            return Ok((steps, burn, thin));
        };
        let given = state
            .get_ref()
            .steps
            .as_ref()
            .or(sampler.and_then(|s| s.steps.as_ref()));
        if let Some(given) = given {
            return Err(self.err(
                given.span(),
                "with [sampler.stop], the length is stop.max_steps: leave `steps` out",
            ));
        }
        if burn >= max_steps {
            return Err(self.err(
                state.span(),
                format!(
                    "state `{name}`: burn ({burn}) must be less than stop.max_steps ({max_steps})"
                ),
            ));
        }
        if max_steps < thin {
            return Err(self.err(
                state.span(),
                format!(
                    "state `{name}`: stop.max_steps ({max_steps}) must be at least thin ({thin})"
                ),
            ));
        }
        Ok((max_steps, burn, thin))
    }
}

#[cfg(test)]
mod tests;
