//! The run spec exactly as written: serde types mirroring the TOML, with spans
//! kept on the values that validation may need to point at. Nothing here
//! checks meaning; `resolve` does that.

use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub run: Option<RawRun>,
    pub parallel: Option<RawParallel>,
    pub sampler: Option<Spanned<RawSampler>>,
    pub states: Option<Spanned<Vec<Spanned<RawState>>>>,
    pub transc: Option<Spanned<RawTransc>>,
}

/// `[transc]`: trans-conceptual sampling over the states, after the
/// per-state stage (`jobs::transc`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransc {
    pub method: Option<Spanned<String>>,
    pub walkers: Option<Spanned<usize>>,
    pub steps: Option<Spanned<usize>>,
    pub burn: Option<Spanned<usize>>,
    pub thin: Option<Spanned<usize>>,
    pub pseudo_prior: Option<Spanned<RawPseudoPrior>>,
    pub state_weights: Option<Spanned<Vec<Vec<f64>>>>,
    pub state_priors: Option<Spanned<Vec<f64>>>,
    pub prob_state: Option<Spanned<f64>>,
    /// Which first-stage samples feed the pseudo-priors: "stage" (its
    /// burn-in and thinning) or "auto" (from τ).
    pub samples: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPseudoPrior {
    pub kind: Spanned<String>,
    pub components: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub name: Option<Spanned<String>>,
    pub seed: Option<Spanned<u64>>,
    pub output: Option<Spanned<String>>,
    pub replicates: Option<Spanned<usize>>,
    /// Time between checkpoints ("10m"; "off").
    pub checkpoint_every: Option<Spanned<String>>,
    /// Wall-time budget ("4h"): checkpoint and exit 75 before it is up.
    pub walltime: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParallel {
    pub threads: Option<Spanned<usize>>,
    /// Seconds a rank may stay silent before the job ends naming it.
    pub timeout: Option<Spanned<f64>>,
}

/// The `[sampler]` table: `kind` and the keys of every kind. Each kind's
/// module resolves the keys it owns and rejects, with their location, the
/// keys of other kinds (`jobs::<kind>::spec`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    pub kind: Option<Spanned<crate::jobs::Kind>>,
    // Shared by the kinds that run Markov chains.
    pub steps: Option<Spanned<usize>>,
    pub burn: Option<Spanned<usize>>,
    pub thin: Option<Spanned<usize>>,
    pub init: Option<Spanned<InitSpec>>,
    pub stop: Option<Spanned<RawStop>>,
    // ensemble
    pub walkers: Option<Spanned<usize>>,
    pub moves: Option<Spanned<Vec<Spanned<MoveSpec>>>>,
    // chains
    pub chains: Option<Spanned<usize>>,
    pub proposal: Option<Spanned<ProposalSpec>>,
    // smc
    pub particles: Option<Spanned<usize>>,
    pub effective: Option<Spanned<f64>>,
    pub total: Option<Spanned<usize>>,
    pub groups: Option<Spanned<usize>>,
    pub mutation: Option<Spanned<RawMutation>>,
}

/// `[sampler.mutation]` of `kind = "smc"`: the MCMC kernel that moves the
/// resampled particles at each temperature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMutation {
    pub kind: Option<Spanned<MutationKind>>,
    /// Steps per iteration at most, per parameter.
    pub max_steps: Option<Spanned<usize>>,
}

/// The proposal of an SMC mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MutationKind {
    /// Preconditioned Crank–Nicolson around the particles' mean and covariance.
    Pcn,
    /// Random-walk Metropolis with the particles' covariance.
    Rwm,
}

/// `[sampler.stop]`: stop once converged, checked every `check_every`
/// steps, at most `max_steps`. Chains: R-hat and bulk-ESS; ensembles: τ
/// (emcee's rule).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStop {
    pub check_every: Option<Spanned<usize>>,
    pub max_steps: Option<Spanned<usize>>,
    // chains
    pub rhat: Option<Spanned<f64>>,
    pub ess: Option<Spanned<f64>>,
    // ensemble
    pub tau_lengths: Option<Spanned<f64>>,
    pub tau_change: Option<Spanned<f64>>,
}

/// The proposal of the `chains` kind.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProposalSpec {
    /// Adaptive Metropolis (Haario et al. 2001), adapted during burn-in only.
    AdaptiveMetropolis {
        /// Initial proposal sd per parameter (default: a tenth of the prior's sd).
        initial_sd: Option<Radius>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub name: Spanned<String>,
    pub params: Option<Spanned<Vec<String>>>,
    pub model: Spanned<ModelSpec>,
    pub prior: Spanned<PriorSpec>,
    pub walkers: Option<Spanned<usize>>,
    pub steps: Option<Spanned<usize>>,
    pub burn: Option<Spanned<usize>>,
    pub init: Option<Spanned<InitSpec>>,
    pub cost_us: Option<Spanned<u64>>,
}

/// An ensemble move and its weight in the mixture.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MoveSpec {
    /// Goodman & Weare stretch move with scale `a` (default 2).
    Stretch { a: Option<f64>, weight: Option<f64> },
    /// Differential evolution (ter Braak 2006; emcee's DEMove).
    De {
        gamma0: Option<f64>,
        sigma: Option<f64>,
        weight: Option<f64>,
    },
    /// Goodman & Weare walk move on a subset of `s` complementary walkers.
    Walk {
        s: Option<usize>,
        weight: Option<f64>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Radius {
    Scalar(f64),
    PerParam(Vec<f64>),
}

/// How walkers start.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum InitSpec {
    /// Independent draws from the prior.
    Prior,
    /// center + radius * N(0, 1), per parameter.
    Ball { center: Vec<f64>, radius: Radius },
}

/// Built-in likelihoods. Every one is a normalised density in the parameters
/// (or, for regression, in the data), so evidences mean something.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    Gaussian {
        mean: Vec<f64>,
        cov: Vec<Vec<f64>>,
    },
    GaussianMixture {
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        covs: Vec<Vec<Vec<f64>>>,
    },
    /// Hybrid Rosenbrock (Pagani, Wiegand & Nadarajah 2022), single block:
    /// x1 ~ N(mu, 1/(2a)), x_i | x_{i-1} ~ N(x_{i-1}^2, 1/(2b)).
    Rosenbrock {
        dim: usize,
        a: Option<f64>,
        b: Option<f64>,
        mu: Option<f64>,
    },
    /// Neal's funnel: v ~ N(0, sigma^2), x_i | v ~ N(0, e^v), dim = 1 + len(x).
    Funnel {
        dim: usize,
        sigma: Option<f64>,
    },
    /// y = sum_k c_k x^k + N(0, noise_sd^2), data from a CSV with columns x,y.
    PolynomialRegression {
        data: String,
        order: usize,
        noise_sd: f64,
    },
    /// A user model from a shared library (`include/sampo.h`); `config` is
    /// handed to its init as JSON.
    Plugin {
        library: String,
        config: Option<serde_json::Value>,
    },
}

impl ModelSpec {
    /// The `kind` of the model, as written in the spec.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ModelSpec::Gaussian { .. } => "gaussian",
            ModelSpec::GaussianMixture { .. } => "gaussian-mixture",
            ModelSpec::Rosenbrock { .. } => "rosenbrock",
            ModelSpec::Funnel { .. } => "funnel",
            ModelSpec::PolynomialRegression { .. } => "polynomial-regression",
            ModelSpec::Plugin { .. } => "plugin",
        }
    }
}

/// Priors: products of independent one-dimensional densities.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PriorSpec {
    Uniform { low: Vec<f64>, high: Vec<f64> },
    Normal { mean: Vec<f64>, sd: Vec<f64> },
    LogUniform { low: Vec<f64>, high: Vec<f64> },
}
