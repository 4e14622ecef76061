//! What a spec says of a model: the built-in likelihoods, the priors, and a
//! posterior (likelihood + prior + emulated cost) as the kinds that sample one
//! resolve it. Plain serde data, recorded in the output's resolved spec.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::RegressionData;

/// Built-in likelihoods. Every one is a normalised density in the parameters
/// (or, for regression, in the data), so evidences mean something.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(
    rename = "model",
    description = "A state's likelihood, by `kind`. The built-in ones are normalised densities, so evidences mean something."
)]
pub enum ModelSpec {
    /// A multivariate normal density in the parameters.
    Gaussian {
        /// The mean, one value per parameter.
        mean: Vec<f64>,
        /// The covariance matrix (symmetric positive definite).
        cov: Vec<Vec<f64>>,
    },
    /// A weighted mixture of multivariate normal densities.
    GaussianMixture {
        /// A weight per component (normalised).
        weights: Vec<f64>,
        /// A mean per component.
        means: Vec<Vec<f64>>,
        /// A covariance matrix per component.
        covs: Vec<Vec<Vec<f64>>>,
    },
    /// Hybrid Rosenbrock (Pagani, Wiegand & Nadarajah 2022), single block:
    /// x1 ~ N(mu, 1/(2a)), x_i | x_{i-1} ~ N(x_{i-1}^2, 1/(2b)).
    Rosenbrock {
        /// Parameters (at least 2).
        dim: usize,
        /// Precision scale of x1.
        #[schemars(extend("default" = super::builtin::Rosenbrock::DEFAULT_A))]
        a: Option<f64>,
        /// Precision scale of each x_i given x_{i-1}.
        #[schemars(extend("default" = super::builtin::Rosenbrock::DEFAULT_B))]
        b: Option<f64>,
        /// Mean of x1.
        #[schemars(extend("default" = 1.0))]
        mu: Option<f64>,
    },
    /// Neal's funnel: v ~ N(0, sigma^2), x_i | v ~ N(0, e^v), dim = 1 + len(x).
    Funnel {
        /// Parameters: v and dim − 1 others (at least 2).
        dim: usize,
        /// The sd of v.
        #[schemars(extend("default" = super::builtin::Funnel::DEFAULT_SIGMA))]
        sigma: Option<f64>,
    },
    /// y = sum_k c_k x^k + N(0, noise_sd^2), data from a CSV with columns x,y.
    PolynomialRegression {
        /// A CSV file with columns x,y (relative to the spec).
        data: String,
        /// The polynomial's order: order + 1 parameters.
        order: usize,
        /// The noise's known sd.
        noise_sd: f64,
    },
    /// A user model from a shared library (`include/sampo.h`); `config` is
    /// handed to its init as JSON.
    Plugin {
        /// The shared library (relative to the spec), exporting `sampo_log_likelihood`
        /// (include/sampo.h).
        library: String,
        /// Handed to the library's init as JSON.
        config: Option<serde_json::Value>,
        /// Give each thread a private copy of the library (with its own globals): a library
        /// that is not thread-safe then runs on every thread.
        #[schemars(extend("default" = false))]
        copies: Option<bool>,
    },
    /// A user model in Python (`model.py`'s `function`, vectorised or one
    /// point per call; `config` goes to its `setup`), see `model::python`.
    /// The file is resolved against the spec's directory.
    Python {
        /// The Python file (relative to the spec), imported once per rank.
        file: String,
        /// The function returning the log-likelihood.
        #[schemars(extend("default" = "log_likelihood"))]
        function: Option<String>,
        /// Call the function with an (n, dim) array of points, returning n values.
        #[schemars(extend("default" = false))]
        vectorized: Option<bool>,
        /// Passed as a dict to the file's `setup(config)`, whose result every call receives.
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(
    rename = "prior",
    description = "A state's prior, by `kind`: a product of independent one-dimensional densities. A list of one number may be written as the number (`mean = 30`)."
)]
pub enum PriorSpec {
    /// Uniform on [low, high] per parameter.
    Uniform {
        /// Lower bounds (one number, or one per parameter).
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        low: Vec<f64>,
        /// Upper bounds.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        high: Vec<f64>,
    },
    /// Normal with mean `mean` and sd `sd` per parameter.
    Normal {
        /// Means.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        mean: Vec<f64>,
        /// Standard deviations.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        sd: Vec<f64>,
    },
    /// Uniform in ln x on [low, high] per parameter.
    LogUniform {
        /// Lower bounds (positive).
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        low: Vec<f64>,
        /// Upper bounds.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        high: Vec<f64>,
    },
    /// ln x normal with mean `mu` and sd `sigma` (numpy's
    /// `lognormal(mean=mu, sigma=sigma)`); its median is e^mu.
    LogNormal {
        /// Means of ln x.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        mu: Vec<f64>,
        /// Standard deviations of ln x.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        sigma: Vec<f64>,
    },
    /// A normal with mean `mean` and sd `sd` restricted to [low, high]
    /// (renormalised there).
    TruncatedNormal {
        /// Means before truncation.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        mean: Vec<f64>,
        /// Standard deviations before truncation.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        sd: Vec<f64>,
        /// Lower bounds.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        low: Vec<f64>,
        /// Upper bounds.
        #[serde(deserialize_with = "one_or_many")]
        #[schemars(with = "OneOrMany")]
        high: Vec<f64>,
    },
    /// Parameters from priors of their own, in order: `dists = [{ kind =
    /// "log-normal", mu = 4.6, sigma = 0.5 }, { kind = "normal", mean =
    /// 30, sd = 5 }, …]`.
    Independent {
        /// A prior per parameter (or block of parameters), in order.
        dists: Vec<PriorSpec>,
    },
}

/// A number, or a list of numbers (one per parameter).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(
    rename = "numbers",
    description = "A number (the same for every parameter), or a list of one number per parameter."
)]
enum OneOrMany {
    One(f64),
    Many(Vec<f64>),
}

/// A number or a list of numbers, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
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
