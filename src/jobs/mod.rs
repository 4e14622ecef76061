//! Kinds of work and the seam they plug into.
//!
//! A kind is a module under `src/jobs/` (its `[sampler]` keys, algorithm,
//! datasets and summary) that implements [`Job`], plus one line in the
//! registry at the bottom of this file. Executors, the wire format and the
//! store know tasks, records and datasets — never a kind's internals.

pub(crate) mod chunks;
mod run_spec;
#[cfg(test)]
mod spec_tests;
pub mod starter;
pub mod summary;
mod table;
mod task_label;
#[cfg(test)]
pub(crate) mod testing;

pub use run_spec::RunSpec;

pub(crate) use chunks::Chunks;
pub(crate) use table::{describe_states, StateLine, SummaryTable};
pub(crate) use task_label::TaskLabel;

use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::model::{PluginSpec, PosteriorSpec, Prior};
use crate::output::{Layout, Record, Store, StoreError};
use crate::seed::StreamKey;
use crate::spec::{
    fields_of, RawPosterior, Resolver, RunSettings, SpecError, StateEntry, StateSpec, Table,
};

/// A task's identity: its stage and its index within the stage. It fixes
/// the task's random streams and the order in which results are reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId {
    pub stage: u32,
    pub index: u64,
}

/// The tasks of a stage: runs of consecutive indices with the same
/// expected cost. Held as runs, never as one entry per task, so that 10⁸
/// replicates cost nothing to plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub runs: Vec<PlanRun>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRun {
    pub tasks: Range<u64>,
    /// Expected cost of each task of the run (relative units).
    pub cost: f64,
}

impl Plan {
    pub fn tasks(&self) -> u64 {
        self.runs.iter().map(|r| r.tasks.end - r.tasks.start).sum()
    }
}

/// How a task ended: done, or paused at a step boundary with its whole
/// state as plain data, to be resumed by `Job::run` (for rounds,
/// checkpoints and resume alike).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// Done, with the task's last state: a run whose spec asks for more
    /// steps goes on from it ([`Job::extend`]).
    Final(Vec<u8>),
    /// Paused at the end of a round: rank 0 decides (`Job::round`) whether
    /// it goes on.
    Paused(Vec<u8>),
    /// Paused because the executor asked ([`TaskContext::pause_requested`]:
    /// a checkpoint, a signal, the wall time). It goes on from the snapshot
    /// with no decision, now or in a resumed run. Every row up to the
    /// snapshot must have been emitted.
    Yielded(Vec<u8>),
}

/// Rank 0's decision after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run every paused task of the stage again, from its snapshot.
    Continue,
    /// The stage is over.
    Finish,
}

/// Where a task stands in a run whose spec asks for more steps than the
/// run it goes on from ([`Job::extend`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Extension {
    /// It goes on from this snapshot.
    Ready(Vec<u8>),
    /// It paused at the end of a round of the longer run: rank 0 decides
    /// (`Job::round`) before it goes on.
    Waiting(Vec<u8>),
    /// The longer run would have ended it here too.
    Done,
}

/// Why a task did not finish.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TaskError {
    /// A model evaluation failed (the model, or its prior, at some
    /// parameters); the message names kind, state, task, item and
    /// parameters, and the seed, so that the failure can be reproduced.
    #[error("{0}")]
    Evaluation(String),
    /// The task failed otherwise; the message says where, as above.
    #[error("{0}")]
    Failed(String),
    /// The executor asked the task to stop (another task failed).
    #[error("cancelled")]
    Cancelled,
}

/// An error of a job's own bookkeeping on rank 0 (rounds, summaries).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A member's vote in [`Collective::agree`]; the worst vote wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vote {
    Continue = 0,
    /// Go on to the end of the step, then pause (a checkpoint): the
    /// collective remembers it ([`Collective::paused`]).
    Pause = 1,
    /// Stop without error (the job is being stopped).
    Stop = 2,
    /// This member failed.
    Failed = 3,
}

/// The ranks that share one task (a shared ensemble, an SMC population).
/// Members fill the rows they own; `gather` makes every member hold all
/// rows bit-exactly (floats are moved, never reduced).
pub trait Collective {
    fn member(&self) -> usize;
    fn members(&self) -> usize;
    /// `mine` is this member's part; `all` receives every member's part in
    /// member order, `counts[m]` values from member m.
    fn gather_f64(&mut self, mine: &[f64], all: &mut [f64], counts: &[usize]);
    fn gather_u64(&mut self, mine: &[u64], all: &mut [u64], counts: &[usize]);
    /// Every member votes; all get the worst vote. The leader's vote also
    /// carries a stop asked for by rank 0.
    fn agree(&mut self, vote: Vote) -> Vote;
    /// Sums counters over the members (counts, never floats).
    fn sum_u64(&mut self, values: &mut [u64]);
    /// True once a vote has come out [`Vote::Pause`]: every member learns
    /// it at the same vote, so all pause at the same step.
    fn paused(&self) -> bool;
}

/// How long a task may hold rows before handing them on, so that the rows
/// of a slow model reach the file within seconds (the store flushes them).
pub const EMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Tells a task when rows it holds are due: every [`EMIT_EVERY`].
#[derive(Debug)]
pub struct EmitClock(std::time::Instant);

impl Default for EmitClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl EmitClock {
    /// True (and the clock restarts) once [`EMIT_EVERY`] has passed.
    pub fn due(&mut self) -> bool {
        if self.0.elapsed() >= EMIT_EVERY {
            self.0 = std::time::Instant::now();
            true
        } else {
            false
        }
    }
}

/// What a running task is connected to.
pub struct TaskContext<'a> {
    /// Hands records on as one message (see [`TaskContext::emit_all`]).
    emit: &'a mut dyn FnMut(Vec<Record>) -> Result<(), TaskError>,
    /// False on the members of a collective that do not lead it: their
    /// records would repeat the leader's and are dropped.
    leader: bool,
    progress: &'a AtomicU64,
    cancel: &'a AtomicBool,
    /// Set when the executor wants every task to pause (a checkpoint).
    pause: Option<&'a AtomicBool>,
    collective: Option<&'a mut dyn Collective>,
    /// Evaluations made by this process for the task (for /timings).
    pub evaluations: u64,
    /// Evaluations that returned NaN.
    pub nan_evaluations: u64,
    /// Tests: asks of [`Self::pause_requested`] left before it says yes
    /// ([`Self::pause_at_ask`]).
    #[cfg(test)]
    asks_left: Option<AtomicU64>,
}

impl<'a> TaskContext<'a> {
    pub fn new(
        emit: &'a mut dyn FnMut(Vec<Record>) -> Result<(), TaskError>,
        progress: &'a AtomicU64,
        cancel: &'a AtomicBool,
    ) -> Self {
        Self {
            emit,
            leader: true,
            progress,
            cancel,
            pause: None,
            collective: None,
            evaluations: 0,
            nan_evaluations: 0,
            #[cfg(test)]
            asks_left: None,
        }
    }

    /// Tests: [`Self::pause_requested`] says yes from its `n`-th ask on, so
    /// that a task pauses at a step boundary a test chooses (the executor's
    /// flag is set at moments no test can choose).
    #[cfg(test)]
    pub(crate) fn pause_at_ask(mut self, n: u64) -> Self {
        self.asks_left = Some(AtomicU64::new(n));
        self
    }

    /// Lets the executor ask the task to pause (see [`Self::pause_requested`]).
    pub fn pausable(mut self, pause: &'a AtomicBool) -> Self {
        self.pause = Some(pause);
        self
    }

    /// The same, for a member of a collective.
    pub fn shared(mut self, collective: &'a mut dyn Collective) -> Self {
        self.leader = collective.member() == 0;
        self.collective = Some(collective);
        self
    }

    /// Hands a record to the store (through rank 0).
    pub fn emit(&mut self, record: Record) -> Result<(), TaskError> {
        self.emit_all(vec![record])
    }

    /// Hands several records to the store as one message. A task should
    /// emit what it has at one moment (a block's chain, log_prob and
    /// accepted; a summary's columns) together: each message may wake the
    /// thread that writes or forwards them, and with tiny tasks those
    /// wake-ups, not the sampling, were what a task cost.
    pub fn emit_all(&mut self, records: Vec<Record>) -> Result<(), TaskError> {
        if self.leader && !records.is_empty() {
            (self.emit)(records)
        } else {
            Ok(())
        }
    }

    /// True when records of this process reach the store.
    pub fn leads(&self) -> bool {
        self.leader
    }

    /// True once the executor wants the task to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// True when the executor wants the task to pause: a task that can
    /// asks at each step boundary and, if so, emits its rows and returns
    /// [`Outcome::Yielded`] with its snapshot. The members of a shared task
    /// all get the same answer at the same step.
    pub fn pause_requested(&self) -> bool {
        #[cfg(test)]
        if let Some(left) = &self.asks_left {
            let before = left.fetch_sub(1, Ordering::Relaxed);
            if before <= 1 {
                left.store(0, Ordering::Relaxed);
                return true;
            }
        }
        match &self.collective {
            Some(c) => c.paused(),
            None => self.pause.is_some_and(|p| p.load(Ordering::Relaxed)),
        }
    }

    /// Counts units of work done, for progress.
    pub fn add_progress(&self, units: u64) {
        self.progress.fetch_add(units, Ordering::Relaxed);
    }

    /// The ranks sharing this task, if it is shared.
    pub fn collective(&mut self) -> Option<&mut (dyn Collective + 'a)> {
        self.collective.as_deref_mut()
    }
}

/// A kind of work, resolved for one run. Rank 0 and every other rank hold
/// the same job, built from the same resolved spec.
/// What `check`'s size estimate needs beyond the layout: upper bounds
/// where the job knows them.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeHints {
    /// Rows of `/timings`: task runs over every stage and round.
    pub task_runs: u64,
    /// Bytes of the tasks' final states the output keeps
    /// (`/checkpoint/finals`).
    pub final_states: u64,
    /// Rows a growing dataset without a known length reaches (by path).
    pub growing_rows: Vec<(String, u64)>,
    /// What the estimate assumes when it is no upper bound (the run
    /// decides its length), e.g. "20 temperatures".
    pub assumes: Option<String>,
}

pub trait Job: Send + Sync {
    /// The groups and datasets of the output, declared before any work.
    fn layout(&self) -> &Layout;
    /// Stages of the run; stage s + 1 starts from stage s's carry.
    fn stages(&self) -> u32 {
        1
    }
    /// The tasks of a stage.
    fn plan(&self, stage: u32) -> Plan;
    /// What the size estimate needs beyond the layout (by default: one
    /// run of each task of the first stage per stage, and no final state
    /// kept but a few bytes of bookkeeping: kinds that keep one say so).
    fn size_hints(&self) -> SizeHints {
        let tasks = self.plan(0).tasks();
        SizeHints {
            task_runs: tasks * u64::from(self.stages()),
            final_states: tasks.saturating_mul(16),
            growing_rows: Vec::new(),
            assumes: None,
        }
    }
    /// Whether the tasks of a stage may be shared by a group of ranks (a
    /// [`Collective`]) when there are fewer tasks than ranks.
    fn shareable(&self, _stage: u32) -> bool {
        false
    }
    /// The most ranks a shared task can keep busy (an ensemble: one walker
    /// per rank and half); more are reported idle.
    fn useful_members(&self, _task: TaskId) -> usize {
        usize::MAX
    }
    /// Runs a task from its start, or from the snapshot it paused with.
    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError>;
    /// Rank 0, once every task of a round has paused (in task order):
    /// continue the stage, or finish it. Reads what it needs from the store.
    fn round(&self, _stage: u32, _store: &mut dyn Store) -> Result<Decision, JobError> {
        Ok(Decision::Finish)
    }
    /// Rank 0, after a stage: writes its summaries, returns the carry.
    fn finish_stage(&self, _stage: u32, _store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        Ok(Vec::new())
    }
    /// Every rank, before stage `stage` > 0, with the previous stage's carry.
    fn begin_stage(&self, _stage: u32, _carry: &[u8]) -> Result<(), JobError> {
        Ok(())
    }
    /// Whether this job (built from the new spec) can go on from a run of
    /// `old` that differs from it only in its `[sampler]` table: only counts
    /// of steps (emcee's `run_mcmc(None, n)`) or of paths may rise. The
    /// error says why not.
    fn extends(&self, _old: &RunSpec) -> Result<(), String> {
        Err("this kind of run cannot be extended".into())
    }
    /// Rank 0, resuming a run of a spec `extends` accepted: where the task
    /// of `snapshot` (a final state, or one it paused or yielded with) stands
    /// in the longer run. The result must be what the longer run, started
    /// afresh, would hold at that point. The job may read the rows written
    /// so far but writes nothing: the extension's one change to the file is
    /// the checkpoint that records the result (rows the longer run changes,
    /// such as a summary, are written when the task runs from it).
    fn extend(
        &self,
        _task: TaskId,
        _snapshot: &[u8],
        _store: &mut dyn Store,
    ) -> Result<Extension, JobError> {
        Err(JobError::Other(
            "this kind of run cannot be extended".into(),
        ))
    }
    /// The plan as `sampo check` shows it: a table of the states and the
    /// kind's settings, and the expected size of the output.
    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()>;
    /// Units of work of the whole run and their name, for progress.
    fn work(&self) -> (u64, &'static str);
    /// Rank 0, at the end: the closing report (tables) and warnings.
    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError>;
    /// `sampo summary`: the tables of a file this job wrote — finished,
    /// left by a failed run, or still being written — from what it holds.
    /// A kind with nothing to summarise keeps the default: no tables.
    fn summary(
        &self,
        _file: &dyn crate::output::Reader,
        _options: &summary::SummaryOptions,
    ) -> Result<Vec<crate::table::Table>, summary::SummaryError> {
        Ok(Vec::new())
    }
}

/// A state's count of steps in a run that goes on from one of `old` steps:
/// the same or more.
pub(crate) fn check_extension(state: &str, old: usize, new: usize) -> Result<(), String> {
    if new < old {
        return Err(format!(
            "state `{state}`: steps {old} → {new}: a run can be extended, not shortened"
        ));
    }
    Ok(())
}

/// Declares the group of one state's chain in emcee's HDFBackend layout
/// (`nwalkers`, `ndim`, `iteration`, `has_blobs`, `version`), with the
/// state's name, parameter names (an attribute and a fixed-length dataset),
/// thin and burn, plus the kind's own `extra` attributes.
pub(crate) struct EmceeGroup<'a> {
    pub path: &'a str,
    pub state: &'a StateSpec,
    /// The kind that wrote the group (attribute `kind`).
    pub kind: &'a str,
    /// Walkers, or chains (axis 1 of `chain`).
    pub walkers: usize,
    /// Whether axis 1 holds independent chains (attribute
    /// `independent_chains`): false for an ensemble's walkers, whose R-hat
    /// and ESS are only indicative.
    pub independent: bool,
    pub thin: usize,
    pub burn: usize,
    pub extra: Vec<(String, crate::output::Attr)>,
}

impl EmceeGroup<'_> {
    pub fn declare(self, layout: &mut Layout) {
        use crate::output::{Attr, Column, DatasetDecl, Dtype};
        let st = self.state;
        let mut attrs = vec![
            // emcee's HDFBackend reads these five.
            ("nwalkers".into(), Attr::I64(self.walkers as i64)),
            ("ndim".into(), Attr::I64(st.dim() as i64)),
            ("iteration".into(), Attr::I64(0)),
            ("has_blobs".into(), Attr::Bool(false)),
            ("version".into(), Attr::Str(crate::output::VERSION.into())),
            ("state".into(), Attr::Str(st.name.clone())),
            ("kind".into(), Attr::Str(self.kind.into())),
            ("independent_chains".into(), Attr::Bool(self.independent)),
            ("params".into(), Attr::Strs(st.params.clone())),
            ("thin".into(), Attr::U64(self.thin as u64)),
            ("burn".into(), Attr::U64(self.burn as u64)),
            (
                "burn_rows".into(),
                Attr::U64((self.burn / self.thin) as u64),
            ),
        ];
        attrs.extend(self.extra);
        layout.group(self.path, attrs);
        layout.add(
            DatasetDecl::fixed(
                format!("{}/param_names", self.path),
                Dtype::Str(crate::spec::NAME_MAX),
                vec![],
                st.dim() as u64,
            )
            .with_init(Column::Str(st.params.clone())),
        );
    }
}

/// What a kind's spec resolver is given: the shared resolver (for located
/// errors and the shared helpers), its `[sampler]` table and its states'
/// own keys, still to deserialise into its own types, and `[run]`.
pub struct SamplerContext<'a> {
    pub resolver: &'a Resolver<'a>,
    pub kind: Kind,
    /// `[sampler]` without its `kind`.
    sampler: Option<Table<'a>>,
    pub states: &'a [StateEntry<'a>],
    pub run: &'a RunSettings,
}

impl SamplerContext<'_> {
    /// The kind's `[sampler]` keys as its type `T` (`deny_unknown_fields`);
    /// all defaults when there is no `[sampler]`. A key of another kind is
    /// named as such.
    pub fn sampler<T: DeserializeOwned + Default>(&self) -> Result<Spanned<T>, SpecError> {
        match &self.sampler {
            None => Ok(Spanned::new(0..0, T::default())),
            Some(t) => t
                .clone()
                .into::<T>(self.resolver.source, &|key| owner_of(key, self.kind, false)),
        }
    }

    /// The kind's keys of state `i` (all but `name` and `params`) as its
    /// type `T`.
    pub fn state<T: DeserializeOwned>(&self, i: usize) -> Result<Spanned<T>, SpecError> {
        self.own_state_keys(self.states[i].keys.clone())
    }

    fn own_state_keys<T: DeserializeOwned>(
        &self,
        keys: Table<'_>,
    ) -> Result<Spanned<T>, SpecError> {
        keys.into::<T>(self.resolver.source, &|key| owner_of(key, self.kind, true))
    }

    /// State `i` of a kind that samples a posterior: its posterior keys
    /// (`model`, `prior`, `cost_us`, shared by these kinds) resolved, its
    /// own keys as `T`, and its shared part (`params` checked against the
    /// prior's dimension).
    pub fn posterior_state<T: DeserializeOwned>(
        &self,
        i: usize,
    ) -> Result<PosteriorState<T>, SpecError> {
        let entry = &self.states[i];
        let mut keys = entry.keys.clone();
        let shared = keys.split(fields_of::<RawPosterior>());
        let raw = self.own_state_keys::<T>(keys)?.into_inner();
        let shared = shared
            .into::<RawPosterior>(self.resolver.source, &|_| None)?
            .into_inner();
        let (posterior, prior) = self.resolver.resolve_posterior(&entry.name, &shared)?;
        let state = self.resolver.state_spec(entry, prior.dim())?;
        Ok(PosteriorState {
            raw,
            posterior,
            prior,
            state,
            model_span: shared.model.span(),
        })
    }

    /// Refuses `[run] replicates` > 1 for a kind that has no use for it.
    pub fn refuse_replicates(&self, why: &str) -> Result<(), SpecError> {
        match &self.run.replicates_span {
            Some(span) if self.run.replicates > 1 => Err(self.resolver.err(
                span.clone(),
                format!(
                    "run.replicates is not supported by kind = \"{}\": {why}",
                    self.kind.name()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// One state of a kind that samples a posterior, resolved as far as the
/// shared parts go ([`SamplerContext::posterior_state`]).
pub struct PosteriorState<T> {
    /// The kind's own keys of the state.
    pub raw: T,
    pub posterior: PosteriorSpec,
    pub prior: Prior,
    pub state: StateSpec,
    /// Where the state's `model` is written.
    pub model_span: Range<usize>,
}

/// For a key that `kind` does not have: the other kinds that do.
fn owner_of(key: &str, kind: Kind, state: bool) -> Option<String> {
    let top = key.split('.').next().unwrap_or(key);
    let owners: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| **k != kind && k.keys(state).contains(&top))
        .map(|k| format!("kind = \"{}\"", k.name()))
        .collect();
    (!owners.is_empty() && top == key).then(|| format!("it is a key of {}", owners.join(", ")))
}

/// What a second stage's resolver is given: its table, the first stage
/// resolved, and `[run]`.
pub struct StageContext<'a> {
    pub resolver: &'a Resolver<'a>,
    pub table: Table<'a>,
    pub first: &'a SamplerSpec,
    pub states: &'a [StateSpec],
    pub run: &'a RunSettings,
}

impl StageContext<'_> {
    /// The stage's keys as its type `T` (`deny_unknown_fields`).
    pub fn keys<T: DeserializeOwned>(&self) -> Result<Spanned<T>, SpecError> {
        self.table
            .clone()
            .into::<T>(self.resolver.source, &|_| None)
    }
}

/// What a rank holds in memory at most for a stage's work: bytes (a float:
/// a spec may ask for absurd sizes) and the keys that set it, so that
/// `check` and `run` refuse what the machine cannot hold before any work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    pub bytes: f64,
    pub keys: &'static str,
}

impl Memory {
    /// 8-byte values.
    pub fn values(count: f64, keys: &'static str) -> Self {
        Self {
            bytes: 8.0 * count,
            keys,
        }
    }
}

/// What every kind's resolved `[sampler]` tells the code around it.
pub trait KindSpec {
    /// The memory a rank needs at most for the kind's work (the largest
    /// state's), from its size keys.
    fn memory(&self, states: &[StateSpec]) -> Memory;
    /// Each state's posterior, for the kinds that sample one (a second
    /// stage over the states needs them).
    fn posteriors(&self) -> Option<&[PosteriorSpec]> {
        None
    }
    /// The plugin models of the run, by state: loaded on every rank before
    /// any work, and a serialized one limits a rank to one thread.
    fn plugins(&self, states: &[StateSpec]) -> Vec<(String, PluginSpec)> {
        self.posteriors().map_or_else(Vec::new, |ps| {
            states
                .iter()
                .zip(ps)
                .filter_map(|(st, p)| p.plugin.clone().map(|pl| (st.name.clone(), pl)))
                .collect()
        })
    }
    /// The states whose model is in Python: one call at a time per
    /// process (the interpreter's lock), so one thread per rank.
    fn python_states(&self, states: &[StateSpec]) -> Vec<String> {
        self.posteriors().map_or_else(Vec::new, |ps| {
            states
                .iter()
                .zip(ps)
                .filter(|(_, p)| p.is_python())
                .map(|(st, _)| st.name.clone())
                .collect()
        })
    }
    /// Loads every plugin of the run in this process and runs its init, so
    /// that a library missing on this node, or an init failing here, stops
    /// the job before any work (under MPI, on every rank).
    fn prepare_plugins(&self, states: &[StateSpec]) -> Result<(), String> {
        let Some(posteriors) = self.posteriors() else {
            return Ok(());
        };
        crate::model::prepare_plugins(states.iter().map(|s| s.name.as_str()).zip(posteriors))
    }
}

/// The registry: one line per kind and one per second stage, `module =>
/// Variant = id`. The id keys the random streams of its tasks, so it never
/// changes and no two are the same.
///
/// A kind's module provides `Spec` (its resolved `[sampler]`, implementing
/// [`KindSpec`]), `RawSampler` and `RawState` (its `[sampler]` keys and a
/// state's own keys as written, `deny_unknown_fields`; a kind that samples
/// a posterior reads the shared posterior keys with
/// [`SamplerContext::posterior_state`]), `resolve` (from a
/// [`SamplerContext`], with located errors, to its `Spec` and the states)
/// and `job` (the [`Job`] for a resolved spec). The variant's kebab-case
/// name is `[sampler] kind`.
///
/// A second stage's module provides `Spec`, `FOLLOWS` (the first-stage
/// kinds it accepts), `resolve` (from a [`StageContext`]) and `wrap` (the
/// job of both stages, from the first stage's job). Its table is `[module]`.
macro_rules! registry {
    (
        kinds { $($module:ident => $variant:ident = $id:literal),* $(,)? }
        stages { $($smodule:ident => $svariant:ident = $sid:literal),* $(,)? }
    ) => {
        // Each kind and stage is the module of its name.
        $(pub mod $module;)*
        $(pub mod $smodule;)*

        /// `[sampler] kind`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Kind { $($variant),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The id that keys the kind's random streams.
            pub fn id(self) -> u64 {
                match self { $(Kind::$variant => $id),* }
            }

            /// As written in `[sampler] kind`.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => stringify!($module)),* }
            }

            /// The random streams of task `task` of stage `stage` of a
            /// run with `seed`: the kind's own, shared with no other.
            pub fn streams(self, seed: u64, stage: u32, task: u64) -> StreamKey {
                StreamKey { seed, kind: self.id(), stage: u64::from(stage), task }
            }

            /// A small complete spec of this kind: `[sampler]` first, one
            /// state last.
            pub fn example(self) -> &'static str {
                match self { $(Kind::$variant => $module::spec::EXAMPLE),* }
            }

            /// The keys of its `[sampler]` table, or of a state.
            pub fn keys(self, state: bool) -> &'static [&'static str] {
                match self {
                    $(Kind::$variant => if state {
                        fields_of::<$module::RawState>()
                    } else {
                        fields_of::<$module::RawSampler>()
                    }),*
                }
            }
        }

        /// The resolved `[sampler]` table of each kind.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum SamplerSpec { $($variant($module::Spec)),* }

        impl SamplerSpec {
            pub fn kind(&self) -> Kind {
                match self { $(SamplerSpec::$variant(_) => Kind::$variant),* }
            }

            pub(crate) fn spec(&self) -> &dyn KindSpec {
                match self { $(SamplerSpec::$variant(s) => s),* }
            }
        }

        fn resolve_kind(cx: &SamplerContext<'_>) -> Result<(SamplerSpec, Vec<StateSpec>), SpecError> {
            match cx.kind {
                $(Kind::$variant => $module::resolve(cx).map(|(s, st)| (SamplerSpec::$variant(s), st))),*
            }
        }

        /// The job of a resolved spec's `[sampler]`.
        fn build_kind(spec: Arc<RunSpec>) -> Box<dyn Job> {
            match &spec.sampler {
                $(SamplerSpec::$variant(_) => $module::job(spec.clone())),*
            }
        }

        /// A second stage.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Stage { $($svariant),* }

        impl Stage {
            /// The id that keys the stage's random streams (never a kind's).
            pub fn id(self) -> u64 {
                match self { $(Stage::$svariant => $sid),* }
            }

            /// As [`Kind::streams`].
            pub fn streams(self, seed: u64, stage: u32, task: u64) -> StreamKey {
                StreamKey { seed, kind: self.id(), stage: u64::from(stage), task }
            }
        }

        /// A second stage, resolved.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum StageSpec { $($svariant($smodule::Spec)),* }

        impl StageSpec {
            /// Its table's name.
            pub fn name(&self) -> &'static str {
                match self { $(StageSpec::$svariant(_) => stringify!($smodule)),* }
            }

            /// As [`KindSpec::memory`], after the first stage `first`.
            pub fn memory(&self, first: &SamplerSpec, states: &[StateSpec]) -> Memory {
                match self { $(StageSpec::$svariant(s) => $smodule::spec::memory(s, first, states)),* }
            }
        }

        /// The run spec's JSON Schema (`sampo schema`).
        pub fn spec_schema() -> serde_json::Value {
            use crate::spec::schema::{self, KindKeys, StageKeys};
            use schemars::JsonSchema;
            let mut generator = schema::generator();
            let kinds = vec![$(KindKeys {
                name: stringify!($module),
                sampler: $module::RawSampler::json_schema(&mut generator),
                state: $module::StateKeys::json_schema(&mut generator),
            }),*];
            let stages = vec![$(StageKeys {
                name: stringify!($smodule),
                table: $smodule::RawTable::json_schema(&mut generator),
                follows: $smodule::FOLLOWS.iter().map(|k| k.name()).collect(),
            }),*];
            schema::document(generator, kinds, stages)
        }

        /// The tables of the second stages.
        pub const STAGE_TABLES: &[&str] = &[$(stringify!($smodule)),*];

        fn resolve_stage(name: &str, cx: &StageContext<'_>) -> Result<StageSpec, SpecError> {
            let (follows, resolve): (&[Kind], &dyn Fn() -> Result<StageSpec, SpecError>) = match name {
                $(stringify!($smodule) => (
                    $smodule::FOLLOWS,
                    &|| $smodule::resolve(cx).map(StageSpec::$svariant),
                ),)*
                other => unreachable!("[{other}] is not a registered stage"),
            };
            let kind = cx.first.kind();
            if !follows.contains(&kind) {
                let accepted: Vec<String> =
                    follows.iter().map(|k| format!("\"{}\"", k.name())).collect();
                return Err(cx.resolver.err(
                    cx.table.span(),
                    format!(
                        "[{name}] follows a stage of kind = {}, not kind = \"{}\"",
                        accepted.join(" or "),
                        kind.name()
                    ),
                ));
            }
            resolve()
        }

        fn wrap_stage(spec: Arc<RunSpec>, first: Box<dyn Job>) -> Box<dyn Job> {
            match &spec.second_stage {
                $(Some(StageSpec::$svariant(_)) => $smodule::wrap(spec.clone(), first),)*
                None => first,
            }
        }
    };
}

/// The job of a resolved spec: its kind's, followed by its second stage
/// when it has one.
pub fn build(spec: Arc<RunSpec>) -> Box<dyn Job> {
    let job = build_kind(spec.clone());
    wrap_stage(spec, job)
}

registry! {
    kinds {
        ensemble => Ensemble = 1,
        chains => Chains = 2,
        smc => Smc = 3,
        batch => Batch = 4,
        paths => Paths = 5,
    }
    stages {
        transc => Transc = 101,
    }
}
