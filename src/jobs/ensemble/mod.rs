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

use serde::{Deserialize, Serialize};

pub use spec::Spec;
pub(crate) use spec::{resolve, RawSampler, RawState, StateKeys};

use self::sampler::{split_range, Ensemble, EnsembleSettings, HalfView, SampleError, WalkerShare};
use crate::diag::{self, ChainAccumulator};
use crate::jobs::Kind;
use crate::jobs::RunSpec;
use crate::jobs::{
    check_extension, Collective, EmceeGroup, EmitClock, Extension, Job, JobError, Outcome, Plan,
    PlanRun, TaskContext, TaskError, TaskId, TaskLabel, Vote,
};
use crate::jobs::{describe_states, StateLine, SummaryTable};
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(EnsembleJob::new(spec))
}

/// Dataset indices of one state's ensemble.
#[derive(Debug, Clone, Copy)]
struct StateSets {
    chain: usize,
    log_prob: usize,
    accepted: usize,
    /// Iterations each replicate ran (fewer than `steps` if it stopped).
    steps: usize,
}

pub struct EnsembleJob {
    spec: Arc<RunSpec>,
    layout: Layout,
    sets: Vec<StateSets>,
    summary: SummaryTable,
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
                kind: "ensemble",
                walkers: w,
                independent: false,
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
                        .with_expected_rows(e.stored_rows() as u64)
                        .with_extent_attr(group.clone(), "iteration"),
                ),
                log_prob: layout.add(
                    log_prob
                        .with_chunk_rows(chunk)
                        .with_expected_rows(e.stored_rows() as u64),
                ),
                accepted: layout.add(accepted),
                steps: layout.add(DatasetDecl::fixed(
                    format!("{group}/steps"),
                    Dtype::F64,
                    vec![],
                    reps as u64,
                )),
            });
        }
        let summary = SummaryTable::declare(
            &mut layout,
            &spec.states,
            reps,
            "one row per state, replicate and parameter, after burn-in, each walker taken \
             as a chain (walkers of an ensemble are not independent: R-hat and ESS are \
             indicative): rank-normalised split R-hat, bulk/tail ESS and MCSE as in Vehtari \
             et al. (2021); autocorr_time in stored rows (emcee's estimator); mean and sd \
             over every sample, the rest over every tau_stride-th row",
        );
        Self {
            spec,
            layout,
            sets,
            summary,
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

    fn group(&self, st: &crate::spec::StateSpec) -> String {
        if self.spec.replicates == 1 {
            format!("states/{}", st.name)
        } else {
            format!("replicates/{}", st.name)
        }
    }

    /// The rows a finished ensemble ends with: its summary (from `acc`, its
    /// rows after burn-in) and the steps it ran.
    fn final_records(
        &self,
        state: usize,
        replicate: usize,
        acc: ChainAccumulator,
        ensemble: &Ensemble,
        done: usize,
    ) -> Vec<Record> {
        let n = ensemble.walkers();
        let acceptance = ensemble.accepted().sum::<u64>() as f64 / (n * done) as f64;
        let values: Vec<Vec<f64>> = acc.finish().iter().map(|p| p.values(acceptance)).collect();
        let mut records = self
            .summary
            .records(&self.spec.states[state], state, replicate, &values);
        records.push(Record {
            dataset: self.sets[state].steps,
            first_row: replicate as u64,
            rows: 1,
            lane: None,
            values: Column::F64(vec![done as f64]),
        });
        records
    }

    /// With a stop rule: how many replicates of a state stopped before
    /// `max_steps` (converged), and the steps of each if there is one.
    fn stopped(&self, store: &mut dyn Store, state: usize) -> Result<(u64, Vec<u64>), JobError> {
        let max_steps = self
            .settings(state)
            .stop
            .as_ref()
            .map_or(usize::MAX, |r| r.max_steps);
        let reps = self.spec.replicates as u64;
        let (mut converged, mut one) = (0, Vec::new());
        let mut first = 0;
        while first < reps {
            let end = (first + (1 << 20)).min(reps);
            for v in store.read_f64(self.sets[state].steps, first..end, None)? {
                converged += u64::from((v as usize) < max_steps);
                if reps == 1 {
                    one.push(v as u64);
                }
            }
            first = end;
        }
        Ok((converged, one))
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
                let per_eval = self.spec.posterior(s).cost_us as f64 + 0.05 * st.dim() as f64;
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
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        let (state, replicate) = self.task_of(task.index);
        run_ensemble(self, state, replicate, resume, cx)
    }

    fn extends(&self, old: &RunSpec) -> Result<(), String> {
        let crate::jobs::SamplerSpec::Ensemble(old) = &old.sampler else {
            return Err("the run was not an ensemble run".into());
        };
        for ((st, o), n) in self
            .spec
            .states
            .iter()
            .zip(&old.states)
            .zip(settings(&self.spec))
        {
            check_extension(&st.name, o.steps, n.steps)?;
            // Burn-in decides only the summary, which is rebuilt.
            let mut same = o.clone();
            same.steps = n.steps;
            same.burn = n.burn;
            if let (Some(a), Some(b)) = (&mut same.stop, &n.stop) {
                a.max_steps = b.max_steps;
            }
            if same != *n {
                return Err(format!(
                    "state `{}`: only steps (stop.max_steps) and burn may change when a run \
                     is extended",
                    st.name
                ));
            }
        }
        Ok(())
    }

    fn extend(
        &self,
        task: TaskId,
        snapshot: &[u8],
        store: &mut dyn Store,
    ) -> Result<Extension, JobError> {
        let (state, replicate) = self.task_of(task.index);
        let e = self.settings(state);
        let st = &self.spec.states[state];
        let mut snap: Snapshot = postcard::from_bytes(snapshot)
            .map_err(|err| JobError::Other(format!("undecodable snapshot: {err}")))?;
        let (n, d) = (snap.ensemble.walkers(), snap.ensemble.ndim());
        let reached = snap.ensemble.iteration();
        // The summary of the longer run, fed the rows written so far, with
        // its stop checks replayed: they must agree with the steps run.
        let mut acc = ChainAccumulator::new(n, d, e.stored_rows() - e.burn_rows());
        let mut stop = e.stop.as_ref().map(|rule| StopCheck {
            rule,
            previous: None,
        });
        let lane = (self.spec.replicates > 1).then_some(replicate as u64);
        let chain = self.sets[state].chain;
        let per_block = rows_per_block(n, d, e.stored_rows()) as u64;
        let mut fed = e.burn_rows() as u64;
        let mut feed = |acc: &mut ChainAccumulator, upto: u64| -> Result<(), JobError> {
            while fed < upto {
                let end = (fed + per_block).min(upto);
                acc.push(&store.read_f64(chain, fed..end, lane)?);
                fed = end;
            }
            Ok(())
        };
        // True when the longer run's stop rule ends the ensemble here.
        let mut met = false;
        if let Some(check) = stop.as_mut() {
            let every = check.rule.check_every;
            for it in (every..=reached.min(e.steps - 1)).step_by(every) {
                feed(&mut acc, (it / e.thin) as u64)?;
                if check.converged(&acc, e.thin) {
                    if it < reached {
                        return Err(JobError::Other(format!(
                            "state `{}` (replicate {replicate}): with the new settings its \
                             stop rule is met at step {it}, before the {reached} steps the run \
                             has taken (τ is estimated over a longer run's grid): start the \
                             longer run afresh instead",
                            st.name
                        )));
                    }
                    met = true;
                    break;
                }
            }
        }
        feed(&mut acc, snap.first_row)?;
        // Ready in any case: a task the longer run ends here runs no step
        // and writes its summary (nothing is written here, so that the
        // extension's checkpoint is the only change it makes).
        snap.summary = Some(acc);
        snap.previous_taus = if met {
            STOPPED_HERE
        } else {
            stop.and_then(|s| s.previous)
        };
        postcard::to_stdvec(&snap)
            .map(Extension::Ready)
            .map_err(|err| JobError::Other(format!("cannot snapshot: {err}")))
    }

    fn size_hints(&self) -> crate::jobs::SizeHints {
        let reps = self.spec.replicates as u64;
        // A walker's position, log-probability and random stream, and a
        // task's bookkeeping (measured: about 70 bytes a walker in 2-D).
        let final_states = self
            .spec
            .states
            .iter()
            .zip(settings(&self.spec))
            .map(|(st, e)| 256 + (e.walkers * (64 + 16 * st.dim())) as u64)
            .sum::<u64>()
            .saturating_mul(reps);
        crate::jobs::SizeHints {
            task_runs: self.plan(0).tasks(),
            final_states,
            growing_rows: Vec::new(),
            assumes: None,
        }
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let spec = &self.spec;
        writeln!(
            out,
            "kind      ensemble (affine-invariant ensemble MCMC, emcee's algorithm)"
        )?;
        if let Some(rule) = settings(spec).iter().find_map(|e| e.stop.as_ref()) {
            writeln!(
                out,
                "stop      each ensemble once its chain after burn-in is longer than {} τ and τ \
                 changed by less than {} since the last check, checked every {} steps, at most \
                 {} steps",
                rule.tau_lengths, rule.tau_change, rule.check_every, rule.max_steps
            )?;
        }
        let lines: Vec<StateLine> = settings(spec)
            .iter()
            .map(|e| StateLine {
                count: e.walkers,
                steps: e.steps,
                burn: e.burn,
                thin: e.thin,
                how: e
                    .moves
                    .iter()
                    .map(|m| format!("{}×{}", m.weight, m.kind.label()))
                    .collect::<Vec<_>>()
                    .join(" + "),
                init: e.init.label(),
            })
            .collect();
        describe_states(
            out,
            &spec.states,
            spec.posteriors().unwrap_or_default(),
            "walkers",
            Some("moves"),
            &lines,
        )?;
        Ok(())
    }

    fn work(&self) -> (u64, &'static str) {
        let per_replicate: u64 = settings(&self.spec)
            .iter()
            .map(|e| (e.walkers * e.steps) as u64)
            .sum();
        (per_replicate * self.spec.replicates as u64, "walker-steps")
    }

    fn finish_stage(&self, _stage: u32, store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        let mut all = true;
        let mut any_rule = false;
        for (state, st) in self.spec.states.iter().enumerate() {
            let Some(rule) = &self.settings(state).stop else {
                continue;
            };
            any_rule = true;
            let (converged, steps) = self.stopped(store, state)?;
            all &= converged == self.spec.replicates as u64;
            let group = self.group(st);
            store.set_attr(
                &group,
                "converged",
                Attr::Bool(converged == self.spec.replicates as u64),
            )?;
            if let [steps] = steps[..] {
                store.set_attr(&group, "steps", Attr::U64(steps))?;
            }
            store.set_attr(&group, "max_steps", Attr::U64(rule.max_steps as u64))?;
        }
        if any_rule {
            store.set_attr("/", "converged", Attr::Bool(all))?;
        }
        Ok(Vec::new())
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        const MAX_TABLES: usize = 16;
        let reps = self.spec.replicates;
        let tasks = self.spec.states.len() * reps;
        for t in 0..tasks.min(MAX_TABLES) {
            let (s, r) = self.task_of(t as u64);
            let (st, e) = (&self.spec.states[s], self.settings(s));
            let table = self.summary.read(store, st, s, r)?;
            let title = if reps > 1 {
                format!("{} (replicate {r})", st.name)
            } else {
                st.name.clone()
            };
            let acceptance = table.first().map_or(f64::NAN, |row| row.get("acceptance"));
            let steps = store
                .read_f64(self.sets[s].steps, r as u64..r as u64 + 1, None)?
                .first()
                .map_or(e.steps, |&v| v as usize);
            let draws = (steps / e.thin).saturating_sub(e.burn_rows());
            let stopped = match &e.stop {
                Some(rule) if steps < rule.max_steps => " (converged: stopped)",
                Some(_) => " (max_steps reached unconverged)",
                None => "",
            };
            writeln!(
                out,
                "state {title}: {} walkers × {steps} steps{stopped} ({draws} stored rows after \
                 burn-in each), acceptance {acceptance:.3}",
                e.walkers,
            )?;
            diag::write_table(out, &table, draws, true)?;
        }
        for (state, st) in self.spec.states.iter().enumerate() {
            if let Some(rule) = &self.settings(state).stop {
                let (converged, _) = self.stopped(store, state)?;
                let reps = self.spec.replicates as u64;
                if converged < reps {
                    tracing::warn!(
                        "state `{}`: {} of {reps} ensemble(s) reached max_steps = {} without τ \
                         settling (longer than {} τ, changing by less than {}); attribute \
                         `converged` = false",
                        st.name,
                        reps - converged,
                        rule.max_steps,
                        rule.tau_lengths,
                        rule.tau_change
                    );
                }
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

    fn summary(
        &self,
        file: &dyn crate::output::Reader,
        options: &crate::jobs::summary::SummaryOptions,
    ) -> Result<Vec<crate::table::Table>, crate::jobs::summary::SummaryError> {
        crate::jobs::summary::emcee_states(
            file,
            options,
            &self.spec.states,
            |st| self.group(st),
            "ensemble",
            false,
        )
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
            // A pause waits for the end of the step (`Collective::paused`).
            Vote::Continue | Vote::Pause => {}
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

    fn gather_words(
        &mut self,
        half: Range<usize>,
        per_walker: usize,
        mine: &[u64],
        all: &mut [u64],
    ) {
        let counts = self.counts(&half, per_walker);
        self.collective.gather_u64(mine, all, &counts);
    }
}

/// An ensemble task's whole state at a step boundary, as plain data: what
/// it pauses with and resumes from (every row up to it has been emitted).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    ensemble: Ensemble,
    /// The lead's summary of the rows so far (absent on other members).
    summary: Option<ChainAccumulator>,
    stored_accepted: Vec<u64>,
    /// Rows emitted.
    first_row: u64,
    /// τ at the last stop check; [`STOPPED_HERE`] when the stop rule was
    /// met at this step (found by an extension's replay): the task ends at
    /// once.
    previous_taus: Option<Vec<f64>>,
}

/// `Snapshot::previous_taus` of an ensemble whose stop rule was met at the
/// snapshot's step (τ has at least one entry otherwise).
const STOPPED_HERE: Option<Vec<f64>> = Some(Vec::new());

/// Where an ensemble task's rows go, and what it keeps of them.
struct Rows {
    sets: StateSets,
    lane: Option<u64>,
    replicate: usize,
    burn_rows: usize,
    per_block: usize,
    block: Block,
    first_row: u64,
    summary: Option<ChainAccumulator>,
    /// Per walker: acceptances at the stored iterations (emcee's
    /// convention: its `sample(thin_by=…)` saves the acceptance of the last
    /// step of each stored row, so that accepted / iteration is an
    /// acceptance fraction).
    stored_accepted: Vec<u64>,
}

impl Rows {
    /// Emits the rows held (chain, log_prob, accepted as one message) and
    /// adds those past the burn-in to the summary.
    fn emit(&mut self, cx: &mut TaskContext<'_>, n: usize, d: usize) -> Result<(), TaskError> {
        if self.block.rows == 0 {
            return Ok(());
        }
        let rows = self.block.rows as u64;
        let b = std::mem::replace(&mut self.block, Block::new(self.per_block, n, d));
        if let Some(acc) = self.summary.as_mut() {
            let skip = self
                .burn_rows
                .saturating_sub(self.first_row as usize)
                .min(b.rows);
            acc.push(&b.chain[skip * n * d..]);
        }
        let (first_row, lane) = (self.first_row, self.lane);
        cx.emit_all(vec![
            Record {
                dataset: self.sets.chain,
                first_row,
                rows,
                lane,
                values: Column::F64(b.chain),
            },
            Record {
                dataset: self.sets.log_prob,
                first_row,
                rows,
                lane,
                values: Column::F64(b.log_prob),
            },
            accepted_record(
                self.sets.accepted,
                self.replicate,
                lane,
                &self.stored_accepted,
            ),
        ])?;
        self.first_row += rows;
        Ok(())
    }
}

/// Runs one ensemble to the end (or until the executor asks it to pause),
/// from its start or from a snapshot, emitting its chain block by block and
/// its summary rows at the end.
fn run_ensemble(
    job: &EnsembleJob,
    state: usize,
    replicate: usize,
    resume: Option<&[u8]>,
    cx: &mut TaskContext<'_>,
) -> Result<Outcome, TaskError> {
    let spec = &job.spec;
    let st = &spec.states[state];
    let settings = job.settings(state);
    let label = TaskLabel::new(format!(
        "ensemble: state `{}` (replicate {replicate}, seed {})",
        st.name, spec.seed
    ));
    let sample_err = |cause: SampleError| match cause {
        SampleError::Stopped(_) => TaskError::Cancelled,
        cause @ SampleError::Evaluation { .. } => label.evaluation(cause),
        cause => label.fail(cause),
    };
    let posterior = label.posterior(spec, state)?;
    if cx.cancelled() {
        return Err(TaskError::Cancelled);
    }
    // The task's identity in its streams: state and replicate (not the
    // task index, which moves with the number of replicates).
    let key = Kind::Ensemble.streams(spec.seed, 0, ((state as u64) << 32) | replicate as u64);
    let leads = cx.leads();
    let ndim = st.dim();
    let burn_rows = settings.burn_rows();
    let stored_rows = settings.stored_rows();
    let (mut ensemble, summary, stored_accepted, first_row, previous) = match resume {
        Some(bytes) => {
            let snap: Snapshot = label.resume(bytes)?;
            let summary = if leads { snap.summary } else { None };
            (
                snap.ensemble.resumed(),
                summary,
                snap.stored_accepted,
                snap.first_row,
                snap.previous_taus,
            )
        }
        None => {
            let ensemble = with_share(cx, ndim, |share| {
                Ensemble::start_shared(&posterior, settings, key, share)
            })
            .map_err(sample_err)?;
            let (n, d) = (ensemble.walkers(), ensemble.ndim());
            let summary = leads.then(|| ChainAccumulator::new(n, d, stored_rows - burn_rows));
            (ensemble, summary, vec![0u64; n], 0, None)
        }
    };
    let (n, d) = (ensemble.walkers(), ensemble.ndim());
    let per_block = rows_per_block(n, d, stored_rows);
    let mut rows = Rows {
        sets: job.sets[state],
        lane: (spec.replicates > 1).then_some(replicate as u64),
        replicate,
        burn_rows,
        per_block,
        block: Block::new(per_block, n, d),
        first_row,
        summary,
        stored_accepted,
    };
    // Per walker: its count of acceptances before the iteration being stored.
    let mut accepted_before = vec![0u64; n];
    let mut clock = EmitClock::default();
    let stopped_here = previous == STOPPED_HERE;
    let mut stop = settings
        .stop
        .as_ref()
        .map(|rule| StopCheck { rule, previous });
    let mut done = ensemble.iteration();
    let last = if stopped_here { done } else { settings.steps };
    for it in done + 1..=last {
        if cx.cancelled() {
            return Err(TaskError::Cancelled);
        }
        if cx.pause_requested() {
            rows.emit(cx, n, d)?;
            count_evaluations(cx, &ensemble);
            with_share(cx, ndim, |share| ensemble.gather_streams(share));
            let snap = Snapshot {
                ensemble,
                summary: rows.summary,
                stored_accepted: rows.stored_accepted,
                first_row: rows.first_row,
                previous_taus: stop.and_then(|s| s.previous),
            };
            return Ok(Outcome::Yielded(label.snapshot(&snap)?));
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
        done = it;
        if leads {
            cx.add_progress(n as u64);
        }
        if stored {
            for ((s, b), a) in rows
                .stored_accepted
                .iter_mut()
                .zip(&accepted_before)
                .zip(ensemble.accepted())
            {
                *s += a - b;
            }
            rows.block.chain.extend_from_slice(ensemble.positions());
            rows.block.log_prob.extend_from_slice(ensemble.log_prob());
            rows.block.rows += 1;
        }
        let check = stop
            .as_ref()
            .is_some_and(|s| it % s.rule.check_every == 0 && it < settings.steps);
        let due = stored
            && (rows.block.rows == per_block || it + settings.thin > settings.steps || clock.due());
        if check || due {
            rows.emit(cx, n, d)?;
        }
        if check {
            let check = stop.as_mut().expect("checked above");
            // The lead holds the rows; the members of a shared ensemble
            // learn its verdict (a count summed over the members).
            let mut converged = [rows
                .summary
                .as_ref()
                .is_some_and(|acc| check.converged(acc, settings.thin))
                as u64];
            if let Some(c) = cx.collective() {
                c.sum_u64(&mut converged);
            }
            if converged[0] > 0 {
                break;
            }
        }
    }
    count_evaluations(cx, &ensemble);
    if let Some(acc) = rows.summary.take() {
        // Only the lead holds a summary: the steps run and the summary rows.
        cx.emit_all(job.final_records(state, replicate, acc, &ensemble, done))?;
    }
    // The last state, for a run asking for more steps (`Job::extend`
    // rebuilds the summary from the rows).
    with_share(cx, ndim, |share| ensemble.gather_streams(share));
    let snap = Snapshot {
        ensemble,
        summary: None,
        stored_accepted: rows.stored_accepted,
        first_row: rows.first_row,
        previous_taus: stop.and_then(|s| s.previous),
    };
    Ok(Outcome::Final(label.snapshot(&snap)?))
}

/// The task's evaluations (since it started or resumed), summed over the
/// members of a shared ensemble.
fn count_evaluations(cx: &mut TaskContext<'_>, ensemble: &Ensemble) {
    let mut counts = [ensemble.evaluations(), ensemble.nan_count()];
    if let Some(c) = cx.collective() {
        c.sum_u64(&mut counts);
    }
    cx.evaluations = counts[0];
    cx.nan_evaluations = counts[1];
}

/// emcee's convergence rule, applied to the rows after burn-in: longer
/// than `tau_lengths` τ for every parameter, and τ within `tau_change` of
/// the previous check.
struct StopCheck<'a> {
    rule: &'a sampler::TauStop,
    previous: Option<Vec<f64>>,
}

impl StopCheck<'_> {
    fn converged(&mut self, acc: &ChainAccumulator, thin: usize) -> bool {
        let taus = acc.taus();
        let span = acc.rows_seen() as f64;
        let long = !taus.is_empty()
            && taus
                .iter()
                .all(|&t| t.is_finite() && span > self.rule.tau_lengths * t);
        let stable = self.previous.as_ref().is_some_and(|old| {
            old.iter()
                .zip(&taus)
                .all(|(o, t)| ((o - t) / t).abs() < self.rule.tau_change)
        });
        tracing::trace!(
            "stop check: τ {:?} (stored rows, thin {thin}) over {span} rows: long {long}, stable {stable}",
            taus
        );
        self.previous = Some(taus);
        long && stable
    }
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

#[cfg(test)]
mod tests;
