//! The `[sampler]` keys of `kind = "ensemble"` (and their per-state
//! overrides), resolved and validated with located errors.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::moves::{Move, WeightedMove};
use super::sampler::{EnsembleSettings, TauStop};
use crate::jobs::{KindSpec, Memory, PosteriorState, SamplerContext};
use crate::model::PosteriorSpec;
use crate::spec::{ChainKeys, ChainTables, InitSpec, SpecError, StateEntry, StateSpec};

/// A small complete spec of this kind (`[sampler]` first, one state last).
pub const EXAMPLE: &str = r#"[sampler]
kind = "ensemble"

[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

pub const DEFAULT_WALKERS: usize = 32;
pub const DEFAULT_STEPS: usize = 2000;
/// More walkers than this is a mistake, not an ensemble (and its rows would
/// outgrow HDF5's chunks).
pub const MAX_WALKERS: usize = 1_000_000;
pub const DEFAULT_STRETCH_A: f64 = 2.0;
pub const DEFAULT_DE_SIGMA: f64 = 1e-5;
/// emcee's documented rule: the chain longer than 50 τ, τ stable to 1%.
pub const DEFAULT_TAU_LENGTHS: f64 = 50.0;
pub const DEFAULT_TAU_CHANGE: f64 = 0.01;
pub const DEFAULT_CHECK_EVERY: usize = 1000;

/// `[sampler]` of `kind = "ensemble"` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    /// Walkers of each state: even, at least 2 × its parameters.
    #[schemars(extend("default" = DEFAULT_WALKERS), range(min = 2, max = MAX_WALKERS))]
    #[schemars(with = "Option<usize>")]
    pub walkers: Option<Spanned<usize>>,
    /// Steps of every walker (with `stop`: leave out, `stop.max_steps` bounds them).
    #[schemars(extend("default" = DEFAULT_STEPS), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub steps: Option<Spanned<usize>>,
    /// Steps dropped from the diagnostics and the flat sample.
    #[schemars(extend("x-default" = "steps / 4"))]
    #[schemars(with = "Option<usize>")]
    pub burn: Option<Spanned<usize>>,
    /// Store every `thin`-th step.
    #[schemars(extend("default" = 1), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub thin: Option<Spanned<usize>>,
    /// Where the walkers start.
    #[schemars(extend("x-default" = "`{ kind = \"prior\" }`"))]
    #[schemars(with = "Option<InitSpec>")]
    pub init: Option<Spanned<InitSpec>>,
    /// The moves, drawn per step by weight (emcee's `moves`).
    #[schemars(extend("x-default" = "`[{ kind = \"stretch\" }]`"))]
    #[schemars(with = "Option<Vec<MoveSpec>>")]
    pub moves: Option<Spanned<Vec<Spanned<MoveSpec>>>>,
    /// Stop each state on emcee's rule: τ stable and the chain longer than `tau_lengths` τ.
    #[schemars(with = "Option<RawStop>")]
    pub stop: Option<Spanned<RawStop>>,
}

/// `[sampler.stop]` of an ensemble: emcee's rule on τ.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ensemble.stop")]
pub struct RawStop {
    /// Steps between checks of τ.
    #[schemars(extend("default" = DEFAULT_CHECK_EVERY), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub check_every: Option<Spanned<usize>>,
    /// Steps at most; reaching them unconverged is a warning.
    #[schemars(extend("default" = DEFAULT_STEPS * 10), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub max_steps: Option<Spanned<usize>>,
    /// Stop once the steps exceed this many τ (every parameter).
    #[schemars(extend("default" = DEFAULT_TAU_LENGTHS))]
    #[schemars(with = "Option<f64>")]
    pub tau_lengths: Option<Spanned<f64>>,
    /// … and τ changed by less than this fraction since the last check.
    #[schemars(extend("default" = DEFAULT_TAU_CHANGE))]
    #[schemars(with = "Option<f64>")]
    pub tau_change: Option<Spanned<f64>>,
}

/// A state's keys in the JSON Schema: the shared posterior keys and its own.
pub type StateKeys = crate::spec::schema::WithPosterior<RawState>;

/// A state's own keys: per-state overrides (its posterior keys are shared
/// by the kinds that sample one, `spec::RawPosterior`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// This state's walkers (overrides `[sampler]`).
    #[schemars(range(min = 2, max = MAX_WALKERS))]
    #[schemars(with = "Option<usize>")]
    pub walkers: Option<Spanned<usize>>,
    /// This state's steps (overrides `[sampler]`).
    #[schemars(range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub steps: Option<Spanned<usize>>,
    /// This state's burn-in (overrides `[sampler]`).
    #[schemars(with = "Option<usize>")]
    pub burn: Option<Spanned<usize>>,
    /// This state's start (overrides `[sampler]`).
    #[schemars(with = "Option<InitSpec>")]
    pub init: Option<Spanned<InitSpec>>,
}

/// An ensemble move and its weight in the mixture.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(rename = "move", description = "An ensemble move, by `kind`, with its weight in the mixture of moves.")]
pub enum MoveSpec {
    /// Goodman & Weare stretch move with scale `a` (default 2).
    Stretch {
        /// The scale of the stretch (greater than 1).
        #[schemars(extend("default" = DEFAULT_STRETCH_A))]
        a: Option<f64>,
        /// Relative probability of this move.
        #[schemars(extend("default" = 1.0))]
        weight: Option<f64>,
    },
    /// Differential evolution (ter Braak 2006; emcee's DEMove).
    De {
        /// Scale of the difference vector (default 2.38 / √(2 dim)).
        gamma0: Option<f64>,
        /// Sd of the jitter added to the scale.
        #[schemars(extend("default" = DEFAULT_DE_SIGMA))]
        sigma: Option<f64>,
        /// Relative probability of this move.
        #[schemars(extend("default" = 1.0))]
        weight: Option<f64>,
    },
    /// Goodman & Weare walk move on a subset of `s` complementary walkers.
    Walk {
        /// Complementary walkers used, from 2 to walkers / 2 (default: all of the other half).
        s: Option<usize>,
        /// Relative probability of this move.
        #[schemars(extend("default" = 1.0))]
        weight: Option<f64>,
    },
}

/// The resolved settings of every state's ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// One per state, in the order of `[[states]]`.
    pub states: Vec<EnsembleSettings>,
    /// Each state's posterior, in the same order.
    pub posteriors: Vec<PosteriorSpec>,
}

impl KindSpec for Spec {
    fn posteriors(&self) -> Option<&[PosteriorSpec]> {
        Some(&self.posteriors)
    }

    /// Per walker: its position, a proposal and their log-probabilities,
    /// a row of the output buffer; the diagnostics keep a bounded sample.
    fn memory(&self, states: &[StateSpec]) -> Memory {
        let most = self
            .states
            .iter()
            .zip(states)
            .map(|(s, st)| s.walkers as f64 * (st.dim() as f64 + 2.0))
            .fold(0.0, f64::max);
        Memory::values(most + crate::diag::TAU_MAX_SAMPLES as f64, "walkers")
    }
}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<(Spec, Vec<StateSpec>), SpecError> {
    let sm = cx.sampler::<RawSampler>()?;
    let stop = resolve_stop(cx, sm.get_ref())?;
    let mut spec = Spec {
        states: Vec::new(),
        posteriors: Vec::new(),
    };
    let mut states = Vec::new();
    for (i, entry) in cx.states.iter().enumerate() {
        let st = cx.posterior_state::<RawState>(i)?;
        let settings = resolve_state(cx, entry, &st, sm.get_ref(), stop.as_ref())?;
        spec.states.push(settings);
        spec.posteriors.push(st.posterior);
        states.push(st.state);
    }
    Ok((spec, states))
}

/// `[sampler.stop]` of an ensemble: emcee's rule.
fn resolve_stop(cx: &SamplerContext<'_>, sm: &RawSampler) -> Result<Option<TauStop>, SpecError> {
    let r = cx.resolver;
    let Some(s) = sm.stop.as_ref() else {
        return Ok(None);
    };
    let raw = s.get_ref();
    let number = |v: &Option<Spanned<f64>>, default: f64, what: &str| {
        let value = v.as_ref().map_or(default, |v| *v.get_ref());
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            let span = v.as_ref().map_or(s.span(), Spanned::span);
            Err(r.err(
                span,
                format!("stop.{what} must be a positive finite number"),
            ))
        }
    };
    let tau_lengths = number(&raw.tau_lengths, DEFAULT_TAU_LENGTHS, "tau_lengths")?;
    let tau_change = number(&raw.tau_change, DEFAULT_TAU_CHANGE, "tau_change")?;
    let max_steps = match &raw.max_steps {
        Some(m) if *m.get_ref() == 0 => {
            return Err(r.err(m.span(), "stop.max_steps must be at least 1"))
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_STEPS * 10,
    };
    let check_every = raw
        .check_every
        .as_ref()
        .map_or(DEFAULT_CHECK_EVERY.min(max_steps), |v| *v.get_ref());
    if check_every == 0 || check_every > max_steps {
        let span = raw.check_every.as_ref().map_or(s.span(), Spanned::span);
        return Err(r.err(
            span,
            format!("stop.check_every must be between 1 and max_steps ({max_steps})"),
        ));
    }
    Ok(Some(TauStop {
        check_every,
        max_steps,
        tau_lengths,
        tau_change,
    }))
}

fn resolve_state(
    cx: &SamplerContext<'_>,
    entry: &StateEntry<'_>,
    resolved: &PosteriorState<RawState>,
    sm: &RawSampler,
    stop: Option<&TauStop>,
) -> Result<EnsembleSettings, SpecError> {
    let r = cx.resolver;
    let name = &entry.name;
    let st = &resolved.raw;
    let dim = resolved.prior.dim();
    let (walkers, walkers_span) = st
        .walkers
        .as_ref()
        .or(sm.walkers.as_ref())
        .map_or((DEFAULT_WALKERS, entry.span.clone()), |w| {
            (*w.get_ref(), w.span())
        });
    if walkers > MAX_WALKERS {
        return Err(r.err(
            walkers_span,
            format!("state `{name}`: walkers must be at most {MAX_WALKERS}, found {walkers}"),
        ));
    }
    if walkers < 2 * dim.max(1) {
        return Err(r.err(
            walkers_span,
            format!(
                "state `{name}`: {walkers} walkers is too few for {dim} parameters \
                 (the ensemble needs at least 2 × dim = {})",
                2 * dim.max(1)
            ),
        ));
    }
    if walkers % 2 != 0 {
        return Err(r.err(
            walkers_span,
            format!(
                "state `{name}`: walkers must be even (the ensemble is split in halves), \
                 found {walkers}"
            ),
        ));
    }
    let tables = ChainTables {
        name,
        span: &entry.span,
        state: ChainKeys {
            steps: st.steps.as_ref(),
            burn: st.burn.as_ref(),
            thin: None,
            init: st.init.as_ref(),
        },
        sampler: ChainKeys {
            steps: sm.steps.as_ref(),
            burn: sm.burn.as_ref(),
            thin: sm.thin.as_ref(),
            init: sm.init.as_ref(),
        },
    };
    let max_steps = stop.map(|s| s.max_steps);
    let (steps, burn, thin) = r.resolve_length(&tables, DEFAULT_STEPS, max_steps)?;
    let moves = match sm.moves.as_ref() {
        None => vec![WeightedMove {
            kind: Move::Stretch {
                a: DEFAULT_STRETCH_A,
            },
            weight: 1.0,
        }],
        Some(list) if list.get_ref().is_empty() => {
            return Err(r.err(list.span(), "moves must list at least one move"))
        }
        Some(list) => list
            .get_ref()
            .iter()
            .map(|m| resolve_move(cx, m, walkers, dim))
            .collect::<Result<_, _>>()?,
    };
    let init = r.resolve_start(
        &tables,
        resolved.model_span.clone(),
        &resolved.posterior,
        &resolved.prior,
    )?;
    Ok(EnsembleSettings {
        walkers,
        steps,
        burn,
        thin,
        moves,
        init,
        stop: stop.cloned(),
    })
}

fn resolve_move(
    cx: &SamplerContext<'_>,
    m: &Spanned<MoveSpec>,
    walkers: usize,
    dim: usize,
) -> Result<WeightedMove, SpecError> {
    let here = |msg: &str| cx.resolver.err(m.span(), msg.to_string());
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
