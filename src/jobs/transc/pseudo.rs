//! Pseudo-priors: a normalised density fitted to each state's posterior
//! samples — one Gaussian (the samples' mean and covariance) or a Gaussian
//! mixture fitted by EM — that the trans-conceptual samplers evaluate and
//! draw from.

use nalgebra::DMatrix;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::numeric::{log_sum_exp, weighted_mean_cov};
use crate::seed::Stream;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Added to the diagonal of every covariance in standardised units (as
/// scikit-learn's `reg_covar`), so that a component on few or collinear
/// points stays positive definite.
pub const REG_COVAR: f64 = 1e-6;

/// At most this many samples feed EM (every n-th of a larger set).
const EM_MAX_POINTS: usize = 20_000;
const EM_MAX_ITER: usize = 200;
/// EM stops once the mean log-likelihood gains less than this.
const EM_TOL: f64 = 1e-8;

/// One normal component, with its Cholesky factor and its inverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub weight: f64,
    pub mean: Vec<f64>,
    /// d × d, row-major.
    pub cov: Vec<f64>,
    /// Lower Cholesky factor L (cov = L Lᵀ), row-major.
    chol: Vec<f64>,
    /// L⁻¹, row-major.
    inv: Vec<f64>,
    log_norm: f64,
}

impl Component {
    fn new(weight: f64, mean: Vec<f64>, cov: Vec<f64>) -> Result<Self, String> {
        let d = mean.len();
        let m = DMatrix::from_row_slice(d, d, &cov);
        let chol = m
            .cholesky()
            .ok_or("a covariance is not positive definite")?
            .l();
        let inv = chol
            .solve_lower_triangular(&DMatrix::identity(d, d))
            .ok_or("a covariance is singular")?;
        let log_det: f64 = 2.0 * (0..d).map(|i| chol[(i, i)].ln()).sum::<f64>();
        if !log_det.is_finite() {
            return Err("a covariance is singular".into());
        }
        let rows = |a: &DMatrix<f64>| (0..d * d).map(|k| a[(k / d, k % d)]).collect();
        Ok(Self {
            weight,
            mean,
            cov,
            chol: rows(&chol),
            inv: rows(&inv),
            log_norm: -0.5 * (d as f64 * LN_2PI + log_det),
        })
    }

    fn log_pdf(&self, x: &[f64]) -> f64 {
        let d = self.mean.len();
        let mut quad = 0.0;
        for i in 0..d {
            let z: f64 = (0..=i)
                .map(|j| self.inv[i * d + j] * (x[j] - self.mean[j]))
                .sum();
            quad += z * z;
        }
        self.log_norm - 0.5 * quad
    }

    /// The Cholesky factor, row-major (for random-walk proposals).
    pub fn chol(&self) -> &[f64] {
        &self.chol
    }
}

/// A state's pseudo-prior.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudoPrior {
    pub components: Vec<Component>,
}

impl PseudoPrior {
    /// Fits `k` components to `samples` (n × d, row-major): k = 1 is the
    /// samples' mean and covariance (1/n); k > 1 is EM from a k-means++
    /// start drawn from `rng`, on standardised samples. `REG_COVAR` is added
    /// to the diagonal in standardised units in both cases.
    pub fn fit(samples: &[f64], d: usize, k: usize, rng: &mut Stream) -> Result<Self, String> {
        let n = samples.len() / d.max(1);
        if n < 2 * k.max(1) || n < 2 {
            return Err(format!(
                "{n} samples are too few to fit {k} component(s) (at least {} needed)",
                2 * k.max(1)
            ));
        }
        // Standardise.
        let mut centre = vec![0.0; d];
        for row in samples.chunks(d) {
            for (c, x) in centre.iter_mut().zip(row) {
                *c += x;
            }
        }
        centre.iter_mut().for_each(|c| *c /= n as f64);
        let mut scale = vec![0.0; d];
        for row in samples.chunks(d) {
            for ((s, x), c) in scale.iter_mut().zip(row).zip(&centre) {
                *s += (x - c) * (x - c);
            }
        }
        for (j, s) in scale.iter_mut().enumerate() {
            *s = (*s / n as f64).sqrt();
            if !(s.is_finite() && *s > 0.0) {
                return Err(format!("parameter {j} never moved in the samples"));
            }
        }
        let z: Vec<f64> = samples
            .chunks(d)
            .flat_map(|row| {
                row.iter()
                    .zip(&centre)
                    .zip(&scale)
                    .map(|((x, c), s)| (x - c) / s)
            })
            .collect();
        let (weights, means, covs) = if k == 1 {
            let (m, c) = weighted_mean_cov(&z, d, None);
            (vec![1.0], vec![m], vec![c])
        } else {
            let stride = n.div_ceil(EM_MAX_POINTS);
            let pts: Vec<f64> = z.chunks(d).step_by(stride).flatten().copied().collect();
            em(&pts, d, k, rng)?
        };
        let components = weights
            .into_iter()
            .zip(means)
            .zip(covs)
            .map(|((w, m), mut c)| {
                for i in 0..d {
                    c[i * d + i] += REG_COVAR;
                }
                // Back to the parameters' units.
                let mean = m
                    .iter()
                    .zip(&centre)
                    .zip(&scale)
                    .map(|((m, c), s)| c + s * m);
                let cov = (0..d * d).map(|ij| c[ij] * scale[ij / d] * scale[ij % d]);
                Component::new(w, mean.collect(), cov.collect())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { components })
    }

    pub fn dim(&self) -> usize {
        self.components[0].mean.len()
    }

    pub fn log_density(&self, x: &[f64]) -> f64 {
        if let [c] = &self.components[..] {
            return c.log_pdf(x);
        }
        log_sum_exp(self.components.iter().map(|c| c.weight.ln() + c.log_pdf(x)))
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        let c = if self.components.len() == 1 {
            &self.components[0]
        } else {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            self.components
                .iter()
                .find(|c| {
                    acc += c.weight;
                    u < acc
                })
                .unwrap_or_else(|| self.components.last().expect("one component at least"))
        };
        let d = c.mean.len();
        let e: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        for (i, o) in out.iter_mut().enumerate().take(d) {
            *o = c.mean[i] + (0..=i).map(|j| c.chol[i * d + j] * e[j]).sum::<f64>();
        }
    }
}

type Mixture = (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>);

/// EM for a k-component Gaussian mixture on the rows of `z`, from k-means++
/// centres (then hard assignments) as a start.
fn em(z: &[f64], d: usize, k: usize, rng: &mut Stream) -> Result<Mixture, String> {
    let n = z.len() / d;
    let row = |i: usize| &z[i * d..(i + 1) * d];
    let dist2 = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
    // k-means++ centres.
    let mut centres: Vec<Vec<f64>> = vec![row(rng.random_range(0..n)).to_vec()];
    let mut nearest: Vec<f64> = (0..n).map(|i| dist2(row(i), &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        let mut u = rng.random::<f64>() * total;
        let pick = nearest
            .iter()
            .position(|&v| {
                u -= v;
                u < 0.0
            })
            .unwrap_or(n - 1);
        centres.push(row(pick).to_vec());
        let c = centres.last().expect("just pushed");
        for (i, v) in nearest.iter_mut().enumerate() {
            *v = v.min(dist2(row(i), c));
        }
    }
    // Responsibilities from the nearest centre.
    let mut resp = vec![0.0; n * k];
    for i in 0..n {
        let best = (0..k)
            .min_by(|&a, &b| dist2(row(i), &centres[a]).total_cmp(&dist2(row(i), &centres[b])))
            .expect("k ≥ 1");
        resp[i * k + best] = 1.0;
    }
    let mut previous = f64::NEG_INFINITY;
    let mut fitted = Vec::new();
    for _ in 0..EM_MAX_ITER {
        // M step.
        let mut weights = Vec::with_capacity(k);
        let mut comps = Vec::with_capacity(k);
        for c in 0..k {
            let w: Vec<f64> = (0..n).map(|i| resp[i * k + c]).collect();
            let nk: f64 = w.iter().sum::<f64>() + 10.0 * f64::EPSILON;
            let (mean, mut cov) = weighted_mean_cov(z, d, Some(&w));
            for i in 0..d {
                cov[i * d + i] += REG_COVAR;
            }
            weights.push(nk / n as f64);
            comps.push(Component::new(nk / n as f64, mean, cov)?);
        }
        // E step.
        let mut loglik = 0.0;
        for i in 0..n {
            let lp: Vec<f64> = comps
                .iter()
                .map(|c| c.weight.ln() + c.log_pdf(row(i)))
                .collect();
            let total = log_sum_exp(lp.iter().copied());
            loglik += total;
            for c in 0..k {
                resp[i * k + c] = (lp[c] - total).exp();
            }
        }
        loglik /= n as f64;
        fitted = comps;
        if loglik - previous < EM_TOL {
            break;
        }
        previous = loglik;
    }
    // Covariances without the floor (the caller adds it once).
    let weights = fitted.iter().map(|c| c.weight).collect();
    let means = fitted.iter().map(|c| c.mean.clone()).collect();
    let covs = fitted
        .iter()
        .map(|c| {
            let mut cov = c.cov.clone();
            for i in 0..d {
                cov[i * d + i] -= REG_COVAR;
            }
            cov
        })
        .collect();
    Ok((weights, means, covs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::StreamKey;

    fn stream() -> Stream {
        StreamKey {
            task: ((2) << 32) | (3),
            ..StreamKey::of_seed(1)
        }
        .stream(0)
    }

    #[test]
    fn one_component_is_the_samples_gaussian_and_integrates_to_one() {
        let mut rng = stream();
        let (d, n) = (2, 20_000);
        let mut s = vec![0.0; n * d];
        for row in s.chunks_mut(d) {
            let a: f64 = rng.sample(StandardNormal);
            let b: f64 = rng.sample(StandardNormal);
            row[0] = 1.0 + 2.0 * a;
            row[1] = -1.0 + 0.5 * a + 0.3 * b;
        }
        let g = PseudoPrior::fit(&s, d, 1, &mut stream()).unwrap();
        let c = &g.components[0];
        assert!((c.mean[0] - 1.0).abs() < 0.05 && (c.mean[1] + 1.0).abs() < 0.02);
        assert!((c.cov[0] - 4.0).abs() < 0.15 && (c.cov[1] - 1.0).abs() < 0.05);
        // A mixture of one component is the same fit, bit for bit.
        let m = PseudoPrior::fit(&s, d, 1, &mut stream()).unwrap();
        assert_eq!(g, m);
        // Normalised: a grid integral over ±8 sd.
        let h = 0.05;
        let mut total = 0.0;
        for i in 0..640 {
            for j in 0..640 {
                let x = [
                    -15.0 + (i as f64 + 0.5) * h * 2.0,
                    -5.0 + (j as f64 + 0.5) * h / 2.0,
                ];
                total += g.log_density(&x).exp() * h * 2.0 * h / 2.0;
            }
        }
        assert!((total - 1.0).abs() < 1e-3, "{total}");
    }

    #[test]
    fn em_finds_two_separated_components() {
        let mut rng = stream();
        let (d, n) = (1, 10_000);
        let s: Vec<f64> = (0..n)
            .map(|i| {
                let e: f64 = rng.sample(StandardNormal);
                if i % 4 == 0 {
                    5.0 + 0.5 * e
                } else {
                    -2.0 + e
                }
            })
            .collect();
        let g = PseudoPrior::fit(&s, d, 2, &mut stream()).unwrap();
        let mut comps = g.components.clone();
        comps.sort_by(|a, b| a.mean[0].total_cmp(&b.mean[0]));
        assert!((comps[0].weight - 0.75).abs() < 0.02, "{comps:?}");
        assert!((comps[0].mean[0] + 2.0).abs() < 0.05 && (comps[1].mean[0] - 5.0).abs() < 0.05);
        assert!((comps[1].cov[0] - 0.25).abs() < 0.03);
        // Draws follow the mixture.
        let mut x = [0.0];
        let high = (0..20_000)
            .filter(|_| {
                g.sample(&mut rng, &mut x);
                x[0] > 2.0
            })
            .count();
        assert!((high as f64 / 20_000.0 - 0.25).abs() < 0.015);
    }

    #[test]
    fn too_few_or_frozen_samples_are_refused() {
        assert!(PseudoPrior::fit(&[1.0, 2.0], 1, 2, &mut stream()).is_err());
        let err = PseudoPrior::fit(&[1.0, 3.0, 1.0, 4.0, 1.0, 5.0], 2, 1, &mut stream());
        assert!(err.unwrap_err().contains("parameter 0 never moved"));
    }
}
