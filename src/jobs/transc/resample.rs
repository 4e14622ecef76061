//! The ensemble resampler: walkers move between (state, member) pairs of
//! the first stage's stored samples, with no evaluation.

use rand::RngExt;

use super::carry::Carry;
use super::recorder::Recorder;
use super::walker::{jump_bias, pick, Ended, WalkerSnap};
use super::TranscSpec;
use crate::jobs::{TaskContext, TaskError};
use crate::seed::Stream;

/// The ensemble resampler: each walker moves between (state, member)
/// pairs of the stored samples; it needs only the stored values.
pub(super) fn resample(
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
