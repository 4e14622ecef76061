//! The product-space method: the affine-invariant ensemble on
//! [k, m_1 … m_K], each state's parameters beside the state indicator,
//! those of the states not visited drawn from their pseudo-priors.

use rand::RngExt;
use rayon::prelude::*;

use super::carry::Carry;
use super::recorder::{batch_of, Recorder, WalkerOutput};
use super::walker::{state_of, Ended, WalkerSnap};
use super::{TranscJob, TranscSpec, START_TRIES};
use crate::jobs::{TaskContext, TaskError};
use crate::model::Posterior;
use crate::seed::{Stream, StreamKey};

impl TranscJob {
    pub(super) fn product_space(
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
        // What `log_pi` returns are its evaluations' failures.
        let evaluation = |e: String| {
            TaskError::Evaluation(format!(
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
                        lps[i] = log_pi(x).map_err(evaluation)?.0;
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
                    let (y, lq, accepted, to, evals) = r.map_err(&evaluation)?;
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
