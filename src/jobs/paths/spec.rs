//! The `[sampler]` keys of `kind = "paths"` (`paths`, `steps`, `record`,
//! `chunk`, `statistics`) and each state's `process` and `hitting` set,
//! resolved with located errors: a transition row that does not sum to 1,
//! a negative rate, a start outside the labels, dt ≤ 0 stop `check` and
//! `run` before any work.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::process::{recorded_count, Process, Simulator, Start};
use super::stats::{Histogram, Shape};
use crate::jobs::{KindSpec, Memory, SamplerContext};
use crate::model::PluginSpec;
use crate::spec::{SpecError, StateSpec, NAME_MAX};

/// A small complete spec of this kind (`[sampler]` first, one state last).
pub const EXAMPLE: &str = r#"[sampler]
kind = "paths"
paths = 200
steps = 20

[[states]]
name = "g"
process = { kind = "markov-chain", labels = ["a", "b"], transition = [[0.5, 0.5], [0.2, 0.8]], x0 = "a" }
"#;

/// How far a row of a transition matrix (or a start distribution) may be
/// from summing to 1.
pub const ROW_TOLERANCE: f64 = 1e-12;
/// Quantiles of the value reported by default (finite state spaces).
pub const DEFAULT_QUANTILES: [f64; 3] = [0.05, 0.5, 0.95];
/// The automatic chunk: about this many path-steps a task (about 10 ms of
/// a chain), at least one path — and, with statistics only, at least one
/// path per `AUTO_VALUES_PER_PATH` values of a chunk's partial sums, so
/// that `partials` stays small beside the work. It never depends on
/// `paths`: a run asking for more paths has the same chunks first, and
/// extends the shorter run bit for bit.
const AUTO_PATH_STEPS: u64 = 1 << 20;
const AUTO_VALUES_PER_PATH: u64 = 64;
/// Values in one chunk's row of partial sums at most (32 MiB).
const MAX_PARTIAL_WIDTH: usize = 1 << 22;

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Paths per state.
    pub paths: u64,
    /// Steps of every path (transitions, or steps of `dt`).
    pub steps: u64,
    /// Statistics (and stored paths) every this many steps, and at the last.
    pub every: u64,
    pub record: Record,
    /// Paths per task.
    pub chunk: u64,
    /// Quantiles of the value (finite state spaces).
    pub quantiles: Vec<f64>,
    /// Per state, in the order of `[[states]]`.
    pub states: Vec<PathState>,
}

/// What a state simulates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathState {
    pub process: Process,
    /// The target set whose first hitting time is estimated: state indices
    /// of a Markov chain, positions of a random walk; empty for none.
    pub hitting: Vec<i64>,
}

impl KindSpec for Spec {
    fn plugins(&self, states: &[StateSpec]) -> Vec<(String, PluginSpec)> {
        states
            .iter()
            .zip(&self.states)
            .filter_map(|(st, p)| match &p.process {
                Process::Plugin { plugin, .. } => Some((st.name.clone(), plugin.clone())),
                _ => None,
            })
            .collect()
    }

    fn python_states(&self, states: &[StateSpec]) -> Vec<String> {
        states
            .iter()
            .zip(&self.states)
            .filter(|(_, p)| matches!(p.process, Process::Python { .. }))
            .map(|(st, _)| st.name.clone())
            .collect()
    }

    fn prepare_plugins(&self, states: &[StateSpec]) -> Result<(), String> {
        for (st, p) in states.iter().zip(&self.states) {
            if let Process::Plugin { .. } | Process::Python { .. } = p.process {
                Simulator::new(&p.process, &st.name, 1, vec![0, 1], &[])
                    .map_err(|e| format!("state `{}`: {e}", st.name))?;
            }
        }
        Ok(())
    }

    /// A chunk's paths at the recorded times, when they are kept; the
    /// partial sums of a chunk and of their merge.
    fn memory(&self, _states: &[StateSpec]) -> Memory {
        let times = super::process::recorded_count(self.steps, self.every) as f64;
        let most = self
            .states
            .iter()
            .map(|p| {
                let partial = shape(&p.process, &p.hitting, times as usize, &self.quantiles)
                    .width() as f64;
                let paths = if self.record.paths() {
                    self.chunk.min(self.paths) as f64 * times
                } else {
                    0.0
                };
                paths + 4.0 * partial
            })
            .fold(0.0, f64::max);
        Memory::values(most, "steps, statistics.every and chunk")
    }
}

/// What a run keeps of its paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "record", description = "What a paths run stores.")]
pub enum Record {
    /// Statistics only: memory bounded by a chunk, not the paths.
    Statistics,
    /// Every path at every recorded step, no statistics.
    Paths,
    /// Every path and the statistics.
    Both,
}

impl Record {
    pub fn statistics(self) -> bool {
        self != Record::Paths
    }

    pub fn paths(self) -> bool {
        self != Record::Statistics
    }
}

/// `[sampler]` of `kind = "paths"` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    /// Paths per state, each with its own stream keyed by (seed, state, path).
    #[schemars(extend("default" = 1000), range(min = 1))]
    #[schemars(with = "Option<u64>")]
    pub paths: Option<Spanned<u64>>,
    /// Steps of every path: transitions, or steps of the process's `dt`.
    #[schemars(extend("default" = 100), range(min = 1))]
    #[schemars(with = "Option<u64>")]
    pub steps: Option<Spanned<u64>>,
    /// What is stored.
    #[schemars(extend("default" = "statistics"))]
    #[schemars(with = "Option<Record>")]
    pub record: Option<Spanned<Record>>,
    /// Paths per task; 0 chooses (about 10 ms of work a task).
    #[schemars(extend("default" = 0))]
    #[schemars(with = "Option<u64>")]
    pub chunk: Option<Spanned<u64>>,
    /// When and which statistics are recorded.
    #[schemars(with = "Option<RawStatistics>")]
    pub statistics: Option<Spanned<RawStatistics>>,
}

/// `[sampler.statistics]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "paths.statistics")]
pub struct RawStatistics {
    /// Record every this many steps (and at the last).
    #[schemars(extend("default" = 1), range(min = 1))]
    #[schemars(with = "Option<u64>")]
    pub every: Option<Spanned<u64>>,
    /// Quantiles of the value at each recorded time, each in (0, 1).
    #[schemars(extend("default" = DEFAULT_QUANTILES))]
    #[schemars(with = "Option<Vec<f64>>")]
    pub quantiles: Option<Spanned<Vec<f64>>>,
}

/// A state's keys in the JSON Schema.
pub type StateKeys = RawState;

/// A state's own keys.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// The stochastic process.
    #[schemars(with = "RawProcess")]
    pub process: Spanned<RawProcess>,
    /// The target set whose first hitting time is estimated: labels of a Markov chain,
    /// positions of a random walk or queue.
    #[schemars(with = "Option<Vec<Label>>")]
    pub hitting: Option<Spanned<Vec<Label>>>,
}

/// A process as written.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(rename = "process", description = "A stochastic process, by `kind`.")]
pub enum RawProcess {
    /// A finite-state Markov chain in discrete time.
    MarkovChain {
        /// A label per state, integers or strings (default 0, 1, …).
        labels: Option<Vec<Label>>,
        /// The transition matrix: row i is the distribution of the next state from state i
        /// (rows sum to 1).
        transition: Vec<Vec<f64>>,
        /// The start: a label, or `{ distribution = [...] }` (a probability per
        /// state, drawn from per path).
        #[schemars(with = "StartKeys")]
        x0: toml::Value,
    },
    /// A ±1 random walk, reflecting at `lower` and `upper` when given.
    RandomWalk {
        /// Probability of a step up (+1).
        #[schemars(extend("default" = 0.5))]
        p: Option<f64>,
        /// The start.
        #[schemars(extend("default" = 0))]
        x0: Option<i64>,
        /// Reflecting lower bound.
        lower: Option<i64>,
        /// Reflecting upper bound.
        upper: Option<i64>,
    },
    /// Geometric Brownian motion, sampled exactly at steps of `dt`.
    Gbm {
        /// Drift: dS = μ S dt + σ S dW.
        mu: f64,
        /// Volatility σ.
        sigma: f64,
        /// The start.
        s0: f64,
        /// The time step.
        dt: f64,
    },
    /// An Ornstein–Uhlenbeck process, sampled exactly at steps of `dt`.
    Ou {
        /// Mean reversion rate: dX = θ (μ − X) dt + σ dW.
        theta: f64,
        /// Long-run mean μ.
        mu: f64,
        /// Noise σ.
        sigma: f64,
        /// The start.
        x0: f64,
        /// The time step (sampled exactly).
        dt: f64,
    },
    /// An M/M/1/K queue's length at its events (arrivals turned away at `capacity`).
    Mm1Queue {
        /// Arrivals per unit time.
        arrival_rate: f64,
        /// Services per unit time.
        service_rate: f64,
        /// The longest queue (stochlab's `max_queue_length`).
        capacity: i64,
        /// The queue's length at the start.
        #[schemars(extend("default" = 0))]
        x0: Option<i64>,
    },
    /// A Poisson process's count, every `dt`.
    Poisson {
        /// Events per unit time.
        rate: f64,
        /// Time between recorded counts.
        #[schemars(extend("default" = 1.0))]
        dt: Option<f64>,
    },
    /// A user's process from a shared library: one value per path, steps of `dt`.
    Plugin {
        /// The shared library (relative to the spec), exporting `sampo_process_start` and
        /// `sampo_process_step`.
        library: String,
        /// Handed to the library's init as JSON.
        config: Option<serde_json::Value>,
        /// The time step.
        #[schemars(extend("default" = 1.0))]
        dt: Option<f64>,
        /// Each thread calls a private copy of the library.
        copies: Option<bool>,
    },
    /// A user's process in Python: `function(rng, steps[, setup's object])` returns a
    /// path's `steps + 1` values, drawing from `rng`, a numpy Generator seeded from the
    /// path's own stream.
    Python {
        /// The Python file (relative to the spec), imported once per rank.
        file: String,
        /// The function returning one path.
        #[schemars(extend("default" = "simulate"))]
        function: Option<String>,
        /// Passed as a dict to the file's `setup(config)`.
        config: Option<serde_json::Value>,
        /// The time step.
        #[schemars(extend("default" = 1.0))]
        dt: Option<f64>,
        /// The values are integers (stored as such; `hitting` targets allowed).
        #[schemars(extend("default" = false))]
        integer: Option<bool>,
    },
}

/// The longest queue or widest bounded walk: the states of a finite space.
const MAX_POSITIONS: i64 = 1 << 16;

/// A state's label as written: a string or an integer.
/// `x0` of a Markov chain for the JSON Schema (read from the TOML value).
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schemars(rename = "x0", description = "A Markov chain's start: a label, or `{ distribution = [...] }` (a probability per state, drawn from per path).")]
enum StartKeys {
    Label(Label),
    Distribution {
        /// A probability per state; each path draws its start from it.
        distribution: Vec<f64>,
    },
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "label", description = "A state's label: an integer or a string.")]
pub enum Label {
    Int(i64),
    Str(String),
}

impl Label {
    fn text(&self) -> String {
        match self {
            Label::Int(i) => i.to_string(),
            Label::Str(s) => s.clone(),
        }
    }
}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<(Spec, Vec<StateSpec>), SpecError> {
    let r = cx.resolver;
    let sm = cx.sampler::<RawSampler>()?.into_inner();
    cx.refuse_replicates("every path has its own stream; raise `paths` instead")?;
    let positive = |v: &Option<Spanned<u64>>, name: &str, default: u64| match v {
        Some(v) if *v.get_ref() == 0 => Err(r.err(v.span(), format!("{name} must be at least 1"))),
        Some(v) => Ok(*v.get_ref()),
        None => Ok(default),
    };
    let paths = positive(&sm.paths, "paths", 1000)?;
    let steps = positive(&sm.steps, "steps", 100)?;
    let (every, quantiles) = match &sm.statistics {
        Some(s) => {
            let s = s.get_ref();
            let every = positive(&s.every, "statistics.every", 1)?;
            let quantiles = match &s.quantiles {
                Some(q) => {
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
            (every, quantiles)
        }
        None => (1, DEFAULT_QUANTILES.to_vec()),
    };
    let times = usize::try_from(recorded_count(steps, every)).unwrap_or(usize::MAX);

    let record = sm.record.map_or(Record::Statistics, Spanned::into_inner);
    // The widest chunk's partial sums (for the automatic chunk).
    let mut widest = 0;
    let mut states = Vec::new();
    let mut resolved = Vec::new();
    for (i, entry) in cx.states.iter().enumerate() {
        let name = &entry.name;
        let raw = cx.state::<RawState>(i)?.into_inner();
        let span = raw.process.span();
        let base = r.source.path.parent().unwrap_or(Path::new(""));
        let process = resolve_process(raw.process.into_inner(), base)
            .map_err(|m| r.err(span.clone(), format!("state `{name}`: process: {m}")))?;
        // Built as the run builds it: a plugin that cannot be loaded or
        // whose init fails stops here.
        Simulator::new(&process, name, 1, vec![0, 1], &[])
            .map_err(|m| r.err(span.clone(), format!("state `{name}`: {m}")))?;
        let hitting = match &raw.hitting {
            Some(h) => resolve_hitting(&process, h.get_ref())
                .map_err(|m| r.err(h.span(), format!("state `{name}`: hitting: {m}")))?,
            None => Vec::new(),
        };
        let counted = shape(&process, &hitting, times, &quantiles);
        if counted.width() > MAX_PARTIAL_WIDTH {
            return Err(r.err(
                span,
                format!(
                    "state `{name}`: {times} recorded times × {} counts is too much to keep per \
                     chunk; raise statistics.every",
                    counted.bins
                ),
            ));
        }
        widest = widest.max(counted.width() as u64);
        states.push(r.state_spec(entry, 0)?);
        resolved.push(PathState { process, hitting });
    }
    let chunk = match &sm.chunk {
        Some(c) if *c.get_ref() > 0 => *c.get_ref(),
        _ => {
            let by_work = AUTO_PATH_STEPS / (steps + 1);
            let by_width = match record {
                Record::Statistics => widest.div_ceil(AUTO_VALUES_PER_PATH),
                _ => 0,
            };
            by_work.max(by_width).max(1)
        }
    };
    let spec = Spec {
        paths,
        steps,
        every,
        record,
        chunk,
        quantiles,
        states: resolved,
    };
    Ok((spec, states))
}

/// What a chunk's partial sums of `process` hold over `times` recorded
/// times: counts per state of a finite space, or per histogram bin of a
/// continuous value when quantiles are asked for.
pub fn shape(process: &Process, hitting: &[i64], times: usize, quantiles: &[f64]) -> Shape {
    let bins = match process.finite_values() {
        Some(v) => v.len(),
        None if !quantiles.is_empty() => Histogram::bins(),
        None => 0,
    };
    Shape {
        times,
        bins,
        timed: process.random_times(),
        hitting: !hitting.is_empty(),
    }
}

fn finite(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{name} = {v} is not a finite number"))
    }
}

fn resolve_process(raw: RawProcess, base: &Path) -> Result<Process, String> {
    match raw {
        RawProcess::MarkovChain {
            labels,
            transition,
            x0,
        } => {
            let k = transition.len();
            if k == 0 {
                return Err("the transition matrix has no rows".into());
            }
            let labels: Vec<String> = match labels {
                Some(l) => l.iter().map(Label::text).collect(),
                None => (0..k).map(|i| i.to_string()).collect(),
            };
            if labels.len() != k {
                return Err(format!(
                    "{} labels for a transition matrix of {k} rows",
                    labels.len()
                ));
            }
            if let Some(bad) = labels
                .iter()
                .find(|s| s.is_empty() || s.len() > NAME_MAX || s.contains(char::is_control))
            {
                return Err(format!(
                    "label {bad:?}: labels must be 1 to {NAME_MAX} bytes with no control characters"
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
                return Err(format!("duplicate label `{dup}`"));
            }
            for (i, row) in transition.iter().enumerate() {
                let at = format!("transition row {i} (`{}`)", labels[i]);
                if row.len() != k {
                    return Err(format!("{at} has {} entries, not {k}", row.len()));
                }
                if let Some(bad) = row.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
                    return Err(format!("{at} holds {bad}: probabilities are ≥ 0"));
                }
                check_sum(&at, row)?;
            }
            let x0 = match &x0 {
                toml::Value::Table(t) if t.contains_key("distribution") => {
                    if let Some(other) = t.keys().find(|k| *k != "distribution") {
                        return Err(format!("x0.{other}: x0 is a label or {{ distribution = [...] }}"));
                    }
                    let d: Vec<f64> = t["distribution"]
                        .as_array()
                        .and_then(|a| {
                            a.iter()
                                .map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                                .collect()
                        })
                        .ok_or("x0.distribution must be a list of probabilities")?;
                    if d.len() != k {
                        return Err(format!(
                            "x0.distribution has {} entries for {k} states",
                            d.len()
                        ));
                    }
                    if let Some(bad) = d.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
                        return Err(format!("x0.distribution holds {bad}: probabilities are ≥ 0"));
                    }
                    check_sum("x0.distribution", &d)?;
                    Start::Distribution(d)
                }
                toml::Value::String(s) => Start::State(find_label(&labels, s)?),
                toml::Value::Integer(i) => Start::State(find_label(&labels, &i.to_string())?),
                _ => return Err("x0 is a label or { distribution = [...] }".into()),
            };
            Ok(Process::MarkovChain {
                labels,
                transition,
                x0,
            })
        }
        RawProcess::RandomWalk { p, x0, lower, upper } => {
            let p = finite("p", p.unwrap_or(0.5))?;
            let x0 = x0.unwrap_or(0);
            let bounds = match (lower, upper) {
                (None, None) => {
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("p = {p} is not a probability"));
                    }
                    None
                }
                (Some(lo), Some(hi)) => {
                    if lo >= hi {
                        return Err(format!("lower = {lo} must be below upper = {hi}"));
                    }
                    if hi - lo > MAX_POSITIONS {
                        return Err("at most 65537 positions between lower and upper".into());
                    }
                    if !(p > 0.0 && p < 1.0) {
                        return Err(format!(
                            "p = {p}: a bounded walk moves up with a probability strictly \
                             between 0 and 1"
                        ));
                    }
                    if !(lo..=hi).contains(&x0) {
                        return Err(format!("x0 = {x0} is outside [lower, upper] = [{lo}, {hi}]"));
                    }
                    Some((lo, hi))
                }
                _ => return Err("a bounded walk has both lower and upper".into()),
            };
            Ok(Process::RandomWalk { p, x0, bounds })
        }
        RawProcess::Gbm { mu, sigma, s0, dt } => {
            let (mu, sigma, s0, dt) = (
                finite("mu", mu)?,
                finite("sigma", sigma)?,
                finite("s0", s0)?,
                finite("dt", dt)?,
            );
            positive_dt(dt)?;
            if sigma < 0.0 {
                return Err(format!("sigma = {sigma}: a volatility is ≥ 0"));
            }
            if s0 <= 0.0 {
                return Err(format!("s0 = {s0}: geometric Brownian motion starts above 0"));
            }
            Ok(Process::Gbm { mu, sigma, s0, dt })
        }
        RawProcess::Ou {
            theta,
            mu,
            sigma,
            x0,
            dt,
        } => {
            let (theta, mu, sigma, x0, dt) = (
                finite("theta", theta)?,
                finite("mu", mu)?,
                finite("sigma", sigma)?,
                finite("x0", x0)?,
                finite("dt", dt)?,
            );
            positive_dt(dt)?;
            if theta <= 0.0 {
                return Err(format!("theta = {theta}: the mean-reversion rate is > 0"));
            }
            if sigma < 0.0 {
                return Err(format!("sigma = {sigma}: a volatility is ≥ 0"));
            }
            Ok(Process::Ou {
                theta,
                mu,
                sigma,
                x0,
                dt,
            })
        }
        RawProcess::Mm1Queue {
            arrival_rate,
            service_rate,
            capacity,
            x0,
        } => {
            let arrival = finite("arrival_rate", arrival_rate)?;
            let service = finite("service_rate", service_rate)?;
            for (name, v) in [("arrival_rate", arrival), ("service_rate", service)] {
                if v <= 0.0 {
                    return Err(format!("{name} = {v}: a rate is > 0"));
                }
            }
            if !(1..=MAX_POSITIONS).contains(&capacity) {
                return Err(format!(
                    "capacity = {capacity}: the longest queue is 1 to {MAX_POSITIONS}"
                ));
            }
            let x0 = x0.unwrap_or(0);
            if !(0..=capacity).contains(&x0) {
                return Err(format!("x0 = {x0} is outside [0, capacity] = [0, {capacity}]"));
            }
            Ok(Process::Mm1Queue {
                arrival,
                service,
                capacity,
                x0,
            })
        }
        RawProcess::Poisson { rate, dt } => {
            let rate = finite("rate", rate)?;
            let dt = finite("dt", dt.unwrap_or(1.0))?;
            positive_dt(dt)?;
            if rate < 0.0 {
                return Err(format!("rate = {rate}: a rate is ≥ 0"));
            }
            // Counts stay exact integers in an f64 and an i64.
            if rate * dt > 1e12 {
                return Err(format!("rate × dt = {}: at most 1e12 a step", rate * dt));
            }
            Ok(Process::Poisson { rate, dt })
        }
        RawProcess::Plugin {
            library,
            config,
            dt,
            copies,
        } => {
            let dt = finite("dt", dt.unwrap_or(1.0))?;
            positive_dt(dt)?;
            let config_json = match config {
                None => "{}".to_string(),
                Some(c @ serde_json::Value::Object(_)) => c.to_string(),
                Some(_) => return Err("config must be a table".into()),
            };
            let path = base.join(library);
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            let lib = crate::model::plugin::Library::load(&path).map_err(|e| e.to_string())?;
            if !lib.has_process() {
                return Err(format!(
                    "library {} does not export sampo_process_start and sampo_process_step \
                     (see include/sampo.h)",
                    path.display()
                ));
            }
            let plugin = PluginSpec {
                path,
                config_json,
                safety: lib.safety(),
                copies: copies.unwrap_or(false),
            };
            Ok(Process::Plugin { plugin, dt })
        }
        RawProcess::Python {
            file,
            function,
            config,
            dt,
            integer,
        } => {
            let dt = finite("dt", dt.unwrap_or(1.0))?;
            positive_dt(dt)?;
            let config_json = crate::model::plugin_config_json(config.as_ref())
                .map_err(|e| e.trim_start_matches("model.").to_string())?;
            // Recorded absolute, so that every rank imports the same file.
            let path = base.join(&file);
            if !path.is_file() {
                return Err(format!("file: no Python file {}", path.display()));
            }
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            Ok(Process::Python {
                file: path.display().to_string(),
                function: function
                    .unwrap_or_else(|| crate::model::python::DEFAULT_SIMULATE.to_string()),
                config_json,
                dt,
                integer: integer.unwrap_or(false),
            })
        }
    }
}

fn positive_dt(dt: f64) -> Result<(), String> {
    if dt > 0.0 {
        Ok(())
    } else {
        Err(format!("dt = {dt}: the time step is > 0"))
    }
}

fn check_sum(what: &str, p: &[f64]) -> Result<(), String> {
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > ROW_TOLERANCE {
        return Err(format!("{what} sums to {sum}, not 1 (within {ROW_TOLERANCE:e})"));
    }
    Ok(())
}

fn find_label(labels: &[String], label: &str) -> Result<usize, String> {
    labels.iter().position(|l| l == label).ok_or_else(|| {
        format!(
            "x0 = {label:?} is not one of the labels [{}]",
            labels.join(", ")
        )
    })
}

fn resolve_hitting(process: &Process, targets: &[Label]) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for t in targets {
        let v = match (process, t) {
            (Process::MarkovChain { labels, .. }, t) => {
                let text = t.text();
                labels.iter().position(|l| *l == text).ok_or_else(|| {
                    format!("{text:?} is not one of the labels [{}]", labels.join(", "))
                })? as i64
            }
            (Process::RandomWalk { bounds, .. }, Label::Int(i)) => {
                if let Some((lo, hi)) = bounds {
                    if !(lo..=hi).contains(&i) {
                        return Err(format!("{i} is outside [lower, upper] = [{lo}, {hi}]"));
                    }
                }
                *i
            }
            (Process::Mm1Queue { capacity, .. }, Label::Int(i)) => {
                if !(0..=*capacity).contains(i) {
                    return Err(format!("{i} is outside [0, capacity] = [0, {capacity}]"));
                }
                *i
            }
            (Process::Python { integer: true, .. }, Label::Int(i)) => *i,
            (Process::Poisson { .. }, Label::Int(i)) => {
                if *i < 0 {
                    return Err(format!("{i}: a count is ≥ 0"));
                }
                *i
            }
            (
                Process::RandomWalk { .. }
                | Process::Mm1Queue { .. }
                | Process::Poisson { .. }
                | Process::Python { integer: true, .. },
                Label::Str(s),
            ) => {
                return Err(format!(
                    "{s:?}: the targets of a {} are integers",
                    process.name()
                ))
            }
            _ => {
                return Err(format!(
                    "hitting times are estimated for discrete processes, not {}",
                    process.name()
                ))
            }
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}
