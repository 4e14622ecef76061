//! The processes a path follows, resolved, and how one path is simulated
//! from its own stream: a finite Markov chain (alias tables), the random
//! walk (bounded with reflecting boundaries, or unbounded), the M/M/1
//! queue's embedded chain with its random event times, the counts of a
//! Poisson process, geometric Brownian motion and Ornstein–Uhlenbeck by
//! their exact transitions over `dt` (so that no discretisation error
//! enters any statistic), and a user's process — from a plugin library that
//! draws from the path's stream, or a Python function whose numpy generator
//! is seeded from it.

use std::sync::Arc;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::model::plugin::Plugin;
use crate::model::python::{PythonProcess, PythonSpec};
use crate::model::PluginSpec;
use crate::seed::Stream;

/// A state's process, resolved and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Process {
    /// Finite states `labels`, one step a row of `transition`.
    MarkovChain {
        labels: Vec<String>,
        /// Row-stochastic, rows checked to sum to 1 within 1e-12.
        transition: Vec<Vec<f64>>,
        x0: Start,
    },
    /// ±1 a step, up with probability `p`; within `bounds` a walk at a
    /// bound moves back inside (stochlab's reflecting walk).
    RandomWalk {
        p: f64,
        x0: i64,
        bounds: Option<(i64, i64)>,
    },
    /// dS = μ S dt + σ S dW, from `s0`.
    Gbm { mu: f64, sigma: f64, s0: f64, dt: f64 },
    /// dX = θ (μ − X) dt + σ dW, from `x0`.
    Ou {
        theta: f64,
        mu: f64,
        sigma: f64,
        x0: f64,
        dt: f64,
    },
    /// The queue length of an M/M/1 queue at its events (the embedded
    /// jump chain), with the exponential times between them; a queue at
    /// `capacity` turns arrivals away (M/M/1/K).
    Mm1Queue {
        arrival: f64,
        service: f64,
        capacity: i64,
        x0: i64,
    },
    /// The counts of a Poisson process of `rate`, every `dt`, from 0.
    Poisson { rate: f64, dt: f64 },
    /// A user's process: `sampo_process_start` and `sampo_process_step`
    /// of a plugin library, one value per path, steps of `dt`.
    Plugin { plugin: PluginSpec, dt: f64 },
    /// A user's process in Python: `function` of `file` returns a whole
    /// path, drawing from a numpy generator seeded from the path's stream;
    /// `config` (JSON) goes to the file's `setup`. `integer`: its values
    /// are integers.
    Python {
        file: String,
        function: String,
        config_json: String,
        dt: f64,
        integer: bool,
    },
}

/// Where a Markov chain starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// In this state (an index into the labels).
    State(usize),
    /// Drawn from this distribution over the states (the path's first draw).
    Distribution(Vec<f64>),
}

impl Process {
    pub fn name(&self) -> &'static str {
        match self {
            Process::MarkovChain { .. } => "markov-chain",
            Process::RandomWalk { .. } => "random-walk",
            Process::Gbm { .. } => "gbm",
            Process::Ou { .. } => "ou",
            Process::Mm1Queue { .. } => "mm1-queue",
            Process::Poisson { .. } => "poisson",
            Process::Plugin { .. } => "plugin",
            Process::Python { .. } => "python",
        }
    }

    /// The values of a finite state space, in order (a Markov chain's state
    /// index is its value); `None` for an infinite one.
    pub fn finite_values(&self) -> Option<Vec<i64>> {
        match self {
            Process::MarkovChain { labels, .. } => Some((0..labels.len() as i64).collect()),
            Process::RandomWalk {
                bounds: Some((lo, hi)),
                ..
            } => Some((*lo..=*hi).collect()),
            Process::Mm1Queue { capacity, .. } => Some((0..=*capacity).collect()),
            _ => None,
        }
    }

    /// The name of each state of a finite state space.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Process::MarkovChain { labels, .. } => labels.clone(),
            _ => self
                .finite_values()
                .unwrap_or_default()
                .iter()
                .map(i64::to_string)
                .collect(),
        }
    }

    /// Whether values are integers (stored as such in `/paths/<state>/states`).
    pub fn discrete(&self) -> bool {
        matches!(
            self,
            Process::MarkovChain { .. }
                | Process::RandomWalk { .. }
                | Process::Mm1Queue { .. }
                | Process::Poisson { .. }
                | Process::Python { integer: true, .. }
        )
    }

    /// Whether the time of each step is random (the queue's events): each
    /// path then has its own times, recorded beside its values.
    pub fn random_times(&self) -> bool {
        matches!(self, Process::Mm1Queue { .. })
    }

    /// Model time of step t: t for discrete time (the event count of a
    /// queue), t·dt for a process in continuous time.
    pub fn time(&self, step: u64) -> f64 {
        match self {
            Process::Gbm { dt, .. }
            | Process::Ou { dt, .. }
            | Process::Poisson { dt, .. }
            | Process::Plugin { dt, .. }
            | Process::Python { dt, .. } => step as f64 * dt,
            _ => step as f64,
        }
    }

    /// The transition matrix of a finite state space, where the process
    /// is a Markov chain on it (row i: from the i-th value).
    pub fn transition(&self) -> Option<Vec<Vec<f64>>> {
        match self {
            Process::MarkovChain { transition, .. } => Some(transition.clone()),
            Process::RandomWalk {
                p,
                bounds: Some((lo, hi)),
                ..
            } => {
                let k = (hi - lo + 1) as usize;
                let mut m = vec![vec![0.0; k]; k];
                for (i, row) in m.iter_mut().enumerate() {
                    if i == 0 {
                        row[1] = 1.0;
                    } else if i == k - 1 {
                        row[k - 2] = 1.0;
                    } else {
                        row[i + 1] = *p;
                        row[i - 1] = 1.0 - p;
                    }
                }
                Some(m)
            }
            Process::Mm1Queue {
                arrival,
                service,
                capacity,
                ..
            } => {
                let k = *capacity as usize + 1;
                let up = arrival / (arrival + service);
                let mut m = vec![vec![0.0; k]; k];
                for (i, row) in m.iter_mut().enumerate() {
                    if i == 0 {
                        row[1] = 1.0;
                    } else if i == k - 1 {
                        row[k - 2] = 1.0;
                    } else {
                        row[i + 1] = up;
                        row[i - 1] = 1.0 - up;
                    }
                }
                Some(m)
            }
            _ => None,
        }
    }

    /// The distribution at step 0 over a finite state space.
    pub fn start(&self) -> Option<Vec<f64>> {
        let k = self.finite_values()?.len();
        let at = |i: usize| {
            let mut d = vec![0.0; k];
            d[i] = 1.0;
            d
        };
        match self {
            Process::MarkovChain { x0, .. } => Some(match x0 {
                Start::State(i) => at(*i),
                Start::Distribution(d) => d.clone(),
            }),
            Process::RandomWalk {
                x0,
                bounds: Some((lo, _)),
                ..
            } => Some(at((x0 - lo) as usize)),
            Process::Mm1Queue { x0, .. } => Some(at(*x0 as usize)),
            _ => None,
        }
    }

    /// The rate at which a queue of length `n` leaves it (its events).
    pub fn event_rate(&self, n: i64) -> Option<f64> {
        match self {
            Process::Mm1Queue {
                arrival,
                service,
                capacity,
                ..
            } => Some(if n == 0 {
                *arrival
            } else if n == *capacity {
                *service
            } else {
                arrival + service
            }),
            _ => None,
        }
    }

    /// The states of a Markov chain that it never leaves.
    pub fn absorbing(&self) -> Vec<usize> {
        match self {
            Process::MarkovChain { transition, .. } => (0..transition.len())
                .filter(|&i| transition[i][i] == 1.0)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Draws from a discrete distribution with one uniform: Walker's alias
/// method (Vose's construction), O(1) a draw whatever the number of states.
#[derive(Debug, Clone)]
pub struct Alias {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl Alias {
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut prob = vec![1.0; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            prob[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding; a state of probability 0 keeps
        // prob 0 (it is never its own pick) whatever the rounding.
        for (i, w) in weights.iter().enumerate() {
            if *w == 0.0 {
                prob[i] = 0.0;
            }
        }
        Self { prob, alias }
    }

    #[inline]
    pub fn draw(&self, rng: &mut Stream) -> usize {
        let u = rng.random::<f64>() * self.prob.len() as f64;
        let j = (u as usize).min(self.prob.len() - 1);
        if u - (j as f64) < self.prob[j] {
            j
        } else {
            self.alias[j] as usize
        }
    }
}

/// The alias tables of every row of a transition matrix in one flat table,
/// row x's column j at x · n + j. A state is walked as its row's offset
/// x · n, and each entry holds what the step needs next whichever way the
/// draw goes: the column's probability, the alias's row offset, and both
/// destinations' flags (absorbing, in the target set). A transition is then
/// one uniform and one load that depends on the state; its draws equal each
/// row's [`Alias::draw`], bit for bit.
struct Transitions {
    n: usize,
    entries: Vec<Entry>,
    /// The flags of each state.
    flags: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Entry {
    prob: f64,
    alias_row: u32,
    column_flags: u8,
    alias_flags: u8,
}

const ABSORBING: u8 = 1;
const TARGET: u8 = 2;

impl Transitions {
    /// # Panics
    /// With 2^16 states or more (a dense matrix of 2^32 entries, far past
    /// any rank's memory, which `check` refuses first).
    fn new(rows: &[Vec<f64>], target: &[bool]) -> Self {
        let n = rows.len();
        let offset = |x: usize| u32::try_from(x * n).expect("fewer than 2^16 states");
        let flags: Vec<u8> = (0..n)
            .map(|i| (u8::from(rows[i][i] == 1.0) * ABSORBING) | (u8::from(target[i]) * TARGET))
            .collect();
        let entries = rows
            .iter()
            .flat_map(|r| {
                let a = Alias::new(r);
                a.prob.into_iter().zip(a.alias).enumerate().map(|(j, (prob, alias))| Entry {
                    prob,
                    alias_row: offset(alias as usize),
                    column_flags: flags[j],
                    alias_flags: flags[alias as usize],
                })
            })
            .collect();
        Self { n, entries, flags }
    }

    /// One transition from the state at row offset `row`: the next state's
    /// row offset and flags.
    #[inline(always)]
    fn step(&self, row: usize, rng: &mut Stream) -> (usize, u8) {
        // As `Alias::draw`, with the column as a u32: its conversion back
        // to f64 is one instruction where a usize's takes several. The
        // column's offset does not wait for the load.
        let u = rng.random::<f64>() * self.n as f64;
        let j = (u as u32).min(self.n as u32 - 1);
        let e = self.entries[row + j as usize];
        if u - f64::from(j) < e.prob {
            (j as usize * self.n, e.column_flags)
        } else {
            (e.alias_row as usize, e.alias_flags)
        }
    }

    /// One path from state `x`: the state at each recorded step into `out`
    /// and the first step in the target set.
    fn path(&self, x: usize, recorded: &[u64], rng: &mut Stream, out: &mut [f64]) -> Option<u64> {
        let n = self.n;
        let (mut row, mut flags) = (x * n, self.flags[x]);
        // The first step in the target set, u64::MAX until then.
        let mut hit = if flags & TARGET != 0 { 0 } else { u64::MAX };
        let mut t = 0;
        // Step to each recorded step in turn.
        for r in 0..out.len() {
            while t < recorded[r] {
                if flags & ABSORBING != 0 {
                    // It stays: the remaining records are its state, and a
                    // target not hit by now never is.
                    out[r..].fill((row / n) as f64);
                    return (hit != u64::MAX).then_some(hit);
                }
                (row, flags) = self.step(row, rng);
                t += 1;
                if hit == u64::MAX && flags & TARGET != 0 {
                    hit = t;
                }
            }
            out[r] = (row / n) as f64;
        }
        (hit != u64::MAX).then_some(hit)
    }
}

/// A process ready to simulate paths, with the steps it records and the
/// target set whose first hitting time it watches.
pub struct Simulator {
    sim: Sim,
    steps: u64,
    /// Steps recorded, increasing, the last `steps`.
    recorded: Vec<u64>,
}

enum Sim {
    Chain {
        rows: Transitions,
        start: Result<usize, Alias>,
    },
    Walk {
        p: f64,
        x0: i64,
        bounds: Option<(i64, i64)>,
        target: Vec<i64>,
    },
    Gbm {
        drift: f64,
        vol: f64,
        s0: f64,
    },
    Ou {
        decay: f64,
        mu: f64,
        vol: f64,
        x0: f64,
    },
    Queue {
        arrival: f64,
        service: f64,
        /// P(an event of a busy queue below capacity is an arrival).
        up: f64,
        capacity: i64,
        x0: i64,
        target: Vec<i64>,
    },
    Poisson {
        per_step: Option<rand_distr::Poisson<f64>>,
        target: Vec<i64>,
    },
    Plugin(Arc<Plugin>),
    Python {
        process: PythonProcess,
        target: Vec<i64>,
    },
}

impl Simulator {
    /// `target`: the values whose first hitting time is watched (state
    /// indices for a Markov chain), none for an SDE. Fails only for a
    /// plugin whose library cannot be prepared.
    pub fn new(
        process: &Process,
        state: &str,
        steps: u64,
        recorded: Vec<u64>,
        target: &[i64],
    ) -> Result<Self, String> {
        let sim = match process {
            Process::MarkovChain { transition, x0, .. } => {
                let k = transition.len();
                let mut mask = vec![false; k];
                for &t in target {
                    mask[t as usize] = true;
                }
                Sim::Chain {
                    rows: Transitions::new(transition, &mask),
                    start: match x0 {
                        Start::State(i) => Ok(*i),
                        Start::Distribution(d) => Err(Alias::new(d)),
                    },
                }
            }
            Process::RandomWalk { p, x0, bounds } => Sim::Walk {
                p: *p,
                x0: *x0,
                bounds: *bounds,
                target: target.to_vec(),
            },
            Process::Gbm { mu, sigma, s0, dt } => Sim::Gbm {
                drift: (mu - 0.5 * sigma * sigma) * dt,
                vol: sigma * dt.sqrt(),
                s0: *s0,
            },
            Process::Ou {
                theta,
                mu,
                sigma,
                x0,
                dt,
            } => {
                let decay = (-theta * dt).exp();
                Sim::Ou {
                    decay,
                    mu: *mu,
                    // The exact one-step variance σ²(1 − e^{−2θdt})/(2θ).
                    vol: sigma * (-(-2.0 * theta * dt).exp_m1() / (2.0 * theta)).sqrt(),
                    x0: *x0,
                }
            }
            Process::Mm1Queue {
                arrival,
                service,
                capacity,
                x0,
            } => Sim::Queue {
                arrival: *arrival,
                service: *service,
                up: arrival / (arrival + service),
                capacity: *capacity,
                x0: *x0,
                target: target.to_vec(),
            },
            Process::Poisson { rate, dt } => Sim::Poisson {
                // A rate of 0 never counts (rand_distr wants λ > 0).
                per_step: rand_distr::Poisson::new(rate * dt).ok(),
                target: target.to_vec(),
            },
            Process::Plugin { plugin, .. } => Sim::Plugin(
                Plugin::for_state(plugin, state, 1).map_err(|e| format!("process.{e}"))?,
            ),
            Process::Python {
                file,
                function,
                config_json,
                integer,
                ..
            } => {
                let spec = PythonSpec {
                    file: std::path::Path::new(file),
                    function,
                    vectorized: false,
                    config_json,
                };
                Sim::Python {
                    process: PythonProcess::build(&spec, state, *integer)
                        .map_err(|e| format!("process.{}: {}", e.field, e.message))?,
                    target: target.to_vec(),
                }
            }
        };
        Ok(Self {
            sim,
            steps,
            recorded,
        })
    }

    pub fn recorded(&self) -> &[u64] {
        &self.recorded
    }

    /// One path from `rng`: its value at each recorded step into `out`,
    /// the time of each recorded step into `times` where times are random
    /// (empty otherwise), and the first step (0 included) at which it is
    /// in the target set. A plugin's failure is its message.
    pub fn path(
        &self,
        rng: &mut Stream,
        out: &mut [f64],
        times: &mut [f64],
    ) -> Result<Option<u64>, String> {
        debug_assert_eq!(out.len(), self.recorded.len());
        Ok(match &self.sim {
            Sim::Chain { rows, start } => {
                // The stream in a local, so its state can stay in
                // registers through the loop.
                let mut g = rng.clone();
                let x = match start {
                    Ok(i) => *i,
                    Err(alias) => alias.draw(&mut g),
                };
                let hit = rows.path(x, &self.recorded, &mut g, out);
                *rng = g;
                hit
            }
            Sim::Walk {
                p,
                x0,
                bounds,
                target,
            } => {
                // As for the chain: a local stream, record by record.
                let mut g = rng.clone();
                let (lo, hi) = bounds.unwrap_or((i64::MIN, i64::MAX));
                let mut x = *x0;
                let mut hit = target.contains(&x).then_some(0);
                let mut t = 0;
                for (slot, &until) in out.iter_mut().zip(&self.recorded) {
                    while t < until {
                        let up = g.random::<f64>() < *p;
                        x = if x == lo {
                            x + 1
                        } else if x == hi {
                            x - 1
                        } else {
                            x + if up { 1 } else { -1 }
                        };
                        t += 1;
                        if hit.is_none() && target.contains(&x) {
                            hit = Some(t);
                        }
                    }
                    *slot = x as f64;
                }
                *rng = g;
                hit
            }
            Sim::Gbm { drift, vol, s0 } => {
                // The logarithm moves by exact Gaussian increments.
                let mut log = s0.ln();
                self.continuous(rng, out, |rng| {
                    log += drift + vol * rng.sample::<f64, _>(StandardNormal);
                    log.exp()
                }, *s0);
                None
            }
            Sim::Ou { decay, mu, vol, x0 } => {
                let mut x = *x0;
                self.continuous(rng, out, |rng| {
                    x = mu + (x - mu) * decay + vol * rng.sample::<f64, _>(StandardNormal);
                    x
                }, *x0);
                None
            }
            Sim::Queue {
                arrival,
                service,
                up,
                capacity,
                x0,
                target,
            } => {
                let (mut n, mut clock) = (*x0, 0.0);
                let mut hit = target.contains(&n).then_some(0);
                let mut next = 0;
                for t in 0..=self.steps {
                    if t > 0 {
                        // The time to the next event first, then which
                        // event (stochlab's order of draws).
                        let rate = if n == 0 {
                            *arrival
                        } else if n == *capacity {
                            *service
                        } else {
                            arrival + service
                        };
                        let u: f64 = rng.random();
                        clock += -(1.0 - u).ln() / rate;
                        n = if n == 0 {
                            1
                        } else if n == *capacity {
                            n - 1
                        } else if rng.random::<f64>() < *up {
                            n + 1
                        } else {
                            n - 1
                        };
                        if hit.is_none() && target.contains(&n) {
                            hit = Some(t);
                        }
                    }
                    if self.recorded[next] == t {
                        out[next] = n as f64;
                        times[next] = clock;
                        next += 1;
                        if next == out.len() {
                            break;
                        }
                    }
                }
                hit
            }
            Sim::Poisson { per_step, target } => {
                let mut n = 0.0;
                let mut hit = target.contains(&0).then_some(0);
                let mut next = 0;
                for t in 0..=self.steps {
                    if t > 0 {
                        if let Some(d) = per_step {
                            n += d.sample(rng);
                        }
                        if hit.is_none() && target.contains(&(n as i64)) {
                            hit = Some(t);
                        }
                    }
                    if self.recorded[next] == t {
                        out[next] = n;
                        next += 1;
                        if next == out.len() {
                            break;
                        }
                    }
                }
                hit
            }
            Sim::Plugin(plugin) => {
                plugin
                    .process_path(rng, &self.recorded, out)
                    .map_err(|e| e.0)?;
                None
            }
            Sim::Python { process, target } => {
                let words = [0; 4].map(|_| rng.next_u64());
                let all = process.path(words, self.steps).map_err(|e| e.0)?;
                for (o, &t) in out.iter_mut().zip(&self.recorded) {
                    *o = all[t as usize];
                }
                if target.is_empty() {
                    None
                } else {
                    all.iter()
                        .position(|&v| target.contains(&(v as i64)))
                        .map(|t| t as u64)
                }
            }
        })
    }

    /// Steps an SDE with `step` (the next value), recording as it goes.
    fn continuous(
        &self,
        rng: &mut Stream,
        out: &mut [f64],
        mut step: impl FnMut(&mut Stream) -> f64,
        x0: f64,
    ) {
        let mut x = x0;
        let mut next = 0;
        for t in 0..=self.steps {
            if t > 0 {
                x = step(rng);
            }
            if self.recorded[next] == t {
                out[next] = x;
                next += 1;
                if next == out.len() {
                    break;
                }
            }
        }
    }
}

/// How many steps [`recorded_steps`] lists, without listing them (a spec
/// may ask for 10¹⁵).
pub fn recorded_count(steps: u64, every: u64) -> u64 {
    let every = every.max(1);
    steps / every + 1 + u64::from(!steps.is_multiple_of(every))
}

/// The recorded steps: 0, every, 2·every, … and always the last, `steps`.
pub fn recorded_steps(steps: u64, every: u64) -> Vec<u64> {
    let mut r: Vec<u64> = (0..=steps).step_by(every.max(1) as usize).collect();
    if r.last() != Some(&steps) {
        r.push(steps);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::StreamKey;

    #[test]
    fn recorded_count_is_the_length_of_recorded_steps() {
        for (steps, every) in [(0, 1), (10, 1), (10, 3), (9, 3), (7, 10), (1, 1)] {
            assert_eq!(
                recorded_count(steps, every) as usize,
                recorded_steps(steps, every).len(),
                "{steps} {every}"
            );
        }
    }

    #[test]
    fn the_alias_table_draws_each_state_with_its_probability() {
        let w = [0.5, 0.0, 0.2, 0.3];
        let alias = Alias::new(&w);
        let mut rng = StreamKey::of_seed(3).stream(0);
        let n = 200_000;
        let mut counts = [0u64; 4];
        for _ in 0..n {
            counts[alias.draw(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0, "a state of probability 0 is never drawn");
        for (c, p) in counts.iter().zip(w) {
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((*c as f64 / n as f64 - p).abs() <= 5.0 * se + 1e-12, "{counts:?}");
        }
    }

    #[test]
    fn recorded_steps_end_at_the_last_step() {
        assert_eq!(recorded_steps(10, 4), vec![0, 4, 8, 10]);
        assert_eq!(recorded_steps(8, 4), vec![0, 4, 8]);
        assert_eq!(recorded_steps(3, 1), vec![0, 1, 2, 3]);
        assert_eq!(recorded_steps(0, 5), vec![0]);
    }

    #[test]
    fn a_reflecting_walk_stays_within_its_bounds_and_leaves_them_at_once() {
        let p = Process::RandomWalk {
            p: 0.9,
            x0: 0,
            bounds: Some((0, 3)),
        };
        let sim = Simulator::new(&p, "w", 200, recorded_steps(200, 1), &[3]).unwrap();
        let mut out = vec![0.0; 201];
        let hit = sim
            .path(&mut StreamKey::of_seed(1).stream(7), &mut out, &mut [])
            .unwrap();
        assert!(out.iter().all(|v| (0.0..=3.0).contains(v)));
        for w in out.windows(2) {
            assert_eq!((w[1] - w[0]).abs(), 1.0);
            if w[0] == 3.0 {
                assert_eq!(w[1], 2.0);
            }
        }
        let first = out.iter().position(|&v| v == 3.0).map(|t| t as u64);
        assert_eq!(hit, first);
    }
}
