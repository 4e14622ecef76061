//! What rank 0 hands every rank for the trans-conceptual stage: each
//! state's pseudo-prior fitted to its first-stage samples, and what the
//! chosen method needs of them.

use serde::{Deserialize, Serialize};

use super::pseudo::{self, PseudoPrior};
use super::{settings, Method, TranscJob};
use crate::jobs::{JobError, Stage};
use crate::output::{Attr, Column, Record, Store};

/// What rank 0 hands every rank for the trans-conceptual stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Carry {
    pub(super) pseudo: Vec<PseudoPrior>,
    /// Resample: per state, log p − log q of each member (row-major over
    /// the stored rows kept, then walkers).
    pub(super) ratios: Vec<Vec<f64>>,
    /// State-jump: per state, the Cholesky factor of the samples'
    /// covariance scaled by 2.38/√d (the within-state proposal).
    pub(super) proposals: Vec<Vec<f64>>,
    /// Per state: (burn rows, thin, members) of the samples used.
    pub(super) selection: Vec<(u64, u64, u64)>,
}

impl TranscJob {
    /// Rank 0, after the per-state stage: reads each state's samples, fits
    /// its pseudo-prior, and builds the carry.
    pub(super) fn fit(&self, store: &mut dyn Store) -> Result<Carry, JobError> {
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
}

/// burn = 2·max τ and thin = ½·min τ (at least 1) in stored rows, τ per
/// parameter over the walkers (pyTransC's `auto_thin`).
pub(super) fn auto_selection(all: &[f64], rows: usize, walkers: usize, d: usize) -> (u64, u64) {
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
