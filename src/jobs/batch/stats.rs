//! Statistics of one output column over every item that succeeded: count,
//! mean, sd, min, the requested quantiles and max, exact (the column is
//! sorted), from a column at a time.

/// The statistics' names, in the order they are stored (rows of
/// `/batch/<state>/statistics`).
pub fn names(quantiles: &[f64]) -> Vec<String> {
    let mut names = vec!["count".to_string(), "mean".into(), "sd".into(), "min".into()];
    names.extend(quantiles.iter().map(|q| quantile_name(*q)));
    names.push("max".into());
    names
}

/// `q0.1`, `q0.5`, `q0.975`: the probability as written, shortest.
pub fn quantile_name(q: f64) -> String {
    format!("q{q}")
}

/// The statistics of `column` (NaN for a failed item, skipped), in the
/// order of [`names`]. `column` is sorted in place.
pub fn of_column(column: &mut Vec<f64>, quantiles: &[f64]) -> Vec<f64> {
    column.retain(|v| !v.is_nan());
    column.sort_unstable_by(f64::total_cmp);
    let n = column.len();
    let mut out = vec![n as f64];
    if n == 0 {
        out.extend(std::iter::repeat_n(f64::NAN, quantiles.len() + 4));
        return out;
    }
    // Two passes: the mean, then the sum of squared deviations (no
    // cancellation).
    let mean = column.iter().sum::<f64>() / n as f64;
    let ss: f64 = column.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sd = if n > 1 {
        (ss / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    out.extend([mean, sd, column[0]]);
    out.extend(quantiles.iter().map(|&q| quantile_sorted(column, q)));
    out.push(column[n - 1]);
    out
}

/// The q-quantile of sorted values, linearly interpolated between order
/// statistics (Hyndman & Fan's type 7, numpy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_match_numpy_on_a_small_column() {
        // numpy: np.quantile([1, 2, 3, 4, 10], [0.1, 0.5, 0.9]) =
        // [1.4, 3.0, 7.6]; mean 4, sd (ddof=1) √12.5.
        let mut c = vec![10.0, f64::NAN, 2.0, 4.0, 1.0, 3.0];
        let s = of_column(&mut c, &[0.1, 0.5, 0.9]);
        assert_eq!(s[0], 5.0);
        assert_eq!(s[1], 4.0);
        assert!((s[2] - 12.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(s[3], 1.0);
        assert!((s[4] - 1.4).abs() < 1e-15);
        assert_eq!(s[5], 3.0);
        assert!((s[6] - 7.6).abs() < 1e-14);
        assert_eq!(s[7], 10.0);
        assert_eq!(names(&[0.1, 0.5, 0.9]).len(), s.len());
        let empty = of_column(&mut vec![f64::NAN], &[0.5]);
        assert_eq!(empty[0], 0.0);
        assert!(empty[1..].iter().all(|v| v.is_nan()));
    }
}
