//! `[transc]`: trans-conceptual sampling over the states (pyTransC's use
//! case; Sambridge, Valentine & Hauser 2025). A second stage after any
//! per-state kind: when the states' samples are in the file, rank 0 fits a
//! pseudo-prior to each (`finish_stage`) and hands every rank the carry; the
//! walkers of the chosen method then move between the states — resampling
//! the stored samples, jumping with draws from the pseudo-priors, or as an
//! ensemble on the product space — and the share of time each spends in a
//! state estimates its posterior probability.
//!
//! The job wraps the per-state kind's job ([`wrap`]): stage 0 (and any
//! stage before the last) is the inner job's, the last is this one's.
//! Each walker is a task of its own, with its own stream keyed by (seed,
//! this kind, stage, walker), so `/transc` is the same whatever the layout;
//! the product-space ensemble is one task.

mod carry;
mod product_space;
pub mod pseudo;
mod recorder;
mod resample;
mod results;
pub(crate) mod spec;
mod state_jump;
mod summary;
mod table;
#[cfg(test)]
mod tests;
mod walker;

use std::io::Write;
use std::sync::{Arc, OnceLock};

pub use results::Results;
pub(crate) use spec::{resolve, RawTable, FOLLOWS};
pub use spec::{Method, Spec, TranscSpec};
pub use table::write_table;

use self::carry::Carry;
use self::resample::resample;
use self::results::error_method;
use self::walker::{Ended, WalkerSnap};
use crate::jobs::{
    Job, JobError, Outcome, Plan, PlanRun, TaskContext, TaskError, TaskId, TaskLabel,
};
use crate::jobs::{RunSpec, Stage, StageSpec};
use crate::model::Posterior;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};

/// The visits of each walker are counted in this many batches of its steps
/// after burn-in (batch means for the product-space ensemble's error).
pub const BATCHES: usize = 20;

/// Tries at most this many pseudo-prior draws for a start inside the prior.
const START_TRIES: usize = 1000;

/// Wraps the per-state job of `spec` with the trans-conceptual stage.
pub fn wrap(spec: Arc<RunSpec>, inner: Box<dyn Job>) -> Box<dyn Job> {
    Box::new(TranscJob::new(spec, inner))
}

/// Dataset indices of `/transc`.
#[derive(Debug, Clone)]
struct Sets {
    state: usize,
    member: Option<usize>,
    visits: usize,
    moves: usize,
    tau: usize,
    probability: usize,
    probability_err: usize,
    log_evidence: usize,
    log_evidence_err: usize,
    /// Per state: weights, means, covs of its pseudo-prior.
    pseudo: Vec<(usize, usize, usize)>,
    /// Per state: the first stage's chain and log_prob.
    samples: Vec<(usize, usize)>,
}

pub struct TranscJob {
    spec: Arc<RunSpec>,
    inner: Box<dyn Job>,
    layout: Layout,
    sets: Sets,
    carry: OnceLock<Carry>,
}

/// The `[transc]` of a spec, if it has one.
pub fn settings_of(spec: &RunSpec) -> Option<&TranscSpec> {
    match &spec.second_stage {
        Some(StageSpec::Transc(t)) => Some(t),
        None => None,
    }
}

fn settings(spec: &RunSpec) -> &TranscSpec {
    settings_of(spec).expect("a transc job has [transc]")
}

impl TranscJob {
    fn new(spec: Arc<RunSpec>, inner: Box<dyn Job>) -> Self {
        let t = settings(&spec);
        let mut layout = inner.layout().clone();
        let (w, k) = (t.walkers, spec.states.len());
        let stored = ((t.steps - t.burn) / t.thin) as u64;
        layout.group(
            "transc",
            vec![
                ("method".into(), Attr::Str(t.method.label().into())),
                ("walkers".into(), Attr::U64(w as u64)),
                ("steps".into(), Attr::U64(t.steps as u64)),
                ("burn".into(), Attr::U64(t.burn as u64)),
                ("thin".into(), Attr::U64(t.thin as u64)),
                (
                    "states".into(),
                    Attr::Strs(spec.states.iter().map(|s| s.name.clone()).collect()),
                ),
                ("state_priors".into(), Attr::F64s(t.state_priors.clone())),
                (
                    "probability_error".into(),
                    Attr::Str(error_method(t.method).into()),
                ),
            ],
        );
        let fixed = |layout: &mut Layout, name: &str, dtype, shape: Vec<usize>, rows: u64| {
            layout.add(DatasetDecl::fixed(
                format!("transc/{name}"),
                dtype,
                shape,
                rows,
            ))
        };
        let state = fixed(
            &mut layout,
            "state",
            Dtype::I64,
            vec![stored as usize],
            w as u64,
        );
        let member = (t.method == Method::Resample).then(|| {
            fixed(
                &mut layout,
                "member",
                Dtype::I64,
                vec![stored as usize],
                w as u64,
            )
        });
        let visits = fixed(
            &mut layout,
            "visits",
            Dtype::F64,
            vec![BATCHES, k],
            w as u64,
        );
        let moves = fixed(&mut layout, "moves", Dtype::F64, vec![k, 4], w as u64);
        let tau = fixed(&mut layout, "tau", Dtype::F64, vec![], w as u64);
        let probability = fixed(&mut layout, "probability", Dtype::F64, vec![], k as u64);
        let probability_err = fixed(&mut layout, "probability_err", Dtype::F64, vec![], k as u64);
        let log_evidence = fixed(&mut layout, "log_evidence", Dtype::F64, vec![], k as u64);
        let log_evidence_err = fixed(
            &mut layout,
            "log_evidence_err",
            Dtype::F64,
            vec![],
            k as u64,
        );
        let c = t.components;
        let mut pseudo = Vec::new();
        let mut samples = Vec::new();
        layout.group("transc/pseudo_prior", vec![]);
        for st in &spec.states {
            let d = st.dim();
            let g = format!("pseudo_prior/{}", st.name);
            layout.group(
                format!("transc/{g}"),
                vec![("components".into(), Attr::U64(c as u64))],
            );
            pseudo.push((
                fixed(
                    &mut layout,
                    &format!("{g}/weights"),
                    Dtype::F64,
                    vec![],
                    c as u64,
                ),
                fixed(
                    &mut layout,
                    &format!("{g}/means"),
                    Dtype::F64,
                    vec![d],
                    c as u64,
                ),
                fixed(
                    &mut layout,
                    &format!("{g}/covs"),
                    Dtype::F64,
                    vec![d, d],
                    c as u64,
                ),
            ));
            let find = |name: &str| {
                layout
                    .find(&format!("states/{}/{name}", st.name))
                    .expect("the per-state kinds write /states/<state>/chain and log_prob")
            };
            samples.push((find("chain"), find("log_prob")));
        }
        let sets = Sets {
            state,
            member,
            visits,
            moves,
            tau,
            probability,
            probability_err,
            log_evidence,
            log_evidence_err,
            pseudo,
            samples,
        };
        Self {
            spec,
            inner,
            layout,
            sets,
            carry: OnceLock::new(),
        }
    }

    /// The stage of the trans-conceptual sampler.
    fn stage(&self) -> u32 {
        self.inner.stages()
    }

    /// The stage's burn-in, in stored rows, of state `k`'s samples.
    fn stage_burn_rows(&self, k: usize) -> u64 {
        match &self.spec.sampler {
            crate::jobs::SamplerSpec::Ensemble(s) => s.states[k].burn_rows() as u64,
            crate::jobs::SamplerSpec::Chains(s) => s.states[k].burn_rows() as u64,
            // `resolve` refuses [transc] after the kinds not in `FOLLOWS`.
            _ => 0,
        }
    }

    fn carry(&self) -> Result<&Carry, TaskError> {
        self.carry
            .get()
            .ok_or_else(|| TaskError::Failed("transc: the stage started without its carry".into()))
    }

    /// Rank 0, at the end: the state probabilities and their errors.
    fn conclude(&self, store: &mut dyn Store) -> Result<Results, JobError> {
        let t = settings(&self.spec);
        let (w, k) = (t.walkers, self.spec.states.len());
        let visits = store.read_f64(self.sets.visits, 0..w as u64, None)?;
        let moves = store.read_f64(self.sets.moves, 0..w as u64, None)?;
        let taus = store.read_f64(self.sets.tau, 0..w as u64, None)?;
        let r = Results::from_counts(t, k, &visits, &moves, &taus);
        let names: Vec<String> = self.spec.states.iter().map(|s| s.name.clone()).collect();
        if let Some(why) = r.failure(&names) {
            return Err(JobError::Other(why));
        }
        for (dataset, values) in [
            (self.sets.probability, &r.probability),
            (self.sets.probability_err, &r.probability_err),
            (self.sets.log_evidence, &r.log_evidence),
            (self.sets.log_evidence_err, &r.log_evidence_err),
        ] {
            store.write(Record {
                dataset,
                first_row: 0,
                rows: k as u64,
                lane: None,
                values: Column::F64(values.clone()),
            })?;
        }
        store.set_attr("transc", "tau", Attr::F64(r.tau))?;
        store.set_attr(
            "transc",
            "acceptance_between",
            Attr::F64s(r.between.clone()),
        )?;
        store.set_attr("transc", "acceptance_within", Attr::F64s(r.within.clone()))?;
        Ok(r)
    }
}

impl Job for TranscJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn stages(&self) -> u32 {
        self.inner.stages() + 1
    }

    fn plan(&self, stage: u32) -> Plan {
        if stage < self.stage() {
            return self.inner.plan(stage);
        }
        let t = settings(&self.spec);
        let tasks = match t.method {
            Method::ProductSpace => 1,
            _ => t.walkers as u64,
        };
        let per_step = match t.method {
            Method::Resample => 0.05,
            _ => self
                .spec
                .states
                .iter()
                .enumerate()
                .map(|(k, s)| self.spec.posterior(k).cost_us as f64 + 0.05 * s.dim() as f64)
                .fold(0.0, f64::max),
        };
        let walkers = if tasks == 1 { t.walkers as f64 } else { 1.0 };
        Plan {
            runs: vec![PlanRun {
                tasks: 0..tasks,
                cost: t.steps as f64 * per_step * walkers,
            }],
        }
    }

    fn shareable(&self, stage: u32) -> bool {
        stage < self.stage() && self.inner.shareable(stage)
    }

    fn useful_members(&self, task: TaskId) -> usize {
        if task.stage < self.stage() {
            self.inner.useful_members(task)
        } else {
            1
        }
    }

    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        if task.stage < self.stage() {
            return self.inner.run(task, resume, cx);
        }
        let carry = self.carry()?;
        let t = settings(&self.spec);
        let key = Stage::Transc.streams(self.spec.seed, task.stage, 0);
        let walkers: Vec<usize> = match t.method {
            Method::ProductSpace => (0..t.walkers).collect(),
            _ => vec![task.index as usize],
        };
        let label = TaskLabel::new("transc".into());
        let resume = match resume {
            Some(bytes) => Some(label.resume::<WalkerSnap>(bytes)?),
            None => None,
        };
        let ended = match t.method {
            Method::Resample => resample(t, carry, key.stream(task.index), resume, cx)?,
            Method::StateJump => self.state_jump(t, carry, key.stream(task.index), resume, cx)?,
            Method::ProductSpace => self.product_space(t, carry, key, resume, cx)?,
        };
        let out = match ended {
            Ended::Finished(out) => out,
            Ended::Yielded(snap) => return Ok(Outcome::Yielded(label.snapshot(&snap)?)),
        };
        let first = walkers[0] as u64;
        let rows = walkers.len() as u64;
        let mut records = vec![
            Record {
                dataset: self.sets.state,
                first_row: first,
                rows,
                lane: None,
                values: Column::I64(out.states),
            },
            Record {
                dataset: self.sets.visits,
                first_row: first,
                rows,
                lane: None,
                values: Column::F64(out.visits),
            },
            Record {
                dataset: self.sets.moves,
                first_row: first,
                rows,
                lane: None,
                values: Column::F64(out.moves),
            },
            Record {
                dataset: self.sets.tau,
                first_row: first,
                rows,
                lane: None,
                values: Column::F64(out.taus),
            },
        ];
        if let Some(member) = self.sets.member {
            records.push(Record {
                dataset: member,
                first_row: first,
                rows,
                lane: None,
                values: Column::I64(out.members),
            });
        }
        cx.emit_all(records)?;
        Ok(Outcome::Done)
    }

    fn round(&self, stage: u32, store: &mut dyn Store) -> Result<crate::jobs::Decision, JobError> {
        self.inner.round(stage, store)
    }

    fn finish_stage(&self, stage: u32, store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        if stage + 1 < self.stage() {
            return self.inner.finish_stage(stage, store);
        }
        if stage + 1 == self.stage() {
            self.inner.finish_stage(stage, store)?;
            let carry = self.fit(store)?;
            return postcard::to_stdvec(&carry).map_err(|e| JobError::Other(e.to_string()));
        }
        self.conclude(store)?;
        Ok(Vec::new())
    }

    fn begin_stage(&self, stage: u32, carry: &[u8]) -> Result<(), JobError> {
        if stage < self.stage() {
            return self.inner.begin_stage(stage, carry);
        }
        let carry: Carry = postcard::from_bytes(carry)
            .map_err(|e| JobError::Other(format!("undecodable transc carry: {e}")))?;
        // Set once per process (a resumed run begins with it).
        let _ = self.carry.set(carry);
        Ok(())
    }

    fn size_hints(&self) -> crate::jobs::SizeHints {
        let mut hints = self.inner.size_hints();
        let t = settings(&self.spec);
        let tasks = self.plan(self.stage()).tasks();
        hints.task_runs += tasks;
        // A walker's state, position(s) and random stream, and a task's
        // bookkeeping.
        let dims: usize = self.spec.states.iter().map(|s| s.dim()).sum();
        hints.final_states += 256 * tasks + (t.walkers * (64 + 16 * dims)) as u64;
        // The carry the checkpoint keeps: a ratio per first-stage sample
        // (at most every stored one), each state's pseudo-prior and
        // proposal.
        let layout = self.inner.layout();
        let carry: u64 = self
            .spec
            .states
            .iter()
            .map(|st| {
                let d = st.dim() as u64;
                let samples = ["states", "replicates"]
                    .iter()
                    .filter_map(|g| layout.find(&format!("{g}/{}/chain", st.name)))
                    .map(|i| {
                        let decl = &layout.datasets[i];
                        let lanes: u64 = decl.row_shape[..decl.row_shape.len() - 1]
                            .iter()
                            .map(|&n| n as u64)
                            .product();
                        decl.final_rows().unwrap_or(0) * lanes
                    })
                    .sum::<u64>();
                8 * (samples + t.components as u64 * (d * d + d + 1) + d * d) + 64
            })
            .sum();
        hints.final_states += carry + (1 << 10);
        hints
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.inner.describe(out)?;
        let t = settings(&self.spec);
        let pseudo = if t.components == 1 {
            "Gaussian".to_string()
        } else {
            format!("{}-component Gaussian mixture", t.components)
        };
        writeln!(
            out,
            "transc    {} after the per-state stage: {} walkers × {} steps (burn {}, thin {}), \
             {pseudo} pseudo-priors from the {} samples",
            t.method.label(),
            t.walkers,
            t.steps,
            t.burn,
            t.thin,
            if t.auto_samples {
                "τ-thinned"
            } else {
                "stage's"
            }
        )
    }

    fn work(&self) -> (u64, &'static str) {
        let (units, name) = self.inner.work();
        let t = settings(&self.spec);
        (units + (t.walkers * t.steps) as u64, name)
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        self.inner.report(store, out)?;
        let r = self.conclude_read(store)?;
        write_table(out, &self.spec, &r)?;
        Ok(())
    }

    fn summary(
        &self,
        file: &dyn crate::output::Reader,
        options: &crate::jobs::summary::SummaryOptions,
    ) -> Result<Vec<crate::table::Table>, crate::jobs::summary::SummaryError> {
        self.summary_tables(file, options)
    }
}

impl TranscJob {
    /// The results as `finish_stage` wrote them.
    fn conclude_read(&self, store: &mut dyn Store) -> Result<Results, JobError> {
        let t = settings(&self.spec);
        let (w, k) = (t.walkers, self.spec.states.len());
        let visits = store.read_f64(self.sets.visits, 0..w as u64, None)?;
        let moves = store.read_f64(self.sets.moves, 0..w as u64, None)?;
        let taus = store.read_f64(self.sets.tau, 0..w as u64, None)?;
        Ok(Results::from_counts(t, k, &visits, &moves, &taus))
    }

    fn posteriors(&self) -> Result<Vec<Posterior>, TaskError> {
        self.spec
            .states
            .iter()
            .enumerate()
            .map(|(k, st)| {
                Posterior::from_spec(&st.name, self.spec.posterior(k))
                    .map_err(|e| TaskError::Failed(format!("transc: state `{}`: {e}", st.name)))
            })
            .collect()
    }
}
