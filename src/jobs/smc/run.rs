//! One state's run: `groups` independent persistent-sampling runs in
//! lockstep. At each iteration every group still running picks its next β
//! and resamples its own particles; then the particles of all groups are
//! moved together, split over the members sharing the state (and their
//! threads), and gathered so that every member holds every row. The groups
//! never exchange particles, so their log Z are independent estimates: the
//! state's log Z is their mean and its error their standard error.

use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::mutation::{Kernel, TARGET_ACCEPTANCE};
use super::persistent::{self, History};
use super::spec::MutationKind;
use super::{settings, SmcJob, Spec};
use crate::jobs::ensemble::sampler::split_range;
use crate::jobs::Kind;
use crate::jobs::{Outcome, TaskContext, TaskError, TaskLabel, Vote};
use crate::model::Posterior;
use crate::output::{Column, Record};

/// The particle index of group g's shared stream in an iteration
/// (resampling) is `SHARED_STREAM - g`; particle indices stay far below.
const SHARED_STREAM: u64 = u32::MAX as u64;
/// More iterations than this is a run that cannot reach β = 1.
pub(super) const MAX_ITERATIONS: usize = 10_000;
/// The iteration key of the draws made after the last iteration (the
/// posterior draw, the bootstrap of a single group): never a real one.
const FINAL: usize = MAX_ITERATIONS + 1;

/// One group's run at an iteration boundary.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    history: History,
    /// Step scale of the mutation and the acceptance of the last iteration.
    scale: f64,
    acceptance: f64,
    /// The `particles` row of the first particle of each of its iterations.
    first_rows: Vec<u64>,
    /// β = 1 reached with the ESS its share of `total` asks for.
    done: bool,
}

/// A state's run at an iteration boundary, as plain data: what it pauses
/// with and resumes from (every row of the iterations done is emitted).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    groups: Vec<Group>,
    /// Iterations done: the next one is `iterations`.
    iterations: usize,
    /// Rows of `particles` written so far.
    rows: u64,
    evaluations: u64,
}

/// The random stream of a particle (or a group's shared stream) in an
/// iteration: the state's task, indexed by the iteration (high 32 bits) and
/// the particle (low 32 bits; particles are at most 10⁷).
fn stream(seed: u64, state: usize, iteration: usize, index: u64) -> crate::seed::Stream {
    debug_assert!(index <= SHARED_STREAM);
    Kind::Smc
        .streams(seed, 0, state as u64)
        .stream(((iteration as u64) << 32) | index)
}

/// Prior draws of the whole state at β = 0: enough that their ESS reaches
/// the target (pocoMC's rule, twice the target in whole multiples of
/// `particles`).
pub(super) fn prior_draws(s: &Spec) -> usize {
    2 * (s.effective / s.particles as f64).ceil().max(1.0) as usize * s.particles
}

/// Group g's range of a count split over the groups (its share of the
/// particles, its stream indices).
fn share(count: usize, g: usize, s: &Spec) -> std::ops::Range<usize> {
    split_range(0..count, g, s.groups)
}

/// What a group still running does in this iteration.
struct Step {
    group: usize,
    beta: f64,
    log_z: f64,
    ess: f64,
    /// Its particles' range in the iteration's arrays and the first index
    /// of their streams.
    range: std::ops::Range<usize>,
    first_stream: usize,
    /// Mean and Cholesky factor of the kernel (none at β = 0: prior draws).
    moments: Option<(Vec<f64>, nalgebra::DMatrix<f64>)>,
    steps: usize,
}

pub(super) fn run_state(
    job: &SmcJob,
    state: usize,
    resume: Option<&[u8]>,
    cx: &mut TaskContext<'_>,
) -> Result<Outcome, TaskError> {
    let spec = &job.spec;
    let s = settings(spec);
    let st = &spec.states[state];
    let label = TaskLabel::new(format!("smc: state `{}` (seed {})", st.name, spec.seed));
    let posterior = label.posterior(spec, state)?;
    let d = st.dim();
    let sets = job.sets[state];
    let (member, members) = match cx.collective() {
        Some(c) => (c.member(), c.members()),
        None => (0, 1),
    };
    let mut snap = match resume {
        Some(bytes) => label.resume::<Snapshot>(bytes)?,
        None => Snapshot {
            groups: (0..s.groups)
                .map(|_| Group {
                    history: History {
                        dim: d,
                        ..History::default()
                    },
                    scale: 2.38 / (d as f64).sqrt(),
                    acceptance: TARGET_ACCEPTANCE,
                    first_rows: Vec::new(),
                    done: false,
                })
                .collect(),
            iterations: 0,
            rows: 0,
            evaluations: 0,
        },
    };
    let mut local_evals = 0u64;
    loop {
        if cx.cancelled() {
            return Err(TaskError::Cancelled);
        }
        let t = snap.iterations;
        // Each group's share of the target ESS and of `total`, and the
        // weights of its particles kept so far (the mixture over its own
        // iterations).
        let mut mixtures = vec![Vec::new(); s.groups];
        if t > 0 {
            for (g, group) in snap.groups.iter_mut().enumerate() {
                if group.done {
                    continue;
                }
                let h = &group.history;
                let m = h.log_mixture();
                let total =
                    s.total as f64 * share(s.particles, g, s).len() as f64 / s.particles as f64;
                group.done = *h.betas.last().unwrap() >= 1.0
                    && persistent::ess(&h.log_weights(1.0, &m)) >= total;
                mixtures[g] = m;
            }
            if snap.groups.iter().all(|g| g.done) {
                break;
            }
            if cx.pause_requested() {
                snap.evaluations += sum_evaluations(cx, std::mem::take(&mut local_evals));
                cx.evaluations = snap.evaluations;
                return Ok(Outcome::Yielded(label.snapshot(&snap)?));
            }
            if t >= MAX_ITERATIONS {
                let beta = snap
                    .groups
                    .iter()
                    .find(|g| !g.done)
                    .map_or(1.0, |g| *g.history.betas.last().unwrap());
                return Err(label.fail(format!(
                    "β did not reach 1 in {MAX_ITERATIONS} iterations (β = {beta})"
                )));
            }
        }
        // Each running group's temperature, resampled particles and kernel,
        // laid end to end in group order.
        let mut steps_of = Vec::new();
        let (mut x, mut log_l, mut log_prior, mut eve) = (vec![], vec![], vec![], vec![]);
        for (g, group) in snap.groups.iter().enumerate() {
            if group.done {
                continue;
            }
            let start = log_l.len();
            if t == 0 {
                let draws = share(prior_draws(s), g, s);
                let n = draws.len();
                x.resize(x.len() + n * d, 0.0);
                log_l.resize(start + n, 0.0);
                log_prior.resize(start + n, 0.0);
                eve.extend(0..n as u64);
                steps_of.push(Step {
                    group: g,
                    beta: 0.0,
                    log_z: 0.0,
                    ess: n as f64,
                    range: start..start + n,
                    first_stream: draws.start,
                    moments: None,
                    steps: 0,
                });
                continue;
            }
            let h = &group.history;
            let m = &mixtures[g];
            let mine = share(s.particles, g, s);
            let n = mine.len();
            let effective = s.effective * n as f64 / s.particles as f64;
            let beta = persistent::next_beta(h, m, *h.betas.last().unwrap(), effective);
            let w = h.log_weights(beta, m);
            let u: f64 = stream(spec.seed, state, t, SHARED_STREAM - g as u64).random();
            for i in persistent::systematic(&w, n, u) {
                x.extend_from_slice(&h.x[i * d..(i + 1) * d]);
                log_l.push(h.log_l[i]);
                log_prior.push(h.log_prior[i]);
                eve.push(h.eve[i]);
            }
            // At least 2·dim steps, more when the acceptance falls below
            // the target, at most max_steps·dim.
            let steps = ((2 * d) as f64 * (TARGET_ACCEPTANCE / group.acceptance.max(0.01)).max(1.0))
                .ceil()
                .clamp(1.0, (s.mutation.max_steps * d) as f64) as usize;
            steps_of.push(Step {
                group: g,
                beta,
                log_z: persistent::log_evidence(&w),
                ess: persistent::ess(&w),
                range: start..start + n,
                first_stream: mine.start,
                moments: Some(persistent::moments(&h.x, d, &w)),
                steps,
            });
        }
        drop(mixtures);
        let n = log_l.len();
        let kernels: Vec<Option<Kernel<'_>>> = steps_of
            .iter()
            .map(|p| {
                p.moments.as_ref().map(|(mean, chol)| Kernel {
                    kind: s.mutation.kind,
                    beta: p.beta,
                    mean,
                    chol,
                    scale: snap.groups[p.group].scale,
                    steps: p.steps,
                })
            })
            .collect();
        // Each particle's kernel and stream index.
        let mut slots = Vec::with_capacity(n);
        for (k, p) in steps_of.iter().enumerate() {
            slots.extend((0..p.range.len()).map(|i| (k, (p.first_stream + i) as u64)));
        }
        let mine = split_range(0..n, member, members);
        let mut accepted = vec![0u64; n];
        let evals = move_share(
            &posterior,
            Share {
                x: &mut x[mine.start * d..mine.end * d],
                log_l: &mut log_l[mine.clone()],
                log_prior: &mut log_prior[mine.clone()],
                accepted: &mut accepted[mine.clone()],
            },
            mine.start,
            d,
            |i| {
                let (k, index) = slots[i];
                (kernels[k].as_ref(), stream(spec.seed, state, t, index))
            },
        );
        drop(kernels);
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
                    return Err(label.fail("a rank sharing this state failed"))
                }
                Vote::Stop => return Err(TaskError::Cancelled),
                _ => {}
            }
        }
        if let Some(e) = failed {
            // What the particles' moves return are their evaluations' failures.
            return Err(label.evaluation(e));
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
        // The iteration's rows, group after group, before they join the
        // histories; per-iteration values in a row of `groups` columns,
        // NaN for the groups that have finished.
        let row = |v: &[(usize, f64)]| {
            let mut r = vec![f64::NAN; s.groups];
            for &(g, x) in v {
                r[g] = x;
            }
            r
        };
        let mut records = Vec::new();
        let rec = |dataset, first_row, rows, values| Record {
            dataset,
            first_row,
            rows,
            lane: None,
            values,
        };
        let mut per_iteration = [vec![], vec![], vec![], vec![], vec![]];
        for p in &steps_of {
            let group = &mut snap.groups[p.group];
            let r = p.range.clone();
            let rows = r.len() as u64;
            let acc = if t == 0 {
                TARGET_ACCEPTANCE
            } else {
                accepted[r.clone()].iter().sum::<u64>() as f64 / (r.len() * p.steps) as f64
            };
            records.extend([
                rec(
                    sets.particles,
                    snap.rows,
                    rows,
                    Column::F64(x[r.start * d..r.end * d].to_vec()),
                ),
                rec(
                    sets.log_likelihood,
                    snap.rows,
                    rows,
                    Column::F64(log_l[r.clone()].to_vec()),
                ),
                rec(
                    sets.log_prior,
                    snap.rows,
                    rows,
                    Column::F64(log_prior[r.clone()].to_vec()),
                ),
                rec(
                    sets.iteration,
                    snap.rows,
                    rows,
                    Column::I64(vec![t as i64; r.len()]),
                ),
                rec(
                    sets.group,
                    snap.rows,
                    rows,
                    Column::I64(vec![p.group as i64; r.len()]),
                ),
            ]);
            for (column, v) in
                per_iteration
                    .iter_mut()
                    .zip([p.beta, p.log_z, p.ess, acc, p.steps as f64])
            {
                column.push((p.group, v));
            }
            group.first_rows.push(snap.rows);
            snap.rows += rows;
            if t > 0 {
                // Step size toward the target acceptance.
                group.scale *= (2.0 * (acc - TARGET_ACCEPTANCE)).exp();
                if s.mutation.kind == MutationKind::Pcn {
                    group.scale = group.scale.min(0.99);
                }
                group.acceptance = acc;
            }
            group.history.push(
                p.beta,
                p.log_z,
                &x[r.start * d..r.end * d],
                &log_l[r.clone()],
                &log_prior[r.clone()],
                &eve[r.clone()],
            );
        }
        for (dataset, column) in [sets.beta, sets.log_z, sets.ess, sets.acceptance, sets.steps]
            .into_iter()
            .zip(&per_iteration)
        {
            records.push(rec(dataset, t as u64, 1, Column::F64(row(column))));
        }
        cx.emit_all(records)?;
        snap.iterations += 1;
    }
    finish(job, state, &snap, cx)?;
    snap.evaluations += sum_evaluations(cx, local_evals);
    cx.evaluations = snap.evaluations;
    cx.add_progress(1);
    Ok(Outcome::Done)
}

/// Every group has reached β = 1 with enough ESS: each group's evidence,
/// the state's log Z ± error, the final weights and an equally weighted
/// posterior draw.
fn finish(
    job: &SmcJob,
    state: usize,
    snap: &Snapshot,
    cx: &mut TaskContext<'_>,
) -> Result<(), TaskError> {
    let spec = &job.spec;
    let s = settings(spec);
    let sets = job.sets[state];
    let d = spec.states[state].dim();
    let rows = snap.rows as usize;
    let mut log_weights = vec![0.0; rows];
    let mut x = vec![0.0; rows * d];
    let mut group_log_z = Vec::with_capacity(s.groups);
    let groups = s.groups as f64;
    let mut single_group_err = None;
    for group in &snap.groups {
        let h = &group.history;
        let w = h.log_weights(1.0, &h.log_mixture());
        group_log_z.push(persistent::log_evidence(&w));
        if s.groups == 1 {
            single_group_err = Some(persistent::log_evidence_err_families(
                &w,
                &h.eve,
                &mut stream(spec.seed, state, FINAL, SHARED_STREAM - 1),
            ));
        }
        // Normalised: the group's weights sum to 1/groups.
        let norm = crate::numeric::log_sum_exp(w.iter().copied()) + groups.ln();
        let mut at = 0;
        for (&first, &count) in group.first_rows.iter().zip(&h.counts) {
            let (first, span) = (first as usize, at..at + count);
            for (dst, src) in log_weights[first..first + count]
                .iter_mut()
                .zip(&w[span.clone()])
            {
                *dst = src - norm;
            }
            x[first * d..(first + count) * d].copy_from_slice(&h.x[span.start * d..span.end * d]);
            at += count;
        }
    }
    let (log_z, err) = match single_group_err {
        Some(err) => (group_log_z[0], err),
        None => crate::numeric::mean_and_standard_error(&group_log_z),
    };
    let u: f64 = stream(spec.seed, state, FINAL, SHARED_STREAM).random();
    let mut draw = Vec::with_capacity(s.total * d);
    for i in persistent::systematic(&log_weights, s.total, u) {
        draw.extend_from_slice(&x[i * d..(i + 1) * d]);
    }
    let rec = |dataset, rows, values| Record {
        dataset,
        first_row: 0,
        rows,
        lane: None,
        values,
    };
    cx.emit_all(vec![
        rec(sets.log_weights, rows as u64, Column::F64(log_weights)),
        rec(sets.posterior, s.total as u64, Column::F64(draw)),
        rec(sets.group_log_z, groups as u64, Column::F64(group_log_z)),
        rec(
            sets.evidence,
            3,
            Column::F64(vec![log_z, err, snap.iterations as f64]),
        ),
    ])
}

/// This process's evaluations summed over the members sharing the task.
fn sum_evaluations(cx: &mut TaskContext<'_>, local: u64) -> u64 {
    let mut v = [local];
    if let Some(c) = cx.collective() {
        c.sum_u64(&mut v);
    }
    v[0]
}

/// A member's share of an iteration's particles, moved in place.
struct Share<'a> {
    x: &'a mut [f64],
    log_l: &'a mut [f64],
    log_prior: &'a mut [f64],
    accepted: &'a mut [u64],
}

/// Draws from the prior (no kernel: iteration 0) or moves the particles
/// of a share on this rank's threads; `offset` is the share's first index
/// in the iteration, `of(i)` the kernel and stream of particle i. Returns
/// the evaluations made, or the first failure.
fn move_share<'k>(
    posterior: &Posterior,
    share: Share<'_>,
    offset: usize,
    d: usize,
    of: impl Fn(usize) -> (Option<&'k Kernel<'k>>, crate::seed::Stream) + Sync,
) -> Result<u64, String> {
    let one = |i: usize,
               x: &mut [f64],
               ll: &mut f64,
               lp: &mut f64,
               acc: &mut u64|
     -> Result<u64, String> {
        let (kernel, mut rng) = of(offset + i);
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
