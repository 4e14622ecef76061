//! The `[sampler]` keys of `kind = "batch"` (`items`, `design`, `chunk`,
//! `on_error`, `validate`, `statistics`) and each state's forward model,
//! prior and output names, resolved with located errors.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::design::{Axis, Design, DesignFile};
use crate::jobs::{KindSpec, Memory, SamplerContext};
use crate::model::{self, Forward, ForwardSpec, PluginSpec, Prior, PriorSpec};
use crate::spec::{SpecError, StateSpec, NAME_MAX};

/// A small complete spec of this kind (`[sampler]` first, one state last).
pub const EXAMPLE: &str = r#"[sampler]
kind = "batch"
items = 100

[[states]]
name = "g"
params = ["amplitude", "tau"]
model = { kind = "decay", times = [0.5, 1.0, 2.0] }
prior = { kind = "uniform", low = [1.0, 0.5], high = [2.0, 3.0] }
"#;

/// Items of one state at most (a grid's product, a file's rows).
pub const MAX_ITEMS: u64 = 1 << 40;
/// Quantiles of every output reported by default.
pub const DEFAULT_QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
/// The automatic chunk: about this many tasks per state, each of at most
/// `MAX_AUTO_CHUNK` items (enough tasks to balance a few hundred workers,
/// few enough that each costs far more than its hand-out).
const AUTO_TASKS: u64 = 256;
const MAX_AUTO_CHUNK: u64 = 4096;

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub design: Design,
    /// Items per task.
    pub chunk: u64,
    pub on_error: OnError,
    /// Items re-run one at a time on rank 0 at the end, per state.
    pub validate: u64,
    pub quantiles: Vec<f64>,
    /// Per state, in the order of `[[states]]`.
    pub states: Vec<BatchState>,
}

/// What a state evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchState {
    pub model: ForwardSpec,
    /// The plugin's library and config, for a plugin model.
    pub plugin: Option<PluginSpec>,
    /// Where random and Latin-hypercube designs draw from.
    pub prior: Option<PriorSpec>,
    /// A name per output column.
    pub outputs: Vec<String>,
    /// Design points of this state.
    pub items: u64,
    /// Busy-wait per evaluation, in microseconds (emulates a costly model).
    pub cost_us: u64,
}

impl KindSpec for Spec {
    /// The summary's quantiles hold every item's value of an output at
    /// once; a chunk's inputs and outputs are buffered.
    fn memory(&self, states: &[StateSpec]) -> Memory {
        let most = self
            .states
            .iter()
            .zip(states)
            .map(|(b, st)| {
                let chunk = self.chunk.min(b.items) as f64;
                b.items as f64 + 2.0 * chunk * (st.dim() + b.outputs.len()) as f64
            })
            .fold(0.0, f64::max);
        Memory::values(most, "items and chunk")
    }

    fn plugins(&self, states: &[StateSpec]) -> Vec<(String, PluginSpec)> {
        states
            .iter()
            .zip(&self.states)
            .filter_map(|(st, b)| b.plugin.clone().map(|p| (st.name.clone(), p)))
            .collect()
    }

    fn prepare_plugins(&self, states: &[StateSpec]) -> Result<(), String> {
        for (st, b) in states.iter().zip(&self.states) {
            if b.plugin.is_some() || matches!(b.model, ForwardSpec::Python { .. }) {
                let n = Some(b.outputs.len());
                Forward::build(&b.model, b.plugin.as_ref(), &st.name, st.dim(), false, n)
                    .map_err(|e| format!("state `{}`: model.{e}", st.name))?;
            }
        }
        Ok(())
    }

    fn python_states(&self, states: &[StateSpec]) -> Vec<String> {
        states
            .iter()
            .zip(&self.states)
            .filter(|(_, b)| matches!(b.model, ForwardSpec::Python { .. }))
            .map(|(st, _)| st.name.clone())
            .collect()
    }
}

/// What a failed item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "on_error", description = "What a failing evaluation does.")]
pub enum OnError {
    /// The job stops, naming the state, item, inputs and status.
    Fail,
    /// The item's status and message are stored, its outputs NaN; the job
    /// goes on.
    Record,
}

/// `[sampler]` of `kind = "batch"` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    /// Design points of each state (random, lhs and sobol designs; a grid or file has its own).
    #[schemars(range(min = 1, max = MAX_ITEMS))]
    #[schemars(with = "Option<u64>")]
    pub items: Option<Spanned<u64>>,
    /// Where the design points come from.
    #[schemars(extend("x-default" = "`{ kind = \"random\" }`"))]
    #[schemars(with = "Option<DesignKeys>")]
    pub design: Option<Spanned<toml::Value>>,
    /// Items per task; 0 chooses (about 256 tasks per state, at most 4096 items each).
    #[schemars(extend("default" = 0))]
    #[schemars(with = "Option<u64>")]
    pub chunk: Option<Spanned<u64>>,
    /// What a failing evaluation does.
    #[schemars(extend("default" = "fail"))]
    #[schemars(with = "Option<OnError>")]
    pub on_error: Option<Spanned<OnError>>,
    /// Items per state re-run one at a time on rank 0 at the end and compared (relative 1e-10).
    #[schemars(extend("default" = 0))]
    #[schemars(with = "Option<u64>")]
    pub validate: Option<Spanned<u64>>,
    /// Per-output statistics stored with the results.
    #[schemars(with = "Option<RawStatistics>")]
    pub statistics: Option<Spanned<RawStatistics>>,
}

/// `[sampler.statistics]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "batch.statistics")]
pub struct RawStatistics {
    /// Quantiles of every output, each in (0, 1).
    #[schemars(extend("default" = DEFAULT_QUANTILES))]
    #[schemars(with = "Vec<f64>")]
    pub quantiles: Spanned<Vec<f64>>,
}

/// A state's keys in the JSON Schema.
pub type StateKeys = RawState;

/// A state's own keys.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// The forward model: inputs to outputs.
    #[schemars(with = "ForwardSpec")]
    pub model: Spanned<ForwardSpec>,
    /// Where random, lhs and sobol designs draw the inputs from.
    #[schemars(with = "Option<PriorSpec>")]
    pub prior: Option<Spanned<PriorSpec>>,
    /// A name per output column.
    #[schemars(extend("x-default" = "`y0`, `y1`, …"))]
    #[schemars(with = "Option<Vec<String>>")]
    pub outputs: Option<Spanned<Vec<String>>>,
    /// Busy-wait per evaluation, in microseconds (emulates a costly model in benchmarks).
    #[schemars(extend("default" = 0), range(max = crate::limits::MAX_COST_US))]
    #[schemars(with = "Option<u64>")]
    pub cost_us: Option<Spanned<u64>>,
}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<(Spec, Vec<StateSpec>), SpecError> {
    let r = cx.resolver;
    let sampler = cx.sampler::<RawSampler>()?;
    let sampler_span = sampler.span();
    let sm = sampler.into_inner();
    cx.refuse_replicates("every item is evaluated once; a random design takes the seed")?;
    let base = r.source.path.parent().unwrap_or(Path::new("")).to_path_buf();

    // The design's kind and its own keys.
    let design_span = sm.design.as_ref().map_or(sampler_span.clone(), |d| d.span());
    let design = RawDesign::parse(sm.design.as_ref(), &base).map_err(|m| r.err(design_span.clone(), m))?;

    let mut states = Vec::new();
    let mut batch = Vec::new();
    for (i, entry) in cx.states.iter().enumerate() {
        let name = &entry.name;
        let raw = cx.state::<RawState>(i)?.into_inner();
        let model_span = raw.model.span();
        let prior = match &raw.prior {
            Some(p) => Some(
                Prior::from_spec(p.get_ref())
                    .map_err(|e| r.err(p.span(), format!("state `{name}`: prior.{e}")))?,
            ),
            None => None,
        };
        // The dimension: the model's, the prior's, or the names'.
        let dim = raw
            .model
            .get_ref()
            .dim()
            .or(prior.as_ref().map(Prior::dim))
            .or(entry.params.as_ref().map(|p| p.get_ref().len()))
            .ok_or_else(|| {
                r.err(
                    entry.span.clone(),
                    format!(
                        "state `{name}`: the number of parameters is unknown: give `params` (or \
                         a prior)"
                    ),
                )
            })?;
        if let (Some(p), Some(prior)) = (&raw.prior, &prior) {
            if prior.dim() != dim {
                return Err(r.err(
                    p.span(),
                    format!(
                        "state `{name}`: the prior has {} parameters but the model has {dim}",
                        prior.dim()
                    ),
                ));
            }
        }
        let state = r.state_spec(entry, dim)?;
        let plugin = match raw.model.get_ref() {
            ForwardSpec::Plugin {
                library,
                config,
                copies,
            } => {
                let config_json = crate::model::plugin_config_json(config.as_ref())
                    .map_err(|e| r.err(model_span.clone(), format!("state `{name}`: {e}")))?;
                let path = base.join(library);
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                let lib = model::plugin::Library::load(&path).map_err(|e| {
                    r.err(model_span.clone(), format!("state `{name}`: model.{e}"))
                })?;
                Some(PluginSpec {
                    path,
                    config_json,
                    safety: lib.safety(),
                    copies: copies.unwrap_or(false),
                })
            }
            ForwardSpec::Decay { .. } | ForwardSpec::Python { .. } => None,
        };
        // A Python model's file, relative to the spec's directory, recorded
        // absolute so that every rank imports the same file.
        let mut model = raw.model.get_ref().clone();
        if let ForwardSpec::Python { file, .. } = &mut model {
            let path = base.join(&*file);
            if !path.is_file() {
                return Err(r.err(
                    model_span.clone(),
                    format!("state `{name}`: model.file: no Python file {}", path.display()),
                ));
            }
            *file = std::fs::canonicalize(&path)
                .unwrap_or(path)
                .display()
                .to_string();
        }
        // Built once as the run will build it: a library without
        // sampo_forward, or with no outputs, fails here.
        let n = raw.outputs.as_ref().map(|o| o.get_ref().len());
        let forward = Forward::build(&model, plugin.as_ref(), name, dim, false, n)
            .map_err(|e| r.err(model_span.clone(), format!("state `{name}`: model.{e}")))?;
        let n = forward.n_outputs();
        // The spec's names, else the model's, else y0, y1, ….
        let (names, span, whose) = match &raw.outputs {
            Some(o) => (Some(o.get_ref().clone()), o.span(), "output names"),
            None => (
                forward
                    .output_names()
                    .map_err(|e| r.err(model_span.clone(), format!("state `{name}`: model: {e}")))?,
                model_span.clone(),
                "output names from the model",
            ),
        };
        let outputs = match names {
            Some(names) => {
                check_output_names(&names, n)
                    .map_err(|m| r.err(span, format!("state `{name}`: {whose}: {m}")))?;
                names
            }
            None => (0..n).map(|k| format!("y{k}")).collect(),
        };
        let items = design
            .items_for(&state, prior.is_some(), sm.items.as_ref().map(|i| *i.get_ref()))
            .map_err(|m| {
                let span = match (&m.at, &sm.items) {
                    (At::Items, Some(i)) => i.span(),
                    (At::Prior, _) => entry.span.clone(),
                    _ => design_span.clone(),
                };
                r.err(span, format!("state `{name}`: {}", m.message))
            })?;
        batch.push(BatchState {
            model,
            plugin,
            prior: raw.prior.map(Spanned::into_inner),
            outputs,
            items,
            cost_us: r.cost_us(raw.cost_us.as_ref())?,
        });
        states.push(state);
    }
    design
        .check_axes(&states)
        .map_err(|m| r.err(design_span.clone(), m))?;
    let largest = batch.iter().map(|b| b.items).max().unwrap_or(0);
    let chunk = match &sm.chunk {
        Some(c) if *c.get_ref() > 0 => *c.get_ref(),
        _ => crate::jobs::chunks::auto_chunk(largest, AUTO_TASKS, MAX_AUTO_CHUNK),
    };
    let validate = match &sm.validate {
        Some(v) if *v.get_ref() > batch.iter().map(|b| b.items).min().unwrap_or(0) => {
            return Err(r.err(
                v.span(),
                "validate must be at most the items of every state",
            ))
        }
        Some(v) => *v.get_ref(),
        None => 0,
    };
    let quantiles = match &sm.statistics {
        Some(s) => {
            let q = &s.get_ref().quantiles;
            if let Some(bad) = q.get_ref().iter().find(|p| !(**p > 0.0 && **p < 1.0)) {
                return Err(r.err(
                    q.span(),
                    format!("quantile {bad}: quantiles are between 0 and 1 (exclusive)"),
                ));
            }
            q.get_ref().clone()
        }
        None => DEFAULT_QUANTILES.to_vec(),
    };
    let spec = Spec {
        design: design.resolved(),
        chunk,
        on_error: sm.on_error.map_or(OnError::Fail, Spanned::into_inner),
        validate,
        quantiles,
        states: batch,
    };
    Ok((spec, states))
}

/// `names` are `n` distinct output names of 1 to `NAME_MAX` bytes without
/// control characters.
fn check_output_names(names: &[String], n: usize) -> Result<(), String> {
    if names.len() != n {
        return Err(format!("{} names for a model with {n} outputs", names.len()));
    }
    if let Some(bad) = names
        .iter()
        .find(|s| s.is_empty() || s.len() > NAME_MAX || s.contains(char::is_control))
    {
        return Err(format!(
            "{bad:?}: names must be 1 to {NAME_MAX} bytes with no control characters"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|s| !seen.insert(s.as_str())) {
        return Err(format!("`{dup}` twice"));
    }
    Ok(())
}

/// Where a design's complaint about a state belongs.
pub(super) enum At {
    Items,
    Prior,
    Design,
}

pub(super) struct Complaint {
    pub at: At,
    pub message: String,
}

impl Complaint {
    fn new(at: At, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
        }
    }
}

/// `design` for the JSON Schema: [`RawDesign::parse`] reads the TOML value
/// itself, because the keys of a grid are the parameters' names.
#[derive(schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "design", description = "Where a batch's design points (the inputs) come from, by `kind`.")]
enum DesignKeys {
    /// Independent draws from each state's prior (the default); `items` per state.
    Random,
    /// A Latin hypercube in each state's prior: `items` strata per parameter.
    Lhs,
    /// A scrambled Sobol sequence mapped through each state's prior.
    Sobol,
    /// Every combination of one axis per parameter: `<param> = { values = [...] }`,
    /// `{ linspace = [first, last, count] }` or `{ logspace = [first, last, count] }`.
    Grid {
        #[serde(flatten)]
        axes: std::collections::BTreeMap<String, AxisKeys>,
    },
    /// The rows of a file: a CSV file whose header names the parameters, or an
    /// HDF5 file's 2-D `dataset`.
    File {
        /// Relative to the spec's directory.
        path: String,
        /// The dataset, for an HDF5 file.
        dataset: Option<String>,
    },
}

/// One axis of a grid design.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "axis", description = "One axis of a grid design: `{ values = [...] }`, `{ linspace = [first, last, count] }` or `{ logspace = [first, last, count] }`.")]
enum AxisKeys {
    /// These values, in order.
    Values(Vec<f64>),
    /// `[first, last, count]`: evenly spaced.
    Linspace([f64; 3]),
    /// `[first, last, count]`: evenly spaced in log (first and last positive).
    Logspace([f64; 3]),
}

/// `design` as written, checked but for what depends on the states.
enum RawDesign {
    Random,
    Lhs,
    Sobol,
    Grid(Vec<(String, Axis)>),
    File(DesignFile),
}

impl RawDesign {
    fn parse(value: Option<&Spanned<toml::Value>>, base: &Path) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(RawDesign::Random);
        };
        let table = value
            .get_ref()
            .as_table()
            .ok_or("design must be a table: { kind = \"random\" | \"lhs\" | \"sobol\" | \"grid\" | \"file\", … }")?;
        let kind = match table.get("kind") {
            Some(toml::Value::String(k)) => k.as_str(),
            Some(_) => return Err("design.kind must be a string".into()),
            None => "random",
        };
        let others: Vec<&String> = table.keys().filter(|k| *k != "kind").collect();
        let no_keys = |what: &str| -> Result<(), String> {
            match others.first() {
                Some(k) => Err(format!("design.{k}: a {what} design has no other keys")),
                None => Ok(()),
            }
        };
        match kind {
            "random" => no_keys("random").map(|()| RawDesign::Random),
            "lhs" => no_keys("Latin hypercube").map(|()| RawDesign::Lhs),
            "sobol" => no_keys("Sobol").map(|()| RawDesign::Sobol),
            "grid" => {
                if others.is_empty() {
                    return Err("a grid design names an axis per parameter: design = { kind = \
                                \"grid\", <param> = { values = [...] } | { linspace = [first, \
                                last, count] } | { logspace = [first, last, count] }, … }"
                        .into());
                }
                let mut axes = Vec::new();
                for key in others {
                    let axis = Axis::parse(&table[key]).map_err(|m| format!("design.{key}: {m}"))?;
                    axes.push((key.clone(), axis));
                }
                Ok(RawDesign::Grid(axes))
            }
            "file" => {
                let path = match table.get("path") {
                    Some(toml::Value::String(p)) => base.join(p),
                    _ => return Err("a file design has `path` (a CSV file with a header naming \
                                     the parameters, or an HDF5 file with `dataset`)"
                        .into()),
                };
                let dataset = match table.get("dataset") {
                    Some(toml::Value::String(d)) => Some(d.as_str()),
                    Some(_) => return Err("design.dataset must be a string".into()),
                    None => None,
                };
                if let Some(k) = others.iter().find(|k| !["path", "dataset"].contains(&k.as_str())) {
                    return Err(format!("design.{k}: a file design has only `path` and `dataset`"));
                }
                DesignFile::read(&path, dataset).map(RawDesign::File)
            }
            other => {
                let known = ["random", "lhs", "sobol", "grid", "file"];
                Err(format!(
                    "design.kind = \"{other}\" is not a design; expected one of {}",
                    known.map(|k| format!("\"{k}\"")).join(", ")
                ))
            }
        }
    }

    /// The items of `state` (with a prior or not), given `items` as written.
    fn items_for(&self, state: &StateSpec, has_prior: bool, items: Option<u64>) -> Result<u64, Complaint> {
        let drawn = |what: &str| -> Result<u64, Complaint> {
            if !has_prior {
                return Err(Complaint::new(
                    At::Prior,
                    format!("a {what} design draws from the state's prior: give it a `prior`"),
                ));
            }
            match items {
                Some(0) | None => Err(Complaint::new(
                    At::Items,
                    format!("a {what} design needs `items` (at least 1) in [sampler]"),
                )),
                Some(n) if n > MAX_ITEMS => Err(Complaint::new(
                    At::Items,
                    format!("items must be at most {MAX_ITEMS}"),
                )),
                Some(n) => Ok(n),
            }
        };
        let given = |from: &str, n: u64| -> Result<u64, Complaint> {
            match items {
                Some(i) if i != n => Err(Complaint::new(
                    At::Items,
                    format!("items = {i}, but the {from} has {n}: leave `items` out"),
                )),
                _ => Ok(n),
            }
        };
        match self {
            RawDesign::Random => drawn("random"),
            RawDesign::Lhs => drawn("Latin hypercube"),
            RawDesign::Sobol => match drawn("Sobol")? {
                n if n > 1 << 32 => Err(Complaint::new(
                    At::Items,
                    "a Sobol design has at most 2³² items",
                )),
                n => Ok(n),
            },
            RawDesign::Grid(axes) => {
                let mut n: u64 = 1;
                for p in &state.params {
                    let Some((_, axis)) = axes.iter().find(|(k, _)| k == p) else {
                        return Err(Complaint::new(
                            At::Design,
                            format!("the grid has no axis for parameter `{p}`"),
                        ));
                    };
                    n = n
                        .checked_mul(axis.len())
                        .filter(|&n| n <= MAX_ITEMS)
                        .ok_or_else(|| {
                            Complaint::new(
                                At::Design,
                                format!("the grid has more than {MAX_ITEMS} points"),
                            )
                        })?;
                }
                given("grid", n)
            }
            RawDesign::File(f) => {
                f.columns_for(&state.params)
                    .map_err(|m| Complaint::new(At::Design, m))?;
                given(&format!("file {}", f.path.display()), f.rows)
            }
        }
    }

    /// Every grid axis names a parameter of some state.
    fn check_axes(&self, states: &[StateSpec]) -> Result<(), String> {
        if let RawDesign::Grid(axes) = self {
            for (key, _) in axes {
                if !states.iter().any(|s| s.params.contains(key)) {
                    let all: Vec<&str> = states
                        .iter()
                        .flat_map(|s| s.params.iter().map(String::as_str))
                        .collect();
                    return Err(format!(
                        "design.{key}: no state has a parameter `{key}` (they have {})",
                        all.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    fn resolved(self) -> Design {
        match self {
            RawDesign::Random => Design::Random,
            RawDesign::Lhs => Design::Lhs,
            RawDesign::Sobol => Design::Sobol,
            RawDesign::Grid(axes) => Design::Grid { axes },
            RawDesign::File(f) => Design::File(f),
        }
    }
}
