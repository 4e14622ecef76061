//! The `[sampler]` keys of `kind = "ensemble"` (and their per-state
//! overrides), resolved and validated with located errors.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::moves::{Move, WeightedMove};
use super::sampler::EnsembleSettings;
use crate::jobs::SamplerContext;
use crate::model::Prior;
use crate::spec::{MoveSpec, SpecError};

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

/// Stop an ensemble once its chain after burn-in is longer than
/// `tau_lengths` × τ for every parameter and τ changed by less than
/// `tau_change` (relative) since the previous check, checked every
/// `check_every` steps; at most `max_steps`. Each ensemble (state and
/// replicate) decides for itself, from its own chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TauStop {
    pub check_every: usize,
    pub max_steps: usize,
    pub tau_lengths: f64,
    pub tau_change: f64,
}

/// The resolved settings of every state's ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// One per state, in the order of `[[states]]`.
    pub states: Vec<EnsembleSettings>,
}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<Spec, SpecError> {
    let sm = cx.sampler();
    cx.reject_keys(
        "ensemble",
        &[
            (
                "chains",
                sm.and_then(|s| s.chains.as_ref()).map(Spanned::span),
            ),
            (
                "proposal",
                sm.and_then(|s| s.proposal.as_ref()).map(Spanned::span),
            ),
            (
                "particles",
                sm.and_then(|s| s.particles.as_ref()).map(Spanned::span),
            ),
            (
                "effective",
                sm.and_then(|s| s.effective.as_ref()).map(Spanned::span),
            ),
            (
                "total",
                sm.and_then(|s| s.total.as_ref()).map(Spanned::span),
            ),
            (
                "groups",
                sm.and_then(|s| s.groups.as_ref()).map(Spanned::span),
            ),
            (
                "mutation",
                sm.and_then(|s| s.mutation.as_ref()).map(Spanned::span),
            ),
        ],
    )?;
    let stop = resolve_stop(cx)?;
    let states = cx
        .raw_states
        .iter()
        .zip(cx.states)
        .map(|(raw, st)| resolve_state(cx, raw, st, stop.as_ref()))
        .collect::<Result<_, _>>()?;
    Ok(Spec { states })
}

/// `[sampler.stop]` of an ensemble: emcee's rule.
fn resolve_stop(cx: &SamplerContext<'_>) -> Result<Option<TauStop>, SpecError> {
    let r = cx.resolver;
    let Some(s) = cx.sampler().and_then(|s| s.stop.as_ref()) else {
        return Ok(None);
    };
    let raw = s.get_ref();
    cx.reject_keys(
        "ensemble",
        &[
            ("stop.rhat", raw.rhat.as_ref().map(Spanned::span)),
            ("stop.ess", raw.ess.as_ref().map(Spanned::span)),
        ],
    )?;
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
    state: &Spanned<crate::spec::RawState>,
    resolved: &crate::spec::StateSpec,
    stop: Option<&TauStop>,
) -> Result<EnsembleSettings, SpecError> {
    let r = cx.resolver;
    let sm = cx.sampler();
    let st = state.get_ref();
    let (name, dim) = (&resolved.name, resolved.dim());
    let (walkers, walkers_span) = r.pick(
        state,
        st.walkers.as_ref(),
        sm.and_then(|s| s.walkers.as_ref()),
        DEFAULT_WALKERS,
    );
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
    let max_steps = stop.map(|s| s.max_steps);
    let (steps, burn, thin) = r.resolve_length(state, sm, name, DEFAULT_STEPS, max_steps)?;
    let moves = match sm.and_then(|s| s.moves.as_ref()) {
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
    let prior = Prior::from_spec(&resolved.prior)
        .map_err(|e| r.err(st.prior.span(), format!("state `{name}`: prior.{e}")))?;
    let init = r.resolve_init(state, sm, &prior, name)?;
    r.check_start(state, sm, resolved, &init)?;
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
