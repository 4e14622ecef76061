//! Persistent sampling (Karamanis et al. 2025; tempest, pocoMC ≥ 1.0): the
//! numerics of one state's run, free of ranks and files. Every particle
//! kept so far is reweighted to the next temperature by the balance
//! heuristic of the mixture of all earlier tempered targets,
//!
//! log w_s(β) = β log L_s − log Σ_t (n_t/N) exp(β_t log L_s − log Z_t),
//!
//! the next β is where their effective sample size falls to the target, and
//! log Z(β) = log (1/N Σ_s w_s(β)). Every reduction runs in index order,
//! so that every rank computes the same bits.

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::numeric::{log_sum_exp, relative_weights};

/// β log L with 0 · (−∞) = 0: at β = 0 a particle outside the likelihood's
/// support still counts with the prior's weight.
fn tempered(beta: f64, log_l: f64) -> f64 {
    if beta == 0.0 {
        0.0
    } else {
        beta * log_l
    }
}

/// The particles kept so far and the temperatures they were drawn at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub dim: usize,
    /// Particle positions, iteration after iteration, `dim` values each.
    pub x: Vec<f64>,
    pub log_l: Vec<f64>,
    pub log_prior: Vec<f64>,
    /// Per iteration: its β, the log Z(β) its particles were drawn with,
    /// and how many particles it added.
    pub betas: Vec<f64>,
    pub log_z: Vec<f64>,
    pub counts: Vec<usize>,
    /// Per particle: the prior draw (iteration 0) it descends from, its
    /// eve; the error of log Z resamples these families.
    pub eve: Vec<u64>,
}

impl History {
    pub fn len(&self) -> usize {
        self.log_l.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_l.is_empty()
    }

    /// Appends an iteration's particles.
    pub fn push(
        &mut self,
        beta: f64,
        log_z: f64,
        x: &[f64],
        log_l: &[f64],
        log_prior: &[f64],
        eve: &[u64],
    ) {
        self.eve.extend_from_slice(eve);
        self.betas.push(beta);
        self.log_z.push(log_z);
        self.counts.push(log_l.len());
        self.x.extend_from_slice(x);
        self.log_l.extend_from_slice(log_l);
        self.log_prior.extend_from_slice(log_prior);
    }

    /// log of the mixture density (over the prior) of every iteration's
    /// target, at each particle: log Σ_t (n_t/N) L^β_t / Z_t.
    pub fn log_mixture(&self) -> Vec<f64> {
        let n = self.len() as f64;
        let log_frac: Vec<f64> = self.counts.iter().map(|&c| (c as f64 / n).ln()).collect();
        // Element by element on the rank's threads: each value is computed
        // the same way whatever the threads, so the bits do not change.
        self.log_l
            .par_iter()
            .map(|&l| {
                log_sum_exp(
                    self.betas
                        .iter()
                        .zip(&self.log_z)
                        .zip(&log_frac)
                        .map(move |((&b, &z), &f)| f + tempered(b, l) - z),
                )
            })
            .collect()
    }

    /// Unnormalised log weights of every particle for the target at β.
    pub fn log_weights(&self, beta: f64, log_mixture: &[f64]) -> Vec<f64> {
        self.log_l
            .iter()
            .zip(log_mixture)
            .map(|(&l, &m)| tempered(beta, l) - m)
            .collect()
    }
}

/// Effective sample size (Σw)²/Σw² of log weights.
pub fn ess(log_w: &[f64]) -> f64 {
    let a = log_sum_exp(log_w.iter().copied());
    let b = log_sum_exp(log_w.iter().map(|w| 2.0 * w));
    if a == f64::NEG_INFINITY {
        return 0.0;
    }
    (2.0 * a - b).exp()
}

/// log Z at the weights' temperature: log (1/N Σ w).
pub fn log_evidence(log_w: &[f64]) -> f64 {
    log_sum_exp(log_w.iter().copied()) - (log_w.len() as f64).ln()
}

/// The delta-method standard error of log Ẑ for importance weights:
/// Var(Ẑ)/Z² ≈ (1/N) Var(w)/E(w)² = 1/ESS − 1/N.
pub fn log_evidence_err(log_w: &[f64]) -> f64 {
    let n = log_w.len() as f64;
    (1.0 / ess(log_w) - 1.0 / n).max(0.0).sqrt()
}

/// Bootstrap resamples of the error of log Z.
pub const BOOTSTRAP: usize = 400;

/// The standard error of log Ẑ by a bootstrap over families: every
/// particle kept descends from one prior draw (its eve), and particles of
/// one family are correlated through resampling and the Markov moves, so
/// families, not particles, are resampled with replacement; each resample
/// gives log (Σ w / N) over the families drawn. Cheap (no evaluations),
/// and it sees the mode-weight noise that the particle-wise delta method
/// misses.
pub fn log_evidence_err_families(log_w: &[f64], eve: &[u64], rng: &mut crate::seed::Stream) -> f64 {
    use rand::RngExt;
    let mut families: std::collections::BTreeMap<u64, (f64, f64)> = Default::default();
    for (w, &e) in relative_weights(log_w).into_iter().zip(eve) {
        let f = families.entry(e).or_insert((0.0, 0.0));
        f.0 += w;
        f.1 += 1.0;
    }
    let families: Vec<(f64, f64)> = families.into_values().collect();
    let k = families.len();
    let mut logs = Vec::with_capacity(BOOTSTRAP);
    for _ in 0..BOOTSTRAP {
        let (mut w, mut n) = (0.0, 0.0);
        for _ in 0..k {
            let f = families[rng.random_range(0..k)];
            w += f.0;
            n += f.1;
        }
        let v = (w / n).ln();
        if v.is_finite() {
            logs.push(v);
        }
    }
    if logs.len() < 2 {
        return f64::INFINITY;
    }
    let m = logs.iter().sum::<f64>() / logs.len() as f64;
    (logs.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (logs.len() - 1) as f64).sqrt()
}

/// Tolerances of the bisection for the next β.
pub const BETA_ABS_TOL: f64 = 1e-12;
pub const BETA_REL_TOL: f64 = 1e-10;
pub const ESS_REL_TOL: f64 = 1e-6;
pub const BISECTION_CAP: usize = 200;

/// The next temperature: 1 if the weights at β = 1 still have an ESS of
/// `target`, else the β in (previous, 1) where the ESS equals `target`,
/// by bisection (the ESS falls as β rises).
pub fn next_beta(h: &History, log_mixture: &[f64], previous: f64, target: f64) -> f64 {
    let ess_at = |b: f64| ess(&h.log_weights(b, log_mixture));
    if previous >= 1.0 || ess_at(1.0) >= target {
        return 1.0;
    }
    let (mut lo, mut hi) = (previous, 1.0);
    for _ in 0..BISECTION_CAP {
        let mid = 0.5 * (lo + hi);
        let e = ess_at(mid);
        if ((e - target) / target).abs() < ESS_REL_TOL {
            return mid;
        }
        if e > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < BETA_ABS_TOL || hi - lo < BETA_REL_TOL * hi {
            break;
        }
    }
    // The side where the ESS is at least the target; strictly above the
    // previous β so that the run moves on.
    if lo > previous {
        lo
    } else {
        hi
    }
}

/// Systematic resampling: `m` indices drawn in proportion to exp(log_w),
/// with the one uniform `u` in [0, 1).
pub fn systematic(log_w: &[f64], m: usize, u: f64) -> Vec<usize> {
    let w = relative_weights(log_w);
    let total: f64 = w.iter().sum();
    let mut out = Vec::with_capacity(m);
    let (mut i, mut cum) = (0, w[0] / total);
    for k in 0..m {
        let target = (k as f64 + u) / m as f64;
        while cum < target && i + 1 < w.len() {
            i += 1;
            cum += w[i] / total;
        }
        out.push(i);
    }
    out
}

/// Weighted mean and lower Cholesky factor of the weighted covariance of
/// the particles (a small jitter keeps it positive definite). Not
/// [`crate::numeric::weighted_mean_cov`]: its sums run in another order,
/// and the kernel's bits must not change.
pub fn moments(x: &[f64], dim: usize, log_w: &[f64]) -> (Vec<f64>, DMatrix<f64>) {
    let w = relative_weights(log_w);
    let total: f64 = w.iter().sum();
    let mut mean = vec![0.0; dim];
    for (p, &wi) in x.chunks_exact(dim).zip(&w) {
        for (m, v) in mean.iter_mut().zip(p) {
            *m += wi / total * v;
        }
    }
    let mut cov = DMatrix::<f64>::zeros(dim, dim);
    for (p, &wi) in x.chunks_exact(dim).zip(&w) {
        if wi == 0.0 {
            continue;
        }
        let d = DVector::from_iterator(dim, p.iter().zip(&mean).map(|(a, b)| a - b));
        cov += (wi / total) * &d * d.transpose();
    }
    let scale = (0..dim)
        .map(|i| cov[(i, i)])
        .fold(0.0, f64::max)
        .max(1e-300);
    let mut jitter = 1e-12 * scale;
    loop {
        let mut c = cov.clone();
        for i in 0..dim {
            c[(i, i)] += jitter;
        }
        if let Some(ch) = nalgebra::Cholesky::new(c) {
            return (mean, ch.l());
        }
        jitter *= 100.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_have_full_ess_and_zero_error() {
        let w = vec![0.3; 100];
        assert!((ess(&w) - 100.0).abs() < 1e-9);
        assert!(log_evidence_err(&w) < 1e-6);
        assert!((log_evidence(&w) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn systematic_resampling_follows_the_weights() {
        let w = [0.0f64.ln(), 1.0f64.ln(), 3.0f64.ln()];
        let idx = systematic(&w, 8, 0.5);
        assert_eq!(idx.iter().filter(|&&i| i == 0).count(), 0);
        assert_eq!(idx.iter().filter(|&&i| i == 1).count(), 2);
        assert_eq!(idx.iter().filter(|&&i| i == 2).count(), 6);
    }

    #[test]
    fn the_mixture_of_the_prior_alone_weighs_by_the_likelihood() {
        let mut h = History {
            dim: 1,
            ..History::default()
        };
        h.push(
            0.0,
            0.0,
            &[0.0, 1.0],
            &[-1.0, f64::NEG_INFINITY],
            &[0.0, 0.0],
            &[0, 1],
        );
        let m = h.log_mixture();
        assert_eq!(m, vec![0.0, 0.0]);
        let w = h.log_weights(1.0, &m);
        assert_eq!(w, vec![-1.0, f64::NEG_INFINITY]);
        assert!((ess(&w) - 1.0).abs() < 1e-12);
        let b = next_beta(&h, &m, 0.0, 1.5);
        assert!(b > 0.0 && b < 1.0, "{b}");
    }
}
