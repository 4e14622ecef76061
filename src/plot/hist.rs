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
