//! Priors: products of independent normalised one-dimensional densities.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use statrs::function::erf::erfc_inv;

use super::PriorSpec;
use super::{check_finite, BuildError};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// A prior: a product of independent normalised one-dimensional densities,
/// built by [`Prior::from_spec`]. The parts of the log density that do not
/// depend on x are computed once there, so that an evaluation is the support
/// check plus what does depend on x.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior(Density);

/// The precomputed terms keep the order of operations of the direct formulas
/// (−Σ ln(high − low) accumulated from 0 parameter by parameter, …), so that
/// evaluations are bit for bit those of the formulas and samples do not change.
#[derive(Debug, Clone, PartialEq)]
enum Density {
    /// Uniform on the box [low, high]; log density −Σ ln(high − low) inside.
    Uniform {
        low: Vec<f64>,
        high: Vec<f64>,
        /// −Σ ln(high − low).
        log_density: f64,
    },
    /// Independent normals.
    Normal {
        mean: Vec<f64>,
        sd: Vec<f64>,
        /// ln sd, per parameter.
        ln_sd: Vec<f64>,
    },
    /// Density 1 / (x ln(high/low)) on [low, high], per parameter.
    LogUniform {
        low: Vec<f64>,
        high: Vec<f64>,
        /// ln ln(high/low), per parameter: kept per parameter rather than
        /// summed, since it is added to ln x parameter by parameter.
        ln_ln_ratio: Vec<f64>,
    },
    /// ln x normal, per parameter.
    LogNormal {
        mu: Vec<f64>,
        sigma: Vec<f64>,
        /// ln sigma, per parameter.
        ln_sigma: Vec<f64>,
    },
    /// Normals restricted to [low, high], per parameter.
    TruncatedNormal {
        mean: Vec<f64>,
        sd: Vec<f64>,
        low: Vec<f64>,
        high: Vec<f64>,
        /// Φ((low − mean)/sd) and Φ((high − mean)/sd).
        cdf_low: Vec<f64>,
        cdf_high: Vec<f64>,
        /// −ln sd − ln √(2π) − ln(Φ(b) − Φ(a)).
        ln_norm: Vec<f64>,
    },
    /// Parameters from priors of their own, one after another.
    Independent(Vec<Prior>),
}

impl Prior {
    pub fn from_spec(spec: &PriorSpec) -> Result<Self, BuildError> {
        let pairs = |a: &str, av: &Vec<f64>, b: &str, bv: &Vec<f64>| {
            check_finite(a, av)?;
            check_finite(b, bv)?;
            if av.len() != bv.len() {
                return Err(BuildError::new(
                    b,
                    format!("has {} entries but {a} has {}", bv.len(), av.len()),
                ));
            }
            if av.is_empty() {
                return Err(BuildError::new(a, "expected at least one entry"));
            }
            Ok(())
        };
        // Every entry of `values` (the key `name`) is positive.
        let positive = |name: &str, values: &[f64]| match values.iter().position(|&v| v <= 0.0) {
            Some(i) => Err(BuildError::new(format!("{name}[{i}]"), "must be positive")),
            None => Ok(()),
        };
        // Every interval [low, high] is one.
        let ordered = |low: &[f64], high: &[f64]| match (0..low.len()).find(|&i| low[i] >= high[i])
        {
            Some(i) => Err(BuildError::new(
                format!("high[{i}]"),
                format!("must be greater than low[{i}] = {}", low[i]),
            )),
            None => Ok(()),
        };
        let density = match spec {
            PriorSpec::Uniform { low, high } => {
                pairs("low", low, "high", high)?;
                ordered(low, high)?;
                // The width must be a finite number for the density to be one.
                if let Some(i) = (0..low.len()).find(|&i| !(high[i] - low[i]).is_finite()) {
                    return Err(BuildError::new(
                        format!("high[{i}]"),
                        format!(
                            "the width high − low = {:e} − ({:e}) overflows: the density would be 0 \
                             everywhere; narrow the box",
                            high[i], low[i]
                        ),
                    ));
                }
                Density::Uniform {
                    log_density: low
                        .iter()
                        .zip(high)
                        .fold(0.0, |lp, (lo, hi)| lp - (hi - lo).ln()),
                    low: low.clone(),
                    high: high.clone(),
                }
            }
            PriorSpec::Normal { mean, sd } => {
                pairs("mean", mean, "sd", sd)?;
                positive("sd", sd)?;
                Density::Normal {
                    ln_sd: sd.iter().map(|s| s.ln()).collect(),
                    mean: mean.clone(),
                    sd: sd.clone(),
                }
            }
            PriorSpec::LogUniform { low, high } => {
                pairs("low", low, "high", high)?;
                positive("low", low)?;
                ordered(low, high)?;
                if let Some(i) = (0..low.len()).find(|&i| !(high[i] / low[i]).is_finite()) {
                    return Err(BuildError::new(
                        format!("high[{i}]"),
                        format!(
                            "the ratio high / low = {:e} / {:e} overflows: the density would be 0 \
                             everywhere; narrow the range",
                            high[i], low[i]
                        ),
                    ));
                }
                Density::LogUniform {
                    ln_ln_ratio: low
                        .iter()
                        .zip(high)
                        .map(|(lo, hi)| (hi / lo).ln().ln())
                        .collect(),
                    low: low.clone(),
                    high: high.clone(),
                }
            }
            PriorSpec::LogNormal { mu, sigma } => {
                pairs("mu", mu, "sigma", sigma)?;
                positive("sigma", sigma)?;
                Density::LogNormal {
                    ln_sigma: sigma.iter().map(|s| s.ln()).collect(),
                    mu: mu.clone(),
                    sigma: sigma.clone(),
                }
            }
            PriorSpec::TruncatedNormal {
                mean,
                sd,
                low,
                high,
            } => {
                pairs("mean", mean, "sd", sd)?;
                pairs("mean", mean, "low", low)?;
                pairs("mean", mean, "high", high)?;
                positive("sd", sd)?;
                ordered(low, high)?;
                let cdf = |x: f64, m: f64, s: f64| normal_cdf((x - m) / s);
                let cdf_low: Vec<f64> = (0..low.len())
                    .map(|i| cdf(low[i], mean[i], sd[i]))
                    .collect();
                let cdf_high: Vec<f64> = (0..low.len())
                    .map(|i| cdf(high[i], mean[i], sd[i]))
                    .collect();
                if let Some(i) = (0..low.len()).find(|&i| cdf_high[i] - cdf_low[i] <= 0.0) {
                    return Err(BuildError::new(
                        format!("low[{i}]"),
                        "the interval [low, high] holds no mass of the normal (more than 37 sd \
                         from its mean): move it or widen sd",
                    ));
                }
                Density::TruncatedNormal {
                    ln_norm: (0..low.len())
                        .map(|i| -sd[i].ln() - LN_SQRT_2PI - (cdf_high[i] - cdf_low[i]).ln())
                        .collect(),
                    mean: mean.clone(),
                    sd: sd.clone(),
                    low: low.clone(),
                    high: high.clone(),
                    cdf_low,
                    cdf_high,
                }
            }
            PriorSpec::Independent { dists } => {
                if dists.is_empty() {
                    return Err(BuildError::new("dists", "expected at least one prior"));
                }
                let parts = dists
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        Prior::from_spec(d).map_err(|e| {
                            BuildError::new(format!("dists[{i}].{}", e.field), e.message)
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Density::Independent(parts)
            }
        };
        Ok(Prior(density))
    }

    /// Runs `f` on each part of an independent prior with its slice of
    /// `a` and of `b` (its parameters), in order.
    fn split<A, B>(
        parts: &[Prior],
        a: &[A],
        b: &mut [B],
        mut f: impl FnMut(&Prior, &[A], &mut [B]),
    ) {
        let mut at = 0;
        for p in parts {
            let d = p.dim();
            f(p, &a[at..at + d], &mut b[at..at + d]);
            at += d;
        }
    }

    pub fn dim(&self) -> usize {
        match &self.0 {
            Density::Uniform { low, .. } | Density::LogUniform { low, .. } => low.len(),
            Density::Normal { mean, .. } => mean.len(),
            Density::LogNormal { mu, .. } => mu.len(),
            Density::TruncatedNormal { mean, .. } => mean.len(),
            Density::Independent(parts) => parts.iter().map(Prior::dim).sum(),
        }
    }

    /// The standard deviation of each parameter under the prior: the scale
    /// of the parameter before seeing data (samplers size their first
    /// proposals and their numerical floors from it). Uniform: (high −
    /// low)/√12; normal: its sd; log-uniform: see [`log_uniform_sd`].
    pub fn scales(&self) -> Vec<f64> {
        match &self.0 {
            Density::Uniform { low, high, .. } => low
                .iter()
                .zip(high)
                .map(|(&lo, &hi)| (hi - lo) / 12f64.sqrt())
                .collect(),
            Density::Normal { sd, .. } => sd.clone(),
            Density::LogUniform { low, high, .. } => low
                .iter()
                .zip(high)
                .map(|(&a, &b)| log_uniform_sd(a, b))
                .collect(),
            // sd of a log-normal: √((e^{σ²} − 1) e^{2μ + σ²}).
            Density::LogNormal { mu, sigma, .. } => mu
                .iter()
                .zip(sigma)
                .map(|(&m, &s)| ((s * s).exp_m1() * (2.0 * m + s * s).exp()).sqrt())
                .collect(),
            // The truncated normal's sd: sd √(1 + (αφ(α) − βφ(β))/Z − ((φ(α) − φ(β))/Z)²).
            Density::TruncatedNormal {
                mean,
                sd,
                low,
                high,
                cdf_low,
                cdf_high,
                ..
            } => (0..mean.len())
                .map(|i| {
                    let (a, b) = ((low[i] - mean[i]) / sd[i], (high[i] - mean[i]) / sd[i]);
                    let z = cdf_high[i] - cdf_low[i];
                    let phi = |x: f64| (-0.5 * x * x - LN_SQRT_2PI).exp();
                    let term = |x: f64, p: f64| if x.is_finite() { x * p } else { 0.0 };
                    let r = (phi(a) - phi(b)) / z;
                    sd[i]
                        * (1.0 + (term(a, phi(a)) - term(b, phi(b))) / z - r * r)
                            .max(0.0)
                            .sqrt()
                })
                .collect(),
            Density::Independent(parts) => parts.iter().flat_map(Prior::scales).collect(),
        }
    }

    pub fn log_density(&self, x: &[f64]) -> f64 {
        // `contains` is false for NaN: a NaN parameter is outside the support.
        let inside = |low: &[f64], high: &[f64]| {
            x.iter()
                .zip(low)
                .zip(high)
                .all(|((xi, lo), hi)| (lo..=hi).contains(&xi))
        };
        match &self.0 {
            Density::Uniform {
                low,
                high,
                log_density,
            } => {
                if inside(low, high) {
                    *log_density
                } else {
                    f64::NEG_INFINITY
                }
            }
            Density::Normal { mean, sd, ln_sd } => x
                .iter()
                .zip(mean)
                .zip(sd)
                .zip(ln_sd)
                .map(|(((&xi, &m), &s), &ln_s)| {
                    let z = (xi - m) / s;
                    -0.5 * z * z - ln_s - LN_SQRT_2PI
                })
                .sum(),
            Density::LogUniform {
                low,
                high,
                ln_ln_ratio,
            } => {
                if !inside(low, high) {
                    return f64::NEG_INFINITY;
                }
                let mut lp = 0.0;
                for (&xi, &c) in x.iter().zip(ln_ln_ratio) {
                    lp -= xi.ln() + c;
                }
                lp
            }
            Density::LogNormal {
                mu,
                sigma,
                ln_sigma,
            } => {
                // `>` is false for NaN too.
                if !x.iter().all(|&xi| xi > 0.0) {
                    return f64::NEG_INFINITY;
                }
                x.iter()
                    .zip(mu)
                    .zip(sigma)
                    .zip(ln_sigma)
                    .map(|(((&xi, &m), &s), &ln_s)| {
                        let ln_x = xi.ln();
                        let z = (ln_x - m) / s;
                        -0.5 * z * z - ln_s - LN_SQRT_2PI - ln_x
                    })
                    .sum()
            }
            Density::TruncatedNormal {
                mean,
                sd,
                low,
                high,
                ln_norm,
                ..
            } => {
                if !inside(low, high) {
                    return f64::NEG_INFINITY;
                }
                (0..x.len())
                    .map(|i| {
                        let z = (x[i] - mean[i]) / sd[i];
                        -0.5 * z * z + ln_norm[i]
                    })
                    .sum()
            }
            Density::Independent(parts) => {
                let mut lp = 0.0;
                let mut at = 0;
                for p in parts {
                    let d = p.dim();
                    lp += p.log_density(&x[at..at + d]);
                    at += d;
                }
                lp
            }
        }
    }

    /// The point whose marginal cumulative probabilities are `u` (each in
    /// (0, 1)), into `out`: the inverse CDF of every parameter's
    /// distribution, which maps a design on the unit cube (a Latin
    /// hypercube) onto the prior.
    pub fn quantile(&self, u: &[f64], out: &mut [f64]) {
        match &self.0 {
            Density::Uniform { low, high, .. } => {
                for (((o, &lo), &hi), &p) in out.iter_mut().zip(low).zip(high).zip(u) {
                    *o = lo + (hi - lo) * p;
                }
            }
            Density::Normal { mean, sd, .. } => {
                for (((o, &m), &s), &p) in out.iter_mut().zip(mean).zip(sd).zip(u) {
                    // Φ⁻¹(p) = −√2 erfc⁻¹(2p).
                    *o = m - s * std::f64::consts::SQRT_2 * erfc_inv(2.0 * p);
                }
            }
            Density::LogUniform { low, high, .. } => {
                for (((o, &lo), &hi), &p) in out.iter_mut().zip(low).zip(high).zip(u) {
                    *o = (lo.ln() + (hi / lo).ln() * p).exp();
                }
            }
            Density::LogNormal { mu, sigma, .. } => {
                for (((o, &m), &s), &p) in out.iter_mut().zip(mu).zip(sigma).zip(u) {
                    *o = (m - s * std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)).exp();
                }
            }
            Density::TruncatedNormal {
                mean,
                sd,
                low,
                high,
                cdf_low,
                cdf_high,
                ..
            } => {
                for i in 0..out.len() {
                    let p = cdf_low[i] + (cdf_high[i] - cdf_low[i]) * u[i];
                    let x = mean[i] + sd[i] * normal_quantile(p);
                    // Rounding in the far tail must not leave the support.
                    out[i] = x.clamp(low[i], high[i]);
                }
            }
            Density::Independent(parts) => {
                Self::split(parts, u, out, |p, u, o| p.quantile(u, o));
            }
        }
    }

    /// Writes one independent draw into `out`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        match &self.0 {
            Density::Uniform { low, high, .. } => {
                for ((o, &lo), &hi) in out.iter_mut().zip(low).zip(high) {
                    *o = lo + (hi - lo) * rng.random::<f64>();
                }
            }
            Density::Normal { mean, sd, .. } => {
                for ((o, &m), &s) in out.iter_mut().zip(mean).zip(sd) {
                    *o = m + s * rng.sample::<f64, _>(StandardNormal);
                }
            }
            Density::LogUniform { low, high, .. } => {
                for ((o, &lo), &hi) in out.iter_mut().zip(low).zip(high) {
                    *o = (lo.ln() + (hi / lo).ln() * rng.random::<f64>()).exp();
                }
            }
            Density::LogNormal { mu, sigma, .. } => {
                for ((o, &m), &s) in out.iter_mut().zip(mu).zip(sigma) {
                    *o = (m + s * rng.sample::<f64, _>(StandardNormal)).exp();
                }
            }
            Density::TruncatedNormal { .. } => {
                // By inversion: one uniform per parameter.
                let u: Vec<f64> = (0..out.len())
                    .map(|_| rng.random::<f64>().max(f64::MIN_POSITIVE))
                    .collect();
                self.quantile(&u, out);
            }
            Density::Independent(parts) => {
                let mut at = 0;
                for p in parts {
                    let d = p.dim();
                    p.sample(rng, &mut out[at..at + d]);
                    at += d;
                }
            }
        }
    }
}

/// Φ(z), the standard normal CDF.
fn normal_cdf(z: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-z / std::f64::consts::SQRT_2)
}

/// Φ⁻¹(p) = −√2 erfc⁻¹(2p).
fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// The sd of the log-uniform distribution on [a, b]. With x = √(ab) e^V,
/// V uniform on [−h, h], h = ½ ln(b/a): Var x = ab · g(h), where
/// g(h) = sinh(2h)/(2h) − (sinh h / h)². For small h the two terms are both
/// near 1 and their difference cancels, so there g comes from its series
/// h²/3 + 4h⁴/45 + h⁶/105 (next term O(h⁸), below rounding for h < 10⁻²);
/// above, the direct difference loses at most ~10⁻¹¹ relative.
fn log_uniform_sd(a: f64, b: f64) -> f64 {
    // b − a is exact for close a and b, where b / a would round.
    let h = 0.5 * ((b - a) / a).ln_1p();
    let g = if h < 1e-2 {
        let h2 = h * h;
        h2 * (1.0 / 3.0 + h2 * (4.0 / 45.0 + h2 / 105.0))
    } else {
        (2.0 * h).sinh() / (2.0 * h) - (h.sinh() / h).powi(2)
    };
    a.sqrt() * b.sqrt() * g.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quadrature::integrate;

    fn prior(spec: PriorSpec) -> Prior {
        Prior::from_spec(&spec).unwrap()
    }

    #[test]
    fn one_dimensional_priors_integrate_to_one() {
        let cases = [
            (
                prior(PriorSpec::Uniform {
                    low: vec![-1.0],
                    high: vec![3.0],
                }),
                -2.0,
                4.0,
            ),
            (
                prior(PriorSpec::Normal {
                    mean: vec![0.5],
                    sd: vec![2.0],
                }),
                -20.0,
                21.0,
            ),
            (
                prior(PriorSpec::LogUniform {
                    low: vec![0.1],
                    high: vec![10.0],
                }),
                0.0,
                11.0,
            ),
        ];
        for (p, lo, hi) in cases {
            let mass = integrate(lo, hi, 400_000, |x| p.log_density(&[x]).exp());
            assert!((mass - 1.0).abs() < 1e-4, "{p:?}: {mass}");
        }
    }

    #[test]
    fn log_normal_and_independent_priors_are_normalised_and_invert_their_cdf() {
        let p = prior(PriorSpec::Independent {
            dists: vec![
                PriorSpec::LogNormal {
                    mu: vec![4.6],
                    sigma: vec![0.5],
                },
                PriorSpec::Normal {
                    mean: vec![30.0],
                    sd: vec![5.0],
                },
            ],
        });
        assert_eq!(p.dim(), 2);
        // Each marginal integrates to one (the other held at its mode).
        let ln_mass = |f: &dyn Fn(f64) -> f64, a, b| integrate(a, b, 20_000, |x| f(x).exp());
        let at_mode = p.log_density(&[4.6f64.exp(), 30.0]);
        let normal_at_mode = -(5.0f64.ln()) - LN_SQRT_2PI;
        let lognormal = |x: f64| p.log_density(&[x, 30.0]) - normal_at_mode;
        assert!((ln_mass(&lognormal, 1e-9, 2000.0) - 1.0).abs() < 1e-3);
        assert!(at_mode.is_finite());
        assert_eq!(p.log_density(&[-1.0, 30.0]), f64::NEG_INFINITY);
        // The quantile of ½ is the median of each part; of Φ(1), one sd up.
        let mut x = [0.0; 2];
        p.quantile(&[0.5, 0.5], &mut x);
        assert!((x[0] - 4.6f64.exp()).abs() < 1e-9 && (x[1] - 30.0).abs() < 1e-12);
        p.quantile(&[0.841_344_746_068_542_9, 0.841_344_746_068_542_9], &mut x);
        assert!(
            (x[0] - 5.1f64.exp()).abs() < 1e-6 && (x[1] - 35.0).abs() < 1e-9,
            "{x:?}"
        );
        // Scales: the log-normal's sd, then the normal's.
        let s = p.scales();
        let sd = ((0.25f64).exp_m1() * (9.2f64 + 0.25).exp()).sqrt();
        assert!((s[0] - sd).abs() < 1e-9 * sd && s[1] == 5.0);
        // A bad part names itself.
        let e = Prior::from_spec(&PriorSpec::Independent {
            dists: vec![PriorSpec::LogNormal {
                mu: vec![0.0],
                sigma: vec![0.0],
            }],
        })
        .unwrap_err();
        assert_eq!(e.field, "dists[0].sigma[0]");
        // A number may stand for a list of one.
        let spec: PriorSpec = toml::from_str("kind = \"normal\"\nmean = 30\nsd = [5.0]").unwrap();
        assert_eq!(
            spec,
            PriorSpec::Normal {
                mean: vec![30.0],
                sd: vec![5.0]
            }
        );
    }

    #[test]
    fn a_truncated_normal_is_normalised_on_its_interval_and_inverts_its_cdf() {
        let p = prior(PriorSpec::TruncatedNormal {
            mean: vec![30.0],
            sd: vec![5.0],
            low: vec![25.0],
            high: vec![50.0],
        });
        let mass = integrate(20.0, 55.0, 70_000, |x| p.log_density(&[x]).exp());
        assert!((mass - 1.0).abs() < 1e-3, "{mass}");
        assert_eq!(p.log_density(&[24.9]), f64::NEG_INFINITY);
        let mut x = [0.0];
        p.quantile(&[1e-12], &mut x);
        assert!((x[0] - 25.0).abs() < 1e-6);
        p.quantile(&[0.5], &mut x);
        // The median: Φ⁻¹((Φ(−1) + Φ(4)) / 2) · 5 + 30.
        let (a, b) = (normal_cdf(-1.0), normal_cdf(4.0));
        assert!((x[0] - (30.0 + 5.0 * normal_quantile(0.5 * (a + b)))).abs() < 1e-12);
        // Draws stay inside; their mean is 30 + 5 (φ(−1) − φ(4)) / (Φ(4) − Φ(−1)).
        let mut rng = crate::seed::StreamKey::of_seed(1).stream(0);
        let n = 20_000;
        let mean: f64 = (0..n)
            .map(|_| {
                p.sample(&mut rng, &mut x);
                assert!((25.0..=50.0).contains(&x[0]));
                x[0]
            })
            .sum::<f64>()
            / n as f64;
        let phi = |z: f64| (-0.5 * z * z - LN_SQRT_2PI).exp();
        let exact = 30.0 + 5.0 * (phi(-1.0) - phi(4.0)) / (b - a);
        let sd = p.scales()[0];
        assert!(
            (mean - exact).abs() < 5.0 * sd / (n as f64).sqrt(),
            "{mean} vs {exact}"
        );
        assert!(Prior::from_spec(&PriorSpec::TruncatedNormal {
            mean: vec![0.0],
            sd: vec![1.0],
            low: vec![1.0],
            high: vec![1.0],
        })
        .is_err());
    }

    #[test]
    fn two_dimensional_uniform_integrates_to_one() {
        let p = prior(PriorSpec::Uniform {
            low: vec![0.0, -1.0],
            high: vec![2.0, 4.0],
        });
        let mass = integrate(-1.0, 3.0, 800, |x| {
            integrate(-2.0, 5.0, 800, |y| p.log_density(&[x, y]).exp())
        });
        assert!((mass - 1.0).abs() < 1e-2, "{mass}");
    }

    #[test]
    fn precomputed_constants_give_the_direct_formulas_bit_for_bit() {
        // The formulas as they were evaluated before the constants were
        // precomputed: a change of rounding here would change the samples.
        fn direct(spec: &PriorSpec, x: &[f64]) -> f64 {
            let mut lp = 0.0;
            match spec {
                PriorSpec::Uniform { low, high } => {
                    for ((&xi, &lo), &hi) in x.iter().zip(low).zip(high) {
                        if !(lo..=hi).contains(&xi) {
                            return f64::NEG_INFINITY;
                        }
                        lp -= (hi - lo).ln();
                    }
                }
                PriorSpec::Normal { mean, sd } => {
                    lp = x
                        .iter()
                        .zip(mean)
                        .zip(sd)
                        .map(|((&xi, &m), &s)| {
                            let z = (xi - m) / s;
                            -0.5 * z * z - s.ln() - LN_SQRT_2PI
                        })
                        .sum();
                }
                PriorSpec::LogUniform { low, high } => {
                    for ((&xi, &lo), &hi) in x.iter().zip(low).zip(high) {
                        if !(lo..=hi).contains(&xi) {
                            return f64::NEG_INFINITY;
                        }
                        lp -= xi.ln() + (hi / lo).ln().ln();
                    }
                }
                PriorSpec::LogNormal { .. }
                | PriorSpec::TruncatedNormal { .. }
                | PriorSpec::Independent { .. } => {
                    unreachable!("not among the specs below")
                }
            }
            lp
        }
        let specs = [
            PriorSpec::Uniform {
                low: vec![-1.3, 0.0, 2.0, -7.1],
                high: vec![3.7, 0.1, 9.5, 7.3],
            },
            PriorSpec::Normal {
                mean: vec![0.5, -3.0, 1.0, 0.0],
                sd: vec![2.0, 0.3, 7.0, 1.1],
            },
            PriorSpec::LogUniform {
                low: vec![0.1, 1e-3, 2.0, 0.7],
                high: vec![10.0, 1.0, 3.0, 9.0],
            },
        ];
        let mut rng = crate::seed::StreamKey::of_seed(8).stream(0);
        for spec in &specs {
            let p = prior(spec.clone());
            let mut x = [0.0; 4];
            for k in 0..2000 {
                p.sample(&mut rng, &mut x);
                // Every fourth point has a parameter pushed out of the support or
                // made NaN (outside too, for the bounded priors).
                match k % 8 {
                    3 => x[k % 4] = -20.0,
                    7 => x[k % 4] = f64::NAN,
                    _ => {}
                }
                let (ours, theirs) = (p.log_density(&x), direct(spec, &x));
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{spec:?} at {x:?}");
            }
        }
    }

    #[test]
    fn scales_are_the_prior_sds() {
        // Each 1-D prior's sd by quadrature of its own density.
        let cases = [
            (
                PriorSpec::Uniform {
                    low: vec![-1.0],
                    high: vec![3.0],
                },
                -2.0,
                4.0,
            ),
            (
                PriorSpec::Normal {
                    mean: vec![0.5],
                    sd: vec![2.0],
                },
                -20.0,
                21.0,
            ),
            (
                PriorSpec::LogUniform {
                    low: vec![0.1],
                    high: vec![10.0],
                },
                0.0,
                11.0,
            ),
        ];
        for (spec, lo, hi) in cases {
            let p = prior(spec);
            let moment =
                |k: i32| integrate(lo, hi, 400_000, |x| x.powi(k) * p.log_density(&[x]).exp());
            let sd = (moment(2) - moment(1).powi(2)).sqrt();
            let got = p.scales()[0];
            assert!((got - sd).abs() < 1e-4 * sd, "{p:?}: {got} vs {sd}");
        }
        // Per parameter; a log-uniform narrow enough for the direct formula to
        // cancel is (to rounding) the uniform on [a, b].
        let p = prior(PriorSpec::LogUniform {
            low: vec![1.0, 2.0],
            high: vec![1.0 + 1e-13, 8.0],
        });
        let s = p.scales();
        let narrow = ((1.0 + 1e-13) - 1.0) / 12f64.sqrt();
        assert!((s[0] - narrow).abs() < 1e-9 * narrow, "{s:?}");
        assert!(s[1] > 1.0 && s[1] < 2.0, "{s:?}");
    }

    #[test]
    fn draws_stay_in_support() {
        let p = prior(PriorSpec::LogUniform {
            low: vec![1e-3, 2.0],
            high: vec![1.0, 3.0],
        });
        let mut rng = crate::seed::StreamKey::of_seed(3).stream(0);
        let mut x = [0.0; 2];
        for _ in 0..1000 {
            p.sample(&mut rng, &mut x);
            assert!(p.log_density(&x).is_finite(), "{x:?}");
        }
    }

    #[test]
    fn bad_priors_name_the_field() {
        let e = Prior::from_spec(&PriorSpec::Uniform {
            low: vec![0.0, 1.0],
            high: vec![1.0, 1.0],
        })
        .unwrap_err();
        assert_eq!(e.field, "high[1]");
        let e = Prior::from_spec(&PriorSpec::Normal {
            mean: vec![0.0],
            sd: vec![0.0],
        })
        .unwrap_err();
        assert_eq!(e.field, "sd[0]");
        let e = Prior::from_spec(&PriorSpec::LogUniform {
            low: vec![-1.0],
            high: vec![1.0],
        })
        .unwrap_err();
        assert_eq!(e.field, "low[0]");
        let e = Prior::from_spec(&PriorSpec::Uniform {
            low: vec![0.0, f64::NAN],
            high: vec![1.0, 1.0],
        })
        .unwrap_err();
        assert_eq!(e.field, "low[1]");
    }
}
