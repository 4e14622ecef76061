//! Quantiles of draws sorted by value, by the rules of the libraries
//! ArviZ leans on: numpy's `quantile` and `median` (what `az.summary`
//! reports) and scipy's `mstats.mquantiles` (what ArviZ's ESS and MCSE of a
//! quantile take as the quantile). The rules interpolate alike but round
//! differently, and a rounding decides which draws count as at or below.

/// Draws sorted by value, each with its flat index c · draws + i.
#[derive(Clone, Copy)]
pub(super) struct Sorted<'s>(pub(super) &'s [(f64, u32)]);

impl Sorted<'_> {
    pub(super) fn at(&self, i: usize) -> f64 {
        self.0[i].0
    }

    /// numpy's `quantile(x, prob)` (method "linear").
    pub(super) fn numpy_quantile(&self, prob: f64) -> f64 {
        let n = self.0.len();
        if n == 0 || prob.is_nan() {
            return f64::NAN;
        }
        let virtual_index = (n - 1) as f64 * prob;
        // numpy's `_get_indexes`: -1 stands for the last value, and the
        // interpolation weight is measured from that index as numpy does.
        let (prev, next, prev_index) = if virtual_index >= (n - 1) as f64 {
            (n - 1, n - 1, -1.0)
        } else if virtual_index < 0.0 {
            (0, 0, 0.0)
        } else {
            let f = virtual_index.floor();
            (f as usize, f as usize + 1, f)
        };
        let gamma = virtual_index - prev_index;
        let (a, b) = (self.at(prev), self.at(next));
        // numpy's `_lerp`: from the nearer end.
        let diff = b - a;
        if gamma >= 0.5 {
            b - diff * (1.0 - gamma)
        } else {
            a + diff * gamma
        }
    }

    /// numpy's `median`: the middle value, or the mean of the middle two.
    pub(super) fn numpy_median(&self) -> f64 {
        let n = self.0.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => self.at(n / 2),
            _ => (self.at(n / 2 - 1) + self.at(n / 2)) / 2.0,
        }
    }

    /// scipy's `mstats.mquantiles(x, prob, alphap=1, betap=1)`: ArviZ's
    /// `_quantile`, behind the quantile indicators. The same interpolation
    /// as numpy's, written differently, so it can round differently; it
    /// decides which draws count as at or below the quantile.
    pub(super) fn r7_quantile(&self, prob: f64) -> f64 {
        let n = self.0.len();
        match n {
            _ if prob.is_nan() => f64::NAN,
            0 => f64::NAN,
            1 => self.at(0),
            _ => {
                // alphap + prob (1 − alphap − betap) = 1 + prob · (−1).
                let m = 1.0 - prob;
                let aleph = n as f64 * prob + m;
                let k = aleph.clamp(1.0, (n - 1) as f64).floor();
                let gamma = (aleph - k).clamp(0.0, 1.0);
                let k = k as usize;
                (1.0 - gamma) * self.at(k - 1) + gamma * self.at(k)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(values: &[f64]) -> Vec<(f64, u32)> {
        values.iter().copied().zip(0..).collect()
    }

    #[test]
    fn numpy_rules() {
        let x = sorted(&[1.0, 2.0, 3.0, 4.0]);
        let s = Sorted(&x);
        assert_eq!(s.numpy_quantile(0.05), 1.15);
        assert_eq!(s.numpy_quantile(0.0), 1.0);
        assert_eq!(s.numpy_quantile(1.0), 4.0);
        assert_eq!(s.numpy_median(), 2.5);
        assert_eq!(Sorted(&sorted(&[1.0, 5.0, 7.0])).numpy_median(), 5.0);
        assert!(Sorted(&[]).numpy_quantile(0.5).is_nan());
    }

    #[test]
    fn mquantiles_rule() {
        // scipy.stats.mstats.mquantiles([1, 2, 3, 4], [0.05, 0.5, 0.95],
        // alphap=1, betap=1): 1.15, 2.5, 3.8499999999999996.
        let x = sorted(&[1.0, 2.0, 3.0, 4.0]);
        let s = Sorted(&x);
        assert_eq!(s.r7_quantile(0.05), 1.15);
        assert_eq!(s.r7_quantile(0.5), 2.5);
        assert_eq!(s.r7_quantile(0.95), 3.8499999999999996);
        // The two rules round differently: 0.1, 0.2, 0.3, 0.4 at 0.95 are
        // 0.385 by numpy, 0.38499999999999995 by scipy.
        let x = sorted(&[0.1, 0.2, 0.30000000000000004, 0.4]);
        assert_eq!(Sorted(&x).numpy_quantile(0.95), 0.385);
        assert_eq!(Sorted(&x).r7_quantile(0.95), 0.38499999999999995);
        assert_eq!(Sorted(&sorted(&[3.0])).r7_quantile(0.05), 3.0);
    }
}
