//! The `[sampler]` keys of `kind = "smc"`: `particles`, `effective`,
//! `total`, `groups` and `[sampler.mutation]`, and each state's posterior,
//! resolved with located errors.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::jobs::{KindSpec, Memory, SamplerContext};
use crate::model::PosteriorSpec;
use crate::spec::{SpecError, StateSpec};

/// A small complete spec of this kind (`[sampler]` first, one state last).
pub const EXAMPLE: &str = r#"[sampler]
kind = "smc"

[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

pub const DEFAULT_PARTICLES: usize = 1000;
/// Independent groups the particles are split into: their spread is the
/// error of log Z (7 degrees of freedom).
pub const DEFAULT_GROUPS: usize = 8;
/// Particles per group at least.
pub const MIN_GROUP: usize = 4;
/// Steps per iteration at most, per parameter (pocoMC's default bound).
pub const DEFAULT_MAX_STEPS: usize = 10;
pub const MAX_PARTICLES: usize = 10_000_000;

/// The resolved settings, shared by every state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Particles moved at each temperature.
    pub particles: usize,
    /// The effective sample size over every particle kept so far that
    /// fixes the next temperature (default 2 × particles).
    pub effective: f64,
    /// Stop once β = 1 and the effective sample size at β = 1 reaches it;
    /// also the size of the equally weighted posterior draw.
    pub total: usize,
    /// Independent runs the particles are split into (`particles`,
    /// `effective` and `total` are their sums).
    pub groups: usize,
    pub mutation: Mutation,
    /// Each state's posterior, in the order of `[[states]]`.
    pub posteriors: Vec<PosteriorSpec>,
}

impl KindSpec for Spec {
    fn posteriors(&self) -> Option<&[PosteriorSpec]> {
        Some(&self.posteriors)
    }

    /// Every particle kept (persistent sampling keeps them all: at least
    /// the prior draws that reach `effective`), each with its position,
    /// log-likelihood, log-prior and weight, twice (the history and its
    /// resampled copy); the posterior draw of `total`.
    fn memory(&self, states: &[StateSpec]) -> Memory {
        let kept = 2.0 * (self.effective / self.particles as f64).ceil().max(1.0)
            * self.particles as f64;
        let most = states
            .iter()
            .map(|st| {
                let d = st.dim() as f64;
                2.0 * kept * (d + 3.0) + self.total as f64 * d
            })
            .fold(0.0, f64::max);
        Memory::values(most, "particles, effective and total")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    pub kind: MutationKind,
    /// Steps per iteration at most, per parameter.
    pub max_steps: usize,
}

/// `[sampler]` of `kind = "smc"` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    /// Particles moved at each temperature (over all groups).
    #[schemars(extend("default" = DEFAULT_PARTICLES), range(min = 4, max = MAX_PARTICLES))]
    #[schemars(with = "Option<usize>")]
    pub particles: Option<Spanned<usize>>,
    /// Effective sample size over every particle kept so far that fixes the next temperature.
    #[schemars(extend("x-default" = "2 × particles"), range(min = 1.0))]
    #[schemars(with = "Option<f64>")]
    pub effective: Option<Spanned<f64>>,
    /// Stop once β = 1 and the effective sample size reaches this; also the size of the equally
    /// weighted draw.
    #[schemars(extend("x-default" = "particles"), range(min = 1, max = MAX_PARTICLES))]
    #[schemars(with = "Option<usize>")]
    pub total: Option<Spanned<usize>>,
    /// Independent runs the particles are split into; their spread gives the evidence's error.
    #[schemars(extend("x-default" = "8, at most particles / 4"), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub groups: Option<Spanned<usize>>,
    /// How particles move at each temperature.
    #[schemars(with = "Option<RawMutation>")]
    pub mutation: Option<Spanned<RawMutation>>,
}

/// `[sampler.mutation]`: the MCMC kernel that moves the resampled
/// particles at each temperature.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "smc.mutation")]
pub struct RawMutation {
    /// The move.
    #[schemars(extend("default" = "pcn"))]
    #[schemars(with = "Option<MutationKind>")]
    pub kind: Option<Spanned<MutationKind>>,
    /// Steps per iteration at most, per parameter.
    #[schemars(extend("default" = DEFAULT_MAX_STEPS), range(min = 1, max = 10_000))]
    #[schemars(with = "Option<usize>")]
    pub max_steps: Option<Spanned<usize>>,
}

/// The proposal of an SMC mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "mutation.kind", description = "How SMC particles move at each temperature.")]
pub enum MutationKind {
    /// Preconditioned Crank–Nicolson around the particles' mean and covariance.
    Pcn,
    /// Random-walk Metropolis with the particles' covariance.
    Rwm,
}

/// A state's keys in the JSON Schema: the shared posterior keys and its own.
pub type StateKeys = crate::spec::schema::WithPosterior<RawState>;

/// A state's own keys: none beside the posterior keys the kinds that
/// sample one share (`spec::RawPosterior`); particles start from the prior.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<(Spec, Vec<StateSpec>), SpecError> {
    let r = cx.resolver;
    let sampler = cx.sampler::<RawSampler>()?;
    let sm = Some(sampler.get_ref());
    let mut states = Vec::new();
    let mut posteriors = Vec::new();
    for i in 0..cx.states.len() {
        let resolved = cx.posterior_state::<RawState>(i)?;
        states.push(resolved.state);
        posteriors.push(resolved.posterior);
    }
    cx.refuse_replicates("run the spec with other seeds instead")?;
    let particles = match sm.and_then(|s| s.particles.as_ref()) {
        Some(p) if *p.get_ref() < 4 || *p.get_ref() > MAX_PARTICLES => {
            return Err(r.err(
                p.span(),
                format!("particles must be between 4 and {MAX_PARTICLES}"),
            ))
        }
        Some(p) => *p.get_ref(),
        None => DEFAULT_PARTICLES,
    };
    let effective = match sm.and_then(|s| s.effective.as_ref()) {
        Some(e) if !(e.get_ref().is_finite() && *e.get_ref() >= 1.0) => {
            return Err(r.err(e.span(), "effective must be a finite number of at least 1"))
        }
        Some(e) => *e.get_ref(),
        None => 2.0 * particles as f64,
    };
    let total = match sm.and_then(|s| s.total.as_ref()) {
        Some(t) if *t.get_ref() == 0 || *t.get_ref() > MAX_PARTICLES => {
            return Err(r.err(
                t.span(),
                format!("total must be between 1 and {MAX_PARTICLES}"),
            ))
        }
        Some(t) => *t.get_ref(),
        None => particles,
    };
    let groups = match sm.and_then(|s| s.groups.as_ref()) {
        Some(g) if *g.get_ref() == 0 || *g.get_ref() * MIN_GROUP > particles => {
            return Err(r.err(
                g.span(),
                format!(
                    "groups must be between 1 and particles / {MIN_GROUP} = {} (each group \
                     needs {MIN_GROUP} particles at least)",
                    particles / MIN_GROUP
                ),
            ))
        }
        Some(g) => *g.get_ref(),
        None => DEFAULT_GROUPS.min(particles / MIN_GROUP),
    };
    let mut mutation = Mutation {
        kind: MutationKind::Pcn,
        max_steps: DEFAULT_MAX_STEPS,
    };
    if let Some(m) = sm.and_then(|s| s.mutation.as_ref()) {
        let raw = m.get_ref();
        if let Some(k) = &raw.kind {
            mutation.kind = *k.get_ref();
        }
        if let Some(s) = &raw.max_steps {
            if *s.get_ref() == 0 || *s.get_ref() > 10_000 {
                return Err(r.err(s.span(), "mutation.max_steps must be between 1 and 10000"));
            }
            mutation.max_steps = *s.get_ref();
        }
    }
    let spec = Spec {
        particles,
        effective,
        total,
        groups,
        mutation,
        posteriors,
    };
    Ok((spec, states))
}
