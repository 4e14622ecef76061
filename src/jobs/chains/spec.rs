//! The `[sampler]` keys of `kind = "chains"`: the number of chains, steps,
//! burn, thin, init, the proposal and the optional `[sampler.stop]` rule.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::metropolis::MetropolisSettings;
use crate::jobs::SamplerContext;
use crate::model::Prior;
use crate::spec::{Init, ProposalSpec, Radius, SpecError};

pub const DEFAULT_CHAINS: usize = 4;
pub const DEFAULT_STEPS: usize = 10_000;
pub const DEFAULT_RHAT: f64 = 1.01;
pub const DEFAULT_ESS: f64 = 400.0;

/// Stop once every state has converged, checked every `check_every` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// Largest rank-normalised split R-hat allowed (every parameter).
    pub rhat: f64,
    /// Smallest bulk-ESS required (every parameter).
    pub ess: f64,
    pub check_every: usize,
    /// Steps at most; reaching them unconverged is a warning, not an error.
    pub max_steps: usize,
}

/// One state's chains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSettings {
    /// Steps of every chain (with `stop`: the most it may take).
    pub steps: usize,
    pub burn: usize,
    pub thin: usize,
    pub init: Init,
    pub metropolis: MetropolisSettings,
}

impl ChainSettings {
    pub fn burn_rows(&self) -> usize {
        self.burn / self.thin
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Chains per state.
    pub chains: usize,
    pub states: Vec<ChainSettings>,
    pub stop: Option<Stop>,
}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<Spec, SpecError> {
    let r = cx.resolver;
    let sm = cx.sampler();
    cx.reject_keys(
        "chains",
        &[
            (
                "walkers",
                sm.and_then(|s| s.walkers.as_ref()).map(Spanned::span),
            ),
            (
                "moves",
                sm.and_then(|s| s.moves.as_ref()).map(Spanned::span),
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
    if let Some((st, w)) = cx
        .raw_states
        .iter()
        .find_map(|st| st.get_ref().walkers.as_ref().map(|w| (st, w)))
    {
        return Err(r.err(
            w.span(),
            format!(
                "state `{}`: `walkers` belongs to kind = \"ensemble\"; chains have `chains`",
                st.get_ref().name.get_ref()
            ),
        ));
    }
    if let (n, Some(span)) = &cx.replicates {
        if *n > 1 {
            return Err(r.err(
                span.clone(),
                "run.replicates is not supported by kind = \"chains\": chains are already \
                 independent repeats, each with its own stream; raise `chains` instead",
            ));
        }
    }
    let chains = match sm.and_then(|s| s.chains.as_ref()) {
        Some(c) if *c.get_ref() == 0 || *c.get_ref() > 1_000_000 => {
            return Err(r.err(c.span(), "chains must be between 1 and 1000000"))
        }
        Some(c) => *c.get_ref(),
        None => DEFAULT_CHAINS,
    };
    let stop = match sm.and_then(|s| s.stop.as_ref()) {
        None => None,
        Some(s) => {
            let raw = s.get_ref();
            cx.reject_keys(
                "chains",
                &[
                    (
                        "stop.tau_lengths",
                        raw.tau_lengths.as_ref().map(Spanned::span),
                    ),
                    (
                        "stop.tau_change",
                        raw.tau_change.as_ref().map(Spanned::span),
                    ),
                ],
            )?;
            let rhat = raw.rhat.as_ref().map_or(DEFAULT_RHAT, |v| *v.get_ref());
            if !(rhat.is_finite() && rhat > 1.0) {
                let span = raw.rhat.as_ref().map_or(s.span(), Spanned::span);
                return Err(r.err(span, "stop.rhat must be a finite number greater than 1"));
            }
            let ess = raw.ess.as_ref().map_or(DEFAULT_ESS, |v| *v.get_ref());
            if !(ess.is_finite() && ess > 0.0) {
                let span = raw.ess.as_ref().map_or(s.span(), Spanned::span);
                return Err(r.err(span, "stop.ess must be a positive finite number"));
            }
            let max_steps = raw
                .max_steps
                .as_ref()
                .map_or(DEFAULT_STEPS * 10, |v| *v.get_ref());
            let check_every = raw.check_every.as_ref().map_or(1000, |v| *v.get_ref());
            if check_every == 0 || check_every > max_steps {
                let span = raw.check_every.as_ref().map_or(s.span(), Spanned::span);
                return Err(r.err(
                    span,
                    format!("stop.check_every must be between 1 and max_steps ({max_steps})"),
                ));
            }
            Some(Stop {
                rhat,
                ess,
                check_every,
                max_steps,
            })
        }
    };
    let mut states = Vec::new();
    for (raw, st) in cx.raw_states.iter().zip(cx.states) {
        let name = &st.name;
        let max_steps = stop.as_ref().map(|s| s.max_steps);
        let (steps, burn, thin) = r.resolve_length(raw, sm, name, DEFAULT_STEPS, max_steps)?;
        let prior = Prior::from_spec(&st.prior).map_err(|e| {
            r.err(
                raw.get_ref().prior.span(),
                format!("state `{name}`: prior.{e}"),
            )
        })?;
        let init = r.resolve_init(raw, sm, &prior, name)?;
        r.check_start(raw, sm, st, &init)?;
        let mut metropolis = MetropolisSettings {
            burn,
            ..MetropolisSettings::default()
        };
        if let Some(p) = sm.and_then(|s| s.proposal.as_ref()) {
            let ProposalSpec::AdaptiveMetropolis { initial_sd } = p.get_ref();
            metropolis.initial_sd = initial_sd.as_ref().map(|sd| match sd {
                Radius::Scalar(v) => vec![*v; st.dim()],
                Radius::PerParam(v) => v.clone(),
            });
            metropolis
                .check(st.dim())
                .map_err(|e| r.err(p.span(), format!("state `{name}`: proposal.{e}")))?;
        }
        states.push(ChainSettings {
            steps,
            burn,
            thin,
            init,
            metropolis,
        });
    }
    Ok(Spec {
        chains,
        states,
        stop,
    })
}
