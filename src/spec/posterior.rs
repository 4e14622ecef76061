//! A state's `model`, `prior` and `cost_us`, resolved into a
//! [`PosteriorSpec`] for the kinds that sample a posterior: dimensions
//! checked against each other, data files read and plugins loaded relative
//! to the spec, and the posterior built once exactly as the run will build it.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Resolver, SpecError};
use crate::model::{self, ModelSpec, Posterior, PosteriorSpec, PriorSpec, RegressionData};

/// The posterior keys of one state as written: a part of every state of
/// the kinds that sample a posterior, split off the state's table before
/// the kind reads its own keys.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPosterior {
    /// The likelihood: a built-in model, a plugin library or a Python function.
    #[schemars(with = "ModelSpec")]
    pub model: Spanned<ModelSpec>,
    /// The prior: a product of one-dimensional densities.
    #[schemars(with = "PriorSpec")]
    pub prior: Spanned<PriorSpec>,
    /// Busy-wait per evaluation, in microseconds (emulates a costly model in benchmarks).
    #[schemars(extend("default" = 0), range(max = crate::limits::MAX_COST_US))]
    #[schemars(with = "Option<u64>")]
    pub cost_us: Option<Spanned<u64>>,
}

impl Resolver<'_> {
    /// A state's `cost_us` (0 when absent), at most
    /// [`MAX_COST_US`](crate::limits::MAX_COST_US).
    pub fn cost_us(&self, cost_us: Option<&Spanned<u64>>) -> Result<u64, SpecError> {
        match cost_us {
            None => Ok(0),
            Some(c) if *c.get_ref() > crate::limits::MAX_COST_US => Err(self.err(
                c.span(),
                format!(
                    "cost_us must be at most {} (one hour per evaluation): it is a busy-wait \
                     per evaluation for benchmarks",
                    crate::limits::MAX_COST_US
                ),
            )),
            Some(c) => Ok(*c.get_ref()),
        }
    }

    /// The posterior of state `name`, and its prior (whose dimension is
    /// the state's).
    pub fn resolve_posterior(
        &self,
        name: &str,
        keys: &RawPosterior,
    ) -> Result<(PosteriorSpec, model::Prior), SpecError> {
        let RawPosterior {
            model: model_spec,
            prior: prior_spec,
            cost_us,
        } = keys;
        let model_err = |e: model::BuildError| {
            self.err(model_spec.span(), format!("state `{name}`: model.{e}"))
        };
        let prior = model::Prior::from_spec(prior_spec.get_ref())
            .map_err(|e| self.err(prior_spec.span(), format!("state `{name}`: prior.{e}")))?;
        let dim = model::model_dim(model_spec.get_ref()).unwrap_or(prior.dim());
        if prior.dim() != dim {
            return Err(self.err(
                prior_spec.span(),
                format!(
                    "state `{name}`: the prior has {} parameters but the model has {dim}",
                    prior.dim()
                ),
            ));
        }
        let base = self.source.path.parent().unwrap_or(Path::new(""));
        // Data files are read now, relative to the spec's directory.
        let data = match model_spec.get_ref() {
            ModelSpec::PolynomialRegression { data, .. } => {
                Some(RegressionData::load(&base.join(data)).map_err(|e| {
                    self.err(
                        model_spec.span(),
                        format!("state `{name}`: model.data: {e}"),
                    )
                })?)
            }
            _ => None,
        };
        // A plugin's library, relative to the spec's directory; loaded, its
        // ABI checked and its init run below (by `Posterior::from_spec`).
        let plugin = match model_spec.get_ref() {
            ModelSpec::Plugin {
                library,
                config,
                copies,
            } => {
                let config_json = model::plugin_config_json(config.as_ref())
                    .map_err(|e| self.err(model_spec.span(), format!("state `{name}`: {e}")))?;
                let path = base.join(library);
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                let lib = model::plugin::Library::load(&path).map_err(|e| {
                    self.err(model_spec.span(), format!("state `{name}`: model.{e}"))
                })?;
                Some(model::PluginSpec {
                    path,
                    config_json,
                    safety: lib.safety(),
                    copies: copies.unwrap_or(false),
                })
            }
            // Imported and set up below (by `Posterior::from_spec`).
            ModelSpec::Python { .. } => None,
            _ => {
                model::build_likelihood(model_spec.get_ref(), data.as_ref()).map_err(model_err)?;
                None
            }
        };
        // A Python model's file, relative to the spec's directory, recorded
        // absolute so that every rank imports the same file.
        let mut model = model_spec.get_ref().clone();
        if let ModelSpec::Python { file, .. } = &mut model {
            let path = base.join(&*file);
            if !path.is_file() {
                return Err(self.err(
                    model_spec.span(),
                    format!(
                        "state `{name}`: model.file: no Python file {}",
                        path.display()
                    ),
                ));
            }
            *file = std::fs::canonicalize(&path)
                .unwrap_or(path)
                .display()
                .to_string();
        }
        let posterior = PosteriorSpec {
            model,
            data,
            plugin,
            prior: prior_spec.get_ref().clone(),
            cost_us: self.cost_us(cost_us.as_ref())?,
        };
        // Builds once more exactly as the run will, so nothing can fail later.
        Posterior::from_spec(name, &posterior).map_err(model_err)?;
        Ok((posterior, prior))
    }
}
