//! The `[sampler]` keys of `kind = "chains"`: the number of chains, steps,
//! burn, thin, init, the proposal and the optional `[sampler.stop]` rule.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::metropolis::MetropolisSettings;
use crate::jobs::{KindSpec, Memory, SamplerContext};
use crate::model::PosteriorSpec;
use crate::spec::{ChainKeys, ChainTables, Init, InitSpec, Radius, SpecError, StateSpec};

/// A small complete spec of this kind (`[sampler]` first, one state last).
pub const EXAMPLE: &str = r#"[sampler]
kind = "chains"

[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

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
    /// Each state's posterior, in the order of `[[states]]`.
    pub posteriors: Vec<PosteriorSpec>,
}

impl KindSpec for Spec {
    fn posteriors(&self) -> Option<&[PosteriorSpec]> {
        Some(&self.posteriors)
    }

    /// Per chain: its position and adaptive covariance (d²) and their
    /// running estimates, a row of the output buffer; the diagnostics keep
    /// a bounded sample.
    fn memory(&self, states: &[StateSpec]) -> Memory {
        let most = states
            .iter()
            .map(|st| {
                let d = st.dim() as f64;
                4.0 * self.chains as f64 * (d * d + 4.0 * d)
            })
            .fold(0.0, f64::max);
        Memory::values(most + crate::diag::TAU_MAX_SAMPLES as f64, "chains")
    }
}

/// `[sampler]` of `kind = "chains"` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    /// Independent chains per state, each with its own stream.
    #[schemars(extend("default" = DEFAULT_CHAINS), range(min = 1, max = 1_000_000))]
    #[schemars(with = "Option<usize>")]
    pub chains: Option<Spanned<usize>>,
    /// Steps of every chain (with `stop`: leave out, `stop.max_steps` bounds them).
    #[schemars(extend("default" = DEFAULT_STEPS), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub steps: Option<Spanned<usize>>,
    /// Steps dropped from the diagnostics; the proposal adapts during them.
    #[schemars(extend("x-default" = "steps / 4"))]
    #[schemars(with = "Option<usize>")]
    pub burn: Option<Spanned<usize>>,
    /// Store every `thin`-th step.
    #[schemars(extend("default" = 1), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub thin: Option<Spanned<usize>>,
    /// Where the chains start.
    #[schemars(extend("x-default" = "`{ kind = \"prior\" }`"))]
    #[schemars(with = "Option<InitSpec>")]
    pub init: Option<Spanned<InitSpec>>,
    /// The Metropolis proposal.
    #[schemars(extend("x-default" = "`{ kind = \"adaptive-metropolis\" }`"))]
    #[schemars(with = "Option<ProposalSpec>")]
    pub proposal: Option<Spanned<ProposalSpec>>,
    /// Stop each state once every parameter's R-hat and bulk ESS pass.
    #[schemars(with = "Option<RawStop>")]
    pub stop: Option<Spanned<RawStop>>,
}

/// `[sampler.stop]` of chains: R-hat and bulk-ESS.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "chains.stop")]
pub struct RawStop {
    /// Steps between convergence checks.
    #[schemars(extend("default" = 1000), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub check_every: Option<Spanned<usize>>,
    /// Steps at most; reaching them unconverged is a warning.
    #[schemars(extend("default" = DEFAULT_STEPS * 10), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub max_steps: Option<Spanned<usize>>,
    /// Largest rank-normalised split R-hat allowed (every parameter).
    #[schemars(extend("default" = DEFAULT_RHAT), range(min = 1.0))]
    #[schemars(with = "Option<f64>")]
    pub rhat: Option<Spanned<f64>>,
    /// Smallest bulk ESS required (every parameter).
    #[schemars(extend("default" = DEFAULT_ESS))]
    #[schemars(with = "Option<f64>")]
    pub ess: Option<Spanned<f64>>,
}

/// The proposal of the `chains` kind.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(rename = "proposal", description = "The chains' Metropolis proposal, by `kind`.")]
pub enum ProposalSpec {
    /// Adaptive Metropolis (Haario et al. 2001), adapted during burn-in only.
    AdaptiveMetropolis {
        /// Initial proposal sd per parameter (default: a tenth of the prior's sd).
        initial_sd: Option<Radius>,
    },
}

/// A state's keys in the JSON Schema: the shared posterior keys and its own.
pub type StateKeys = crate::spec::schema::WithPosterior<RawState>;

/// A state's own keys: per-state overrides (its posterior keys are shared
/// by the kinds that sample one, `spec::RawPosterior`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
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

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<(Spec, Vec<StateSpec>), SpecError> {
    let r = cx.resolver;
    let sampler = cx.sampler::<RawSampler>()?;
    let sm = sampler.get_ref();
    cx.refuse_replicates(
        "chains are already independent repeats, each with its own stream; raise `chains` instead",
    )?;
    let chains = match sm.chains.as_ref() {
        Some(c) if *c.get_ref() == 0 || *c.get_ref() > 1_000_000 => {
            return Err(r.err(c.span(), "chains must be between 1 and 1000000"))
        }
        Some(c) => *c.get_ref(),
        None => DEFAULT_CHAINS,
    };
    let stop = match sm.stop.as_ref() {
        None => None,
        Some(s) => {
            let raw = s.get_ref();
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
    let mut spec = Spec {
        chains,
        states: Vec::new(),
        stop,
        posteriors: Vec::new(),
    };
    let mut states = Vec::new();
    for (i, entry) in cx.states.iter().enumerate() {
        let resolved = cx.posterior_state::<RawState>(i)?;
        let st = &resolved.raw;
        let name = &entry.name;
        let dim = resolved.prior.dim();
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
        let max_steps = spec.stop.as_ref().map(|s| s.max_steps);
        let (steps, burn, thin) = r.resolve_length(&tables, DEFAULT_STEPS, max_steps)?;
        let init = r.resolve_start(
            &tables,
            resolved.model_span.clone(),
            &resolved.posterior,
            &resolved.prior,
        )?;
        let mut metropolis = MetropolisSettings {
            burn,
            ..MetropolisSettings::default()
        };
        if let Some(p) = sm.proposal.as_ref() {
            let ProposalSpec::AdaptiveMetropolis { initial_sd } = p.get_ref();
            metropolis.initial_sd = initial_sd.as_ref().map(|sd| sd.per_param(dim));
            metropolis
                .check(dim)
                .map_err(|e| r.err(p.span(), format!("state `{name}`: proposal.{e}")))?;
        }
        spec.states.push(ChainSettings {
            steps,
            burn,
            thin,
            init,
            metropolis,
        });
        spec.posteriors.push(resolved.posterior);
        states.push(resolved.state);
    }
    Ok((spec, states))
}
