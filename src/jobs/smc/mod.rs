//! `kind = "smc"`: tempered SMC by persistent sampling, with the evidence,
//! per state. One task is one state; when there are fewer states than
//! ranks, a group of ranks shares it through a [`Collective`] (SPMD): every
//! member runs the same algorithm on the same particles, moves its share of
//! them (over its threads) and gathers the rest, so that all hold every row
//! bit-exactly; weights, temperatures, resampling and adaptation are then
//! computed identically everywhere, in index order.
//!
//! Output, per state, in `/smc/<state>` (attributes `log_evidence`,
//! `log_evidence_err`, `iterations`): every particle kept (`particles`,
//! `log_likelihood`, `log_prior`, `iteration`), their final log weights at
//! β = 1 (`log_weights`), an equally weighted posterior draw of `total`
//! points (`posterior`), and per iteration `beta`, `log_z`, `ess`,
//! `acceptance`, `steps`. With several states, `/smc/state_probabilities`.

pub mod mutation;
pub mod persistent;
mod run;
pub mod spec;
mod summary;

use std::io::Write;
use std::sync::Arc;

pub use spec::Spec;
pub(crate) use spec::{resolve, RawSampler, RawState, StateKeys};

use self::mutation::TARGET_ACCEPTANCE;
use self::run::{prior_draws, run_state};
use crate::jobs::RunSpec;
use crate::jobs::{Job, JobError, Outcome, Plan, PlanRun, TaskContext, TaskError, TaskId};
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};

/// Rows per chunk of the datasets with a row per temperature.
const TEMPERATURES_PER_CHUNK: usize = 64;

/// Temperatures the size estimate assumes a run takes.
const ASSUMED_TEMPERATURES: usize = 20;
use crate::spec::NAME_MAX;
use spec::MutationKind;

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(SmcJob::new(spec))
}

#[derive(Debug, Clone, Copy)]
struct StateSets {
    particles: usize,
    log_likelihood: usize,
    log_prior: usize,
    iteration: usize,
    group: usize,
    log_weights: usize,
    posterior: usize,
    beta: usize,
    log_z: usize,
    ess: usize,
    acceptance: usize,
    steps: usize,
    /// Each group's log Z, written at the end.
    group_log_z: usize,
    /// (log Z, its standard error, iterations), written at the end.
    evidence: usize,
}

/// `/smc/state_probabilities`.
#[derive(Debug, Clone, Copy)]
struct ProbabilitySets {
    state: usize,
    probability: usize,
    error: usize,
}

pub struct SmcJob {
    spec: Arc<RunSpec>,
    layout: Layout,
    sets: Vec<StateSets>,
    probabilities: Option<ProbabilitySets>,
}

fn settings(spec: &RunSpec) -> &Spec {
    match &spec.sampler {
        crate::jobs::SamplerSpec::Smc(s) => s,
        _ => unreachable!("an smc job is built from an smc spec"),
    }
}

impl SmcJob {
    pub fn new(spec: Arc<RunSpec>) -> Self {
        let s = settings(&spec).clone();
        let mut layout = Layout::default();
        let mut sets = Vec::new();
        for st in &spec.states {
            let g = format!("smc/{}", st.name);
            let d = st.dim();
            layout.group(
                &g,
                vec![
                    ("state".into(), Attr::Str(st.name.clone())),
                    ("kind".into(), Attr::Str("smc".into())),
                    ("params".into(), Attr::Strs(st.params.clone())),
                    ("ndim".into(), Attr::I64(d as i64)),
                    ("particles".into(), Attr::U64(s.particles as u64)),
                    ("effective".into(), Attr::F64(s.effective)),
                    ("total".into(), Attr::U64(s.total as u64)),
                    ("groups".into(), Attr::U64(s.groups as u64)),
                ],
            );
            let grow = |name: &str, shape: Vec<usize>| {
                DatasetDecl::growing(format!("{g}/{name}"), Dtype::F64, shape)
            };
            let ints = |name: &str| DatasetDecl::growing(format!("{g}/{name}"), Dtype::I64, vec![]);
            // One row per temperature: tens of rows, not thousands.
            let per_temperature = |name: &str| {
                grow(name, vec![s.groups]).with_chunk_rows(TEMPERATURES_PER_CHUNK)
            };
            sets.push(StateSets {
                particles: layout.add(grow("particles", vec![d])),
                log_likelihood: layout.add(grow("log_likelihood", vec![])),
                log_prior: layout.add(grow("log_prior", vec![])),
                iteration: layout.add(ints("iteration")),
                group: layout.add(ints("group")),
                log_weights: layout.add(grow("log_weights", vec![])),
                posterior: layout.add(DatasetDecl::fixed(
                    format!("{g}/posterior"),
                    Dtype::F64,
                    vec![d],
                    s.total as u64,
                )),
                beta: layout.add(per_temperature("beta")),
                log_z: layout.add(per_temperature("log_z")),
                ess: layout.add(per_temperature("ess")),
                acceptance: layout.add(per_temperature("acceptance")),
                steps: layout.add(per_temperature("steps")),
                group_log_z: layout.add(DatasetDecl::fixed(
                    format!("{g}/group_log_z"),
                    Dtype::F64,
                    vec![],
                    s.groups as u64,
                )),
                evidence: layout.add(DatasetDecl::fixed(
                    format!("{g}/evidence"),
                    Dtype::F64,
                    vec![],
                    3,
                )),
            });
        }
        let probabilities = (spec.states.len() > 1).then(|| {
            let n = spec.states.len() as u64;
            let g = "smc/state_probabilities";
            layout.group(
                g,
                vec![(
                    "description".into(),
                    Attr::Str(
                        "p_k = Z_k / Σ_j Z_j from each state's evidence (equal prior odds); \
                         error by propagating the independent log Z errors"
                            .into(),
                    ),
                )],
            );
            ProbabilitySets {
                state: layout.add(DatasetDecl::fixed(
                    format!("{g}/state"),
                    Dtype::Str(NAME_MAX),
                    vec![],
                    n,
                )),
                probability: layout.add(DatasetDecl::fixed(
                    format!("{g}/probability"),
                    Dtype::F64,
                    vec![],
                    n,
                )),
                error: layout.add(DatasetDecl::fixed(
                    format!("{g}/error"),
                    Dtype::F64,
                    vec![],
                    n,
                )),
            }
        });
        Self {
            spec,
            layout,
            sets,
            probabilities,
        }
    }

    /// (log Z, error, iterations) of each state, from the store.
    fn evidences(&self, store: &mut dyn Store) -> Result<Vec<[f64; 3]>, JobError> {
        self.sets
            .iter()
            .map(|s| {
                let v = store.read_f64(s.evidence, 0..3, None)?;
                Ok([v[0], v[1], v[2]])
            })
            .collect()
    }
}

/// State probabilities from log evidences and their errors: p_k = Z_k/ΣZ,
/// with the delta-method error of independent log Z errors σ_k:
/// Var p_k = p_k² [(1 − p_k)² σ_k² + Σ_{j≠k} p_j² σ_j²].
pub fn state_probabilities(log_z: &[f64], err: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let total = crate::numeric::log_sum_exp(log_z.iter().copied());
    let p: Vec<f64> = log_z.iter().map(|z| (z - total).exp()).collect();
    let e = (0..p.len())
        .map(|k| {
            let var: f64 = (0..p.len())
                .map(|j| {
                    let c = if j == k { 1.0 - p[j] } else { p[j] };
                    c * c * err[j] * err[j]
                })
                .sum();
            p[k] * var.sqrt()
        })
        .collect();
    (p, e)
}

impl Job for SmcJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn plan(&self, _stage: u32) -> Plan {
        let s = settings(&self.spec);
        let runs = self
            .spec
            .states
            .iter()
            .enumerate()
            .map(|(k, st)| {
                let per_eval = self.spec.posterior(k).cost_us as f64 + 0.05 * st.dim() as f64;
                PlanRun {
                    tasks: k as u64..k as u64 + 1,
                    // About 20 temperatures of 2·dim steps each.
                    cost: (s.particles * 40 * st.dim()) as f64 * per_eval,
                }
            })
            .collect();
        Plan { runs }
    }

    fn shareable(&self, _stage: u32) -> bool {
        true
    }

    fn useful_members(&self, _task: TaskId) -> usize {
        settings(&self.spec).particles
    }

    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        run_state(self, task.index as usize, resume, cx)
    }

    fn size_hints(&self) -> crate::jobs::SizeHints {
        let s = settings(&self.spec);
        let tasks = self.plan(0).tasks();
        // The number of temperatures is the run's to find: the estimate
        // assumes as many as a typical run takes.
        let rows = (prior_draws(s) + ASSUMED_TEMPERATURES * s.particles) as u64;
        let mut growing_rows = Vec::new();
        for d in &self.layout.datasets {
            if d.final_rows().is_none() {
                let per_temperature = d.chunk_rows == TEMPERATURES_PER_CHUNK;
                let n = if per_temperature {
                    ASSUMED_TEMPERATURES as u64
                } else {
                    rows
                };
                growing_rows.push((d.path.clone(), n));
            }
        }
        crate::jobs::SizeHints {
            task_runs: tasks,
            final_states: tasks.saturating_mul(1 << 10),
            growing_rows,
            assumes: Some(format!("{ASSUMED_TEMPERATURES} temperatures")),
        }
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = settings(&self.spec);
        writeln!(
            out,
            "kind      smc (persistent sampling: tempered SMC reweighting every particle kept, \
             with the evidence)"
        )?;
        writeln!(
            out,
            "plan      {} prior draws, then {} particles per temperature, next β where the ESS \
             over all particles kept is {}; stop at β = 1 once that ESS reaches {}",
            prior_draws(s),
            s.particles,
            s.effective,
            s.total
        )?;
        writeln!(
            out,
            "groups    {} independent runs sharing those numbers; log Z is the mean of theirs, {}",
            s.groups,
            if s.groups > 1 {
                "its error their standard error"
            } else {
                "its error a bootstrap over families (one group: not calibrated)"
            }
        )?;
        writeln!(
            out,
            "mutation  {} with the particles' covariance, step adapted to acceptance {}, at most \
             {} × dim steps per temperature",
            match s.mutation.kind {
                MutationKind::Pcn => "preconditioned Crank–Nicolson",
                MutationKind::Rwm => "random-walk Metropolis",
            },
            TARGET_ACCEPTANCE,
            s.mutation.max_steps
        )?;
        writeln!(out, "states")?;
        for (k, st) in self.spec.states.iter().enumerate() {
            writeln!(
                out,
                "  {:<16} dim {:>3}  model {}",
                st.name,
                st.dim(),
                self.spec.posterior(k).model_label()
            )?;
        }
        Ok(())
    }

    fn work(&self) -> (u64, &'static str) {
        (self.spec.states.len() as u64, "states")
    }

    fn finish_stage(&self, _stage: u32, store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        let ev = self.evidences(store)?;
        for (st, e) in self.spec.states.iter().zip(&ev) {
            let g = format!("smc/{}", st.name);
            store.set_attr(&g, "log_evidence", Attr::F64(e[0]))?;
            store.set_attr(&g, "log_evidence_err", Attr::F64(e[1]))?;
            store.set_attr(&g, "iterations", Attr::U64(e[2] as u64))?;
        }
        if let Some(p) = self.probabilities {
            let z: Vec<f64> = ev.iter().map(|e| e[0]).collect();
            let err: Vec<f64> = ev.iter().map(|e| e[1]).collect();
            let (prob, perr) = state_probabilities(&z, &err);
            let n = prob.len() as u64;
            let rec = |dataset, values| Record {
                dataset,
                first_row: 0,
                rows: n,
                lane: None,
                values,
            };
            let names = self.spec.states.iter().map(|s| s.name.clone()).collect();
            store.write(rec(p.state, Column::Str(names)))?;
            store.write(rec(p.probability, Column::F64(prob)))?;
            store.write(rec(p.error, Column::F64(perr)))?;
        }
        Ok(Vec::new())
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        let ev = self.evidences(store)?;
        writeln!(
            out,
            "{:<16} {:>14} {:>10} {:>10}",
            "state", "log Z", "± err", "iterations"
        )?;
        for (st, e) in self.spec.states.iter().zip(&ev) {
            writeln!(
                out,
                "{:<16} {:>14.6} {:>10.6} {:>10}",
                st.name, e[0], e[1], e[2]
            )?;
        }
        if self.spec.states.len() > 1 {
            let z: Vec<f64> = ev.iter().map(|e| e[0]).collect();
            let err: Vec<f64> = ev.iter().map(|e| e[1]).collect();
            let (p, perr) = state_probabilities(&z, &err);
            writeln!(out, "{:<16} {:>14} {:>10}", "state", "probability", "± err")?;
            for ((st, p), e) in self.spec.states.iter().zip(p).zip(perr) {
                writeln!(out, "{:<16} {:>14.6} {:>10.6}", st.name, p, e)?;
            }
        }
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

#[cfg(test)]
mod tests;
