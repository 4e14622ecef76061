//! Statistics over paths with bounded memory: a chunk's partial sums (per
//! recorded time the count, mean and sum of squared deviations of the
//! value, Welford's updates; the count in each state of a finite space;
//! the hitting times; the same moments of the time of each recorded step
//! where times are random), written as one row of `partials`, and their merge in
//! chunk order (Chan et al.'s pairwise formulas) into the estimates and
//! their Monte Carlo standard errors. The merge order is the chunks', never
//! the order in which they arrive, so the statistics are the same bits on
//! every layout.
//!
//! Quantiles come from counts, which merge exactly: over the states of a
//! finite space (exact), over the recorded steps for hitting times (exact
//! when every step is recorded), and for a continuous value over a
//! [`Histogram`] of [`BINS`] bins per recorded time (within a bin's width).

use serde::{Deserialize, Serialize};

/// The partial sums of some paths (by default none, not even per time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub n: f64,
    /// Per recorded time.
    pub mean: Vec<f64>,
    pub m2: Vec<f64>,
    /// Recorded times × states of a finite space (empty otherwise).
    pub counts: Vec<f64>,
    /// Paths that hit the target set by the last step, and the mean and
    /// squared deviations of their hitting steps.
    pub hit_n: f64,
    pub hit_mean: f64,
    pub hit_m2: f64,
    /// Per recorded time, where the times of steps are random (empty
    /// otherwise): the mean and squared deviations of the time.
    pub time_mean: Vec<f64>,
    pub time_m2: Vec<f64>,
    /// Per recorded step, where hitting is watched: the paths whose first
    /// hit falls after the previous recorded step and by this one.
    pub hit_counts: Vec<f64>,
}

/// What a chunk's partial sums hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Recorded times.
    pub times: usize,
    /// Counts per recorded time: the states of a finite space, the bins of
    /// a histogram (with its two tails), or none.
    pub bins: usize,
    /// The times of steps are random.
    pub timed: bool,
    /// First hitting times are watched.
    pub hitting: bool,
}

impl Shape {
    /// Values in a row of `partials`.
    pub fn width(&self) -> usize {
        // Saturating: a spec may ask for absurd sizes, refused on this.
        let columns = self
            .bins
            .saturating_add(2)
            .saturating_add(if self.hitting { 1 } else { 0 })
            .saturating_add(if self.timed { 2 } else { 0 });
        self.times.saturating_mul(columns).saturating_add(4)
    }
}

/// Welford's update of per-time means and squared deviations by one path,
/// the `n`-th.
fn welford(mean: &mut [f64], m2: &mut [f64], values: &[f64], n: f64) {
    for ((m, s), &v) in mean.iter_mut().zip(m2).zip(values) {
        let d = v - *m;
        *m += d / n;
        *s += d * (v - *m);
    }
}

/// Chan et al.'s merge of (mean, m2) over `a` paths with `other`'s over `b`.
fn chan(mean: &mut [f64], m2: &mut [f64], other: (&[f64], &[f64]), a: f64, b: f64) {
    let n = a + b;
    for r in 0..mean.len() {
        let d = other.0[r] - mean[r];
        mean[r] += d * b / n;
        m2[r] += other.1[r] + d * d * a * b / n;
    }
}

/// Per time: mean, sd and the standard error of the mean, over n paths.
fn moments_of(mean: &[f64], m2: &[f64], n: f64) -> Vec<[f64; 3]> {
    mean.iter()
        .zip(m2)
        .map(|(&m, &s)| {
            let sd = if n > 1.0 { (s / (n - 1.0)).sqrt() } else { f64::NAN };
            [m, sd, sd / n.sqrt()]
        })
        .collect()
}

impl Partial {
    pub fn new(shape: Shape) -> Self {
        let times = shape.times;
        let t = if shape.timed { times } else { 0 };
        Self {
            n: 0.0,
            mean: vec![0.0; times],
            m2: vec![0.0; times],
            counts: vec![0.0; times * shape.bins],
            hit_n: 0.0,
            hit_mean: 0.0,
            hit_m2: 0.0,
            time_mean: vec![0.0; t],
            time_m2: vec![0.0; t],
            hit_counts: vec![0.0; if shape.hitting { times } else { 0 }],
        }
    }

    /// Adds a path: its values at the recorded times, the bin of each
    /// (its state's index in a finite space, its histogram bin; empty when
    /// nothing is counted), the times of its recorded steps where they are
    /// random (empty otherwise), and its hitting step with the index of
    /// the first recorded step at or after it.
    pub fn add(
        &mut self,
        values: &[f64],
        bins: &[usize],
        times: &[f64],
        hit: Option<(u64, usize)>,
    ) {
        self.n += 1.0;
        let n = self.n;
        welford(&mut self.mean, &mut self.m2, values, n);
        welford(&mut self.time_mean, &mut self.time_m2, times, n);
        if !self.counts.is_empty() {
            let k = self.counts.len() / values.len();
            for (r, &b) in bins.iter().enumerate() {
                self.counts[r * k + b] += 1.0;
            }
        }
        if let Some((t, at)) = hit {
            if let Some(c) = self.hit_counts.get_mut(at) {
                *c += 1.0;
            }
            self.hit_n += 1.0;
            let d = t as f64 - self.hit_mean;
            self.hit_mean += d / self.hit_n;
            self.hit_m2 += d * (t as f64 - self.hit_mean);
        }
    }

    /// Adds `other`, the paths after these (Chan et al.).
    pub fn merge(&mut self, other: &Partial) {
        let (a, b) = (self.n, other.n);
        if b == 0.0 {
            return;
        }
        chan(&mut self.mean, &mut self.m2, (&other.mean, &other.m2), a, b);
        let other_times = (&other.time_mean[..], &other.time_m2[..]);
        chan(&mut self.time_mean, &mut self.time_m2, other_times, a, b);
        self.n = a + b;
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        for (c, o) in self.hit_counts.iter_mut().zip(&other.hit_counts) {
            *c += o;
        }
        let (ha, hb) = (self.hit_n, other.hit_n);
        if hb > 0.0 {
            let h = ha + hb;
            let d = other.hit_mean - self.hit_mean;
            self.hit_mean += d * hb / h;
            self.hit_m2 += other.hit_m2 + d * d * ha * hb / h;
            self.hit_n = h;
        }
    }

    /// As a row of `partials`.
    pub fn to_row(&self) -> Vec<f64> {
        let mut row = Vec::with_capacity(
            1 + 2 * self.mean.len()
                + self.counts.len()
                + 3
                + self.hit_counts.len()
                + 2 * self.time_mean.len(),
        );
        row.push(self.n);
        row.extend(&self.mean);
        row.extend(&self.m2);
        row.extend(&self.counts);
        row.extend([self.hit_n, self.hit_mean, self.hit_m2]);
        row.extend(&self.hit_counts);
        row.extend(&self.time_mean);
        row.extend(&self.time_m2);
        row
    }

    pub fn from_row(row: &[f64], shape: Shape) -> Self {
        let times = shape.times;
        let (mean, rest) = row[1..].split_at(times);
        let (m2, rest) = rest.split_at(times);
        let (counts, rest) = rest.split_at(times * shape.bins);
        let (hit, rest) = rest.split_at(3);
        let (hit_counts, rest) = rest.split_at(if shape.hitting { times } else { 0 });
        let (time_mean, time_m2) = rest.split_at(if shape.timed { times } else { 0 });
        Self {
            n: row[0],
            mean: mean.to_vec(),
            m2: m2.to_vec(),
            counts: counts.to_vec(),
            hit_n: hit[0],
            hit_mean: hit[1],
            hit_m2: hit[2],
            time_mean: time_mean.to_vec(),
            time_m2: time_m2.to_vec(),
            hit_counts: hit_counts.to_vec(),
        }
    }

    /// Per recorded time: mean, sd and the standard error of the mean.
    pub fn moments(&self) -> Vec<[f64; 3]> {
        moments_of(&self.mean, &self.m2, self.n)
    }

    /// The same of the time of each recorded step (random times only).
    pub fn time_moments(&self) -> Vec<[f64; 3]> {
        moments_of(&self.time_mean, &self.time_m2, self.n)
    }

    /// Per recorded time and state: the share of paths there, and its
    /// standard error √(p(1 − p)/n).
    pub fn occupation(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.n;
        let share: Vec<f64> = self.counts.iter().map(|c| c / n).collect();
        let se = share.iter().map(|p| share_se(*p, n)).collect();
        (share, se)
    }

    /// Hitting: paths that hit, the mean and sd of their hitting steps and
    /// the mean's standard error, the share that never hit by the last step
    /// and its standard error.
    pub fn hitting(&self) -> [f64; 6] {
        let h = self.hit_n;
        let sd = if h > 1.0 {
            (self.hit_m2 / (h - 1.0)).sqrt()
        } else {
            f64::NAN
        };
        let mean = if h > 0.0 { self.hit_mean } else { f64::NAN };
        let never = (self.n - h) / self.n;
        [h, mean, sd, sd / h.sqrt(), never, share_se(never, self.n)]
    }
}

/// Inner bins of the histogram of a continuous value per recorded time.
pub const BINS: usize = 64;
/// Paths whose range sets the histograms: the first of each state.
pub const PILOT_PATHS: u64 = 1024;

/// Fixed bins per recorded time for the quantiles of a continuous value:
/// [`BINS`] equal bins over twice the range the first paths of the state
/// span (the same paths on every rank, so every chunk counts into the same
/// bins), with a tail bin below and one above. A quantile is read by
/// linear interpolation within its bin: within one bin width of the sample
/// quantile. One that falls in a tail is NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Per recorded time: the lower edge and the width of the inner bins.
    pub lo: Vec<f64>,
    pub width: Vec<f64>,
}

impl Histogram {
    /// From the pilot paths' values, `times` per path.
    pub fn from_pilot(values: &[f64], times: usize) -> Self {
        let (mut lo, mut width) = (Vec::with_capacity(times), Vec::with_capacity(times));
        for r in 0..times {
            let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
            for v in values.iter().skip(r).step_by(times).filter(|v| v.is_finite()) {
                min = min.min(*v);
                max = max.max(*v);
            }
            if min > max {
                (min, max) = (0.0, 0.0);
            }
            let spread = max - min;
            lo.push(min - spread / 2.0);
            width.push(2.0 * spread / BINS as f64);
        }
        Self { lo, width }
    }

    /// Counts per recorded time: the inner bins and the two tails.
    pub fn bins() -> usize {
        BINS + 2
    }

    /// The bin of value v at recorded time r: 0 below, BINS + 1 above (and
    /// NaN), 1..=BINS within. A time whose pilot values were all equal has
    /// one inner bin, for that value.
    #[inline]
    pub fn bin(&self, r: usize, v: f64) -> usize {
        let (lo, h) = (self.lo[r], self.width[r]);
        if h == 0.0 {
            return if v < lo {
                0
            } else if v == lo {
                1
            } else {
                BINS + 1
            };
        }
        let x = (v - lo) / h;
        if x < 0.0 {
            0
        } else if x < BINS as f64 {
            1 + x as usize
        } else {
            BINS + 1
        }
    }

    /// The quantiles `qs` at recorded time r from its counts, and the
    /// standard error of each, √(q(1 − q)/n) over the density of its bin.
    pub fn quantiles(&self, r: usize, counts: &[f64], qs: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n: f64 = counts.iter().sum();
        let (lo, h) = (self.lo[r], self.width[r]);
        qs.iter()
            .map(|&q| {
                let goal = q * n;
                let mut cum = 0.0;
                for (j, &c) in counts.iter().enumerate() {
                    if c > 0.0 && cum + c >= goal {
                        if j == 0 || j == BINS + 1 {
                            return (f64::NAN, f64::NAN);
                        }
                        let x = lo + ((j - 1) as f64 + (goal - cum) / c) * h;
                        let density = c / (n * h);
                        return (x, (q * (1.0 - q) / n).sqrt() / density);
                    }
                    cum += c;
                }
                (f64::NAN, f64::NAN)
            })
            .unzip()
    }
}

/// The standard error of a share p of n paths.
pub fn share_se(p: f64, n: f64) -> f64 {
    (p * (1.0 - p) / n).sqrt()
}

/// Exact quantiles of a distribution given by counts over ordered values:
/// the smallest value whose cumulative count reaches q·n (the inverse of
/// the empirical distribution function, numpy's `inverted_cdf`).
pub fn quantiles_of_counts(counts: &[f64], values: &[i64], qs: &[f64]) -> Vec<f64> {
    let n: f64 = counts.iter().sum();
    qs.iter()
        .map(|&q| {
            let goal = q * n;
            let mut cum = 0.0;
            for (c, v) in counts.iter().zip(values) {
                cum += c;
                if cum >= goal && cum > 0.0 {
                    return *v as f64;
                }
            }
            f64::NAN
        })
        .collect()
}

/// The names of the columns of `statistics`.
pub const MOMENTS: [&str; 3] = ["mean", "sd", "se"];
/// The names of the columns of `hitting`.
pub const HITTING: [&str; 6] = ["hit", "mean", "sd", "se", "never", "never_se"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_chunks_give_the_two_pass_statistics() {
        // Paths of 2 recorded times over 3 states; chunks of 3 and 4.
        let paths: Vec<([f64; 2], Option<u64>)> = vec![
            ([0.0, 1.0], Some(1)),
            ([1.0, 2.0], None),
            ([2.0, 2.0], Some(4)),
            ([0.0, 0.0], Some(0)),
            ([1.0, 1.0], None),
            ([2.0, 0.0], Some(7)),
            ([0.0, 2.0], Some(2)),
        ];
        let shape = Shape {
            times: 2,
            bins: 3,
            timed: true,
            hitting: true,
        };
        let mut chunks = [Partial::new(shape), Partial::new(shape)];
        // Times: the values' double plus one; hits binned by recorded
        // steps 0 and 5.
        let times = |v: &[f64; 2]| [2.0 * v[0] + 1.0, 2.0 * v[1] + 1.0];
        for (i, (v, hit)) in paths.iter().enumerate() {
            let bins = [v[0] as usize, v[1] as usize];
            let hit = hit.map(|t| (t, usize::from(t > 0)));
            chunks[usize::from(i >= 3)].add(v, &bins, &times(v), hit);
        }
        let row = chunks[1].to_row();
        assert_eq!(row.len(), shape.width());
        let mut all = chunks[0].clone();
        all.merge(&Partial::from_row(&row, shape));
        assert_eq!(all.hit_counts, vec![1.0, 4.0]);
        let n = 7.0;
        for r in 0..2 {
            let v: Vec<f64> = paths.iter().map(|p| p.0[r]).collect();
            let mean = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let [m, sd, se] = all.moments()[r];
            assert!((m - mean).abs() < 1e-15 && (sd - var.sqrt()).abs() < 1e-15);
            assert!((se - sd / n.sqrt()).abs() < 1e-15);
            let [tm, tsd, _] = all.time_moments()[r];
            assert!((tm - (2.0 * mean + 1.0)).abs() < 1e-14);
            assert!((tsd - 2.0 * var.sqrt()).abs() < 1e-14);
        }
        let (share, se) = all.occupation();
        assert_eq!(&share[..3], &[3.0 / n, 2.0 / n, 2.0 / n]);
        assert!((se[0] - (3.0 / n * 4.0 / n / n).sqrt()).abs() < 1e-15);
        let [h, mean, sd, _, never, _] = all.hitting();
        assert_eq!((h, mean, never), (5.0, 14.0 / 5.0, 2.0 / 7.0));
        let var = [1.0, 4.0, 0.0, 7.0, 2.0]
            .iter()
            .map(|t| (t - 2.8f64).powi(2))
            .sum::<f64>()
            / 4.0;
        assert!((sd - var.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn quantiles_of_counts_match_numpy_inverted_cdf() {
        // np.quantile([3, 3, 4, 6, 6, 6, 6, 7], q, method="inverted_cdf").
        let counts = [2.0, 1.0, 0.0, 4.0, 1.0];
        let values = [3, 4, 5, 6, 7];
        let q = quantiles_of_counts(&counts, &values, &[0.1, 0.25, 0.375, 0.5, 0.9, 1.0]);
        assert_eq!(q, vec![3.0, 3.0, 4.0, 6.0, 7.0, 7.0]);
    }

    #[test]
    fn histogram_quantiles_interpolate_within_a_bin() {
        // Pilot values 0..=10 at one time: bins of 20/64 from -5.
        let pilot: Vec<f64> = (0..=10).map(f64::from).collect();
        let h = Histogram::from_pilot(&pilot, 1);
        assert_eq!((h.lo[0], h.width[0]), (-5.0, 20.0 / 64.0));
        assert_eq!((h.bin(0, -5.1), h.bin(0, -5.0), h.bin(0, 15.0)), (0, 1, BINS + 1));
        assert_eq!(h.bin(0, f64::NAN), BINS + 1);
        // 1000 values uniform on [0, 10): quantiles within a bin width.
        let mut counts = vec![0.0; Histogram::bins()];
        for i in 0..1000 {
            counts[h.bin(0, i as f64 / 100.0)] += 1.0;
        }
        let (q, se) = h.quantiles(0, &counts, &[0.1, 0.5, 0.9]);
        for (x, exact) in q.iter().zip([1.0, 5.0, 9.0]) {
            assert!((x - exact).abs() <= h.width[0], "{q:?}");
        }
        // √(q(1−q)/n) / f with f = 1/10.
        assert!((se[1] - (0.25f64 / 1000.0).sqrt() * 10.0).abs() < 0.1 * se[1]);
        // A constant time: one bin, its value exactly.
        let c = Histogram::from_pilot(&[3.0, 3.0], 1);
        let mut counts = vec![0.0; Histogram::bins()];
        counts[c.bin(0, 3.0)] = 5.0;
        assert_eq!(c.quantiles(0, &counts, &[0.5]).0, vec![3.0]);
    }
}
