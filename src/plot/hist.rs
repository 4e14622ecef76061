//! Histograms filled by streaming over rows (bounded memory whatever the
//! number of draws), the levels of their highest-density regions, and
//! quantiles read off a fine histogram.
//!
//! Bins are numpy's: `bins` equal bins over `[lo, hi]` with numpy's edges
//! (`linspace`), each half-open but the last, and a value's bin found as
//! numpy's `histogram` finds it, so that `np.histogram(x, bins, (lo, hi))`
//! gives the same counts.

use serde::Serialize;

/// `bins` equal bins over `[lo, hi]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub bins: usize,
}

impl Axis {
    /// An axis over `[lo, hi]`; an empty or degenerate range is widened by
    /// 0.5 on each side (as numpy does).
    pub fn new(lo: f64, hi: f64, bins: usize) -> Self {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (-0.5, 0.5)
        };
        Self {
            lo,
            hi,
            bins: bins.max(1),
        }
    }

    /// Edge `i` (0 ..= bins), as numpy's `linspace(lo, hi, bins + 1)`.
    pub fn edge(&self, i: usize) -> f64 {
        if i >= self.bins {
            return self.hi;
        }
        i as f64 * ((self.hi - self.lo) / self.bins as f64) + self.lo
    }

    pub fn edges(&self) -> Vec<f64> {
        (0..=self.bins).map(|i| self.edge(i)).collect()
    }

    /// The bin of `x`, `None` outside `[lo, hi]` or NaN.
    pub fn index(&self, x: f64) -> Option<usize> {
        if !(x >= self.lo && x <= self.hi) {
            return None;
        }
        let n = self.bins;
        let norm = n as f64 / (self.hi - self.lo);
        let mut i = (((x - self.lo) * norm) as usize).min(n);
        if i == n {
            i -= 1;
        }
        // numpy's corrections for rounding near an edge.
        if x < self.edge(i) {
            i = i.saturating_sub(1);
        } else if i + 1 < n && x >= self.edge(i + 1) {
            i += 1;
        }
        Some(i)
    }

    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.bins as f64
    }
}

/// A 1-D histogram.
#[derive(Debug, Clone, Serialize)]
pub struct Hist1 {
    #[serde(flatten)]
    pub axis: Axis,
    pub counts: Vec<u64>,
}

impl Hist1 {
    pub fn new(axis: Axis) -> Self {
        Self {
            counts: vec![0; axis.bins],
            axis,
        }
    }

    pub fn push(&mut self, x: f64) {
        if let Some(i) = self.axis.index(x) {
            self.counts[i] += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `p` quantile, linear within the bin where the cumulative count
    /// reaches `p` of the total: within one bin width of the sample's.
    pub fn quantile(&self, p: f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return f64::NAN;
        }
        let target = p.clamp(0.0, 1.0) * total as f64;
        let mut below = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            let c = c as f64;
            if c > 0.0 && below + c >= target {
                let frac = ((target - below) / c).clamp(0.0, 1.0);
                return self.axis.edge(i) + frac * self.axis.width();
            }
            below += c;
        }
        self.axis.hi
    }
}

/// A 2-D histogram; `counts[i * y.bins + j]` is bin `i` of x and `j` of y
/// (numpy's `histogram2d(x, y)[0]`, row-major).
#[derive(Debug, Clone, Serialize)]
pub struct Hist2 {
    pub x: Axis,
    pub y: Axis,
    pub counts: Vec<u64>,
}

impl Hist2 {
    pub fn new(x: Axis, y: Axis) -> Self {
        Self {
            counts: vec![0; x.bins * y.bins],
            x,
            y,
        }
    }

    pub fn push(&mut self, x: f64, y: f64) {
        if let (Some(i), Some(j)) = (self.x.index(x), self.y.index(y)) {
            self.counts[i * self.y.bins + j] += 1;
        }
    }
}

/// For each mass `p` (e.g. 0.68, 0.95), the count `c` such that the bins
/// with at least `c` draws hold at least `p` of all draws, and the bins with
/// more than `c` less: the bins of the highest-density region of mass `p`.
/// `u64::MAX` when there are no draws.
pub fn hdr_levels(counts: &[u64], masses: &[f64]) -> Vec<u64> {
    let mut sorted: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = sorted.iter().sum();
    masses
        .iter()
        .map(|&p| {
            let target = p * total as f64;
            let mut sum = 0u64;
            for &c in &sorted {
                sum += c;
                if sum as f64 >= target {
                    return c;
                }
            }
            u64::MAX
        })
        .collect()
}

/// The kernel [`smooth`] uses: a Gaussian of `sigma` bins truncated at
/// 2σ, normalised to sum 1.
pub fn kernel(sigma: f64) -> Vec<f64> {
    let r = (2.0 * sigma).ceil() as i64;
    let w: Vec<f64> = (-r..=r)
        .map(|d| (-0.5 * (d as f64 / sigma).powi(2)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| x / sum).collect()
}

/// An `nx` × `ny` histogram's counts (row-major) convolved with
/// [`kernel`]`(sigma)` along y, then along x, as zero outside (numpy's
/// `convolve(…, mode="same")` on each axis in turn).
pub fn smooth(counts: &[u64], nx: usize, ny: usize, sigma: f64) -> Vec<f64> {
    let w = kernel(sigma);
    let r = (w.len() / 2) as isize;
    let along =
        |values: &[f64], stride_in: usize, len: usize, at: &dyn Fn(usize, usize) -> usize| {
            let mut out = vec![0.0; values.len()];
            for line in 0..stride_in {
                for k in 0..len {
                    let mut acc = 0.0;
                    for (t, &wt) in w.iter().enumerate() {
                        let q = k as isize + r - t as isize;
                        if q >= 0 && (q as usize) < len {
                            acc += wt * values[at(line, q as usize)];
                        }
                    }
                    out[at(line, k)] = acc;
                }
            }
            out
        };
    let values: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    let by_y = along(&values, nx, ny, &|i, j| i * ny + j);
    along(&by_y, ny, nx, &|j, i| i * ny + j)
}

/// [`hdr_levels`] of smoothed values: for each mass `p`, the value `v` such
/// that the bins at `v` or above hold at least `p` of the total and those
/// above it less. Infinite when the total is not positive.
pub fn hdr_levels_f64(values: &[f64], masses: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|&v| v > 0.0).collect();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let total: f64 = sorted.iter().sum();
    masses
        .iter()
        .map(|&p| {
            let target = p * total;
            let mut sum = 0.0;
            for &v in &sorted {
                sum += v;
                if sum >= target {
                    return v;
                }
            }
            f64::INFINITY
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_numpys() {
        let a = Axis::new(0.0, 1.0, 10);
        assert_eq!(a.index(0.0), Some(0));
        assert_eq!(a.index(0.1), Some(1));
        assert_eq!(a.index(0.0999), Some(0));
        // The last bin is closed, values outside are dropped.
        assert_eq!(a.index(1.0), Some(9));
        assert_eq!(a.index(1.0001), None);
        assert_eq!(a.index(-1e-12), None);
        assert_eq!(a.index(f64::NAN), None);
        // Every edge falls in the bin it opens.
        let b = Axis::new(-3.7, 11.3, 37);
        for i in 0..37 {
            assert_eq!(b.index(b.edge(i)), Some(i), "edge {i}");
        }
        assert_eq!(Axis::new(2.0, 2.0, 4).edges(), [1.5, 1.75, 2.0, 2.25, 2.5]);
    }

    #[test]
    fn hdr_levels_enclose_their_mass() {
        // 10 bins holding 40, 20, 15, 10, 5, 4, 3, 2, 1, 0 (100 in all).
        let counts = [3, 40, 0, 20, 15, 10, 5, 4, 2, 1];
        let levels = hdr_levels(&counts, &[0.5, 0.68, 0.95, 1.0]);
        // 40 + 20 = 60 ≥ 50; 40 + 20 + 15 = 75 ≥ 68; … + 10 + 5 + 4 + 3 = 97 ≥ 95.
        assert_eq!(levels, [20, 15, 3, 1]);
        assert_eq!(hdr_levels(&[0, 0], &[0.5]), [u64::MAX]);
    }

    #[test]
    fn smoothing_keeps_the_mass_inside_and_spreads_a_spike() {
        // One spike in the middle of 9 × 9 bins: spread as the kernel's
        // outer product, the total kept (the kernel lies inside).
        let mut counts = vec![0u64; 81];
        counts[4 * 9 + 4] = 100;
        let s = smooth(&counts, 9, 9, 1.0);
        let w = kernel(1.0);
        assert_eq!(w.len(), 5);
        assert!((s.iter().sum::<f64>() - 100.0).abs() < 1e-9);
        for (i, wi) in w.iter().enumerate() {
            for (j, wj) in w.iter().enumerate() {
                let got = s[(i + 2) * 9 + (j + 2)];
                assert!((got - 100.0 * wi * wj).abs() < 1e-9, "{i} {j}");
            }
        }
        assert_eq!(s[0], 0.0);
        // A spike in a corner loses what falls outside.
        let mut corner = vec![0u64; 81];
        corner[0] = 100;
        let lost: f64 = 100.0 * (1.0 - w[2..].iter().sum::<f64>().powi(2));
        assert!((smooth(&corner, 9, 9, 1.0).iter().sum::<f64>() - (100.0 - lost)).abs() < 1e-9);
        let levels = hdr_levels_f64(&[0.5, 4.0, 2.0, 1.0, 2.5], &[0.5, 0.9]);
        // 4 + 2.5 = 6.5 ≥ 5; 4 + 2.5 + 2 + 1 = 9.5 ≥ 9.
        assert_eq!(levels, [2.5, 1.0]);
    }

    #[test]
    fn quantiles_within_a_bin() {
        let mut h = Hist1::new(Axis::new(0.0, 1.0, 100));
        for i in 0..1000 {
            h.push(i as f64 / 999.0);
        }
        assert_eq!(h.total(), 1000);
        for p in [0.05, 0.5, 0.95] {
            assert!((h.quantile(p) - p).abs() <= 0.01, "{p}: {}", h.quantile(p));
        }
    }
}
