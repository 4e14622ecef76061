//! The run spec: TOML → `RunSpec`, validated, with defaults filled in.
//!
//! Parsing and validation have no side effects beyond reading the spec and its
//! data files. Every error is a [`SpecError`] naming file:line:column.

mod error;
mod raw;

pub use error::{SpecError, SpecSource};
pub use raw::{InitSpec, ModelSpec, MoveSpec, PriorSpec, Radius, SamplerKind};

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::model::{self, Posterior, RegressionData};
use crate::sampler::{EnsembleSettings, Init, Move, WeightedMove};
use raw::{RawSampler, RawSpec, RawState};

/// Defaults of the `[sampler]` table.
pub const DEFAULT_WALKERS: usize = 32;
pub const DEFAULT_STEPS: usize = 2000;
pub const DEFAULT_STRETCH_A: f64 = 2.0;
pub const DEFAULT_DE_SIGMA: f64 = 1e-5;

/// A validated run spec with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub seed: u64,
    pub sampler: SamplerKind,
    pub output: PathBuf,
    pub replicates: usize,
    /// Rayon threads per rank; 0 = decide from SLURM or the machine.
    pub threads: usize,
    pub states: Vec<StateSpec>,
    /// The spec file, as given, and its text (recorded in the output).
    pub path: PathBuf,
    pub text: String,
}

/// One state (model): its parameters, likelihood, prior and sampler settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSpec {
    pub name: String,
    pub params: Vec<String>,
    pub model: ModelSpec,
    /// The regression data file's contents, read during validation.
    pub data: Option<RegressionData>,
    pub prior: PriorSpec,
    pub ensemble: EnsembleSettings,
    /// Busy-wait per evaluation, in microseconds (emulates a costly model).
    pub cost_us: u64,
}

impl StateSpec {
    pub fn dim(&self) -> usize {
        self.params.len()
    }
}

impl RunSpec {
    /// Reads, parses and validates a spec file.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        Self::from_source(&SpecSource::read(path)?)
    }

    /// Parses and validates spec text. Relative data paths are taken from the
    /// directory of `source.path`.
    pub fn from_source(source: &SpecSource) -> Result<Self, SpecError> {
        let raw: RawSpec = toml::from_str(&source.text)
            .map_err(|e| source.error_at(e.span(), e.message().trim_end().to_string()))?;
        Resolver { source }.resolve(raw)
    }
}

struct Resolver<'a> {
    source: &'a SpecSource,
}

impl Resolver<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> SpecError {
        self.source.error_at(Some(span), message)
    }

    fn resolve(&self, raw: RawSpec) -> Result<RunSpec, SpecError> {
        let run = raw.run;
        let name = match run.as_ref().and_then(|r| r.name.as_ref()) {
            Some(n) => {
                if n.get_ref().trim().is_empty() {
                    return Err(self.err(n.span(), "run.name must not be empty"));
                }
                n.get_ref().clone()
            }
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
        let threads = raw
            .parallel
            .as_ref()
            .and_then(|p| p.threads.as_ref())
            .map_or(0, |t| *t.get_ref());

        let Some(states_raw) = raw.states else {
            return Err(self.source.error_at(
                None,
                "no [[states]]: a run spec needs at least one state (see configs/quickstart.toml)",
            ));
        };
        if states_raw.get_ref().is_empty() {
            return Err(self.err(states_raw.span(), "states must list at least one state"));
        }
        let sampler = raw.sampler.as_ref();
        let mut names = HashSet::new();
        let mut states = Vec::new();
        for st in states_raw.get_ref() {
            let state = self.resolve_state(st, sampler)?;
            if !names.insert(state.name.clone()) {
                return Err(self.err(
                    st.get_ref().name.span(),
                    format!("duplicate state name `{}`", state.name),
                ));
            }
            states.push(state);
        }
        let sampler_kind = sampler
            .and_then(|s| s.get_ref().kind.as_ref())
            .map_or(SamplerKind::Ensemble, |k| *k.get_ref());
        Ok(RunSpec {
            name,
            seed,
            sampler: sampler_kind,
            output,
            replicates,
            threads,
            states,
            path: self.source.path.clone(),
            text: self.source.text.clone(),
        })
    }

    fn resolve_state(
        &self,
        spanned: &Spanned<RawState>,
        sampler: Option<&Spanned<RawSampler>>,
    ) -> Result<StateSpec, SpecError> {
        let st = spanned.get_ref();
        let name = st.name.get_ref().clone();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(self.err(
                st.name.span(),
                "a state name must be non-empty and contain no `/` (it names an HDF5 group)",
            ));
        }
        let model_err =
            |e: model::BuildError| self.err(st.model.span(), format!("state `{name}`: model.{e}"));
        let prior_err =
            |e: model::BuildError| self.err(st.prior.span(), format!("state `{name}`: prior.{e}"));

        // Dimensions: model, prior and params must agree.
        let dim = model::model_dim(st.model.get_ref());
        let prior = model::Prior::from_spec(st.prior.get_ref()).map_err(prior_err)?;
        if prior.dim() != dim {
            return Err(self.err(
                st.prior.span(),
                format!(
                    "state `{name}`: the prior has {} parameters but the model has {dim}",
                    prior.dim()
                ),
            ));
        }
        let params = match &st.params {
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
        model::build_likelihood(st.model.get_ref(), data.as_ref()).map_err(model_err)?;

        let ensemble = self.resolve_ensemble(spanned, sampler, dim, &name)?;
        if let Init::Ball { center, .. } = &ensemble.init {
            if prior.log_density(center) == f64::NEG_INFINITY {
                let span = st
                    .init
                    .as_ref()
                    .map(Spanned::span)
                    .or_else(|| {
                        sampler
                            .and_then(|s| s.get_ref().init.as_ref())
                            .map(Spanned::span)
                    })
                    .unwrap_or(spanned.span());
                return Err(self.err(
                    span,
                    format!("state `{name}`: init.center is outside the prior's support"),
                ));
            }
        }
        let state = StateSpec {
            name: name.clone(),
            params,
            model: st.model.get_ref().clone(),
            data,
            prior: st.prior.get_ref().clone(),
            ensemble,
            cost_us: st.cost_us.as_ref().map_or(0, |c| *c.get_ref()),
        };
        // Builds once more exactly as the run will, so nothing can fail later.
        Posterior::from_state(&state).map_err(model_err)?;
        Ok(state)
    }

    fn resolve_ensemble(
        &self,
        state: &Spanned<RawState>,
        sampler: Option<&Spanned<RawSampler>>,
        dim: usize,
        name: &str,
    ) -> Result<EnsembleSettings, SpecError> {
        let st = state.get_ref();
        let sm = sampler.map(Spanned::get_ref);
        // A per-state value wins over the [sampler] one; errors point at
        // whichever was written, or at the state when both were defaulted.
        let pick = |own: &Option<Spanned<usize>>, shared: Option<&Spanned<usize>>, default| {
            own.as_ref()
                .or(shared)
                .map_or((default, state.span()), |s| (*s.get_ref(), s.span()))
        };
        let (walkers, walkers_span) = pick(
            &st.walkers,
            sm.and_then(|s| s.walkers.as_ref()),
            DEFAULT_WALKERS,
        );
        let (steps, steps_span) = pick(&st.steps, sm.and_then(|s| s.steps.as_ref()), DEFAULT_STEPS);
        let (burn, burn_span) = pick(&st.burn, sm.and_then(|s| s.burn.as_ref()), steps / 4);
        let (thin, thin_span) = pick(&None, sm.and_then(|s| s.thin.as_ref()), 1);

        if walkers < 2 * dim.max(1) {
            return Err(self.err(
                walkers_span,
                format!(
                    "state `{name}`: {walkers} walkers is too few for {dim} parameters \
                     (the ensemble needs at least 2 × dim = {})",
                    2 * dim.max(1)
                ),
            ));
        }
        if walkers % 2 != 0 {
            return Err(self.err(
                walkers_span,
                format!("state `{name}`: walkers must be even (the ensemble is split in halves), found {walkers}"),
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

        let moves = match sm.and_then(|s| s.moves.as_ref()) {
            None => vec![WeightedMove {
                kind: Move::Stretch {
                    a: DEFAULT_STRETCH_A,
                },
                weight: 1.0,
            }],
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.err(list.span(), "moves must list at least one move"))
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|m| self.resolve_move(m, walkers, dim))
                .collect::<Result<_, _>>()?,
        };

        let init_spec = st
            .init
            .as_ref()
            .or_else(|| sm.and_then(|s| s.init.as_ref()));
        let init = match init_spec {
            None => Init::Prior,
            Some(s) => match s.get_ref() {
                InitSpec::Prior => Init::Prior,
                InitSpec::Ball { center, radius } => {
                    let here =
                        |msg: String| self.err(s.span(), format!("state `{name}`: init.{msg}"));
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
                    Init::Ball {
                        center: center.clone(),
                        radius,
                    }
                }
            },
        };
        Ok(EnsembleSettings {
            walkers,
            steps,
            burn,
            thin,
            moves,
            init,
        })
    }

    fn resolve_move(
        &self,
        m: &Spanned<MoveSpec>,
        walkers: usize,
        dim: usize,
    ) -> Result<WeightedMove, SpecError> {
        let here = |msg: &str| self.err(m.span(), msg.to_string());
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let (kind, weight) = match m.get_ref() {
            MoveSpec::Stretch { a, weight } => {
                let a = a.unwrap_or(DEFAULT_STRETCH_A);
                if !(a.is_finite() && a > 1.0) {
                    return Err(here(
                        "stretch move: a must be a finite number greater than 1",
                    ));
                }
                (Move::Stretch { a }, weight)
            }
            MoveSpec::De {
                gamma0,
                sigma,
                weight,
            } => {
                let gamma0 = gamma0.unwrap_or(2.38 / (2.0 * dim as f64).sqrt());
                let sigma = sigma.unwrap_or(DEFAULT_DE_SIGMA);
                if walkers < 4 {
                    return Err(here("de move: needs at least 4 walkers (two per half)"));
                }
                if !positive(gamma0) {
                    return Err(here("de move: gamma0 must be a positive finite number"));
                }
                if !(sigma.is_finite() && sigma >= 0.0) {
                    return Err(here("de move: sigma must be a finite non-negative number"));
                }
                (Move::De { gamma0, sigma }, weight)
            }
            MoveSpec::Walk { s, weight } => {
                let half = walkers / 2;
                let s = s.unwrap_or(half);
                if s < 2 || s > half {
                    return Err(here(&format!(
                        "walk move: s must be between 2 and walkers/2 = {half}, found {s}"
                    )));
                }
                (Move::Walk { s }, weight)
            }
        };
        let weight = weight.unwrap_or(1.0);
        if !positive(weight) {
            return Err(here("move weight must be a positive finite number"));
        }
        Ok(WeightedMove { kind, weight })
    }
}

#[cfg(test)]
mod tests;
