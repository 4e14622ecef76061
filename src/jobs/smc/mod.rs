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
pub mod spec;

use std::io::Write;
use std::sync::Arc;

use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub(crate) use spec::resolve;
pub use spec::Spec;

use self::mutation::{Kernel, TARGET_ACCEPTANCE};
use self::persistent::History;
use crate::jobs::ensemble::sampler::split_range;
use crate::jobs::{Job, JobError, Outcome, Plan, PlanRun, TaskContext, TaskError, TaskId, Vote};
use crate::model::Posterior;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store};
use crate::seed::TaskKey;
use crate::spec::{MutationKind, RunSpec, NAME_MAX};

/// The stream domain of this kind, or-ed with the iteration (shifted past
/// the domain's bits): SMC never shares a stream with another kind's.
const SMC_DOMAIN: u64 = (1 << 63) | 3;
/// The particle index of an iteration's shared stream (resampling).
const SHARED_STREAM: u64 = u64::MAX;
/// Fixed-point sweeps of the final refit of log Z.
const REFIT_SWEEPS: usize = 200;
/// More iterations than this is a run that cannot reach β = 1.
const MAX_ITERATIONS: usize = 10_000;

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(SmcJob::new(spec))
}

#[derive(Debug, Clone, Copy)]
struct StateSets {
    particles: usize,
    log_likelihood: usize,
    log_prior: usize,
    iteration: usize,
    log_weights: usize,
    posterior: usize,
    beta: usize,
    log_z: usize,
    ess: usize,
    acceptance: usize,
    steps: usize,
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

/// Prior draws at β = 0: enough that their ESS reaches the target
/// (pocoMC's rule, twice the target in whole multiples of `particles`).
fn prior_draws(s: &Spec) -> usize {
    2 * (s.effective / s.particles as f64).ceil().max(1.0) as usize * s.particles
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
                ],
            );
            let grow = |name: &str, shape: Vec<usize>| {
                DatasetDecl::growing(format!("{g}/{name}"), Dtype::F64, shape)
            };
            sets.push(StateSets {
                particles: layout.add(grow("particles", vec![d])),
                log_likelihood: layout.add(grow("log_likelihood", vec![])),
                log_prior: layout.add(grow("log_prior", vec![])),
                iteration: layout.add(DatasetDecl::growing(
                    format!("{g}/iteration"),
                    Dtype::I64,
                    vec![],
                )),
                log_weights: layout.add(grow("log_weights", vec![])),
                posterior: layout.add(DatasetDecl::fixed(
                    format!("{g}/posterior"),
                    Dtype::F64,
                    vec![d],
                    s.total as u64,
                )),
                beta: layout.add(grow("beta", vec![])),
                log_z: layout.add(grow("log_z", vec![])),
                ess: layout.add(grow("ess", vec![])),
                acceptance: layout.add(grow("acceptance", vec![])),
                steps: layout.add(grow("steps", vec![])),
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
    let total = persistent::log_sum_exp(log_z.iter().copied());
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
                let per_eval = st.cost_us as f64 + 0.05 * st.dim() as f64;
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
        for st in &self.spec.states {
            writeln!(
                out,
                "  {:<16} dim {:>3}  model {}",
                st.name,
                st.dim(),
                st.model_label()
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
}

/// A state's run at an iteration boundary, as plain data: what it pauses
/// with and resumes from (every row of the iterations done is emitted).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    history: History,
    /// Step scale of the mutation and the acceptance of the last iteration.
    scale: f64,
    acceptance: f64,
    evaluations: u64,
}

/// The random stream of a particle (or [`SHARED_STREAM`]) in an iteration.
fn stream(seed: u64, state: usize, iteration: usize, index: u64) -> crate::seed::Stream {
    TaskKey {
        seed,
        state: state as u64,
        replicate: SMC_DOMAIN | ((iteration as u64) << 8),
    }
    .stream(index)
}

/// Moves (or, at iteration 0, draws) the particles of `range` on this
/// rank's threads. Returns (evaluations, error) with the first failure.
struct Share<'a> {
    x: &'a mut [f64],
    log_l: &'a mut [f64],
    log_prior: &'a mut [f64],
    accepted: &'a mut [u64],
}

fn run_state(
    job: &SmcJob,
    state: usize,
    resume: Option<&[u8]>,
    cx: &mut TaskContext<'_>,
) -> Result<Outcome, TaskError> {
    let spec = &job.spec;
    let s = settings(spec);
    let st = &spec.states[state];
    let fail = |message: String| {
        TaskError::Failed(format!(
            "smc: state `{}` (seed {}): {message}",
            st.name, spec.seed
        ))
    };
    let mut posterior = Posterior::from_state(st).map_err(|e| fail(e.to_string()))?;
    if let Some(after) = crate::jobs::ensemble::injected_fault(&st.name) {
        posterior = posterior.fail_after(after);
    }
    let d = st.dim();
    let sets = job.sets[state];
    let (member, members) = match cx.collective() {
        Some(c) => (c.member(), c.members()),
        None => (0, 1),
    };
    let mut snap = match resume {
        Some(bytes) => postcard::from_bytes::<Snapshot>(bytes)
            .map_err(|e| fail(format!("undecodable snapshot: {e}")))?,
        None => Snapshot {
            history: History {
                dim: d,
                ..History::default()
            },
            scale: 2.38 / (d as f64).sqrt(),
            acceptance: TARGET_ACCEPTANCE,
            evaluations: 0,
        },
    };
    let mut local_evals = 0u64;
    loop {
        if cx.cancelled() {
            return Err(TaskError::Cancelled);
        }
        let t = snap.history.betas.len();
        let h = &snap.history;
        let done = t > 0 && h.betas[t - 1] >= 1.0 && {
            let m = h.log_mixture();
            persistent::ess(&h.log_weights(1.0, &m)) >= s.total as f64
        };
        if done {
            break;
        }
        if t > 0 && cx.pause_requested() {
            snap.evaluations += sum_evaluations(cx, std::mem::take(&mut local_evals));
            cx.evaluations = snap.evaluations;
            let bytes =
                postcard::to_stdvec(&snap).map_err(|e| fail(format!("cannot snapshot: {e}")))?;
            return Ok(Outcome::Yielded(bytes));
        }
        if t >= MAX_ITERATIONS {
            return Err(fail(format!(
                "β did not reach 1 in {MAX_ITERATIONS} iterations (β = {})",
                h.betas[t - 1]
            )));
        }
        // The particles this iteration starts from and the kernel's moments.
        let (n, beta, log_z, ess, eve, mut x, mut log_l, mut log_prior, kernel_parts) = if t == 0 {
            let n = prior_draws(s);
            (
                n,
                0.0,
                0.0,
                n as f64,
                (0..n as u64).collect::<Vec<u64>>(),
                vec![0.0; n * d],
                vec![0.0; n],
                vec![0.0; n],
                None,
            )
        } else {
            let m = h.log_mixture();
            let prev = h.betas[t - 1];
            let beta = persistent::next_beta(h, &m, prev, s.effective);
            let w = h.log_weights(beta, &m);
            let ess = persistent::ess(&w);
            let log_z = persistent::log_evidence(&w);
            let n = s.particles;
            let u: f64 = stream(spec.seed, state, t, SHARED_STREAM).random();
            let idx = persistent::systematic(&w, n, u);
            let mut x = Vec::with_capacity(n * d);
            for &i in &idx {
                x.extend_from_slice(&h.x[i * d..(i + 1) * d]);
            }
            let eve = idx.iter().map(|&i| h.eve[i]).collect();
            let log_l = idx.iter().map(|&i| h.log_l[i]).collect();
            let log_prior = idx.iter().map(|&i| h.log_prior[i]).collect();
            let (mean, chol) = persistent::moments(&h.x, d, &w);
            (
                n,
                beta,
                log_z,
                ess,
                eve,
                x,
                log_l,
                log_prior,
                Some((mean, chol)),
            )
        };
        // At least 2·dim steps, more when the acceptance falls below the
        // target, at most max_steps·dim.
        let steps = ((2 * d) as f64 * (TARGET_ACCEPTANCE / snap.acceptance.max(0.01)).max(1.0))
            .ceil()
            .clamp(1.0, (s.mutation.max_steps * d) as f64) as usize;
        let mine = split_range(0..n, member, members);
        let mut accepted = vec![0u64; n];
        let evals = {
            let share = Share {
                x: &mut x[mine.start * d..mine.end * d],
                log_l: &mut log_l[mine.clone()],
                log_prior: &mut log_prior[mine.clone()],
                accepted: &mut accepted[mine.clone()],
            };
            let kernel = kernel_parts.as_ref().map(|(mean, chol)| Kernel {
                kind: s.mutation.kind,
                beta,
                mean,
                chol,
                scale: snap.scale,
                steps,
            });
            move_share(&posterior, kernel.as_ref(), share, mine.start, d, |i| {
                stream(spec.seed, state, t, i as u64)
            })
        };
        tracing::debug!(
            "smc state {state} iteration {t}: member {member}/{members} moved {mine:?}, {evals:?} evaluations"
        );
        let failed = evals.as_ref().err().cloned();
        if let Ok(e) = &evals {
            local_evals += e;
        }
        if let Some(c) = cx.collective() {
            let vote = if failed.is_some() {
                Vote::Failed
            } else {
                Vote::Continue
            };
            match c.agree(vote) {
                Vote::Failed if failed.is_none() => {
                    return Err(fail("a rank sharing this state failed".into()))
                }
                Vote::Stop => return Err(TaskError::Cancelled),
                _ => {}
            }
        }
        if let Some(e) = failed {
            return Err(fail(e));
        }
        if let Some(c) = cx.collective() {
            let counts: Vec<usize> = (0..members)
                .map(|m| split_range(0..n, m, members).len())
                .collect();
            let gather = |c: &mut dyn crate::jobs::Collective, v: &mut Vec<f64>, per: usize| {
                let send = v[mine.start * per..mine.end * per].to_vec();
                let counts: Vec<usize> = counts.iter().map(|k| k * per).collect();
                c.gather_f64(&send, v, &counts);
            };
            gather(c, &mut x, d);
            gather(c, &mut log_l, 1);
            gather(c, &mut log_prior, 1);
            let send = accepted[mine.clone()].to_vec();
            c.gather_u64(&send, &mut accepted, &counts);
        }
        let acc = if t == 0 {
            TARGET_ACCEPTANCE
        } else {
            accepted.iter().sum::<u64>() as f64 / (n * steps) as f64
        };
        let iteration_steps = if t == 0 { 0 } else { steps };
        // Emit the iteration's rows before they join the history.
        let first = snap.history.len() as u64;
        let rec = |dataset, first_row, rows, values| Record {
            dataset,
            first_row,
            rows,
            lane: None,
            values,
        };
        cx.emit_all(vec![
            rec(sets.particles, first, n as u64, Column::F64(x.clone())),
            rec(
                sets.log_likelihood,
                first,
                n as u64,
                Column::F64(log_l.clone()),
            ),
            rec(
                sets.log_prior,
                first,
                n as u64,
                Column::F64(log_prior.clone()),
            ),
            rec(
                sets.iteration,
                first,
                n as u64,
                Column::I64(vec![t as i64; n]),
            ),
            rec(sets.beta, t as u64, 1, Column::F64(vec![beta])),
            rec(sets.log_z, t as u64, 1, Column::F64(vec![log_z])),
            rec(sets.ess, t as u64, 1, Column::F64(vec![ess])),
            rec(sets.acceptance, t as u64, 1, Column::F64(vec![acc])),
            rec(
                sets.steps,
                t as u64,
                1,
                Column::F64(vec![iteration_steps as f64]),
            ),
        ])?;
        if t > 0 {
            // Step size toward the target acceptance, identically everywhere.
            snap.scale *= (2.0 * (acc - TARGET_ACCEPTANCE)).exp();
            if s.mutation.kind == MutationKind::Pcn {
                snap.scale = snap.scale.min(0.99);
            }
            snap.acceptance = acc;
        }
        snap.history.push(beta, log_z, &x, &log_l, &log_prior, &eve);
    }
    // β = 1 reached with enough ESS: the evidence, the final weights and an
    // equally weighted draw.
    // The final log Z from every iteration's log Z refitted to all the
    // particles: less scatter than the sequential estimates (6-D mixture:
    // sd 0.16 instead of 0.22 over 20 seeds).
    snap.history.refit_log_z(REFIT_SWEEPS);
    let h = &snap.history;
    let m = h.log_mixture();
    let w = h.log_weights(1.0, &m);
    let log_z = persistent::log_evidence(&w);
    let t = h.betas.len();
    let err = persistent::log_evidence_err_families(
        &w,
        &h.eve,
        &mut stream(spec.seed, state, t, SHARED_STREAM - 1),
    );
    let u: f64 = stream(spec.seed, state, t, SHARED_STREAM).random();
    let idx = persistent::systematic(&w, s.total, u);
    let mut draw = Vec::with_capacity(s.total * d);
    for &i in &idx {
        draw.extend_from_slice(&h.x[i * d..(i + 1) * d]);
    }
    cx.emit_all(vec![
        Record {
            dataset: sets.log_weights,
            first_row: 0,
            rows: w.len() as u64,
            lane: None,
            values: Column::F64(w),
        },
        Record {
            dataset: sets.posterior,
            first_row: 0,
            rows: s.total as u64,
            lane: None,
            values: Column::F64(draw),
        },
        Record {
            dataset: sets.evidence,
            first_row: 0,
            rows: 3,
            lane: None,
            values: Column::F64(vec![log_z, err, t as f64]),
        },
    ])?;
    snap.evaluations += sum_evaluations(cx, local_evals);
    cx.evaluations = snap.evaluations;
    cx.add_progress(1);
    Ok(Outcome::Done)
}

/// This process's evaluations summed over the members sharing the task.
fn sum_evaluations(cx: &mut TaskContext<'_>, local: u64) -> u64 {
    let mut v = [local];
    if let Some(c) = cx.collective() {
        c.sum_u64(&mut v);
    }
    v[0]
}

/// Draws from the prior (no kernel: iteration 0) or moves the particles
/// of a share on this rank's threads; `offset` is the share's first
/// particle index. Returns the evaluations made, or the first failure.
fn move_share(
    posterior: &Posterior,
    kernel: Option<&Kernel<'_>>,
    share: Share<'_>,
    offset: usize,
    d: usize,
    rng_of: impl Fn(usize) -> crate::seed::Stream + Sync,
) -> Result<u64, String> {
    let one = |i: usize,
               x: &mut [f64],
               ll: &mut f64,
               lp: &mut f64,
               acc: &mut u64|
     -> Result<u64, String> {
        let mut rng = rng_of(offset + i);
        let describe = |x: &[f64], e: crate::model::EvalError| {
            format!("particle {}: at {x:?}: {e}", offset + i)
        };
        match kernel {
            None => {
                posterior.prior().sample(&mut rng, x);
                let (p, l) = posterior
                    .log_prior_likelihood(x)
                    .map_err(|e| describe(x, e))?;
                *lp = p;
                *ll = l;
                Ok(1)
            }
            Some(k) => {
                let moved = k
                    .run(posterior, &mut rng, x, ll, lp)
                    .map_err(|e| describe(x, e))?;
                *acc = moved.accepted;
                Ok(moved.evaluations)
            }
        }
    };
    let Share {
        x,
        log_l,
        log_prior,
        accepted,
    } = share;
    if rayon::current_num_threads() == 1 {
        let mut total = 0;
        for (i, (((x, ll), lp), acc)) in x
            .chunks_mut(d)
            .zip(log_l.iter_mut())
            .zip(log_prior.iter_mut())
            .zip(accepted.iter_mut())
            .enumerate()
        {
            total += one(i, x, ll, lp, acc)?;
        }
        return Ok(total);
    }
    let results: Vec<Result<u64, String>> = x
        .par_chunks_mut(d)
        .zip(log_l.par_iter_mut())
        .zip(log_prior.par_iter_mut())
        .zip(accepted.par_iter_mut())
        .enumerate()
        .map(|(i, (((x, ll), lp), acc))| one(i, x, ll, lp, acc))
        .collect();
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}
