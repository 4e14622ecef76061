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

pub mod pseudo;
mod spec;
mod summary;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::sync::{Arc, OnceLock};

use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub(crate) use spec::{resolve, FOLLOWS};
pub use spec::{Method, Spec, TranscSpec};

use self::pseudo::PseudoPrior;
use crate::jobs::Stage;
use crate::jobs::{Job, JobError, Outcome, Plan, PlanRun, TaskContext, TaskError, TaskId};
use crate::jobs::{RunSpec, StageSpec};
use crate::model::Posterior;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};
use crate::seed::{Stream, StreamKey};

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

/// What rank 0 hands every rank for the trans-conceptual stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Carry {
    pseudo: Vec<PseudoPrior>,
    /// Resample: per state, log p − log q of each member (row-major over
    /// the stored rows kept, then walkers).
    ratios: Vec<Vec<f64>>,
    /// State-jump: per state, the Cholesky factor of the samples'
    /// covariance scaled by 2.38/√d (the within-state proposal).
    proposals: Vec<Vec<f64>>,
    /// Per state: (burn rows, thin, members) of the samples used.
    selection: Vec<(u64, u64, u64)>,
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
            // `resolve` refuses [transc] after smc.
            crate::jobs::SamplerSpec::Smc(_) => 0,
        }
    }

    /// Rank 0, after the per-state stage: reads each state's samples, fits
    /// its pseudo-prior, and builds the carry.
    fn fit(&self, store: &mut dyn Store) -> Result<Carry, JobError> {
        let t = settings(&self.spec);
        let mut carry = Carry {
            pseudo: Vec::new(),
            ratios: Vec::new(),
            proposals: Vec::new(),
            selection: Vec::new(),
        };
        for (k, st) in self.spec.states.iter().enumerate() {
            let d = st.dim();
            let (chain, log_prob) = self.sets.samples[k];
            let rows = store.rows_written(chain);
            let all = store.read_f64(chain, 0..rows, None)?;
            let lps = store.read_f64(log_prob, 0..rows, None)?;
            let walkers = lps.len() / rows.max(1) as usize;
            let (burn, thin) = if t.auto_samples {
                auto_selection(&all, rows as usize, walkers, d)
            } else {
                (self.stage_burn_rows(k).min(rows.saturating_sub(1)), 1)
            };
            let mut xs = Vec::new();
            let mut lp = Vec::new();
            for r in (burn..rows).step_by(thin as usize) {
                let r = r as usize;
                xs.extend_from_slice(&all[r * walkers * d..(r + 1) * walkers * d]);
                lp.extend_from_slice(&lps[r * walkers..(r + 1) * walkers]);
            }
            let fail =
                |why: String| JobError::Other(format!("state `{}`: pseudo-prior: {why}", st.name));
            // Task 0 is the walkers'; the fit of state k's pseudo-prior
            // draws from task 1 + k.
            let mut rng = Stage::Transc
                .streams(self.spec.seed, self.stage(), 1 + k as u64)
                .stream(0);
            let q = PseudoPrior::fit(&xs, d, t.components, &mut rng).map_err(fail)?;
            if t.method == Method::Resample {
                carry.ratios.push(
                    xs.chunks(d)
                        .zip(&lp)
                        .map(|(x, lp)| lp - q.log_density(x))
                        .collect(),
                );
            }
            if t.method == Method::StateJump {
                let g = PseudoPrior::fit(&xs, d, 1, &mut rng).map_err(fail)?;
                let s = 2.38 / (d as f64).sqrt();
                carry
                    .proposals
                    .push(g.components[0].chol().iter().map(|v| v * s).collect());
            }
            let (wi, mi, ci) = self.sets.pseudo[k];
            let n = q.components.len() as u64;
            let col = |f: &dyn Fn(&pseudo::Component) -> Vec<f64>| {
                Column::F64(q.components.iter().flat_map(f).collect())
            };
            for (dataset, values) in [
                (wi, col(&|c| vec![c.weight])),
                (mi, col(&|c| c.mean.clone())),
                (ci, col(&|c| c.cov.clone())),
            ] {
                store.write(Record {
                    dataset,
                    first_row: 0,
                    rows: n,
                    lane: None,
                    values,
                })?;
            }
            let group = format!("transc/pseudo_prior/{}", st.name);
            store.set_attr(&group, "burn_rows", Attr::U64(burn))?;
            store.set_attr(&group, "thin", Attr::U64(thin))?;
            store.set_attr(&group, "members", Attr::U64(lp.len() as u64))?;
            carry.selection.push((burn, thin, lp.len() as u64));
            carry.pseudo.push(q);
        }
        Ok(carry)
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

/// How the error of the state probabilities is computed, per method.
fn error_method(method: Method) -> &'static str {
    match method {
        Method::ProductSpace => {
            "batch means: the ensemble's share of visits in each of 20 batches of its steps \
             after burn-in; standard deviation of the batch means / √20"
        }
        _ => {
            "across walkers: each walker is an independent chain; standard deviation of the \
             walkers' shares of visits / √walkers"
        }
    }
}

/// burn = 2·max τ and thin = ½·min τ (at least 1) in stored rows, τ per
/// parameter over the walkers (pyTransC's `auto_thin`).
fn auto_selection(all: &[f64], rows: usize, walkers: usize, d: usize) -> (u64, u64) {
    let taus: Vec<f64> = (0..d)
        .map(|j| {
            let series: Vec<Vec<f64>> = (0..walkers)
                .map(|w| (0..rows).map(|r| all[(r * walkers + w) * d + j]).collect())
                .collect();
            crate::diag::integrated_time(&series)
        })
        .filter(|t| t.is_finite())
        .collect();
    if taus.is_empty() {
        return (0, 1);
    }
    let max = taus.iter().copied().fold(0.0, f64::max);
    let min = taus.iter().copied().fold(f64::INFINITY, f64::min);
    let burn = ((2.0 * max).ceil() as u64).min(rows.saturating_sub(2) as u64);
    let thin = ((0.5 * min).floor() as u64).max(1);
    (burn, thin)
}

/// The state probabilities and what goes with them.
#[derive(Debug, Clone)]
pub struct Results {
    pub probability: Vec<f64>,
    pub probability_err: Vec<f64>,
    /// log Z_k − log Z_0 (from the probabilities and the state priors).
    pub log_evidence: Vec<f64>,
    pub log_evidence_err: Vec<f64>,
    /// Per state: accepted / proposed jumps out of it.
    pub between: Vec<f64>,
    /// Per state: accepted / proposed moves within it (state-jump).
    pub within: Vec<f64>,
    /// τ of the state indicator (mean over walkers; the ensemble's for
    /// product-space), in steps.
    pub tau: f64,
}

impl Results {
    /// From the walkers' counts: `visits` (walkers × batches × k) and
    /// `moves` (walkers × k × 4: between proposed, accepted, within
    /// proposed, accepted).
    pub fn from_counts(
        t: &TranscSpec,
        k: usize,
        visits: &[f64],
        moves: &[f64],
        taus: &[f64],
    ) -> Self {
        let w = t.walkers;
        let share = |cells: &mut dyn Iterator<Item = usize>| -> Vec<f64> {
            let mut counts = vec![0.0; k];
            for cell in cells {
                for s in 0..k {
                    counts[s] += visits[cell * k + s];
                }
            }
            let total: f64 = counts.iter().sum();
            counts.iter().map(|c| c / total.max(1.0)).collect()
        };
        // Per unit (a walker, or a batch of the ensemble): its shares.
        let units: Vec<Vec<f64>> = match t.method {
            Method::ProductSpace => (0..BATCHES)
                .map(|b| share(&mut (0..w).map(|wi| wi * BATCHES + b)))
                .collect(),
            _ => (0..w)
                .map(|wi| share(&mut (0..BATCHES).map(|b| wi * BATCHES + b)))
                .collect(),
        };
        let n = units.len() as f64;
        let probability: Vec<f64> = share(&mut (0..w * BATCHES));
        let probability_err: Vec<f64> = (0..k)
            .map(|s| {
                let mean = units.iter().map(|u| u[s]).sum::<f64>() / n;
                let var = units.iter().map(|u| (u[s] - mean).powi(2)).sum::<f64>() / (n - 1.0);
                (var / n).sqrt()
            })
            .collect();
        let ln_ratio = |s: usize| (probability[s] / t.state_priors[s]).ln();
        let log_evidence = (0..k).map(|s| ln_ratio(s) - ln_ratio(0)).collect();
        // The delta method per unit, so that the (negative) covariance of
        // p_s and p_0, whose shares sum to one, is kept:
        // d = u_s/p_s − u_0/p_0, error sd(d)/√n.
        let log_evidence_err = (0..k)
            .map(|s| {
                if s == 0 {
                    return 0.0;
                }
                let d: Vec<f64> = units
                    .iter()
                    .map(|u| u[s] / probability[s] - u[0] / probability[0])
                    .collect();
                let mean = d.iter().sum::<f64>() / n;
                let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
                (var / n).sqrt()
            })
            .collect();
        let rate = |col: usize| -> Vec<f64> {
            (0..k)
                .map(|s| {
                    let (mut p, mut a) = (0.0, 0.0);
                    for wi in 0..w {
                        p += moves[(wi * k + s) * 4 + col];
                        a += moves[(wi * k + s) * 4 + col + 1];
                    }
                    if p > 0.0 {
                        a / p
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        };
        let finite: Vec<f64> = taus.iter().copied().filter(|t| t.is_finite()).collect();
        Self {
            probability,
            probability_err,
            log_evidence,
            log_evidence_err,
            between: rate(0),
            within: rate(2),
            tau: finite.iter().sum::<f64>() / finite.len().max(1) as f64,
        }
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
        let resume = match resume {
            Some(bytes) => Some(
                postcard::from_bytes::<WalkerSnap>(bytes)
                    .map_err(|e| TaskError::Failed(format!("transc: undecodable snapshot: {e}")))?,
            ),
            None => None,
        };
        let ended = match t.method {
            Method::Resample => resample(t, carry, key.stream(task.index), resume, cx)?,
            Method::StateJump => self.state_jump(t, carry, key.stream(task.index), resume, cx)?,
            Method::ProductSpace => self.product_space(t, carry, key, resume, cx)?,
        };
        let out = match ended {
            Ended::Finished(out) => out,
            Ended::Yielded(snap) => {
                let bytes = postcard::to_stdvec(&snap)
                    .map_err(|e| TaskError::Failed(format!("transc: cannot snapshot: {e}")))?;
                return Ok(Outcome::Yielded(bytes));
            }
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

    fn state_jump(
        &self,
        t: &TranscSpec,
        carry: &Carry,
        mut rng: Stream,
        resume: Option<WalkerSnap>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Ended, TaskError> {
        let posts = self.posteriors()?;
        let k = posts.len();
        let eval = |s: usize, x: &[f64], cx: &mut TaskContext<'_>| -> Result<f64, TaskError> {
            cx.evaluations += 1;
            let v = posts[s].log_prob(x).map_err(|e| {
                TaskError::Failed(format!(
                    "transc: state `{}`: evaluation failed at {x:?} (seed {}): {e}",
                    self.spec.states[s].name, self.spec.seed
                ))
            })?;
            Ok(if v.is_nan() { f64::NEG_INFINITY } else { v })
        };
        let (first, mut state, mut x, mut lp, mut rec) = match resume {
            Some(WalkerSnap::StateJump {
                step,
                state,
                x,
                lp,
                rng: r,
                counts,
            }) => {
                rng = r;
                (step, state, x, lp, Recorder::resumed(t, k, counts))
            }
            Some(_) => {
                return Err(TaskError::Failed(
                    "transc: a snapshot of another method".into(),
                ))
            }
            None => {
                let state = pick(&mut rng, &t.state_priors);
                let mut x = vec![0.0; posts[state].dim()];
                let mut lp = f64::NEG_INFINITY;
                for _ in 0..START_TRIES {
                    carry.pseudo[state].sample(&mut rng, &mut x);
                    lp = eval(state, &x, cx)?;
                    if lp.is_finite() {
                        break;
                    }
                }
                if !lp.is_finite() {
                    return Err(TaskError::Failed(format!(
                        "transc: state `{}`: no draw of its pseudo-prior in {START_TRIES} has a \
                         finite posterior",
                        self.spec.states[state].name
                    )));
                }
                (0, state, x, lp, Recorder::new(t, k))
            }
        };
        let mut y = Vec::new();
        for step in first..t.steps {
            if cx.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if cx.pause_requested() {
                return Ok(Ended::Yielded(WalkerSnap::StateJump {
                    step,
                    state,
                    x,
                    lp,
                    rng,
                    counts: rec.counts(),
                }));
            }
            if rng.random::<f64>() < t.prob_state {
                let to = pick(&mut rng, &t.state_weights[state]);
                y.resize(posts[to].dim(), 0.0);
                carry.pseudo[to].sample(&mut rng, &mut y);
                let lq = eval(to, &y, cx)?;
                let log_alpha = lq - lp + carry.pseudo[state].log_density(&x)
                    - carry.pseudo[to].log_density(&y)
                    + jump_bias(t, state, to);
                let accept = rng.random::<f64>().ln() < log_alpha;
                rec.jump(state, accept);
                if accept {
                    state = to;
                    std::mem::swap(&mut x, &mut y);
                    lp = lq;
                }
            } else {
                let l = &carry.proposals[state];
                let d = x.len();
                let e: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
                y.clear();
                y.extend((0..d).map(|i| x[i] + (0..=i).map(|j| l[i * d + j] * e[j]).sum::<f64>()));
                let lq = eval(state, &y, cx)?;
                let accept = rng.random::<f64>().ln() < lq - lp;
                rec.within(state, accept);
                if accept {
                    std::mem::swap(&mut x, &mut y);
                    lp = lq;
                }
            }
            rec.visit(step, state, 0);
            cx.add_progress(1);
        }
        Ok(Ended::Finished(rec.finish()))
    }

    fn product_space(
        &self,
        t: &TranscSpec,
        carry: &Carry,
        key: StreamKey,
        resume: Option<WalkerSnap>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Ended, TaskError> {
        let posts = self.posteriors()?;
        let k = posts.len();
        let dims: Vec<usize> = posts.iter().map(Posterior::dim).collect();
        let offsets: Vec<usize> = dims
            .iter()
            .scan(1, |o, d| {
                let here = *o;
                *o += d;
                Some(here)
            })
            .collect();
        let dim = 1 + dims.iter().sum::<usize>();
        let n = t.walkers;
        let ln_prior: Vec<f64> = t.state_priors.iter().map(|p| p.ln()).collect();
        let log_pi = |x: &[f64]| -> Result<(f64, u64), String> {
            if !(-0.5..k as f64 - 0.5).contains(&x[0]) {
                return Ok((f64::NEG_INFINITY, 0));
            }
            let s = x[0].round_ties_even().clamp(0.0, (k - 1) as f64) as usize;
            let mut total = ln_prior[s];
            for j in 0..k {
                let m = &x[offsets[j]..offsets[j] + dims[j]];
                if j == s {
                    let v = posts[j].log_prob(m).map_err(|e| {
                        format!(
                            "state `{}`: evaluation failed at {m:?}: {e}",
                            self.spec.states[j].name
                        )
                    })?;
                    total += if v.is_nan() { f64::NEG_INFINITY } else { v };
                } else {
                    total += carry.pseudo[j].log_density(m);
                }
            }
            Ok((total, 1))
        };
        let fail = |e: String| {
            TaskError::Failed(format!(
                "transc product-space (seed {}): {e}",
                self.spec.seed
            ))
        };
        let (first, mut pos, mut lps, mut streams, mut recs) = match resume {
            Some(WalkerSnap::ProductSpace {
                step,
                pos,
                lps,
                streams,
                counts,
            }) => {
                let recs: Vec<Recorder> = counts
                    .into_iter()
                    .map(|c| Recorder::resumed(t, k, c))
                    .collect();
                (step, pos, lps, streams, recs)
            }
            Some(_) => {
                return Err(TaskError::Failed(
                    "transc: a snapshot of another method".into(),
                ))
            }
            None => {
                let mut streams: Vec<Stream> = (0..n).map(|i| key.stream(i as u64)).collect();
                let mut pos = vec![0.0; n * dim];
                let mut lps = vec![0.0; n];
                for (i, (x, rng)) in pos.chunks_mut(dim).zip(&mut streams).enumerate() {
                    let mut tries = 0;
                    loop {
                        x[0] = rng.random::<f64>() * k as f64 - 0.5;
                        for j in 0..k {
                            carry.pseudo[j].sample(rng, &mut x[offsets[j]..offsets[j] + dims[j]]);
                        }
                        lps[i] = log_pi(x).map_err(fail)?.0;
                        cx.evaluations += 1;
                        tries += 1;
                        if lps[i].is_finite() || tries >= START_TRIES {
                            break;
                        }
                    }
                    if !lps[i].is_finite() {
                        return Err(fail(format!("walker {i}: no start with a finite density")));
                    }
                }
                let recs = (0..n).map(|_| Recorder::new(t, k)).collect();
                (0, pos, lps, streams, recs)
            }
        };
        let half = n / 2;
        const A: f64 = 2.0;
        for step in first..t.steps {
            if cx.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if cx.pause_requested() {
                return Ok(Ended::Yielded(WalkerSnap::ProductSpace {
                    step,
                    pos,
                    lps,
                    streams,
                    counts: recs.iter().map(Recorder::counts).collect(),
                }));
            }
            for h in 0..2 {
                let (mine, other) = if h == 0 {
                    (0..half, half..n)
                } else {
                    (half..n, 0..half)
                };
                let others: Vec<f64> = pos[other.start * dim..other.end * dim].to_vec();
                // Per walker: where it ends, its density, whether it moved,
                // the state proposed, and its evaluations.
                type Moved = (Vec<f64>, f64, bool, usize, u64);
                let results: Vec<Result<Moved, String>> = pos[mine.start * dim..mine.end * dim]
                    .par_chunks(dim)
                    .zip(&mut streams[mine.clone()])
                    .zip(&lps[mine.clone()])
                    .map(|((x, rng), &lp)| {
                        let j = rng.random_range(0..other.len());
                        let c = &others[j * dim..(j + 1) * dim];
                        let z = ((A - 1.0) * rng.random::<f64>() + 1.0).powi(2) / A;
                        let y: Vec<f64> =
                            x.iter().zip(c).map(|(xi, ci)| ci + z * (xi - ci)).collect();
                        let (lq, evals) = log_pi(&y)?;
                        let log_alpha = (dim as f64 - 1.0) * z.ln() + lq - lp;
                        let accept = rng.random::<f64>().ln() < log_alpha;
                        let proposed = state_of(y[0], k);
                        Ok(if accept {
                            (y, lq, true, proposed, evals)
                        } else {
                            (x.to_vec(), lp, false, proposed, evals)
                        })
                    })
                    .collect();
                for (off, r) in results.into_iter().enumerate() {
                    let (y, lq, accepted, to, evals) = r.map_err(&fail)?;
                    let i = mine.start + off;
                    cx.evaluations += evals;
                    let from = state_of(pos[i * dim], k);
                    if from != to {
                        recs[i].jump(from, accepted);
                    } else {
                        recs[i].within(from, accepted);
                    }
                    pos[i * dim..(i + 1) * dim].copy_from_slice(&y);
                    lps[i] = lq;
                }
            }
            let batch = batch_of(t, step);
            for (i, rec) in recs.iter_mut().enumerate() {
                rec.visit_batch(step, state_of(pos[i * dim], k), 0, batch);
            }
            cx.add_progress(n as u64);
        }
        // τ of the state indicator over the whole ensemble (emcee's estimator).
        let series: Vec<Vec<f64>> = recs
            .iter()
            .map(|r| r.states.iter().map(|&s| s as f64).collect())
            .collect();
        let tau = crate::diag::integrated_time(&series) * t.thin as f64;
        let mut out = WalkerOutput::default();
        for r in recs {
            let mut o = r.finish();
            o.taus = vec![tau];
            out.append(o);
        }
        Ok(Ended::Finished(out))
    }
}

/// The ensemble resampler: each walker moves between (state, member)
/// pairs of the stored samples; it needs only the stored values.
fn resample(
    t: &TranscSpec,
    carry: &Carry,
    mut rng: Stream,
    resume: Option<WalkerSnap>,
    cx: &mut TaskContext<'_>,
) -> Result<Ended, TaskError> {
    /// Steps between looks at the pause and cancel flags, and progress.
    const EVERY: usize = 1024;
    let k = carry.ratios.len();
    let bias: Vec<f64> = (0..k * k).map(|ij| jump_bias(t, ij / k, ij % k)).collect();
    let (first, mut state, mut member, mut rec) = match resume {
        Some(WalkerSnap::Resample {
            step,
            state,
            member,
            rng: r,
            counts,
        }) => {
            rng = r;
            (step, state, member, Recorder::resumed(t, k, counts))
        }
        Some(_) => {
            return Err(TaskError::Failed(
                "transc: a snapshot of another method".into(),
            ))
        }
        None => {
            let state = pick(&mut rng, &t.state_priors);
            let member = rng.random_range(0..carry.ratios[state].len());
            (0, state, member, Recorder::new(t, k))
        }
    };
    for step in first..t.steps {
        if step > first && (step - first).is_multiple_of(EVERY) {
            cx.add_progress(EVERY as u64);
            if cx.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if cx.pause_requested() {
                return Ok(Ended::Yielded(WalkerSnap::Resample {
                    step,
                    state,
                    member,
                    rng,
                    counts: rec.counts(),
                }));
            }
        }
        let to = pick(&mut rng, &t.state_weights[state]);
        let i = rng.random_range(0..carry.ratios[to].len());
        let log_alpha = carry.ratios[to][i] - carry.ratios[state][member] + bias[state * k + to];
        let accept = rng.random::<f64>().ln() < log_alpha;
        rec.jump(state, accept);
        if accept {
            state = to;
            member = i;
        }
        rec.visit(step, state, member);
    }
    cx.add_progress(((t.steps - first) % EVERY) as u64);
    Ok(Ended::Finished(rec.finish()))
}

/// A walker (or the product-space ensemble) paused at a step boundary.
#[derive(Debug, Serialize, Deserialize)]
enum WalkerSnap {
    Resample {
        step: usize,
        state: usize,
        member: usize,
        rng: Stream,
        counts: Counts,
    },
    StateJump {
        step: usize,
        state: usize,
        x: Vec<f64>,
        lp: f64,
        rng: Stream,
        counts: Counts,
    },
    ProductSpace {
        step: usize,
        pos: Vec<f64>,
        lps: Vec<f64>,
        streams: Vec<Stream>,
        counts: Vec<Counts>,
    },
}

/// How a walker's run ended: at its last step, or paused.
enum Ended {
    Finished(WalkerOutput),
    Yielded(WalkerSnap),
}

/// What a [`Recorder`] has counted, as plain data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Counts {
    states: Vec<i64>,
    members: Vec<i64>,
    visits: Vec<f64>,
    moves: Vec<f64>,
}

/// log w[to][from] − log w[from][to] + log P(to) − log P(from).
fn jump_bias(t: &TranscSpec, from: usize, to: usize) -> f64 {
    (t.state_weights[to][from] / t.state_weights[from][to]).ln()
        + (t.state_priors[to] / t.state_priors[from]).ln()
}

fn state_of(k_cont: f64, k: usize) -> usize {
    k_cont.round_ties_even().clamp(0.0, (k - 1) as f64) as usize
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batch_edges_agree_with_batch_of() {
        for (steps, burn) in [(100, 25), (37, 0), (1000, 999), (20, 0), (10_000, 2_500)] {
            let mut t = crate::jobs::transc::spec::tests_spec();
            t.steps = steps;
            t.burn = burn;
            for step in burn..steps {
                let b = batch_of(&t, step);
                assert!(batch_edge(&t, b) <= step, "{steps} {burn} {step}");
                if b + 1 < BATCHES {
                    assert!(step < batch_edge(&t, b + 1), "{steps} {burn} {step}");
                }
            }
        }
    }
}

/// The first step of batch `b`: batch_of(t, s) = b exactly for
/// batch_edge(t, b) ≤ s < batch_edge(t, b + 1).
fn batch_edge(t: &TranscSpec, b: usize) -> usize {
    t.burn + (b * (t.steps - t.burn)).div_ceil(BATCHES)
}

fn batch_of(t: &TranscSpec, step: usize) -> usize {
    (step.saturating_sub(t.burn) * BATCHES / (t.steps - t.burn)).min(BATCHES - 1)
}

/// An index drawn with the given probabilities (which sum to one).
fn pick(rng: &mut Stream, probabilities: &[f64]) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, p) in probabilities.iter().enumerate() {
        acc += p;
        if u < acc && *p > 0.0 {
            return i;
        }
    }
    probabilities.iter().rposition(|p| *p > 0.0).unwrap_or(0)
}

/// What the walkers of a task emit.
#[derive(Debug, Default)]
struct WalkerOutput {
    states: Vec<i64>,
    members: Vec<i64>,
    visits: Vec<f64>,
    moves: Vec<f64>,
    taus: Vec<f64>,
}

impl WalkerOutput {
    fn append(&mut self, o: WalkerOutput) {
        self.states.extend(o.states);
        self.members.extend(o.members);
        self.visits.extend(o.visits);
        self.moves.extend(o.moves);
        self.taus.extend(o.taus);
    }
}

/// One walker's record: its stored states (and members), visits after
/// burn-in per batch, and moves per state.
struct Recorder<'a> {
    t: &'a TranscSpec,
    k: usize,
    /// The batch of the last step visited, and the first step of the next.
    batch: usize,
    next_edge: usize,
    states: Vec<i64>,
    members: Vec<i64>,
    visits: Vec<f64>,
    moves: Vec<f64>,
}

impl<'a> Recorder<'a> {
    fn new(t: &'a TranscSpec, k: usize) -> Self {
        let stored = (t.steps - t.burn) / t.thin;
        Self {
            t,
            k,
            batch: 0,
            next_edge: batch_edge(t, 1),
            states: Vec::with_capacity(stored),
            members: Vec::new(),
            visits: vec![0.0; BATCHES * k],
            moves: vec![0.0; k * 4],
        }
    }

    fn resumed(t: &'a TranscSpec, k: usize, c: Counts) -> Self {
        Self {
            t,
            k,
            batch: 0,
            next_edge: batch_edge(t, 1),
            states: c.states,
            members: c.members,
            visits: c.visits,
            moves: c.moves,
        }
    }

    fn counts(&self) -> Counts {
        Counts {
            states: self.states.clone(),
            members: self.members.clone(),
            visits: self.visits.clone(),
            moves: self.moves.clone(),
        }
    }

    fn jump(&mut self, from: usize, accepted: bool) {
        self.moves[from * 4] += 1.0;
        self.moves[from * 4 + 1] += f64::from(u8::from(accepted));
    }

    fn within(&mut self, from: usize, accepted: bool) {
        self.moves[from * 4 + 2] += 1.0;
        self.moves[from * 4 + 3] += f64::from(u8::from(accepted));
    }

    fn visit(&mut self, step: usize, state: usize, member: usize) {
        // batch_of(t, step), without a division per step: steps come in order.
        let t = self.t;
        if step < t.burn {
            return;
        }
        while self.batch + 1 < BATCHES && step >= self.next_edge {
            self.batch += 1;
            self.next_edge = batch_edge(t, self.batch + 1);
        }
        let batch = self.batch;
        self.visit_batch(step, state, member, batch);
    }

    fn visit_batch(&mut self, step: usize, state: usize, member: usize, batch: usize) {
        let t = self.t;
        if step < t.burn {
            return;
        }
        self.visits[batch * self.k + state] += 1.0;
        let stored = (t.steps - t.burn) / t.thin;
        let kept = t.thin == 1 || (step + 1 - t.burn).is_multiple_of(t.thin);
        if kept && self.states.len() < stored {
            self.states.push(state as i64);
            if t.method == Method::Resample {
                self.members.push(member as i64);
            }
        }
    }

    fn finish(self) -> WalkerOutput {
        let tau = if self.t.method == Method::ProductSpace {
            f64::NAN
        } else {
            let series: Vec<f64> = self.states.iter().map(|&s| s as f64).collect();
            crate::diag::integrated_time(&[series]) * self.t.thin as f64
        };
        WalkerOutput {
            states: self.states,
            members: self.members,
            visits: self.visits,
            moves: self.moves,
            taus: vec![tau],
        }
    }
}

/// The closing table: state, dimension, probability ± error, log evidence
/// relative to the first state, between-state acceptance, and τ.
pub fn write_table(out: &mut dyn Write, spec: &RunSpec, r: &Results) -> std::io::Result<()> {
    let t = settings(spec);
    writeln!(
        out,
        "trans-conceptual ({}, {} walkers × {} steps, burn {}): state probabilities, τ of the \
         state indicator {:.1} steps",
        t.method.label(),
        t.walkers,
        t.steps,
        t.burn,
        r.tau
    )?;
    writeln!(
        out,
        "  {:<16} {:>4} {:>22} {:>24} {:>10}",
        "state", "dim", "probability ± error", "log Z − log Z[0] ± err", "acc. jump"
    )?;
    for (s, st) in spec.states.iter().enumerate() {
        writeln!(
            out,
            "  {:<16} {:>4} {:>12.4} ± {:<7.4} {:>12.4} ± {:<9.4} {:>10.3}",
            st.name,
            st.dim(),
            r.probability[s],
            r.probability_err[s],
            r.log_evidence[s],
            r.log_evidence_err[s],
            r.between[s]
        )?;
    }
    writeln!(out, "  error: {}", error_method(t.method))
}
