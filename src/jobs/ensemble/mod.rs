//! `kind = "ensemble"`: affine-invariant ensemble MCMC per state (emcee's
//! algorithm). One task is one state of one replicate; when there are fewer
//! tasks than ranks, a group of ranks shares one ensemble's walkers through
//! a [`Collective`].
//!
//! Output: per state, emcee's HDFBackend layout at `/states/<state>`
//! (`replicates = 1`) or, with replicates, the same datasets with a
//! replicate axis at `/replicates/<state>` (chain: rows × replicates ×
//! walkers × ndim); and one `/summary` table with a row per state,
//! replicate and parameter, computed on the rank that ran the task.

pub mod moves;
pub mod sampler;
pub mod spec;

use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

pub(crate) use spec::resolve;
pub use spec::Spec;

use self::sampler::{split_range, Ensemble, EnsembleSettings, HalfView, SampleError, WalkerShare};
use crate::diag::{ChainAccumulator, ChainSummary};
use crate::jobs::{
    Collective, EmceeGroup, EmitClock, Job, JobError, Outcome, Plan, PlanRun, TaskContext,
    TaskError, TaskId, Vote,
};
use crate::model::Posterior;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};
use crate::seed::TaskKey;
use crate::spec::RunSpec;

/// The most chain values (rows × walkers × parameters) a task holds for its
/// summary: 2^22 doubles, 32 MiB. Longer chains are strided for τ only.
pub const SUMMARY_MAX_VALUES: usize = 1 << 22;

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(EnsembleJob::new(spec))
}

/// Dataset indices of one state's ensemble.
#[derive(Debug, Clone, Copy)]
struct StateSets {
    chain: usize,
    log_prob: usize,
    accepted: usize,
}

/// Dataset indices of the `/summary` table.
#[derive(Debug, Clone, Copy)]
struct SummarySets {
    state: usize,
    replicate: usize,
    param: usize,
    first_value: usize,
}

/// The float columns of `/summary`, in order.
const SUMMARY_COLUMNS: [&str; 6] = ["mean", "sd", "mcse", "autocorr_time", "ess", "acceptance"];

pub struct EnsembleJob {
    spec: Arc<RunSpec>,
    layout: Layout,
    sets: Vec<StateSets>,
    summary: SummarySets,
    /// Per state: the first `/summary` row of its replicate 0.
    summary_base: Vec<u64>,
}

impl EnsembleJob {
    pub fn new(spec: Arc<RunSpec>) -> Self {
        let mut layout = Layout::default();
        let reps = spec.replicates;
        let mut sets = Vec::new();
        for (st, e) in spec.states.iter().zip(settings(&spec)) {
            let (w, d) = (e.walkers, st.dim());
            let chunk = rows_per_block(w, d, e.stored_rows());
            let group = if reps == 1 {
                format!("states/{}", st.name)
            } else {
                format!("replicates/{}", st.name)
            };
            let extra = if reps == 1 {
                Vec::new()
            } else {
                vec![("replicates".into(), Attr::U64(reps as u64))]
            };
            EmceeGroup {
                path: &group,
                state: st,
                walkers: w,
                thin: e.thin,
                burn: e.burn,
                extra,
            }
            .declare(&mut layout);
            let (chain, log_prob, accepted) = if reps == 1 {
                (
                    DatasetDecl::growing(format!("{group}/chain"), Dtype::F64, vec![w, d]),
                    DatasetDecl::growing(format!("{group}/log_prob"), Dtype::F64, vec![w]),
                    DatasetDecl::fixed(format!("{group}/accepted"), Dtype::F64, vec![], w as u64)
                        .with_init(Column::F64(vec![0.0; w])),
                )
            } else {
                (
                    DatasetDecl::growing(format!("{group}/chain"), Dtype::F64, vec![reps, w, d])
                        .with_lanes(),
                    DatasetDecl::growing(format!("{group}/log_prob"), Dtype::F64, vec![reps, w])
                        .with_lanes(),
                    DatasetDecl::fixed(
                        format!("{group}/accepted"),
                        Dtype::F64,
                        vec![w],
                        reps as u64,
                    ),
                )
            };
            sets.push(StateSets {
                chain: layout.add(
                    chain
                        .with_chunk_rows(chunk)
                        .with_extent_attr(group.clone(), "iteration"),
                ),
                log_prob: layout.add(log_prob.with_chunk_rows(chunk)),
                accepted: layout.add(accepted),
            });
        }
        let mut summary_base = Vec::new();
        let mut rows = 0u64;
        for st in &spec.states {
            summary_base.push(rows);
            rows += (reps * st.dim()) as u64;
        }
        layout.group(
            "summary",
            vec![(
                "description".into(),
                Attr::Str(
                    "one row per state, replicate and parameter, after burn-in; \
                     autocorr_time in stored rows (emcee's estimator), ess = samples / tau"
                        .into(),
                ),
            )],
        );
        let summary = SummarySets {
            state: layout.add(DatasetDecl::fixed(
                "summary/state",
                Dtype::Str(crate::spec::NAME_MAX),
                vec![],
                rows,
            )),
            replicate: layout.add(DatasetDecl::fixed(
                "summary/replicate",
                Dtype::I64,
                vec![],
                rows,
            )),
            param: layout.add(DatasetDecl::fixed(
                "summary/param",
                Dtype::Str(crate::spec::NAME_MAX),
                vec![],
                rows,
            )),
            first_value: layout.datasets.len(),
        };
        for name in SUMMARY_COLUMNS {
            layout.add(DatasetDecl::fixed(
                format!("summary/{name}"),
                Dtype::F64,
                vec![],
                rows,
            ));
        }
        Self {
            spec,
            layout,
            sets,
            summary,
            summary_base,
        }
    }

    /// (state, replicate) of a task: indices are state-major.
    fn task_of(&self, index: u64) -> (usize, usize) {
        let reps = self.spec.replicates as u64;
        ((index / reps) as usize, (index % reps) as usize)
    }

    fn settings(&self, state: usize) -> &EnsembleSettings {
        &settings(&self.spec)[state]
    }

    /// The `/summary` rows of a task.
    fn summary_rows(&self, state: usize, replicate: usize) -> Range<u64> {
        let d = self.spec.states[state].dim() as u64;
        let first = self.summary_base[state] + replicate as u64 * d;
        first..first + d
    }
}

fn settings(spec: &RunSpec) -> &[EnsembleSettings] {
    #[allow(unreachable_patterns)] // reachable once there is a second kind
    match &spec.sampler {
        crate::jobs::SamplerSpec::Ensemble(s) => &s.states,
        _ => unreachable!("an ensemble job is built from an ensemble spec"),
    }
}

/// Rows per block: about 1 MiB of chain, so that memory stays bounded however
/// long the run, and at most the whole chain.
pub fn rows_per_block(walkers: usize, ndim: usize, stored_rows: usize) -> usize {
    ((1 << 17) / (walkers * ndim).max(1)).clamp(1, stored_rows.max(1))
}

impl Job for EnsembleJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn plan(&self, _stage: u32) -> Plan {
        let reps = self.spec.replicates as u64;
        let runs = self
            .spec
            .states
            .iter()
            .enumerate()
            .map(|(s, st)| {
                let e = self.settings(s);
                // An evaluation of a built-in model costs roughly 0.05 µs per parameter.
                let per_eval = st.cost_us as f64 + 0.05 * st.dim() as f64;
                PlanRun {
                    tasks: s as u64 * reps..(s as u64 + 1) * reps,
                    cost: (e.walkers * e.steps) as f64 * per_eval,
                }
            })
            .collect();
        Plan { runs }
    }

    fn shareable(&self, _stage: u32) -> bool {
        true
    }

    fn useful_members(&self, task: TaskId) -> usize {
        self.settings(self.task_of(task.index).0).walkers / 2
    }

    fn run(
        &self,
        task: TaskId,
        _resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        let (state, replicate) = self.task_of(task.index);
        run_ensemble(self, state, replicate, cx)?;
        Ok(Outcome::Done)
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let spec = &self.spec;
        writeln!(
            out,
            "kind      ensemble (affine-invariant ensemble MCMC, emcee's algorithm)"
        )?;
        writeln!(out, "states")?;
        let width = spec
            .states
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(5);
        writeln!(
            out,
            "  {:<width$} {:>4} {:>7} {:>7} {:>6} {:>4} {:>8}  moves / init / model",
            "name", "dim", "walkers", "steps", "burn", "thin", "cost_us"
        )?;
        let mut bytes = 0.0;
        for (st, e) in spec.states.iter().zip(settings(spec)) {
            let moves: Vec<String> = e
                .moves
                .iter()
                .map(|m| format!("{}×{}", m.weight, m.kind.label()))
                .collect();
            let init = match &e.init {
                crate::spec::Init::Prior => "prior",
                crate::spec::Init::Ball { .. } => "ball",
            };
            writeln!(
                out,
                "  {:<width$} {:>4} {:>7} {:>7} {:>6} {:>4} {:>8}  {} / {init} / {}",
                st.name,
                st.dim(),
                e.walkers,
                e.steps,
                e.burn,
                e.thin,
                st.cost_us,
                moves.join(" + "),
                st.model.kind_name(),
            )?;
            bytes += (e.stored_rows() * e.walkers * (st.dim() + 1) * 8) as f64;
        }
        writeln!(
            out,
            "size      about {} (chains and log-probabilities)",
            crate::report::human_bytes(bytes * spec.replicates as f64)
        )
    }

    fn work(&self) -> (u64, &'static str) {
        let per_replicate: u64 = settings(&self.spec)
            .iter()
            .map(|e| (e.walkers * e.steps) as u64)
            .sum();
        (per_replicate * self.spec.replicates as u64, "walker-steps")
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        const MAX_TABLES: usize = 16;
        let reps = self.spec.replicates;
        let tasks = self.spec.states.len() * reps;
        for t in 0..tasks.min(MAX_TABLES) {
            let (s, r) = self.task_of(t as u64);
            let (st, e) = (&self.spec.states[s], self.settings(s));
            let rows = self.summary_rows(s, r);
            let col = |store: &mut dyn Store, k: usize| {
                store.read_f64(self.summary.first_value + k, rows.clone(), None)
            };
            let (mean, sd, tau, ess, acc) = (
                col(store, 0)?,
                col(store, 1)?,
                col(store, 3)?,
                col(store, 4)?,
                col(store, 5)?,
            );
            let title = if reps > 1 {
                format!("{} (replicate {r})", st.name)
            } else {
                st.name.clone()
            };
            let tau_mean = tau.iter().sum::<f64>() / tau.len().max(1) as f64;
            writeln!(
                out,
                "state {title}: {} walkers × {} steps, acceptance {:.3}, mean τ {:.1}",
                e.walkers,
                e.steps,
                acc.first().copied().unwrap_or(f64::NAN),
                tau_mean
            )?;
            let width = st.params.iter().map(String::len).max().unwrap_or(5).max(5);
            writeln!(
                out,
                "  {:<width$} {:>12} {:>12} {:>8} {:>10}",
                "param", "mean", "sd", "tau", "ess"
            )?;
            for (k, name) in st.params.iter().enumerate() {
                writeln!(
                    out,
                    "  {name:<width$} {:>12.5} {:>12.5} {:>8.1} {:>10.0}",
                    mean[k], sd[k], tau[k], ess[k]
                )?;
            }
        }
        if tasks > MAX_TABLES {
            writeln!(
                out,
                "… and {} more ensembles: see /summary in the output",
                tasks - MAX_TABLES
            )?;
        }
        Ok(())
    }
}

/// The walkers of an ensemble shared among the ranks of a collective: each
/// updates its part of a half, then the half is gathered everywhere.
struct CollectiveShare<'c, 'a> {
    collective: &'c mut (dyn Collective + 'a),
    ndim: usize,
}

impl CollectiveShare<'_, '_> {
    fn counts(&self, half: &Range<usize>, per_walker: usize) -> Vec<usize> {
        let members = self.collective.members();
        (0..members)
            .map(|m| split_range(half.clone(), m, members).len() * per_walker)
            .collect()
    }
}

impl WalkerShare for CollectiveShare<'_, '_> {
    fn owned(&self, half: Range<usize>) -> Range<usize> {
        split_range(half, self.collective.member(), self.collective.members())
    }

    fn exchange(&mut self, failed: bool, v: HalfView<'_>) -> Result<(), SampleError> {
        let vote = if failed { Vote::Failed } else { Vote::Continue };
        match self.collective.agree(vote) {
            Vote::Failed => {
                return Err(SampleError::Stopped(
                    "a rank sharing this ensemble failed".into(),
                ))
            }
            Vote::Stop => return Err(SampleError::Stopped("stopped by rank 0".into())),
            Vote::Continue => {}
        }
        let d = self.ndim;
        let mine = self.owned(v.walkers.clone());
        let rel = (mine.start - v.walkers.start)..(mine.end - v.walkers.start);
        let send = v.positions[rel.start * d..rel.end * d].to_vec();
        let counts = self.counts(&v.walkers, d);
        self.collective.gather_f64(&send, v.positions, &counts);
        let counts = self.counts(&v.walkers, 1);
        let send = v.log_prob[rel.clone()].to_vec();
        self.collective.gather_f64(&send, v.log_prob, &counts);
        let send = v.accepted[rel].to_vec();
        self.collective.gather_u64(&send, v.accepted, &counts);
        Ok(())
    }
}

/// Runs one ensemble to the end, emitting its chain block by block and
/// its summary rows at the end.
fn run_ensemble(
    job: &EnsembleJob,
    state: usize,
    replicate: usize,
    cx: &mut TaskContext<'_>,
) -> Result<(), TaskError> {
    let spec = &job.spec;
    let st = &spec.states[state];
    let settings = job.settings(state);
    let sets = job.sets[state];
    let fail = |message: String| {
        TaskError::Failed(format!(
            "ensemble: state `{}` (replicate {replicate}, seed {}): {message}",
            st.name, spec.seed
        ))
    };
    let sample_err = |cause: SampleError| match cause {
        SampleError::Stopped(_) => TaskError::Cancelled,
        cause => fail(cause.to_string()),
    };
    let mut posterior = Posterior::from_state(st).map_err(|e| fail(e.to_string()))?;
    if let Some(after) = injected_fault(&st.name) {
        posterior = posterior.fail_after(after);
    }
    if cx.cancelled() {
        return Err(TaskError::Cancelled);
    }
    let key = TaskKey {
        seed: spec.seed,
        state: state as u64,
        replicate: replicate as u64,
    };
    let leads = cx.leads();
    let lane = (spec.replicates > 1).then_some(replicate as u64);
    let ndim = st.dim();
    let mut ensemble = with_share(cx, ndim, |share| {
        Ensemble::start_shared(&posterior, settings, key, share)
    })
    .map_err(sample_err)?;
    let (n, d) = (ensemble.walkers(), ensemble.ndim());
    let burn_rows = settings.burn_rows();
    let stored_rows = settings.stored_rows();
    let per_block = rows_per_block(n, d, stored_rows);
    let mut block = Block::new(per_block, n, d);
    let mut summary = leads
        .then(|| ChainAccumulator::with_limit(n, d, stored_rows - burn_rows, SUMMARY_MAX_VALUES));
    // Per walker: acceptances at the stored iterations (emcee's convention:
    // its `sample(thin_by=…)` saves the acceptance of the last step of each
    // stored row, so that accepted / iteration is an acceptance fraction),
    // and the walker's count before the iteration being stored.
    let mut stored_accepted = vec![0u64; n];
    let mut accepted_before = vec![0u64; n];
    let mut first_row = 0u64;
    let mut clock = EmitClock::default();
    for it in 1..=settings.steps {
        if cx.cancelled() {
            return Err(TaskError::Cancelled);
        }
        let stored = leads && it % settings.thin == 0;
        if stored {
            for (b, a) in accepted_before.iter_mut().zip(ensemble.accepted()) {
                *b = a;
            }
        }
        with_share(cx, ndim, |share| {
            ensemble.step_shared(&posterior, settings, share)
        })
        .map_err(sample_err)?;
        if leads {
            cx.add_progress(n as u64);
        }
        if !stored {
            continue;
        }
        for ((s, b), a) in stored_accepted
            .iter_mut()
            .zip(&accepted_before)
            .zip(ensemble.accepted())
        {
            *s += a - b;
        }
        block.chain.extend_from_slice(ensemble.positions());
        block.log_prob.extend_from_slice(ensemble.log_prob());
        block.rows += 1;
        if block.rows == per_block || it + settings.thin > settings.steps || clock.due() {
            let rows = block.rows as u64;
            let b = std::mem::replace(&mut block, Block::new(per_block, n, d));
            if let Some(acc) = summary.as_mut() {
                // Rows of this block past the burn-in, for the summary.
                let skip = burn_rows.saturating_sub(first_row as usize).min(b.rows);
                acc.push(&b.chain[skip * n * d..]);
            }
            cx.emit_all(vec![
                Record {
                    dataset: sets.chain,
                    first_row,
                    rows,
                    lane,
                    values: Column::F64(b.chain),
                },
                Record {
                    dataset: sets.log_prob,
                    first_row,
                    rows,
                    lane,
                    values: Column::F64(b.log_prob),
                },
                accepted_record(sets.accepted, replicate, lane, &stored_accepted),
            ])?;
            first_row += rows;
        }
    }
    let mut counts = [ensemble.evaluations(), ensemble.nan_count()];
    if let Some(c) = cx.collective() {
        c.sum_u64(&mut counts);
    }
    cx.evaluations = counts[0];
    cx.nan_evaluations = counts[1];
    if let Some(acc) = summary {
        let acceptance = ensemble.accepted().sum::<u64>() as f64 / (n * settings.steps) as f64;
        emit_summary(job, state, replicate, acc.finish(), acceptance, cx)?;
    }
    Ok(())
}

/// Calls `f` with the task's walker share: its collective, or none.
fn with_share<R>(
    cx: &mut TaskContext<'_>,
    ndim: usize,
    f: impl FnOnce(&mut dyn WalkerShare) -> R,
) -> R {
    match cx.collective() {
        Some(collective) => f(&mut CollectiveShare { collective, ndim }),
        None => f(&mut sampler::Whole),
    }
}

/// `accepted` of a replicate (a row of (replicates, walkers)) or of the one
/// ensemble (walkers rows of a 1-D dataset).
fn accepted_record(dataset: usize, replicate: usize, lane: Option<u64>, acc: &[u64]) -> Record {
    let values = Column::F64(acc.iter().map(|&a| a as f64).collect());
    match lane {
        Some(_) => Record {
            dataset,
            first_row: replicate as u64,
            rows: 1,
            lane: None,
            values,
        },
        None => Record {
            dataset,
            first_row: 0,
            rows: acc.len() as u64,
            lane: None,
            values,
        },
    }
}

fn emit_summary(
    job: &EnsembleJob,
    state: usize,
    replicate: usize,
    params: Vec<ChainSummary>,
    acceptance: f64,
    cx: &mut TaskContext<'_>,
) -> Result<(), TaskError> {
    let st = &job.spec.states[state];
    let rows = job.summary_rows(state, replicate);
    let d = st.dim();
    let record = |dataset: usize, values: Column| Record {
        dataset,
        first_row: rows.start,
        rows: d as u64,
        lane: None,
        values,
    };
    let s = job.summary;
    let mut records = vec![
        record(s.state, Column::Str(vec![st.name.clone(); d])),
        record(s.replicate, Column::I64(vec![replicate as i64; d])),
        record(s.param, Column::Str(st.params.clone())),
    ];
    let col = |f: &dyn Fn(&ChainSummary) -> f64| Column::F64(params.iter().map(f).collect());
    let columns = [
        col(&|p| p.mean),
        col(&|p| p.sd),
        col(&ChainSummary::mcse),
        col(&|p| p.tau),
        col(&ChainSummary::ess),
        Column::F64(vec![acceptance; d]),
    ];
    for (k, values) in columns.into_iter().enumerate() {
        records.push(record(s.first_value + k, values));
    }
    cx.emit_all(records)
}

/// Stored rows of an ensemble not yet emitted.
struct Block {
    rows: usize,
    /// rows × walkers × ndim, row-major.
    chain: Vec<f64>,
    /// rows × walkers.
    log_prob: Vec<f64>,
}

impl Block {
    fn new(rows: usize, n: usize, d: usize) -> Self {
        Self {
            rows: 0,
            chain: Vec::with_capacity(rows * n * d),
            log_prob: Vec::with_capacity(rows * n),
        }
    }
}

/// `SAMPO_INJECT_FAULT=<state>:<n>` makes evaluations of that state fail
/// after n of them, in every replicate: a test hook for failure handling,
/// read per task so that it acts on whichever rank runs the state.
pub(crate) fn injected_fault(state: &str) -> Option<u64> {
    let value = std::env::var("SAMPO_INJECT_FAULT").ok()?;
    let (name, after) = value.rsplit_once(':')?;
    (name == state).then(|| after.parse().ok()).flatten()
}
