//! The state-jump method: between-state jumps drawn from the
//! pseudo-priors, random-walk Metropolis within a state.

use rand::RngExt;
use rand_distr::StandardNormal;

use super::carry::Carry;
use super::recorder::Recorder;
use super::walker::{jump_bias, pick, Ended, WalkerSnap};
use super::{TranscJob, TranscSpec, START_TRIES};
use crate::jobs::{TaskContext, TaskError};
use crate::seed::Stream;

impl TranscJob {
    pub(super) fn state_jump(
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
                TaskError::Evaluation(format!(
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
}
