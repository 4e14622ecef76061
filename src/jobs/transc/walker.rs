//! What the three methods share: a walker's snapshot and how its run
//! ended, the choice of a state, and the bias of a jump between states.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::recorder::{Counts, WalkerOutput};
use super::TranscSpec;
use crate::seed::Stream;

/// A walker (or the product-space ensemble) paused at a step boundary.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum WalkerSnap {
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
pub(super) enum Ended {
    Finished(WalkerOutput),
    Yielded(WalkerSnap),
}

/// log w[to][from] − log w[from][to] + log P(to) − log P(from).
pub(super) fn jump_bias(t: &TranscSpec, from: usize, to: usize) -> f64 {
    (t.state_weights[to][from] / t.state_weights[from][to]).ln()
        + (t.state_priors[to] / t.state_priors[from]).ln()
}

/// The state a product-space walker's continuous indicator stands for:
/// the nearest of 0..k.
pub(super) fn state_of(k_cont: f64, k: usize) -> usize {
    k_cont.round_ties_even().clamp(0.0, (k - 1) as f64) as usize
}

/// An index drawn with the given probabilities (which sum to one).
pub(super) fn pick(rng: &mut Stream, probabilities: &[f64]) -> usize {
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
