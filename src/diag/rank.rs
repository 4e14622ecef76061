//! Rank normalisation (Vehtari et al. 2021, §4), as ArviZ's `_z_scale`:
//! each draw replaced by the normal quantile of its average rank r among
//! the S draws, Φ⁻¹((r − 3/8)/(S + 1/4)) (Blom), ties sharing the average
//! rank as scipy's `rankdata(method="average")` gives it; and split-R-hat
//! of such draws (ArviZ's `_rhat`).

use std::f64::consts::SQRT_2;

use rayon::iter::{IndexedParallelIterator, ParallelIterator};
use rayon::slice::ParallelSliceMut;
use statrs::function::erf::erfc_inv;

use super::pairwise;

/// The standard normal quantile; statrs's (Boost's rational
/// approximations) is within 1e-15 (relative) of scipy's `ndtri`.
fn normal_quantile(p: f64) -> f64 {
    -SQRT_2 * erfc_inv(2.0 * p)
}

/// Blom's normal scores of the ranks among `count` values, in the order of
/// operations of ArviZ's `_backtransform_ranks` (c = 3/8): those of the
/// ranks 1..=count tabulated once (in parallel; each entry is computed on
/// its own, so the table does not depend on the threads), for both the
/// bulk and the folded draws; a tie's average rank computed when met.
pub(super) struct Scores {
    denominator: f64,
    /// The score of rank r + 1 at r.
    table: Vec<f64>,
}

impl Scores {
    pub(super) fn new(count: usize) -> Self {
        let denominator = (count as f64 - 0.75) + 1.0;
        let mut table = vec![0.0; count];
        table
            .par_chunks_mut(1 << 14)
            .enumerate()
            .for_each(|(c, chunk)| {
                for (i, z) in chunk.iter_mut().enumerate() {
                    let rank = ((c << 14) + i + 1) as f64;
                    *z = normal_quantile((rank - 0.375) / denominator);
                }
            });
        Self { denominator, table }
    }

    /// The score of the k tied values after the first `below`: scipy's
    /// average rank 0.5 (lo + hi + 1) with lo = below, hi = below + k.
    fn of_tie(&self, below: usize, k: usize) -> f64 {
        if k == 1 {
            return self.table[below];
        }
        let rank = 0.5 * (2 * below + k + 1) as f64;
        normal_quantile((rank - 0.375) / self.denominator)
    }
}

/// Writes, at the flat index of each draw of `sorted` (sorted by value)
/// that `include` keeps, the normal score of its average rank among the
/// kept draws (as many as `scores` was made for). Equal values (by `==`, so −0 and +0 tie) share the
/// average of their ranks, as scipy's `rankdata(method="average")`.
pub(super) fn normal_scores(
    sorted: &[(f64, u32)],
    include: impl Fn(u32) -> bool,
    scores: &Scores,
    out: &mut [f64],
) {
    let mut below = 0;
    let mut p = 0;
    while p < sorted.len() {
        // The run of equal values from p (left-out draws among them too).
        let value = sorted[p].0;
        let mut q = p + 1;
        while q < sorted.len() && sorted[q].0 == value {
            q += 1;
        }
        let run = &sorted[p..q];
        let k = run.iter().filter(|e| include(e.1)).count();
        if k > 0 {
            let z = scores.of_tie(below, k);
            for e in run.iter().filter(|e| include(e.1)) {
                out[e.1 as usize] = z;
            }
            below += k;
        }
        p = q;
    }
}

/// As [`normal_scores`] for the kept draws folded about `median`,
/// |x − median|, each score handed to `sink` with its flat index. Folded,
/// the draws above the median stay in ascending order and those below it
/// come in descending order (x ↦ fl(x − median) is monotone), so the walk
/// merges the two runs instead of sorting again.
pub(super) fn folded_normal_scores(
    sorted: &[(f64, u32)],
    median: f64,
    include: impl Fn(u32) -> bool,
    scores: &Scores,
    mut sink: impl FnMut(f64, u32),
) {
    let n = sorted.len();
    // Above: sorted[up..], ascending; below: sorted[..down], from the end.
    // Each draw is folded once, when its cursor reaches it.
    let split = sorted.partition_point(|&(v, _)| v < median);
    let (mut up, mut down) = (split, split);
    let fold_up = |up: usize| (up < n).then(|| (sorted[up].0 - median).abs());
    let fold_down = |down: usize| (down > 0).then(|| (sorted[down - 1].0 - median).abs());
    let (mut next_up, mut next_down) = (fold_up(up), fold_down(down));
    let mut below = 0;
    loop {
        let value = match (next_up, next_down) {
            (Some(u), Some(d)) => u.min(d),
            (Some(u), None) => u,
            (None, Some(d)) => d,
            (None, None) => break,
        };
        let (up0, down0) = (up, down);
        while next_up == Some(value) {
            up += 1;
            next_up = fold_up(up);
        }
        while next_down == Some(value) {
            down -= 1;
            next_down = fold_down(down);
        }
        if up - up0 + down0 - down == 1 {
            // The common case, a value without ties.
            let j = if up > up0 {
                sorted[up0].1
            } else {
                sorted[down].1
            };
            if include(j) {
                sink(scores.of_tie(below, 1), j);
                below += 1;
            }
            continue;
        }
        let run = || sorted[up0..up].iter().chain(&sorted[down..down0]);
        let k = run().filter(|e| include(e.1)).count();
        if k > 0 {
            let z = scores.of_tie(below, k);
            for e in run().filter(|e| include(e.1)) {
                sink(z, e.1);
            }
            below += k;
        }
    }
}

/// ArviZ's `_rhat` of (split) chains of equal length: the square root of
/// (B/W + n − 1)/n, B being n times the variance of the chain means and W
/// the mean of the chain variances (divisors chains − 1 and n − 1). NaN
/// when W is 0 (every chain constant), as ArviZ's 0/0.
pub(super) fn split_rhat(chains: &[&[f64]]) -> f64 {
    let n = chains.first().map_or(0, |c| c.len());
    let means: Vec<f64> = chains.iter().map(|c| pairwise::mean(c)).collect();
    let vars: Vec<f64> = chains.iter().map(|c| pairwise::var(c, 1)).collect();
    rhat_of(&means, &vars, n)
}

fn rhat_of(means: &[f64], vars: &[f64], n: usize) -> f64 {
    let n = n as f64;
    let between = n * pairwise::var(means, 1);
    let within = pairwise::mean(vars);
    ((between / within + n - 1.0) / n).sqrt()
}

/// Means and variances of values arriving in any order, chain by chain:
/// the split R-hat of scores that are never stored. Sums of deviations from
/// each chain's first value, which keep a constant chain's variance exactly
/// 0 (so that all-constant chains give ArviZ's NaN or ∞) and lose nothing
/// on scores of size 1. It differs from [`split_rhat`] of the same values
/// in rounding only.
pub(super) struct ChainMoments {
    count: Vec<usize>,
    shift: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl ChainMoments {
    pub(super) fn new(chains: usize) -> Self {
        Self {
            count: vec![0; chains],
            shift: vec![0.0; chains],
            sum: vec![0.0; chains],
            sum_sq: vec![0.0; chains],
        }
    }

    pub(super) fn push(&mut self, chain: usize, v: f64) {
        if self.count[chain] == 0 {
            self.shift[chain] = v;
        }
        self.count[chain] += 1;
        let d = v - self.shift[chain];
        self.sum[chain] += d;
        self.sum_sq[chain] += d * d;
    }

    /// The split R-hat, as [`split_rhat`]; the chains must have had equal
    /// counts.
    pub(super) fn rhat(&self) -> f64 {
        let n = self.count.first().copied().unwrap_or(0);
        let nf = n as f64;
        let means: Vec<f64> = self
            .shift
            .iter()
            .zip(&self.sum)
            .map(|(k, s)| k + s / nf)
            .collect();
        let vars: Vec<f64> = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(s, q)| (q - s * s / nf) / (nf - 1.0))
            .collect();
        rhat_of(&means, &vars, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks behind the scores, inverted from Blom's formula.
    fn ranks(z: &[f64], count: usize) -> Vec<f64> {
        let blom = |r: f64| normal_quantile((r - 0.375) / ((count as f64 - 0.75) + 1.0));
        z.iter()
            .map(|&z| {
                (1..=2 * count)
                    .map(|twice| twice as f64 / 2.0)
                    .find(|&r| blom(r) == z)
                    .expect("a half-integer rank")
            })
            .collect()
    }

    fn sorted(values: &[f64]) -> Vec<(f64, u32)> {
        let mut sorted: Vec<(f64, u32)> = values.iter().copied().zip(0..).collect();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        sorted
    }

    #[test]
    fn average_ranks_of_ties() {
        // Values 3, 1, 3, 2, 3 have ranks 4, 1, 4, 2, 4; −0 and +0 tie.
        let mut z = vec![0.0; 5];
        normal_scores(
            &sorted(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            |_| true,
            &Scores::new(5),
            &mut z,
        );
        assert_eq!(ranks(&z, 5), [4.0, 1.0, 4.0, 2.0, 4.0]);
        let mut z = vec![0.0; 3];
        normal_scores(
            &sorted(&[0.0, 1.0, -0.0]),
            |_| true,
            &Scores::new(3),
            &mut z,
        );
        assert_eq!(ranks(&z, 3), [1.5, 3.0, 1.5]);
        // Left-out draws neither take a rank nor break a tie.
        let mut z = vec![9.0; 5];
        normal_scores(
            &sorted(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            |j| j != 2,
            &Scores::new(4),
            &mut z,
        );
        assert_eq!(z[2], 9.0);
        assert_eq!(ranks(&[z[0], z[1], z[3], z[4]], 4), [3.5, 1.0, 2.0, 3.5]);
    }

    #[test]
    fn folded_ranks_merge_both_sides() {
        // Folded about 1: 4, 2, 0.5, 0, 1, 3, 1, 0 — ranks 8, 6, 3, 1.5,
        // 4.5, 7, 4.5, 1.5.
        let values = [-3.0, -1.0, 0.5, 1.0, 2.0, 4.0, 0.0, 1.0];
        let mut z = vec![f64::NAN; 8];
        folded_normal_scores(
            &sorted(&values),
            1.0,
            |_| true,
            &Scores::new(8),
            |s, j| z[j as usize] = s,
        );
        assert_eq!(ranks(&z, 8), [8.0, 6.0, 3.0, 1.5, 4.5, 7.0, 4.5, 1.5]);
        // Infinities fold to +∞ and tie.
        let mut z = vec![f64::NAN; 3];
        let values = [f64::NEG_INFINITY, 0.0, f64::INFINITY];
        folded_normal_scores(
            &sorted(&values),
            0.0,
            |_| true,
            &Scores::new(3),
            |s, j| z[j as usize] = s,
        );
        assert_eq!(ranks(&z, 3), [2.5, 1.0, 2.5]);
    }

    #[test]
    fn moments_give_the_stored_r_hat() {
        let chains: Vec<Vec<f64>> = (0..4)
            .map(|c| {
                (0..50)
                    .map(|i| ((i * 37 + c * 11) % 23) as f64 * 0.1 + c as f64 * 0.05)
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = chains.iter().map(Vec::as_slice).collect();
        let mut moments = ChainMoments::new(4);
        // Interleaved, as a sorted walk would deliver them.
        for i in (0..50).rev() {
            for (c, chain) in chains.iter().enumerate() {
                moments.push(c, chain[i]);
            }
        }
        let (a, b) = (moments.rhat(), split_rhat(&refs));
        assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    }

    #[test]
    fn normal_quantile_is_symmetric_and_exact_at_half() {
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-15);
        assert!((normal_quantile(0.1) + normal_quantile(0.9)).abs() < 1e-15);
    }
}
