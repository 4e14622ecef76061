//! Log-densities: the trait every likelihood implements, priors, the built-in
//! models, and the posterior that joins a prior, a likelihood and an optional
//! emulated cost.

mod builtin;
pub mod eval_watch;
pub mod exit_hook;
mod forward;
pub mod plugin;
mod prior;
pub mod python;
mod regression;
mod spec;

pub use builtin::{Funnel, Gaussian, GaussianMixture, Rosenbrock};
pub use forward::{Forward, ForwardError, ForwardSpec};
pub use prior::Prior;
pub use regression::{PolynomialRegression, RegressionData};
pub use spec::{plugin_config_json, ModelSpec, PluginSpec, PosteriorSpec, PriorSpec};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A failed evaluation (as opposed to a log-density of −∞, which is a valid
/// answer). Built-in models never fail; user models from plugins may.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// A log-density in `dim()` parameters. Implementations are shared by all the
/// threads of a rank, so they take `&self` and must be `Sync`.
pub trait LogDensity: Send + Sync {
    fn dim(&self) -> usize;
    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError>;
    /// Whether [`Self::log_density_batch`] is better than point by point
    /// (a vectorised user model).
    fn has_batch(&self) -> bool {
        false
    }
    /// The log-densities of points stored one after another (`dim` values
    /// each) into `out`; exactly what `log_density` gives for each.
    fn log_density_batch(&self, xs: &[f64], out: &mut [f64]) -> Result<(), EvalError> {
        for (x, o) in xs.chunks_exact(self.dim().max(1)).zip(out.iter_mut()) {
            *o = self.log_density(x)?;
        }
        Ok(())
    }
}

/// Why a model or prior could not be built from its spec; `field` names the
/// key inside the model or prior table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BuildError {
    pub field: String,
    pub message: String,
}

impl BuildError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// log posterior = log prior + log likelihood, both normalised. Outside the
/// prior's support it is −∞ and the likelihood is not evaluated.
pub struct Posterior {
    prior: Prior,
    likelihood: Box<dyn LogDensity>,
    cost: Option<Duration>,
    fault: Option<Fault>,
}

/// Fault injection for tests of failure handling: evaluations fail once
/// `after` of them have been made by this posterior.
struct Fault {
    after: u64,
    count: AtomicU64,
}

impl Posterior {
    pub fn new(prior: Prior, likelihood: Box<dyn LogDensity>, cost: Option<Duration>) -> Self {
        assert_eq!(
            prior.dim(),
            likelihood.dim(),
            "prior and likelihood dims differ"
        );
        Self {
            prior,
            likelihood,
            cost,
            fault: None,
        }
    }

    /// Makes every evaluation after the first `after` fail (for testing how
    /// failures are reported and how a job ends; see `SAMPO_INJECT_FAULT`).
    pub fn fail_after(mut self, after: u64) -> Self {
        self.fault = Some(Fault {
            after,
            count: AtomicU64::new(0),
        });
        self
    }

    /// Builds the posterior of a validated state (`state` names it to a
    /// plugin).
    pub fn from_spec(state: &str, spec: &PosteriorSpec) -> Result<Self, BuildError> {
        let prior = Prior::from_spec(&spec.prior)?;
        let likelihood = match (&spec.plugin, &spec.model) {
            (Some(p), _) => plugin_likelihood(p, state, prior.dim())?,
            (
                None,
                ModelSpec::Python {
                    file,
                    function,
                    vectorized,
                    config,
                },
            ) => {
                let config_json = plugin_config_json(config.as_ref())
                    .map_err(|e| BuildError::new("config", e))?;
                let spec = python::PythonSpec {
                    file: std::path::Path::new(file),
                    function: function.as_deref().unwrap_or(python::DEFAULT_FUNCTION),
                    vectorized: vectorized.unwrap_or(false),
                    config_json: &config_json,
                };
                python::likelihood(&spec, state, prior.dim())?
            }
            (None, _) => build_likelihood(&spec.model, spec.data.as_ref())?,
        };
        let cost = (spec.cost_us > 0).then(|| Duration::from_micros(spec.cost_us));
        Ok(Self::new(prior, likelihood, cost))
    }

    pub fn dim(&self) -> usize {
        self.prior.dim()
    }

    pub fn prior(&self) -> &Prior {
        &self.prior
    }

    /// Whether the likelihood evaluates batches natively (see
    /// [`Self::log_prob_batch`]).
    pub fn has_batch(&self) -> bool {
        self.likelihood.has_batch()
    }

    /// `log_prob` of points stored one after another, the likelihood called
    /// once for all the points inside the prior's support: the same values
    /// as point by point. `scratch` is reused between calls.
    pub fn log_prob_batch(
        &self,
        xs: &[f64],
        out: &mut [f64],
        scratch: &mut BatchScratch,
    ) -> Result<(), EvalError> {
        let d = self.dim().max(1);
        scratch.points.clear();
        scratch.index.clear();
        for (i, (x, o)) in xs.chunks_exact(d).zip(out.iter_mut()).enumerate() {
            *o = self.prior.log_density(x);
            if *o != f64::NEG_INFINITY {
                scratch.points.extend_from_slice(x);
                scratch.index.push(i);
            }
        }
        let n = scratch.index.len();
        if n == 0 {
            return Ok(());
        }
        if let Some(f) = &self.fault {
            if f.count.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > f.after {
                return Err(EvalError(format!(
                    "injected fault (SAMPO_INJECT_FAULT) after {} evaluations",
                    f.after
                )));
            }
        }
        if let Some(cost) = self.cost {
            busy_wait(cost * n as u32);
        }
        scratch.values.clear();
        scratch.values.resize(n, 0.0);
        self.likelihood
            .log_density_batch(&scratch.points, &mut scratch.values)?;
        for (&i, &v) in scratch.index.iter().zip(&scratch.values) {
            out[i] += not_infinite(v)?;
        }
        Ok(())
    }

    pub fn log_prob(&self, x: &[f64]) -> Result<f64, EvalError> {
        let (lp, ll) = self.log_prior_likelihood(x)?;
        Ok(if lp == f64::NEG_INFINITY { lp } else { lp + ll })
    }

    /// (log prior, log likelihood) of a point; outside the prior's support
    /// the likelihood is not evaluated and comes back as −∞. Samplers that
    /// temper the likelihood (SMC) need the two apart.
    pub fn log_prior_likelihood(&self, x: &[f64]) -> Result<(f64, f64), EvalError> {
        let lp = self.prior.log_density(x);
        if lp == f64::NEG_INFINITY {
            return Ok((lp, lp));
        }
        if let Some(f) = &self.fault {
            if f.count.fetch_add(1, Ordering::Relaxed) >= f.after {
                return Err(EvalError(format!(
                    "injected fault (SAMPO_INJECT_FAULT) after {} evaluations",
                    f.after
                )));
            }
        }
        if let Some(cost) = self.cost {
            busy_wait(cost);
        }
        Ok((lp, not_infinite(self.likelihood.log_density(x)?)?))
    }
}

/// Buffers of [`Posterior::log_prob_batch`]: the points inside the prior's
/// support, their indices, and their likelihoods.
#[derive(Debug, Clone, Default)]
pub struct BatchScratch {
    points: Vec<f64>,
    index: Vec<usize>,
    values: Vec<f64>,
}

/// Emulates an expensive likelihood by spinning (not sleeping, so that a core
/// is really occupied, as it would be by a real model).
pub(crate) fn busy_wait(cost: Duration) {
    let start = Instant::now();
    while start.elapsed() < cost {
        std::hint::spin_loop();
    }
}

/// Builds a built-in likelihood. `data` is the loaded data file of a
/// regression model (loaded during validation, so that it is read once).
pub fn build_likelihood(
    spec: &ModelSpec,
    data: Option<&RegressionData>,
) -> Result<Box<dyn LogDensity>, BuildError> {
    Ok(match spec {
        ModelSpec::Gaussian { mean, cov } => Box::new(Gaussian::new(mean, cov)?),
        ModelSpec::GaussianMixture {
            weights,
            means,
            covs,
        } => Box::new(GaussianMixture::new(weights, means, covs)?),
        ModelSpec::Rosenbrock { dim, a, b, mu } => Box::new(Rosenbrock::new(
            *dim,
            a.unwrap_or(Rosenbrock::DEFAULT_A),
            b.unwrap_or(Rosenbrock::DEFAULT_B),
            mu.unwrap_or(Rosenbrock::DEFAULT_MU),
        )?),
        ModelSpec::Funnel { dim, sigma } => {
            Box::new(Funnel::new(*dim, sigma.unwrap_or(Funnel::DEFAULT_SIGMA))?)
        }
        ModelSpec::PolynomialRegression {
            order, noise_sd, ..
        } => {
            let data = data.ok_or_else(|| BuildError::new("data", "data file not loaded"))?;
            Box::new(PolynomialRegression::new(data.clone(), *order, *noise_sd)?)
        }
        ModelSpec::Plugin { .. } => {
            return Err(BuildError::new(
                "library",
                "a plugin is built with its state",
            ))
        }
        ModelSpec::Python { .. } => {
            return Err(BuildError::new(
                "file",
                "a Python model is built with its state",
            ))
        }
    })
}

/// Loads every plugin of a run in this process and runs its init, so that a
/// library missing on this node, or an init failing here, stops the job
/// before any work (under MPI, on every rank).
pub fn prepare_plugins<'a>(
    posteriors: impl IntoIterator<Item = (&'a str, &'a PosteriorSpec)>,
) -> Result<(), String> {
    for (state, p) in posteriors
        .into_iter()
        .filter(|(_, p)| p.plugin.is_some() || p.is_python())
    {
        Posterior::from_spec(state, p).map_err(|e| format!("state `{state}`: model.{e}"))?;
    }
    Ok(())
}

/// A state's plugin model (made once per process and shared by its tasks).
pub fn plugin_likelihood(
    p: &PluginSpec,
    state: &str,
    dim: usize,
) -> Result<Box<dyn LogDensity>, BuildError> {
    let plugin =
        plugin::Plugin::for_state(p, state, dim).map_err(|e| BuildError::new("library", e.0))?;
    if !plugin.library().has_log_density() {
        return Err(BuildError::new(
            "library",
            format!(
                "library {}: missing function `sampo_log_density` (a model to sample exports it; \
                 sampo_forward alone serves kind = \"batch\"; see include/sampo.h)",
                p.path.display()
            ),
        ));
    }
    Ok(Box::new(plugin::Shared(plugin)))
}

/// The number of parameters a model spec describes, when it can be told from
/// the spec alone (validation compares it with the prior and `params`); a
/// plugin takes its dimension from the prior.
pub fn model_dim(spec: &ModelSpec) -> Option<usize> {
    Some(match spec {
        ModelSpec::Gaussian { mean, .. } => mean.len(),
        ModelSpec::GaussianMixture { means, .. } => means.first().map_or(0, Vec::len),
        ModelSpec::Rosenbrock { dim, .. } | ModelSpec::Funnel { dim, .. } => *dim,
        ModelSpec::PolynomialRegression { order, .. } => order + 1,
        ModelSpec::Plugin { .. } | ModelSpec::Python { .. } => return None,
    })
}

/// A log-likelihood of +∞ is a failure of the model (a density that is not
/// normalisable, or a value it could not compute), never a sample: the
/// caller names state, walker and parameters. NaN is left to the samplers,
/// which count it and treat it as −∞.
fn not_infinite(ll: f64) -> Result<f64, EvalError> {
    if ll == f64::INFINITY {
        return Err(EvalError(
            "the model returned a log-density of +∞ (a density cannot be infinite: a failure \
             of the model, not a sample)"
                .into(),
        ));
    }
    Ok(ll)
}

/// Checks that every number of a list is finite, naming the first that is not.
pub(crate) fn check_finite(field: &str, values: &[f64]) -> Result<(), BuildError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(BuildError::new(
            format!("{field}[{i}]"),
            format!("expected a finite number, found {}", values[i]),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod quadrature {
    /// Midpoint rule over [lo, hi] with n cells.
    pub fn integrate(lo: f64, hi: f64, n: usize, f: impl Fn(f64) -> f64) -> f64 {
        let h = (hi - lo) / n as f64;
        (0..n).map(|i| f(lo + (i as f64 + 0.5) * h)).sum::<f64>() * h
    }
}
