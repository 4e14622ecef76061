//! What a spec says of a model: the built-in likelihoods, the priors, and a
//! posterior (likelihood + prior + emulated cost) as the kinds that sample one
//! resolve it. Plain serde data, recorded in the output's resolved spec.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::RegressionData;

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
        /// A private copy of the library per thread (see `PluginSpec`).
        copies: Option<bool>,
    },
    /// A user model in Python (`model.py`'s `function`, vectorised or one
    /// point per call; `config` goes to its `setup`), see `model::python`.
    /// The file is resolved against the spec's directory.
    Python {
        file: String,
        function: Option<String>,
        vectorized: Option<bool>,
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
            ModelSpec::Python { .. } => "python",
        }
    }
}

/// Priors: products of independent one-dimensional densities. A list of
/// one number may be written as the number (`mean = 30`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PriorSpec {
    Uniform {
        #[serde(deserialize_with = "one_or_many")]
        low: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        high: Vec<f64>,
    },
    Normal {
        #[serde(deserialize_with = "one_or_many")]
        mean: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        sd: Vec<f64>,
    },
    LogUniform {
        #[serde(deserialize_with = "one_or_many")]
        low: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        high: Vec<f64>,
    },
    /// ln x normal with mean `mu` and sd `sigma` (numpy's
    /// `lognormal(mean=mu, sigma=sigma)`); its median is e^mu.
    LogNormal {
        #[serde(deserialize_with = "one_or_many")]
        mu: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        sigma: Vec<f64>,
    },
    /// A normal with mean `mean` and sd `sd` restricted to [low, high]
    /// (renormalised there).
    TruncatedNormal {
        #[serde(deserialize_with = "one_or_many")]
        mean: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        sd: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        low: Vec<f64>,
        #[serde(deserialize_with = "one_or_many")]
        high: Vec<f64>,
    },
    /// Parameters from priors of their own, in order: `dists = [{ kind =
    /// "log-normal", mu = 4.6, sigma = 0.5 }, { kind = "normal", mean =
    /// 30, sd = 5 }, …]`.
    Independent { dists: Vec<PriorSpec> },
}

/// A number or a list of numbers, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f64),
        Many(Vec<f64>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    })
}

/// A plugin's `config` table as the JSON its init receives, or why it
/// cannot be: JSON has no NaN or infinity (serde turns them into null, which
/// TOML cannot write) and no date-time (it would arrive as a private
/// wrapper), so a value the plugin would not get as written is refused,
/// named by its path (`config.a.b[2]`).
pub fn plugin_config_json(config: Option<&serde_json::Value>) -> Result<String, String> {
    use serde_json::Value;
    fn check(v: &Value, path: &str) -> Result<(), String> {
        match v {
            Value::Null => Err(format!(
                "model.{path}: nan and inf cannot reach a plugin (its config is JSON, which has \
                 neither): write it as a string, e.g. \"inf\""
            )),
            Value::Object(map) if map.contains_key("$__toml_private_datetime") => Err(format!(
                "model.{path}: a TOML date or time cannot reach a plugin (its config is JSON): \
                 write it as a string, e.g. \"1979-05-27T07:32:00Z\""
            )),
            Value::Object(map) => map
                .iter()
                .try_for_each(|(k, v)| check(v, &format!("{path}.{k}"))),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| check(v, &format!("{path}[{i}]"))),
            _ => Ok(()),
        }
    }
    match config {
        None => Ok("{}".to_string()),
        Some(c @ Value::Object(_)) => check(c, "config").map(|()| c.to_string()),
        Some(_) => Err("model.config must be a table".to_string()),
    }
}

/// A plugin model, resolved: the library's absolute path, the `config` table
/// as JSON, and the library's declared thread safety.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginSpec {
    pub path: PathBuf,
    pub config_json: String,
    pub safety: super::plugin::ThreadSafety,
    /// Each pool thread runs a private copy of the library (`copies =
    /// true`): a serialized library then runs on every thread.
    #[serde(default)]
    pub copies: bool,
}

/// A state's posterior as the sampling kinds resolve it: likelihood, prior
/// and an optional emulated cost per evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PosteriorSpec {
    pub model: ModelSpec,
    /// The regression data file's contents, read during validation.
    pub data: Option<RegressionData>,
    /// A plugin model's library, as validation found it.
    pub plugin: Option<PluginSpec>,
    pub prior: PriorSpec,
    /// Busy-wait per evaluation, in microseconds (emulates a costly model).
    pub cost_us: u64,
}

impl PosteriorSpec {
    /// The model as `sampo check` shows it: its kind, and for a plugin the
    /// library's file name and declared thread safety.
    pub fn model_label(&self) -> String {
        match &self.plugin {
            Some(p) => format!(
                "plugin {} ({})",
                p.path.file_name().unwrap_or_default().to_string_lossy(),
                p.safety.label()
            ),
            None => match &self.model {
                ModelSpec::Python {
                    file, vectorized, ..
                } => format!(
                    "python {}{}",
                    std::path::Path::new(file)
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy(),
                    if vectorized.unwrap_or(false) {
                        " (vectorised)"
                    } else {
                        ""
                    }
                ),
                m => m.kind_name().to_string(),
            },
        }
    }

    /// Whether the likelihood is a Python model (one thread per rank).
    pub fn is_python(&self) -> bool {
        matches!(self.model, ModelSpec::Python { .. })
    }
}
