//! The state probabilities from the walkers' counts, their errors, the
//! evidence ratios and the acceptance rates.

use super::{Method, TranscSpec, BATCHES};
use crate::numeric::mean_and_standard_error;

/// How the error of the state probabilities is computed, per method.
pub(super) fn error_method(method: Method) -> &'static str {
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
        let probability: Vec<f64> = share(&mut (0..w * BATCHES));
        let probability_err: Vec<f64> = (0..k)
            .map(|s| {
                let shares: Vec<f64> = units.iter().map(|u| u[s]).collect();
                mean_and_standard_error(&shares).1
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
                mean_and_standard_error(&d).1
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

impl Results {
    /// Why these results cannot be reported: a probability or its error
    /// that is NaN or infinite is a failure of the stage, never a result.
    pub fn failure(&self, names: &[String]) -> Option<String> {
        let bad = (0..self.probability.len()).find(|&s| {
            !(self.probability[s].is_finite() && self.probability_err[s].is_finite())
        })?;
        Some(format!(
            "transc: the probability of state `{}` is {} ± {}: the walkers' counts give no \
             state probabilities (no visits were recorded)",
            names[bad], self.probability[bad], self.probability_err[bad]
        ))
    }

    /// What should not be trusted in state `s`'s row: a state the walkers
    /// never visited (its probability 0, its log evidence −∞: its
    /// pseudo-prior may miss its posterior, or its evidence is negligible),
    /// and any result that is not a finite number.
    pub fn flags(&self, s: usize) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.probability[s] == 0.0 {
            flags.push("never visited");
        }
        if [self.log_evidence[s], self.log_evidence_err[s]]
            .iter()
            .any(|v| !v.is_finite())
        {
            flags.push("not finite");
        }
        flags
    }

    /// The note below a table with a flagged row.
    pub fn flags_note(&self) -> Option<&'static str> {
        (0..self.probability.len())
            .any(|s| !self.flags(s).is_empty())
            .then_some(
                "flagged: a state the walkers never visited (its pseudo-prior may miss its \
                 posterior — check its first-stage samples — or its evidence is negligible), or \
                 a log evidence or error that is not finite: do not trust these rows",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(probability: Vec<f64>, probability_err: Vec<f64>) -> Results {
        let ln: Vec<f64> = probability.iter().map(|p| (p / probability[0]).ln()).collect();
        Results {
            log_evidence_err: vec![0.1; probability.len()],
            log_evidence: ln,
            probability,
            probability_err,
            between: vec![0.5; 2],
            within: vec![f64::NAN; 2],
            tau: 3.0,
        }
    }

    #[test]
    fn a_state_never_visited_is_flagged_and_nan_is_a_failure() {
        let names = ["a".to_string(), "b".to_string()];
        let fine = results(vec![0.6, 0.4], vec![0.01, 0.01]);
        assert!(fine.failure(&names).is_none());
        assert!(fine.flags(1).is_empty() && fine.flags_note().is_none());
        let never = results(vec![1.0, 0.0], vec![0.0, 0.0]);
        assert!(never.failure(&names).is_none());
        assert_eq!(never.flags(1), vec!["never visited", "not finite"]);
        assert!(never.flags_note().is_some());
        let nan = results(vec![f64::NAN, 0.5], vec![0.1, f64::INFINITY]);
        let why = nan.failure(&names).unwrap();
        assert!(why.contains("state `a`"), "{why}");
    }
}
