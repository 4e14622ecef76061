//! Keys shared by the kinds that run Markov chains (ensemble, chains): a
//! length with burn-in and thinning, and how walkers or chains start —
//! resolved with located errors, a state's value winning over `[sampler]`'s.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{Resolver, SpecError};
use crate::model::{Posterior, PosteriorSpec, Prior};

/// A scalar for every parameter, or one per parameter.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(
    rename = "radius",
    description = "One number for every parameter, or one per parameter."
)]
pub enum Radius {
    Scalar(f64),
    PerParam(Vec<f64>),
}

impl Radius {
    /// One value per parameter (a list's length is checked by the caller).
    pub fn per_param(&self, dim: usize) -> Vec<f64> {
        match self {
            Radius::Scalar(r) => vec![*r; dim],
            Radius::PerParam(r) => r.clone(),
        }
    }
}

/// `init` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(
    rename = "init",
    description = "Where walkers or chains start, by `kind`."
)]
pub enum InitSpec {
    /// Independent draws from the prior.
    Prior,
    /// center + radius * N(0, 1), per parameter.
    Ball {
        /// The ball's centre, one value per parameter.
        center: Vec<f64>,
        /// The sd around the centre: one number, or one per parameter.
        radius: Radius,
    },
}

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

/// The Markov-chain keys as a state or `[sampler]` wrote them (each kind's
/// own table types hold them; this is a view for the shared resolution).
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainKeys<'a> {
    pub steps: Option<&'a Spanned<usize>>,
    pub burn: Option<&'a Spanned<usize>>,
    pub thin: Option<&'a Spanned<usize>>,
    pub init: Option<&'a Spanned<InitSpec>>,
}

/// One state's keys and `[sampler]`'s, for the state `name` at `span`.
#[derive(Debug, Clone, Copy)]
pub struct ChainTables<'a> {
    pub name: &'a str,
    pub span: &'a Range<usize>,
    pub state: ChainKeys<'a>,
    pub sampler: ChainKeys<'a>,
}

impl<'a> ChainTables<'a> {
    /// A state's value wins over `[sampler]`'s; the span points at the one
    /// written, or at the state when both were left out.
    fn pick<T: Copy>(
        &self,
        key: fn(&ChainKeys<'a>) -> Option<&'a Spanned<T>>,
        default: T,
    ) -> (T, Range<usize>) {
        key(&self.state)
            .or(key(&self.sampler))
            .map_or((default, self.span.clone()), |s| (*s.get_ref(), s.span()))
    }

    fn init(&self) -> Option<&'a Spanned<InitSpec>> {
        self.state.init.or(self.sampler.init)
    }
}

impl Resolver<'_> {
    /// steps, burn and thin of one state, checked against each other.
    pub fn resolve_steps(
        &self,
        t: &ChainTables<'_>,
        default_steps: usize,
    ) -> Result<(usize, usize, usize), SpecError> {
        let name = t.name;
        let (steps, steps_span) = t.pick(|k| k.steps, default_steps);
        let (burn, burn_span) = t.pick(|k| k.burn, steps / 4);
        // thin is one setting for every state.
        let (thin, thin_span) = t
            .sampler
            .thin
            .map_or((1, t.span.clone()), |s| (*s.get_ref(), s.span()));
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

    /// As [`Self::resolve_steps`]; with a stop rule (`max_steps` given),
    /// the length is `max_steps` and `steps` must be left out.
    pub fn resolve_length(
        &self,
        t: &ChainTables<'_>,
        default_steps: usize,
        max_steps: Option<usize>,
    ) -> Result<(usize, usize, usize), SpecError> {
        let (steps, burn, thin) = self.resolve_steps(t, default_steps)?;
        let Some(max_steps) = max_steps else {
            return Ok((steps, burn, thin));
        };
        let name = t.name;
        if let Some(given) = t.state.steps.or(t.sampler.steps) {
            return Err(self.err(
                given.span(),
                "with [sampler.stop], the length is stop.max_steps: leave `steps` out",
            ));
        }
        if burn >= max_steps {
            return Err(self.err(
                t.span.clone(),
                format!(
                    "state `{name}`: burn ({burn}) must be less than stop.max_steps ({max_steps})"
                ),
            ));
        }
        if max_steps < thin {
            return Err(self.err(
                t.span.clone(),
                format!(
                    "state `{name}`: stop.max_steps ({max_steps}) must be at least thin ({thin})"
                ),
            ));
        }
        Ok((max_steps, burn, thin))
    }

    /// How chains or walkers start, from the state's `init` or
    /// `[sampler]`'s, with the start checked ([`Self::check_start`]).
    pub fn resolve_start(
        &self,
        t: &ChainTables<'_>,
        model_span: Range<usize>,
        posterior: &PosteriorSpec,
        prior: &Prior,
    ) -> Result<Init, SpecError> {
        let init = self.resolve_init(t, prior)?;
        self.check_start(t, model_span, posterior, &init)?;
        Ok(init)
    }

    /// How chains or walkers start, from the state's `init` or `[sampler]`'s.
    fn resolve_init(&self, t: &ChainTables<'_>, prior: &Prior) -> Result<Init, SpecError> {
        let dim = prior.dim();
        let Some(s) = t.init() else {
            return Ok(Init::Prior);
        };
        let name = t.name;
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
                if let Radius::PerParam(r) = radius {
                    if r.len() != dim {
                        return Err(here(format!(
                            "radius has {} entries but the state has {dim} parameters",
                            r.len()
                        )));
                    }
                }
                let radius = radius.per_param(dim);
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

    /// Refuses a state whose every starting point would be at −∞ (a prior
    /// and likelihood that do not overlap, a density that underflows, an
    /// init outside the posterior): draws up to 64 points as the run's init
    /// would and evaluates them, so that `check` finds what `run` would
    /// fail on. `model_span` is where the error points without an `init`.
    fn check_start(
        &self,
        t: &ChainTables<'_>,
        model_span: Range<usize>,
        posterior: &PosteriorSpec,
        init: &Init,
    ) -> Result<(), SpecError> {
        use rand::RngExt;
        const TRIES: usize = 64;
        let name = t.name;
        let model = Posterior::from_spec(name, posterior)
            .map_err(|e| self.err(model_span.clone(), format!("state `{name}`: model.{e}")))?;
        let mut rng = crate::seed::StreamKey::validation().stream(0);
        let mut x = vec![0.0; model.dim()];
        let mut failure = None;
        for _ in 0..TRIES {
            match init {
                Init::Prior => model.prior().sample(&mut rng, &mut x),
                Init::Ball { center, radius } => {
                    for ((xi, c), r) in x.iter_mut().zip(center).zip(radius) {
                        *xi = c + r * rng.sample::<f64, _>(rand_distr::StandardNormal);
                    }
                }
            }
            match model.log_prob(&x) {
                Ok(lp) if lp.is_finite() => return Ok(()),
                Ok(_) => {}
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let span = t.init().map_or(model_span, Spanned::span);
        let from = match init {
            Init::Prior => "prior draws",
            Init::Ball { .. } => "points of the init ball",
        };
        Err(self.err(
            span,
            match failure {
                Some(e) => format!("state `{name}`: the model fails at its starting points: {e}"),
                None => format!(
                    "state `{name}`: none of {TRIES} {from} has a finite log-probability (the \
                     prior and the likelihood do not overlap there, or the density underflows): \
                     every walker or chain would start at −∞; check the model, the prior and \
                     the init"
                ),
            },
        ))
    }
}
