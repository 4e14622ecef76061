//! Built-in likelihoods, each a normalised density in the parameters:
//! Gaussian, Gaussian mixture, hybrid Rosenbrock and Neal's funnel.

use nalgebra::DMatrix;

use super::{check_finite, BuildError, EvalError, LogDensity};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Multivariate normal N(mean, cov) with a full covariance.
///
/// The Cholesky factor L (cov = L Lᵀ) comes from nalgebra; we keep W = L⁻¹ so
/// that an evaluation is one triangular matrix–vector product, no allocation:
/// log N = −½ (d ln 2π + ln det cov) − ½ |W (x − mean)|².
#[derive(Debug, Clone)]
pub struct Gaussian {
    mean: Vec<f64>,
    /// Lower-triangular L⁻¹, row-major, d × d.
    w: Vec<f64>,
    log_norm: f64,
}

impl Gaussian {
    pub fn new(mean: &[f64], cov: &[Vec<f64>]) -> Result<Self, BuildError> {
        Self::named(mean, cov, "mean", "cov")
    }

    fn named(
        mean: &[f64],
        cov: &[Vec<f64>],
        mean_name: &str,
        cov_name: &str,
    ) -> Result<Self, BuildError> {
        let d = mean.len();
        if d == 0 {
            return Err(BuildError::new(mean_name, "expected at least one entry"));
        }
        check_finite(mean_name, mean)?;
        if cov.len() != d {
            return Err(BuildError::new(
                cov_name,
                format!(
                    "expected {d} rows (the length of {mean_name}), found {}",
                    cov.len()
                ),
            ));
        }
        for (i, row) in cov.iter().enumerate() {
            if row.len() != d {
                return Err(BuildError::new(
                    format!("{cov_name}[{i}]"),
                    format!("expected {d} columns, found {}", row.len()),
                ));
            }
            check_finite(&format!("{cov_name}[{i}]"), row)?;
        }
        for (i, row) in cov.iter().enumerate() {
            for (j, col) in cov.iter().enumerate().take(i) {
                let (a, b) = (row[j], col[i]);
                if (a - b).abs() > 1e-12 * a.abs().max(b.abs()).max(f64::MIN_POSITIVE) {
                    return Err(BuildError::new(
                        format!("{cov_name}[{i}][{j}]"),
                        format!("covariance is not symmetric: {a} here but {b} at [{j}][{i}]"),
                    ));
                }
            }
        }
        let m = DMatrix::from_fn(d, d, |i, j| cov[i][j]);
        let chol = m
            .cholesky()
            .ok_or_else(|| BuildError::new(cov_name, "covariance is not positive definite"))?;
        let l = chol.l();
        let w = l
            .solve_lower_triangular(&DMatrix::identity(d, d))
            .ok_or_else(|| BuildError::new(cov_name, "covariance is singular"))?;
        let log_det: f64 = 2.0 * (0..d).map(|i| l[(i, i)].ln()).sum::<f64>();
        if !log_det.is_finite() {
            return Err(BuildError::new(cov_name, "covariance is singular"));
        }
        Ok(Self {
            mean: mean.to_vec(),
            w: (0..d * d).map(|k| w[(k / d, k % d)]).collect(),
            log_norm: -0.5 * (d as f64 * LN_2PI + log_det),
        })
    }

    fn log_pdf(&self, x: &[f64]) -> f64 {
        let d = self.mean.len();
        let mut quad = 0.0;
        for i in 0..d {
            let row = &self.w[i * d..i * d + i + 1];
            let z: f64 = row
                .iter()
                .zip(&x[..=i])
                .zip(&self.mean[..=i])
                .map(|((w, x), m)| w * (x - m))
                .sum();
            quad += z * z;
        }
        self.log_norm - 0.5 * quad
    }
}

impl LogDensity for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
        Ok(self.log_pdf(x))
    }
}

/// Σ_k w_k N(mean_k, cov_k), with weights summing to one.
#[derive(Debug, Clone)]
pub struct GaussianMixture {
    log_weights: Vec<f64>,
    components: Vec<Gaussian>,
}

impl GaussianMixture {
    pub fn new(
        weights: &[f64],
        means: &[Vec<f64>],
        covs: &[Vec<Vec<f64>>],
    ) -> Result<Self, BuildError> {
        if weights.is_empty() {
            return Err(BuildError::new(
                "weights",
                "expected at least one component",
            ));
        }
        check_finite("weights", weights)?;
        if let Some(i) = weights.iter().position(|&w| w <= 0.0) {
            return Err(BuildError::new(format!("weights[{i}]"), "must be positive"));
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(BuildError::new(
                "weights",
                format!("must sum to 1 so that the mixture is normalised, they sum to {total}"),
            ));
        }
        for (name, len) in [("means", means.len()), ("covs", covs.len())] {
            if len != weights.len() {
                return Err(BuildError::new(
                    name,
                    format!(
                        "expected {} entries (one per weight), found {len}",
                        weights.len()
                    ),
                ));
            }
        }
        let d = means[0].len();
        let mut components = Vec::with_capacity(weights.len());
        for (k, (mean, cov)) in means.iter().zip(covs).enumerate() {
            if mean.len() != d {
                return Err(BuildError::new(
                    format!("means[{k}]"),
                    format!(
                        "expected {d} entries (the length of means[0]), found {}",
                        mean.len()
                    ),
                ));
            }
            components.push(Gaussian::named(
                mean,
                cov,
                &format!("means[{k}]"),
                &format!("covs[{k}]"),
            )?);
        }
        Ok(Self {
            log_weights: weights.iter().map(|w| w.ln()).collect(),
            components,
        })
    }
}

impl LogDensity for GaussianMixture {
    fn dim(&self) -> usize {
        self.components[0].dim()
    }
    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
        let mut max = f64::NEG_INFINITY;
        let mut terms = [0.0f64; 16];
        let mut heap = Vec::new();
        let terms: &mut [f64] = if self.components.len() <= terms.len() {
            &mut terms[..self.components.len()]
        } else {
            heap.resize(self.components.len(), 0.0);
            &mut heap
        };
        for ((t, lw), c) in terms
            .iter_mut()
            .zip(&self.log_weights)
            .zip(&self.components)
        {
            *t = lw + c.log_pdf(x);
            max = max.max(*t);
        }
        if max == f64::NEG_INFINITY {
            return Ok(max);
        }
        Ok(max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln())
    }
}

/// The hybrid Rosenbrock density of Pagani, Wiegand & Nadarajah (2022) with
/// one block: x₁ ~ N(μ, 1/(2a)) and x_i | x_{i−1} ~ N(x_{i−1}², 1/(2b)).
/// It keeps Rosenbrock's curved valley and, unlike the classic chained form,
/// has a closed-form normalising constant √(a/π) (b/π)^((d−1)/2).
#[derive(Debug, Clone)]
pub struct Rosenbrock {
    dim: usize,
    a: f64,
    b: f64,
    mu: f64,
    log_norm: f64,
}

impl Rosenbrock {
    pub const DEFAULT_A: f64 = 1.0 / 20.0;
    pub const DEFAULT_B: f64 = 5.0;
    pub const DEFAULT_MU: f64 = 1.0;

    pub fn new(dim: usize, a: f64, b: f64, mu: f64) -> Result<Self, BuildError> {
        if dim < 2 {
            return Err(BuildError::new("dim", "must be at least 2"));
        }
        for (name, v) in [("a", a), ("b", b)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(BuildError::new(name, "must be a positive finite number"));
            }
        }
        check_finite("mu", &[mu]).map_err(|_| BuildError::new("mu", "must be finite"))?;
        let log_norm = 0.5 * (a / std::f64::consts::PI).ln()
            + 0.5 * (dim - 1) as f64 * (b / std::f64::consts::PI).ln();
        Ok(Self {
            dim,
            a,
            b,
            mu,
            log_norm,
        })
    }
}

impl LogDensity for Rosenbrock {
    fn dim(&self) -> usize {
        self.dim
    }
    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
        let mut s = self.a * (x[0] - self.mu).powi(2);
        for i in 1..self.dim {
            s += self.b * (x[i] - x[i - 1] * x[i - 1]).powi(2);
        }
        Ok(self.log_norm - s)
    }
}

/// Neal's funnel: v = x₀ ~ N(0, σ²) and x_i | v ~ N(0, eᵛ) for i ≥ 1.
#[derive(Debug, Clone)]
pub struct Funnel {
    dim: usize,
    sigma: f64,
}

impl Funnel {
    pub const DEFAULT_SIGMA: f64 = 3.0;

    pub fn new(dim: usize, sigma: f64) -> Result<Self, BuildError> {
        if dim < 2 {
            return Err(BuildError::new("dim", "must be at least 2 (v and one x)"));
        }
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(BuildError::new("sigma", "must be a positive finite number"));
        }
        Ok(Self { dim, sigma })
    }
}

impl LogDensity for Funnel {
    fn dim(&self) -> usize {
        self.dim
    }
    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
        let v = x[0];
        let n = (self.dim - 1) as f64;
        let lv = -0.5 * (v / self.sigma).powi(2) - self.sigma.ln() - 0.5 * LN_2PI;
        let sum_sq: f64 = x[1..].iter().map(|xi| xi * xi).sum();
        Ok(lv - 0.5 * n * (LN_2PI + v) - 0.5 * sum_sq * (-v).exp())
    }
}

/// Used by tests: the Gaussian's mean and covariance back, to check W.
#[cfg(test)]
fn covariance_from_w(g: &Gaussian) -> DMatrix<f64> {
    let d = g.mean.len();
    let w = DMatrix::from_row_slice(d, d, &g.w);
    let winv = w.try_inverse().unwrap();
    &winv * winv.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quadrature::integrate;
    use nalgebra::DVector;

    fn density(m: &dyn LogDensity, x: &[f64]) -> f64 {
        m.log_density(x).unwrap().exp()
    }

    #[test]
    fn gaussian_matches_closed_form_and_integrates_to_one() {
        let cov = vec![vec![1.0, 0.5], vec![0.5, 2.0]];
        let g = Gaussian::new(&[0.0, 1.0], &cov).unwrap();
        // At the mean: −ln(2π) − ½ ln det, det = 1.75.
        let expected = -LN_2PI - 0.5 * 1.75f64.ln();
        assert!((g.log_density(&[0.0, 1.0]).unwrap() - expected).abs() < 1e-12);
        // Off the mean, compare with the precision matrix directly.
        let p = DMatrix::from_row_slice(2, 2, &[1.0, 0.5, 0.5, 2.0])
            .try_inverse()
            .unwrap();
        let dx = DVector::from_vec(vec![0.7, -1.3]);
        let quad = (dx.transpose() * &p * &dx)[(0, 0)];
        let got = g.log_density(&[0.7, -0.3]).unwrap();
        assert!((got - (expected - 0.5 * quad)).abs() < 1e-12);
        let back = covariance_from_w(&g);
        assert!((back[(0, 1)] - 0.5).abs() < 1e-12 && (back[(1, 1)] - 2.0).abs() < 1e-12);
        let mass = integrate(-9.0, 9.0, 600, |x| {
            integrate(-11.0, 13.0, 600, |y| density(&g, &[x, y]))
        });
        assert!((mass - 1.0).abs() < 1e-6, "{mass}");
    }

    #[test]
    fn gaussian_rejects_bad_covariances() {
        let e = Gaussian::new(&[0.0, 0.0], &[vec![1.0, 2.0], vec![2.0, 1.0]]).unwrap_err();
        assert!(e.message.contains("not positive definite"), "{e}");
        let e = Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.1], vec![0.2, 1.0]]).unwrap_err();
        assert_eq!(e.field, "cov[1][0]");
        let e = Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.0]]).unwrap_err();
        assert_eq!(e.field, "cov");
        let e = Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.0], vec![0.0]]).unwrap_err();
        assert_eq!(e.field, "cov[1]");
        let e =
            Gaussian::new(&[0.0, f64::INFINITY], &[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap_err();
        assert_eq!(e.field, "mean[1]");
    }

    #[test]
    fn mixture_integrates_to_one_and_checks_weights() {
        let m = GaussianMixture::new(
            &[0.3, 0.7],
            &[vec![-2.0], vec![1.5]],
            &[vec![vec![0.5]], vec![vec![2.0]]],
        )
        .unwrap();
        let mass = integrate(-15.0, 15.0, 100_000, |x| density(&m, &[x]));
        assert!((mass - 1.0).abs() < 1e-8, "{mass}");
        let e = GaussianMixture::new(
            &[0.3, 0.6],
            &[vec![0.0], vec![1.0]],
            &[vec![vec![1.0]], vec![vec![1.0]]],
        )
        .unwrap_err();
        assert_eq!(e.field, "weights");
        let e = GaussianMixture::new(
            &[0.5, 0.5],
            &[vec![0.0], vec![1.0]],
            &[vec![vec![1.0]], vec![vec![-1.0]]],
        )
        .unwrap_err();
        assert_eq!(e.field, "covs[1]");
    }

    #[test]
    fn rosenbrock_integrates_to_one() {
        let r = Rosenbrock::new(2, 1.0, 1.0, 1.0).unwrap();
        // x₂ | x₁ is centred on x₁², so integrate x₂ around it.
        let mass = integrate(-6.0, 8.0, 2000, |x| {
            integrate(x * x - 8.0, x * x + 8.0, 2000, |y| density(&r, &[x, y]))
        });
        assert!((mass - 1.0).abs() < 1e-6, "{mass}");
    }

    #[test]
    fn funnel_integrates_to_one() {
        let f = Funnel::new(2, 1.0).unwrap();
        // x | v has sd e^{v/2}: integrate over ±12 sd of it.
        let mass = integrate(-9.0, 9.0, 2000, |v| {
            let w = 12.0 * (0.5 * v).exp();
            integrate(-w, w, 2000, |x| density(&f, &[v, x]))
        });
        assert!((mass - 1.0).abs() < 1e-6, "{mass}");
    }
}
