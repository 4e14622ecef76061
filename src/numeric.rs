//! Shared numerics of the kinds: log-sum-exp, weights from log weights,
//! weighted moments and quantiles, and the mean of independent estimates
//! with its standard error. Every reduction runs in index order, so that
//! every rank computes the same bits from the same values.

/// log Σ exp(v), exact for empty or all −∞ input (−∞); +∞ if any is +∞.
pub fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Weights exp(l − max l) of log weights: the largest is 1, so that none
/// overflows and the ratios are kept.
pub fn relative_weights(log_w: &[f64]) -> Vec<f64> {
    let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    log_w.iter().map(|&l| (l - top).exp()).collect()
}

/// Weighted mean and covariance (normalised by Σw, row-major d × d) of the
/// rows of `z`, `d` values each; equal weights without `w`.
pub fn weighted_mean_cov(z: &[f64], d: usize, w: Option<&[f64]>) -> (Vec<f64>, Vec<f64>) {
    let weight = |i: usize| w.map_or(1.0, |w| w[i]);
    let total: f64 = (0..z.len() / d).map(weight).sum();
    let mut mean = vec![0.0; d];
    for (i, row) in z.chunks(d).enumerate() {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += weight(i) * x;
        }
    }
    mean.iter_mut().for_each(|m| *m /= total);
    let mut cov = vec![0.0; d * d];
    for (i, row) in z.chunks(d).enumerate() {
        let wi = weight(i);
        for a in 0..d {
            let da = row[a] - mean[a];
            for b in 0..=a {
                cov[a * d + b] += wi * da * (row[b] - mean[b]);
            }
        }
    }
    for a in 0..d {
        for b in 0..=a {
            let v = cov[a * d + b] / total;
            cov[a * d + b] = v;
            cov[b * d + a] = v;
        }
    }
    (mean, cov)
}

/// Quantiles `qs` of `x` under weights `w` (not normalised): for each q,
/// the smallest x whose cumulative weight reaches q (NaN without weight).
pub fn weighted_quantiles(x: &[f64], w: &[f64], qs: &[f64]) -> Vec<f64> {
    let total: f64 = w.iter().sum();
    let mut order: Vec<usize> = (0..x.len()).filter(|&i| w[i] > 0.0).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let quantile = |q: f64| {
        let mut cum = 0.0;
        for &i in &order {
            cum += w[i] / total;
            if cum >= q {
                return x[i];
            }
        }
        order.last().map_or(f64::NAN, |&i| x[i])
    };
    qs.iter().map(|&q| quantile(q)).collect()
}

/// The mean of independent estimates and its standard error (sd/√n).
pub fn mean_and_standard_error(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_is_exact_at_the_edges() {
        let empty: [f64; 0] = [];
        assert_eq!(log_sum_exp(empty.iter().copied()), f64::NEG_INFINITY);
        let none = [f64::NEG_INFINITY; 3];
        assert_eq!(log_sum_exp(none.iter().copied()), f64::NEG_INFINITY);
        assert_eq!(log_sum_exp([0.0, f64::INFINITY].into_iter()), f64::INFINITY);
        // Large values do not overflow: log(2 e^1000) = 1000 + log 2.
        let big = log_sum_exp([1000.0, 1000.0].into_iter());
        assert!((big - (1000.0 + 2f64.ln())).abs() < 1e-12, "{big}");
        let small = log_sum_exp([0.0, 1f64.ln(), 2f64.ln()].into_iter());
        assert!((small - 4f64.ln()).abs() < 1e-15, "{small}");
    }

    #[test]
    fn relative_weights_keep_the_ratios() {
        // Weights far below exp's range come out whole: the largest is 1.
        let w = relative_weights(&[-1000.0, -1000.0 + 1.5f64.ln(), f64::NEG_INFINITY]);
        assert_eq!(w[1], 1.0);
        assert!((w[0] - 1.0 / 1.5).abs() < 1e-12, "{w:?}");
        assert_eq!(w[2], 0.0);
    }

    #[test]
    fn weighted_moments_and_quantiles_of_a_small_sample() {
        // Rows (0, 0), (2, 2), (4, 0) with weights 1, 2, 1: mean (2, 1);
        // var x = (4 + 0 + 4) / 4 = 2, var y = (1 + 2 + 1) / 4 = 1, cov 0.
        let z = [0.0, 0.0, 2.0, 2.0, 4.0, 0.0];
        let (mean, cov) = weighted_mean_cov(&z, 2, Some(&[1.0, 2.0, 1.0]));
        assert_eq!(mean, [2.0, 1.0]);
        assert_eq!(cov, [2.0, 0.0, 0.0, 1.0]);
        let (_, equal) = weighted_mean_cov(&z, 2, None);
        assert!((equal[0] - 8.0 / 3.0).abs() < 1e-15, "{equal:?}");
        let x = [4.0, 0.0, 2.0];
        let q = weighted_quantiles(&x, &[1.0, 1.0, 2.0], &[0.05, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(q, [0.0, 0.0, 2.0, 2.0, 4.0]);
        assert!(weighted_quantiles(&x, &[0.0; 3], &[0.5])[0].is_nan());
    }

    #[test]
    fn the_standard_error_of_independent_estimates() {
        let (m, e) = mean_and_standard_error(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // sd = √(5/3), over √4.
        assert!((e - (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-15, "{e}");
    }
}
