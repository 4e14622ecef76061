//! A walker's record: its stored states, its visits per batch of steps
//! after burn-in, and its moves per state.

use serde::{Deserialize, Serialize};

use super::{Method, TranscSpec, BATCHES};

/// What a [`Recorder`] has counted, as plain data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Counts {
    pub(super) states: Vec<i64>,
    pub(super) members: Vec<i64>,
    pub(super) visits: Vec<f64>,
    pub(super) moves: Vec<f64>,
}

/// The first step of batch `b`: batch_of(t, s) = b exactly for
/// batch_edge(t, b) ≤ s < batch_edge(t, b + 1).
pub(super) fn batch_edge(t: &TranscSpec, b: usize) -> usize {
    t.burn + (b * (t.steps - t.burn)).div_ceil(BATCHES)
}

/// The batch of a step after burn-in (of `BATCHES` equal runs of steps).
pub(super) fn batch_of(t: &TranscSpec, step: usize) -> usize {
    (step.saturating_sub(t.burn) * BATCHES / (t.steps - t.burn)).min(BATCHES - 1)
}

/// What the walkers of a task emit.
#[derive(Debug, Default)]
pub(super) struct WalkerOutput {
    pub(super) states: Vec<i64>,
    pub(super) members: Vec<i64>,
    pub(super) visits: Vec<f64>,
    pub(super) moves: Vec<f64>,
    pub(super) taus: Vec<f64>,
}

impl WalkerOutput {
    pub(super) fn append(&mut self, o: WalkerOutput) {
        self.states.extend(o.states);
        self.members.extend(o.members);
        self.visits.extend(o.visits);
        self.moves.extend(o.moves);
        self.taus.extend(o.taus);
    }
}

/// One walker's record: its stored states (and members), visits after
/// burn-in per batch, and moves per state.
pub(super) struct Recorder<'a> {
    pub(super) t: &'a TranscSpec,
    pub(super) k: usize,
    /// The batch of the last step visited, and the first step of the next.
    pub(super) batch: usize,
    pub(super) next_edge: usize,
    pub(super) states: Vec<i64>,
    pub(super) members: Vec<i64>,
    pub(super) visits: Vec<f64>,
    pub(super) moves: Vec<f64>,
}

impl<'a> Recorder<'a> {
    pub(super) fn new(t: &'a TranscSpec, k: usize) -> Self {
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

    pub(super) fn resumed(t: &'a TranscSpec, k: usize, c: Counts) -> Self {
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

    pub(super) fn counts(&self) -> Counts {
        Counts {
            states: self.states.clone(),
            members: self.members.clone(),
            visits: self.visits.clone(),
            moves: self.moves.clone(),
        }
    }

    pub(super) fn jump(&mut self, from: usize, accepted: bool) {
        self.moves[from * 4] += 1.0;
        self.moves[from * 4 + 1] += f64::from(u8::from(accepted));
    }

    pub(super) fn within(&mut self, from: usize, accepted: bool) {
        self.moves[from * 4 + 2] += 1.0;
        self.moves[from * 4 + 3] += f64::from(u8::from(accepted));
    }

    pub(super) fn visit(&mut self, step: usize, state: usize, member: usize) {
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

    pub(super) fn visit_batch(&mut self, step: usize, state: usize, member: usize, batch: usize) {
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

    pub(super) fn finish(self) -> WalkerOutput {
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

#[cfg(test)]
mod tests {
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
