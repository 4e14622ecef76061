//! `kind = "chains"`: many independent adaptive-Metropolis chains per state
//! (fastSuStaIn's pattern), each its own task with its own random stream
//! keyed by (seed, kind, state, chain), spread over ranks and threads.
//!
//! With `[sampler.stop]` the chains advance in rounds of `check_every`
//! steps: each pauses, rank 0 computes R-hat and bulk-ESS from the rows
//! written (in chain order, so the decision is the same whatever the
//! layout), and either every chain goes on from its snapshot or the run
//! ends. Until every state has converged, all go on.
//!
//! Output, per state: emcee's layout at `/states/<state>` with axis 1 the
//! chain (`chain`: rows × chains × ndim), the best point of each chain
//! (`best_position`, `best_log_prob`) and of the state (attributes), and one
//! `/summary` table with a row per state and parameter.

pub mod metropolis;
pub mod spec;

use std::io::Write;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use self::metropolis::{Chain, ChainError};
use crate::diag::{self, ChainAccumulator, ChainSummary};
use crate::jobs::Kind;
use crate::jobs::RunSpec;
use crate::jobs::{
    check_extension, describe_states, Decision, EmceeGroup, EmitClock, Extension, Job, JobError,
    Outcome, Plan, PlanRun, StateLine, SummaryTable, TaskContext, TaskError, TaskId, TaskLabel,
};
use crate::model::Posterior;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};
use crate::spec::Init;
use spec::ChainSettings;
pub use spec::Spec;
pub(crate) use spec::{resolve, RawSampler, RawState, StateKeys};

/// Tries at most this many prior draws for a start with a finite posterior.
const START_TRIES: usize = 1000;

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(ChainsJob::new(spec))
}

#[derive(Debug, Clone, Copy)]
struct StateSets {
    chain: usize,
    log_prob: usize,
    accepted: usize,
    best_position: usize,
    best_log_prob: usize,
}

pub struct ChainsJob {
    spec: Arc<RunSpec>,
    layout: Layout,
    sets: Vec<StateSets>,
    summary: SummaryTable,
}

fn spec_of(spec: &RunSpec) -> &Spec {
    #[allow(unreachable_patterns)]
    match &spec.sampler {
        crate::jobs::SamplerSpec::Chains(s) => s,
        _ => unreachable!("a chains job is built from a chains spec"),
    }
}

impl ChainsJob {
    pub fn new(spec: Arc<RunSpec>) -> Self {
        let s = spec_of(&spec);
        let c = s.chains;
        let mut layout = Layout::default();
        let mut sets = Vec::new();
        for (st, cs) in spec.states.iter().zip(&s.states) {
            let d = st.dim();
            let stored = (cs.steps / cs.thin.max(1)) as u64;
            let group = format!("states/{}", st.name);
            EmceeGroup {
                path: &group,
                state: st,
                kind: "chains",
                walkers: c,
                independent: true,
                thin: cs.thin,
                burn: cs.burn,
                extra: Vec::new(),
            }
            .declare(&mut layout);
            sets.push(StateSets {
                chain: layout.add(
                    DatasetDecl::growing(format!("{group}/chain"), Dtype::F64, vec![c, d])
                        .with_lanes()
                        .with_expected_rows(stored)
                        .with_extent_attr(group.clone(), "iteration"),
                ),
                log_prob: layout.add(
                    DatasetDecl::growing(format!("{group}/log_prob"), Dtype::F64, vec![c])
                        .with_lanes()
                        .with_expected_rows(stored),
                ),
                accepted: layout.add(
                    DatasetDecl::fixed(format!("{group}/accepted"), Dtype::F64, vec![], c as u64)
                        .with_init(Column::F64(vec![0.0; c])),
                ),
                best_position: layout.add(DatasetDecl::fixed(
                    format!("{group}/best_position"),
                    Dtype::F64,
                    vec![d],
                    c as u64,
                )),
                best_log_prob: layout.add(DatasetDecl::fixed(
                    format!("{group}/best_log_prob"),
                    Dtype::F64,
                    vec![],
                    c as u64,
                )),
            });
        }
        let summary = SummaryTable::declare(
            &mut layout,
            &spec.states,
            1,
            "one row per state and parameter, after burn-in, over all chains: \
             rank-normalised split R-hat, bulk/tail ESS and MCSE as in Vehtari et al. \
             (2021); autocorr_time in stored rows (emcee's estimator); mean and sd over \
             every sample, the rest over every tau_stride-th row",
        );
        Self {
            spec,
            layout,
            sets,
            summary,
        }
    }

    fn settings(&self, state: usize) -> &ChainSettings {
        &spec_of(&self.spec).states[state]
    }

    fn chains(&self) -> usize {
        spec_of(&self.spec).chains
    }

    /// (state, chain) of a task: indices are state-major.
    fn task_of(&self, index: u64) -> (usize, usize) {
        let c = self.chains() as u64;
        ((index / c) as usize, (index % c) as usize)
    }

    /// The iteration at which a chain pauses next (or ends).
    fn target(&self, state: usize, iteration: usize) -> usize {
        let total = self.settings(state).steps;
        match &spec_of(&self.spec).stop {
            Some(stop) => ((iteration / stop.check_every + 1) * stop.check_every).min(total),
            None => total,
        }
    }

    /// Diagnostics of every parameter of a state from the rows written after
    /// burn-in, read back in blocks of about 1 MiB (chain order: the same
    /// whatever the layout).
    fn diagnose(&self, state: usize, store: &mut dyn Store) -> Result<Vec<ChainSummary>, JobError> {
        let chain = self.sets[state].chain;
        let (c, d) = (self.chains(), self.spec.states[state].dim());
        let rows = store.rows_written(chain);
        let burn = (self.settings(state).burn_rows() as u64).min(rows);
        let mut acc = ChainAccumulator::new(c, d, (rows - burn) as usize);
        let block = ((1u64 << 17) / (c * d).max(1) as u64).max(1);
        let mut first = burn;
        while first < rows {
            let end = (first + block).min(rows);
            acc.push(&store.read_f64(chain, first..end, None)?);
            first = end;
        }
        Ok(acc.finish())
    }
}

/// A chain task's state between rounds, as plain data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    chain: Chain,
    /// Acceptances at the stored iterations (emcee's `accepted`).
    stored_accepted: u64,
    rows: u64,
}

impl Job for ChainsJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn plan(&self, _stage: u32) -> Plan {
        let c = self.chains() as u64;
        let runs = self
            .spec
            .states
            .iter()
            .enumerate()
            .map(|(s, st)| PlanRun {
                tasks: s as u64 * c..(s as u64 + 1) * c,
                cost: self.target(s, 0) as f64
                    * (self.spec.posterior(s).cost_us as f64 + 0.05 * st.dim() as f64),
            })
            .collect();
        Plan { runs }
    }

    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        let (state, c) = self.task_of(task.index);
        let spec = &self.spec;
        let st = &spec.states[state];
        let settings = self.settings(state);
        let sets = self.sets[state];
        let label = TaskLabel::new(format!(
            "chains: state `{}`, chain {c} (seed {})",
            st.name, spec.seed
        ));
        let posterior = label.posterior(spec, state)?;
        let chain_err = |cause: ChainError| match cause {
            ChainError::Evaluation { .. } => label.evaluation(cause),
            cause => label.fail(cause),
        };
        let mut snap = match resume {
            Some(bytes) => label.resume::<Snapshot>(bytes)?,
            None => Snapshot {
                chain: start_chain(&posterior, settings, spec.seed, state, c)
                    .map_err(chain_err)?,
                stored_accepted: 0,
                rows: 0,
            },
        };
        let d = st.dim();
        let target = self.target(state, snap.chain.iteration());
        let lane = Some(c as u64);
        let mut positions = Vec::new();
        let mut log_probs = Vec::new();
        let mut clock = EmitClock::default();
        while snap.chain.iteration() < target {
            if cx.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if cx.pause_requested() {
                // Asked to pause (a checkpoint): the rows held go first.
                emit_rows(cx, sets, lane, &mut snap, &mut positions, &mut log_probs)?;
                emit_chain_totals(cx, sets, c, &snap)?;
                cx.evaluations = snap.chain.evaluations();
                cx.nan_evaluations = snap.chain.nan_count();
                return Ok(Outcome::Yielded(label.snapshot(&snap)?));
            }
            let before = snap.chain.accepted();
            snap.chain
                .step(&posterior, &settings.metropolis)
                .map_err(chain_err)?;
            cx.add_progress(1);
            let it = snap.chain.iteration();
            if it % settings.thin == 0 {
                snap.stored_accepted += snap.chain.accepted() - before;
                positions.extend_from_slice(snap.chain.position());
                log_probs.push(snap.chain.log_prob());
            }
            let last = it == target;
            if !log_probs.is_empty() && (last || log_probs.len() * d >= 1 << 17 || clock.due()) {
                emit_rows(cx, sets, lane, &mut snap, &mut positions, &mut log_probs)?;
                // With every block, so that an unfinished file has them too.
                emit_chain_totals(cx, sets, c, &snap)?;
            }
        }
        emit_chain_totals(cx, sets, c, &snap)?;
        cx.evaluations = snap.chain.evaluations();
        cx.nan_evaluations = snap.chain.nan_count();
        let bytes = label.snapshot(&snap)?;
        if snap.chain.iteration() >= settings.steps {
            // Its last state, for a run asking for more steps.
            Ok(Outcome::Final(bytes))
        } else {
            Ok(Outcome::Paused(bytes))
        }
    }

    fn extends(&self, old: &RunSpec) -> Result<(), String> {
        let crate::jobs::SamplerSpec::Chains(old) = &old.sampler else {
            return Err("the run was not a chains run".into());
        };
        let new = spec_of(&self.spec);
        if old.chains != new.chains {
            return Err(format!(
                "chains {} → {}: the number of chains cannot change",
                old.chains, new.chains
            ));
        }
        let mut same_stop = old.stop.clone();
        if let (Some(a), Some(b)) = (&mut same_stop, &new.stop) {
            a.max_steps = b.max_steps;
        }
        if same_stop != new.stop {
            return Err("only stop.max_steps may change in [sampler.stop]".into());
        }
        for ((st, o), n) in self.spec.states.iter().zip(&old.states).zip(&new.states) {
            check_extension(&st.name, o.steps, n.steps)?;
            if o.burn != n.burn {
                return Err(format!(
                    "state `{}`: burn {} → {} (a quarter of steps unless set): the chains \
                     adapt during burn-in, so a longer run keeps it: set burn = {}",
                    st.name, o.burn, n.burn, o.burn
                ));
            }
            let mut same = o.clone();
            same.steps = n.steps;
            if same != *n {
                return Err(format!(
                    "state `{}`: only steps (stop.max_steps) may change when a run is extended",
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
        _store: &mut dyn Store,
    ) -> Result<Extension, JobError> {
        let (state, _) = self.task_of(task.index);
        let snap: Snapshot = postcard::from_bytes(snapshot)
            .map_err(|e| JobError::Other(format!("undecodable snapshot: {e}")))?;
        let it = snap.chain.iteration();
        let total = self.settings(state).steps;
        if it >= total {
            return Ok(Extension::Done);
        }
        // At the end of a round of the longer run (where a run that ended
        // there had converged or reached its steps), rank 0 decides again,
        // from the same rows; elsewhere the chain goes on.
        let round_end = spec_of(&self.spec)
            .stop
            .as_ref()
            .is_some_and(|stop| it > 0 && it.is_multiple_of(stop.check_every));
        Ok(if round_end {
            Extension::Waiting(snapshot.to_vec())
        } else {
            Extension::Ready(snapshot.to_vec())
        })
    }

    fn round(&self, _stage: u32, store: &mut dyn Store) -> Result<Decision, JobError> {
        let Some(stop) = &spec_of(&self.spec).stop else {
            return Ok(Decision::Continue);
        };
        for state in 0..self.spec.states.len() {
            let rows = store.rows_written(self.sets[state].chain) as usize;
            // Not before the burn-in is over and some rows are kept.
            if rows <= self.settings(state).burn_rows() + 1 {
                return Ok(Decision::Continue);
            }
            let converged = self
                .diagnose(state, store)?
                .iter()
                .all(|p| p.diagnostics.rhat <= stop.rhat && p.diagnostics.ess_bulk >= stop.ess);
            if !converged {
                return Ok(Decision::Continue);
            }
        }
        Ok(Decision::Finish)
    }

    fn finish_stage(&self, _stage: u32, store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        let accepted_all: Vec<f64> = (0..self.spec.states.len())
            .map(|s| store.read_f64(self.sets[s].accepted, 0..self.chains() as u64, None))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|a| a.iter().sum::<f64>())
            .collect();
        for (state, st) in self.spec.states.iter().enumerate() {
            let diagnostics = self.diagnose(state, store)?;
            let rows = store.rows_written(self.sets[state].chain);
            let acceptance = accepted_all[state] / (rows.max(1) as f64 * self.chains() as f64);
            let values: Vec<Vec<f64>> = diagnostics.iter().map(|p| p.values(acceptance)).collect();
            for record in self.summary.records(st, state, 0, &values) {
                store.write(record)?;
            }
            // The best point of the state, over its chains.
            let best_lp = store.read_f64(
                self.sets[state].best_log_prob,
                0..self.chains() as u64,
                None,
            )?;
            if let Some((c, lp)) = best_lp
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .max_by(|a, b| a.1.total_cmp(b.1))
            {
                let pos =
                    store.read_f64(self.sets[state].best_position, c as u64..c as u64 + 1, None)?;
                let group = format!("states/{}", st.name);
                store.set_attr(&group, "best_chain", Attr::U64(c as u64))?;
                store.set_attr(&group, "best_log_prob", Attr::F64(*lp))?;
                store.set_attr(&group, "best_position", Attr::F64s(pos))?;
            }
            let stopped = rows as usize * self.settings(state).thin;
            store.set_attr(
                &format!("states/{}", st.name),
                "steps",
                Attr::U64(stopped as u64),
            )?;
        }
        if let Some(stop) = &spec_of(&self.spec).stop {
            let converged = (0..self.spec.states.len()).all(|s| {
                store.rows_written(self.sets[s].chain) as usize * self.settings(s).thin
                    < stop.max_steps
            });
            store.set_attr("/", "converged", Attr::Bool(converged))?;
        }
        Ok(Vec::new())
    }

    fn size_hints(&self) -> crate::jobs::SizeHints {
        let s = spec_of(&self.spec);
        let c = s.chains as u64;
        // A run of each chain per round (a segment of check_every steps).
        let task_runs = s
            .states
            .iter()
            .map(|cs| {
                let rounds = s
                    .stop
                    .as_ref()
                    .map_or(1, |stop| cs.steps.div_ceil(stop.check_every.max(1)));
                c * rounds as u64
            })
            .sum();
        // A chain's position, proposal covariance and adaptation state
        // (measured: 194 bytes in 2-D, 1922 in 10-D).
        let final_states = self
            .spec
            .states
            .iter()
            .map(|st| {
                let d = st.dim() as u64;
                c * (128 + 32 * d + 24 * d * d)
            })
            .sum();
        crate::jobs::SizeHints {
            task_runs,
            final_states,
            growing_rows: Vec::new(),
            assumes: None,
        }
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = spec_of(&self.spec);
        writeln!(
            out,
            "kind      chains ({} adaptive-Metropolis chains per state)",
            s.chains
        )?;
        if let Some(stop) = &s.stop {
            writeln!(
                out,
                "stop      R-hat ≤ {} and bulk-ESS ≥ {} for every parameter, checked every {} steps, at most {} steps",
                stop.rhat, stop.ess, stop.check_every, stop.max_steps
            )?;
        }
        let lines: Vec<StateLine> = s
            .states
            .iter()
            .map(|cs| StateLine {
                count: s.chains,
                steps: cs.steps,
                burn: cs.burn,
                thin: cs.thin,
                how: String::new(),
                init: cs.init.label(),
            })
            .collect();
        describe_states(
            out,
            &self.spec.states,
            self.spec.posteriors().unwrap_or_default(),
            "chains",
            None,
            &lines,
        )?;
        Ok(())
    }

    fn work(&self) -> (u64, &'static str) {
        let s = spec_of(&self.spec);
        let steps: u64 = s.states.iter().map(|c| c.steps as u64).sum();
        (steps * s.chains as u64, "chain-steps")
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        for (state, st) in self.spec.states.iter().enumerate() {
            let table = self.summary.read(store, st, state, 0)?;
            let kept = store.rows_written(self.sets[state].chain) as usize;
            let settings = self.settings(state);
            writeln!(
                out,
                "state {}: {} chains × {} steps ({} stored rows after burn-in each), acceptance {:.3}",
                st.name,
                self.chains(),
                kept * settings.thin,
                kept.saturating_sub(settings.burn_rows()),
                table.first().map_or(f64::NAN, |row| row.get("acceptance"))
            )?;
            diag::write_table(
                out,
                &table,
                kept.saturating_sub(settings.burn_rows()),
                false,
            )?;
        }
        if let Some(stop) = &spec_of(&self.spec).stop {
            let unconverged = (0..self.spec.states.len()).any(|s| {
                store.rows_written(self.sets[s].chain) as usize * self.settings(s).thin
                    >= stop.max_steps
            });
            if unconverged {
                tracing::warn!("stopped at max_steps = {} without reaching R-hat ≤ {} and bulk-ESS ≥ {} (attribute `converged` = false)", stop.max_steps, stop.rhat, stop.ess);
            }
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
            |st| format!("states/{}", st.name),
            "chains",
            true,
        )
    }
}

/// A chain's acceptances at stored rows and best point so far.
/// Emits the rows a chain holds (none: nothing) and counts them.
fn emit_rows(
    cx: &mut TaskContext<'_>,
    sets: StateSets,
    lane: Option<u64>,
    snap: &mut Snapshot,
    positions: &mut Vec<f64>,
    log_probs: &mut Vec<f64>,
) -> Result<(), TaskError> {
    if log_probs.is_empty() {
        return Ok(());
    }
    let rows = log_probs.len() as u64;
    cx.emit_all(vec![
        Record {
            dataset: sets.chain,
            first_row: snap.rows,
            rows,
            lane,
            values: Column::F64(std::mem::take(positions)),
        },
        Record {
            dataset: sets.log_prob,
            first_row: snap.rows,
            rows,
            lane,
            values: Column::F64(std::mem::take(log_probs)),
        },
    ])?;
    snap.rows += rows;
    Ok(())
}

fn emit_chain_totals(
    cx: &mut TaskContext<'_>,
    sets: StateSets,
    c: usize,
    snap: &Snapshot,
) -> Result<(), TaskError> {
    let one = |dataset, values| Record {
        dataset,
        first_row: c as u64,
        rows: 1,
        lane: None,
        values,
    };
    let (best, best_lp) = snap.chain.best();
    cx.emit_all(vec![
        one(
            sets.accepted,
            Column::F64(vec![snap.stored_accepted as f64]),
        ),
        one(sets.best_position, Column::F64(best.to_vec())),
        one(sets.best_log_prob, Column::F64(vec![best_lp])),
    ])
}

/// A chain's start: a prior draw (retried until its posterior is finite) or
/// a point of the ball, from the chain's own stream.
fn start_chain(
    posterior: &Posterior,
    settings: &ChainSettings,
    seed: u64,
    state: usize,
    chain: usize,
) -> Result<Chain, ChainError> {
    use rand::RngExt;
    let key = Kind::Chains.streams(seed, 0, state as u64);
    let mut rng = key.stream(chain as u64);
    let d = posterior.dim();
    let mut x = vec![0.0; d];
    let mut last = None;
    for _ in 0..START_TRIES {
        match &settings.init {
            Init::Prior => posterior.prior().sample(&mut rng, &mut x),
            Init::Ball { center, radius } => {
                for ((xi, c), r) in x.iter_mut().zip(center).zip(radius) {
                    *xi = c + r * rng.sample::<f64, _>(rand_distr::StandardNormal);
                }
            }
        }
        match Chain::start(posterior, &settings.metropolis, x.clone(), rng.clone()) {
            Ok(chain) => return Ok(chain),
            Err(e @ ChainError::NoFiniteStart { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one try"))
}

#[cfg(test)]
mod tests;
