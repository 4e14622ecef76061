//! Forward models: parameters in, a fixed number of predicted values out —
//! what `kind = "batch"` evaluates over a design. A built-in model with a
//! closed form (for tests and first runs), any plugin that exports
//! `sampo_forward`, and Python functions.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plugin::Plugin;
use super::{BuildError, PluginSpec};

/// A state's forward model as written in its `model` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(
    rename = "forward model",
    description = "A batch state's forward model, by `kind`: a point's inputs (the state's `params`) to its outputs."
)]
pub enum ForwardSpec {
    /// An exponential decay observed at `times`: two parameters (amplitude,
    /// time constant τ), outputs amplitude · exp(−t / τ) at each time.
    Decay {
        /// Observation times: one output per time.
        times: Vec<f64>,
    },
    /// A user model from a shared library exporting `sampo_forward`
    /// (`include/sampo.h`); `config` is handed to its init as JSON.
    Plugin {
        /// The shared library (relative to the spec), exporting `sampo_forward`
        /// (include/sampo.h).
        library: String,
        /// Handed to the library's init as JSON.
        config: Option<serde_json::Value>,
        /// A private copy of the library per thread, each with its own
        /// globals: a serialized library then runs on every thread.
        copies: Option<bool>,
    },
    /// A Python file's `function` (default `forward`): the outputs at one
    /// point, as numbers; `config` goes to its `setup`. The number of
    /// outputs is the state's `outputs`, else the module's `output_names`.
    Python {
        /// The Python file (relative to the spec), imported once per rank.
        file: String,
        /// The function returning the outputs at one point.
        #[schemars(extend("default" = "forward"))]
        function: Option<String>,
        /// Passed as a dict to the file's `setup(config)`.
        config: Option<serde_json::Value>,
    },
}

impl ForwardSpec {
    /// The number of parameters, when the spec alone says it.
    pub fn dim(&self) -> Option<usize> {
        match self {
            ForwardSpec::Decay { .. } => Some(2),
            ForwardSpec::Plugin { .. } | ForwardSpec::Python { .. } => None,
        }
    }
}

/// A failed evaluation of a forward model: its status (non-zero; the
/// plugin's own, or 1) and what went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ForwardError {
    pub status: i64,
    pub message: String,
}

/// A forward model, ready to evaluate; shared by the threads of a rank.
pub struct Forward {
    model: Model,
    /// Emulated cost per evaluation (a busy wait), for tests and
    /// benchmarks of the engine.
    cost: Option<Duration>,
}

enum Model {
    Decay {
        times: Vec<f64>,
    },
    Plugin(Arc<Plugin>),
    Python {
        model: super::python::PythonForward,
        names: Option<Vec<String>>,
        n: usize,
    },
}

impl Forward {
    /// The model of state `state` with `dim` parameters; a plugin's comes
    /// from `plugin` (its resolved library and config), shared with the
    /// other tasks of this process, or with contexts of its own (`fresh`).
    /// `outputs` is the number of output names the spec gives, if any.
    pub fn build(
        spec: &ForwardSpec,
        plugin: Option<&PluginSpec>,
        state: &str,
        dim: usize,
        fresh: bool,
        outputs: Option<usize>,
    ) -> Result<Self, BuildError> {
        match spec {
            ForwardSpec::Python {
                file,
                function,
                config,
            } => {
                let config_json = super::plugin_config_json(config.as_ref())
                    .map_err(|e| BuildError::new("config", e))?;
                let py = super::python::PythonSpec {
                    file: std::path::Path::new(file),
                    function: function
                        .as_deref()
                        .unwrap_or(super::python::DEFAULT_FORWARD),
                    vectorized: false,
                    config_json: &config_json,
                };
                let model = super::python::PythonForward::build(&py, state, dim, fresh)?;
                let names = model
                    .output_names()
                    .map_err(|e| BuildError::new("file", e))?;
                let n = match (outputs, &names) {
                    (Some(n), _) => n,
                    (None, Some(names)) => names.len(),
                    (None, None) => {
                        return Err(BuildError::new(
                            "file",
                            format!(
                                "{file}: the number of outputs is unknown: give the state's                                  `outputs` (a name per value the function returns), or define                                  `output_names(context)` in the file"
                            ),
                        ))
                    }
                };
                if n == 0 {
                    return Err(BuildError::new(
                        "file",
                        "a forward model has at least one output",
                    ));
                }
                Ok(Forward::new(Model::Python { model, names, n }))
            }
            ForwardSpec::Decay { times } => {
                if times.is_empty() {
                    return Err(BuildError::new("times", "expected at least one time"));
                }
                super::check_finite("times", times)?;
                Ok(Forward::new(Model::Decay {
                    times: times.clone(),
                }))
            }
            ForwardSpec::Plugin { .. } => {
                let p = plugin.expect("a plugin model is resolved with its library");
                let made = if fresh {
                    Plugin::fresh(p, state, dim).map(Arc::new)
                } else {
                    Plugin::for_state(p, state, dim)
                };
                let plugin = made.map_err(|e| BuildError::new("library", e.0))?;
                let lib = plugin.library();
                if !lib.has_forward() {
                    return Err(BuildError::new(
                        "library",
                        format!(
                            "library {}: missing function `sampo_forward` (kind = \"batch\" \
                             evaluates a forward model; see include/sampo.h)",
                            lib.path().display()
                        ),
                    ));
                }
                let n = plugin
                    .n_outputs()
                    .map_err(|e| BuildError::new("library", e.0))?;
                if n == 0 {
                    return Err(BuildError::new(
                        "library",
                        format!(
                            "library {}: sampo_init set n_outputs = 0 for state `{state}`: a \
                             forward model has at least one output",
                            lib.path().display()
                        ),
                    ));
                }
                Ok(Forward::new(Model::Plugin(plugin)))
            }
        }
    }

    fn new(model: Model) -> Self {
        Self { model, cost: None }
    }

    /// The model, spinning `cost_us` microseconds more per evaluation.
    pub fn with_cost(mut self, cost_us: u64) -> Self {
        self.cost = (cost_us > 0).then(|| Duration::from_micros(cost_us));
        self
    }

    pub fn n_outputs(&self) -> usize {
        match &self.model {
            Model::Decay { times } => times.len(),
            // Checked when built.
            Model::Plugin(p) => p.n_outputs().unwrap_or(0),
            Model::Python { n, .. } => *n,
        }
    }

    /// The names the model gives its outputs, if it does.
    pub fn output_names(&self) -> Result<Option<Vec<String>>, String> {
        match &self.model {
            Model::Decay { times } => Ok(Some(times.iter().map(|t| format!("t{t}")).collect())),
            Model::Plugin(p) => p.output_names().map_err(|e| e.0),
            Model::Python { names, .. } => Ok(names.clone()),
        }
    }

    /// The outputs at `x` into `y` (`n_outputs` values).
    pub fn forward(&self, x: &[f64], y: &mut [f64]) -> Result<(), ForwardError> {
        if let Some(cost) = self.cost {
            super::busy_wait(cost);
        }
        match &self.model {
            Model::Decay { times } => {
                let (amplitude, tau) = (x[0], x[1]);
                for (o, &t) in y.iter_mut().zip(times) {
                    *o = amplitude * (-t / tau).exp();
                }
                Ok(())
            }
            Model::Plugin(p) => match p.forward_into(x, y) {
                Ok(0) => Ok(()),
                Ok(status) => Err(ForwardError {
                    status: i64::from(status),
                    message: format!(
                        "sampo_forward of library {} returned status {status}",
                        p.library().path().display()
                    ),
                }),
                Err(e) => Err(ForwardError {
                    status: 1,
                    message: e.0,
                }),
            },
            Model::Python { model, .. } => model.forward(x, y).map_err(|e| ForwardError {
                status: 1,
                message: e.0,
            }),
        }
    }
}
