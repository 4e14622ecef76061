//! Statistics over paths with bounded memory: a chunk's partial sums (per
//! recorded time the count, mean and sum of squared deviations of the
//! value, Welford's updates; the count in each state of a finite space;
//! the hitting times; the same moments of the time of each recorded step
//! where times are random), written as one row of `partials`, and their merge in
//! chunk order (Chan et al.'s pairwise formulas) into the estimates and
//! their Monte Carlo standard errors. The merge order is the chunks', never
//! the order in which they arrive, so the statistics are the same bits on
//! every layout.

use serde::{Deserialize, Serialize};

/// The partial sums of some paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// `times` recorded times, `states` states of a finite space (0 for
    /// an infinite one), `timed` when the times of steps are random.
    pub fn new(times: usize, states: usize, timed: bool) -> Self {
        let t = if timed { times } else { 0 };
        Self {
            n: 0.0,
            mean: vec![0.0; times],
            m2: vec![0.0; times],
            counts: vec![0.0; times * states],
            hit_n: 0.0,
            hit_mean: 0.0,
            hit_m2: 0.0,
            time_mean: vec![0.0; t],
            time_m2: vec![0.0; t],
        }
    }

    /// Values in a row of `partials`.
    pub fn width(times: usize, states: usize, timed: bool) -> usize {
        // Saturating: a spec may ask for absurd sizes, refused on this.
        let columns = states.saturating_add(if timed { 4 } else { 2 });
        times.saturating_mul(columns).saturating_add(4)
    }

    /// Adds a path: its values at the recorded times, their state indices
    /// (`offset` subtracted from the value) for a finite space, its hitting
    /// step, and the times of its recorded steps where they are random
    /// (empty otherwise).
    pub fn add(&mut self, values: &[f64], times: &[f64], offset: i64, hit: Option<u64>) {
        self.n += 1.0;
        let n = self.n;
        welford(&mut self.mean, &mut self.m2, values, n);
        welford(&mut self.time_mean, &mut self.time_m2, times, n);
        if !self.counts.is_empty() {
            let k = self.counts.len() / values.len();
            for (r, &v) in values.iter().enumerate() {
                self.counts[r * k + (v as i64 - offset) as usize] += 1.0;
            }
        }
        if let Some(t) = hit {
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
        let timed = !self.time_mean.is_empty();
        let mut row = Vec::with_capacity(
            Self::width(self.mean.len(), 0, timed) + self.counts.len(),
        );
        row.push(self.n);
        row.extend(&self.mean);
        row.extend(&self.m2);
        row.extend(&self.counts);
        row.extend([self.hit_n, self.hit_mean, self.hit_m2]);
        row.extend(&self.time_mean);
        row.extend(&self.time_m2);
        row
    }

    pub fn from_row(row: &[f64], times: usize, states: usize, timed: bool) -> Self {
        let (mean, rest) = row[1..].split_at(times);
        let (m2, rest) = rest.split_at(times);
        let (counts, rest) = rest.split_at(times * states);
        let (hit, rest) = rest.split_at(3);
        let (time_mean, time_m2) = rest.split_at(if timed { times } else { 0 });
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
        let mut chunks = [Partial::new(2, 3, true), Partial::new(2, 3, true)];
        // Times: the values' double plus one.
        let times = |v: &[f64; 2]| [2.0 * v[0] + 1.0, 2.0 * v[1] + 1.0];
        for (i, (v, hit)) in paths.iter().enumerate() {
            chunks[usize::from(i >= 3)].add(v, &times(v), 0, *hit);
        }
        let row = chunks[1].to_row();
        assert_eq!(row.len(), Partial::width(2, 3, true));
        let mut all = chunks[0].clone();
        all.merge(&Partial::from_row(&row, 2, 3, true));
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
}
