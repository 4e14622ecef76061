//! The MCMC kernel that moves resampled particles at one temperature:
//! random-walk Metropolis or preconditioned Crank–Nicolson, both shaped by
//! the particles' covariance. A particle's whole run of steps within an
//! iteration is independent of the others (the proposal is fixed for the
//! iteration), so particles are moved on any rank and thread with the same
//! result: each has its own stream keyed by (iteration, particle).

use nalgebra::DMatrix;
use rand::RngExt;
use rand_distr::StandardNormal;

use super::spec::MutationKind;
use crate::model::{EvalError, Posterior};
use crate::seed::Stream;

/// The acceptance rate the step size is adapted to.
pub const TARGET_ACCEPTANCE: f64 = 0.234;

/// What every particle's moves share in an iteration.
pub struct Kernel<'a> {
    pub kind: MutationKind,
    pub beta: f64,
    pub mean: &'a [f64],
    /// Lower Cholesky factor of the particles' covariance.
    pub chol: &'a DMatrix<f64>,
    /// RWM: the step's scale on the covariance; pCN: ρ in (0, 1).
    pub scale: f64,
    pub steps: usize,
}

/// A particle after its moves.
pub struct Moved {
    pub accepted: u64,
    pub evaluations: u64,
}

impl Kernel<'_> {
    /// −½ (x − μ)ᵀ Σ⁻¹ (x − μ), by forward substitution on the factor.
    fn reference(&self, x: &[f64]) -> f64 {
        let d = x.len();
        let mut y = vec![0.0; d];
        for i in 0..d {
            let mut s = x[i] - self.mean[i];
            for (j, yj) in y.iter().enumerate().take(i) {
                s -= self.chol[(i, j)] * yj;
            }
            y[i] = s / self.chol[(i, i)];
        }
        -0.5 * y.iter().map(|v| v * v).sum::<f64>()
    }

    /// Moves one particle in place (`x`, its log-likelihood and log-prior).
    pub fn run(
        &self,
        posterior: &Posterior,
        rng: &mut Stream,
        x: &mut [f64],
        log_l: &mut f64,
        log_prior: &mut f64,
    ) -> Result<Moved, EvalError> {
        let d = x.len();
        let mut z = vec![0.0; d];
        let mut y = vec![0.0; d];
        let mut out = Moved {
            accepted: 0,
            evaluations: 0,
        };
        let rho = self.scale.clamp(1e-6, 0.999);
        let keep = (1.0 - rho * rho).sqrt();
        for _ in 0..self.steps {
            for zi in z.iter_mut() {
                *zi = rng.sample(StandardNormal);
            }
            for i in 0..d {
                let lz: f64 = (0..=i).map(|j| self.chol[(i, j)] * z[j]).sum();
                y[i] = match self.kind {
                    MutationKind::Rwm => x[i] + self.scale * lz,
                    MutationKind::Pcn => self.mean[i] + keep * (x[i] - self.mean[i]) + rho * lz,
                };
            }
            let (lp, ll) = posterior.log_prior_likelihood(&y)?;
            let u: f64 = rng.random();
            if lp == f64::NEG_INFINITY {
                continue;
            }
            out.evaluations += 1;
            let mut log_alpha = lp - *log_prior + self.beta * (ll - *log_l);
            if *log_l == f64::NEG_INFINITY {
                log_alpha = if ll == f64::NEG_INFINITY {
                    lp - *log_prior
                } else {
                    f64::INFINITY
                };
            }
            if self.kind == MutationKind::Pcn {
                log_alpha -= self.reference(&y) - self.reference(x);
            }
            if u.ln() < log_alpha {
                x.copy_from_slice(&y);
                *log_l = ll;
                *log_prior = lp;
                out.accepted += 1;
            }
        }
        Ok(out)
    }
}
