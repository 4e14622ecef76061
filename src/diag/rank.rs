//! Rank normalisation (Vehtari et al. 2021, §4), as ArviZ's `_z_scale`:
//! each draw replaced by the normal quantile of its average rank r among
//! the S draws, Φ⁻¹((r − 3/8)/(S + 1/4)) (Blom), ties sharing the average
//! rank as scipy's `rankdata(method="average")` gives it; and split-R-hat
//! of such draws (ArviZ's `_rhat`).

use rayon::iter::{IndexedParallelIterator, ParallelIterator};
use rayon::slice::ParallelSliceMut;

use super::pairwise;

/// The standard normal quantile Φ⁻¹(p), 0 < p < 1, by Wichura's algorithm
/// AS 241 (PPND16, Applied Statistics 37, 1988): rational functions of
/// degree 7 in three ranges, exact to about 1e-16 (relative). Within 1e-15
/// of scipy's `ndtri`, and several times quicker than an `erf_inv`.
// The coefficients as published, digit for digit, so they can be checked
// against the paper (the digits past a double's round away).
#[allow(clippy::excessive_precision)]
pub(super) fn normal_quantile(p: f64) -> f64 {
    // Numerators and denominators, lowest degree first (the denominators'
    // constant terms are 1).
    const CENTRAL: ([f64; 8], [f64; 8]) = (
        [
            3.387_132_872_796_366_608,
            1.331_416_678_917_843_774_5e2,
            1.971_590_950_306_551_442_7e3,
            1.373_169_376_550_946_112_5e4,
            4.592_195_393_154_987_145_7e4,
            6.726_577_092_700_870_085_3e4,
            3.343_057_558_358_812_810_5e4,
            2.509_080_928_730_122_672_7e3,
        ],
        [
            1.0,
            4.231_333_070_160_091_125_2e1,
            6.871_870_074_920_579_083e2,
            5.394_196_021_424_751_107_7e3,
            2.121_379_430_158_659_586_7e4,
            3.930_789_580_009_271_061e4,
            2.872_908_573_572_194_267_4e4,
            5.226_495_278_852_854_561e3,
        ],
    );
    const INTERMEDIATE: ([f64; 8], [f64; 8]) = (
        [
            1.423_437_110_749_683_577_34,
            4.630_337_846_156_545_295_9,
            5.769_497_221_460_691_405_5,
            3.647_848_324_763_204_605_04,
            1.270_458_252_452_368_382_58,
            2.417_807_251_774_506_117_7e-1,
            2.272_384_498_926_918_458_33e-2,
            7.745_450_142_783_414_076_4e-4,
        ],
        [
            1.0,
            2.053_191_626_637_758_821_87,
            1.676_384_830_183_803_849_4,
            6.897_673_349_851_000_045_5e-1,
            1.481_039_764_274_800_745_9e-1,
            1.519_866_656_361_645_719_66e-2,
            5.475_938_084_995_344_946e-4,
            1.050_750_071_644_416_843_24e-9,
        ],
    );
    const FAR: ([f64; 8], [f64; 8]) = (
        [
            6.657_904_643_501_103_777_2,
            5.463_784_911_164_114_369_9,
            1.784_826_539_917_291_335_8,
            2.965_605_718_285_048_912_3e-1,
            2.653_218_952_657_612_309_3e-2,
            1.242_660_947_388_078_438_6e-3,
            2.711_555_568_743_487_578_15e-5,
            2.010_334_399_292_288_132_65e-7,
        ],
        [
            1.0,
            5.998_322_065_558_879_376_9e-1,
            1.369_298_809_227_358_053_1e-1,
            1.487_536_129_085_061_485_25e-2,
            7.868_691_311_456_132_591e-4,
            1.846_318_317_510_054_681_8e-5,
            1.421_511_758_316_445_888_7e-7,
            2.044_263_103_389_939_785_64e-15,
        ],
    );
    fn ratio((num, den): &([f64; 8], [f64; 8]), r: f64) -> f64 {
        let horner = |c: &[f64; 8]| c.iter().rev().fold(0.0, |acc, &c| acc * r + c);
        horner(num) / horner(den)
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        return q * ratio(&CENTRAL, 0.180_625 - q * q);
    }
    // The distance to the nearer end, exact for p ≥ 1/2 (Sterbenz).
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let z = if r <= 5.0 {
        ratio(&INTERMEDIATE, r - 1.6)
    } else {
        ratio(&FAR, r - 5.0)
    };
    if q < 0.0 {
        -z
    } else {
        z
    }
}

/// Blom's normal scores of the ranks among `count` values, in the order of
/// operations of ArviZ's `_backtransform_ranks` (c = 3/8), tabulated once
/// for every rank a draw can have: the integers 1..=count and, for ties,
/// the half-integers between (in parallel; each entry is computed on its
/// own, so the table does not depend on the threads). One table serves the
/// bulk and the folded draws of every parameter of chains of one shape.
pub(super) struct Scores {
    /// The score of rank t/2 at t − 2, for t = 2..=2 count.
    table: Vec<f64>,
}

impl Scores {
    pub(super) fn new(count: usize) -> Self {
        let denominator = (count as f64 - 0.75) + 1.0;
        let mut table = vec![0.0; (2 * count).saturating_sub(1)];
        table
            .par_chunks_mut(1 << 14)
            .enumerate()
            .for_each(|(c, chunk)| {
                for (i, z) in chunk.iter_mut().enumerate() {
                    // Halving is exact: the rank is the one scipy averages to.
                    let rank = ((c << 14) + i + 2) as f64 * 0.5;
                    *z = normal_quantile((rank - 0.375) / denominator);
                }
            });
        Self { table }
    }

    /// The number of values whose ranks are tabulated.
    pub(super) fn count(&self) -> usize {
        self.table.len().div_ceil(2)
    }

    /// The score of the k tied values after the first `below`: scipy's
    /// average rank 0.5 (lo + hi + 1) with lo = below, hi = below + k.
    fn of_tie(&self, below: usize, k: usize) -> f64 {
        self.table[2 * below + k - 1]
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
    walk_ranks(sorted, include, scores, |z, j| out[j as usize] = z);
}

/// Hands `sink` the normal score of each kept draw of `sorted` (in
/// ascending order of value) with its flat index, as [`normal_scores`].
fn walk_ranks(
    sorted: &[(f64, u32)],
    include: impl Fn(u32) -> bool,
    scores: &Scores,
    mut sink: impl FnMut(f64, u32),
) {
    let n = sorted.len();
    let mut below = 0;
    let mut p = 0;
    while p < n {
        // The run of equal values from p (left-out draws among them too).
        let value = sorted[p].0;
        let mut q = p + 1;
        while q < n && sorted[q].0 == value {
            q += 1;
        }
        if q == p + 1 {
            // The common case, a value without ties.
            let j = sorted[p].1;
            if include(j) {
                sink(scores.of_tie(below, 1), j);
                below += 1;
            }
        } else {
            let run = &sorted[p..q];
            let k = run.iter().filter(|e| include(e.1)).count();
            if k > 0 {
                let z = scores.of_tie(below, k);
                for e in run.iter().filter(|e| include(e.1)) {
                    sink(z, e.1);
                }
                below += k;
            }
        }
        p = q;
    }
}

/// As [`normal_scores`] for the kept draws folded about `median`,
/// |x − median|, each score handed to `sink` with its flat index. Folded,
/// the draws above the median stay in ascending order and those below it
/// come in descending order (x ↦ fl(x − median) is monotone), so the two
/// runs are merged into `folded` (a buffer, overwritten) instead of sorted
/// again: a merge without branches on the values, then the walk of
/// [`normal_scores`].
pub(super) fn folded_normal_scores(
    sorted: &[(f64, u32)],
    median: f64,
    include: impl Fn(u32) -> bool,
    scores: &Scores,
    folded: &mut Vec<(f64, u32)>,
    sink: impl FnMut(f64, u32),
) {
    let n = sorted.len();
    let fold = |i: usize| ((sorted[i].0 - median).abs(), sorted[i].1);
    // Above: sorted[up..], ascending; below: sorted[..down], from the end.
    let split = sorted.partition_point(|&(v, _)| v < median);
    let (mut up, mut down) = (split, split);
    folded.clear();
    folded.reserve(n);
    while up < n && down > 0 {
        let (u, d) = (fold(up), fold(down - 1));
        let take_up = u.0 <= d.0;
        folded.push(if take_up { u } else { d });
        up += usize::from(take_up);
        down -= usize::from(!take_up);
    }
    folded.extend((up..n).map(fold));
    folded.extend((0..down).rev().map(fold));
    walk_ranks(folded, include, scores, sink);
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
            &mut Vec::new(),
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
            &mut Vec::new(),
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

    /// The quantile before AS 241: statrs's `erfc_inv` (Boost's rational
    /// approximations), within 1e-15 of scipy's `ndtri`.
    fn erfc_inv_quantile(p: f64) -> f64 {
        -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
    }

    #[test]
    fn as241_agrees_with_erfc_inv() {
        // Blom's points of 10^6 ranks, and far tails.
        let count = 1_000_000.0;
        let blom = (1..=2_000_000)
            .step_by(997)
            .map(|t| (t as f64 * 0.5 - 0.375) / (count + 0.25));
        let tails = (1..300).flat_map(|e| {
            let p = 10f64.powi(-e);
            [p, 3.0 * p, 1.0 - 3.0 * p]
        });
        for p in blom.chain(tails).filter(|&p| p > 0.0 && p < 1.0) {
            let (a, b) = (normal_quantile(p), erfc_inv_quantile(p));
            assert!(
                (a - b).abs() <= 2e-15 * b.abs().max(1e-300),
                "p = {p:e}: {a:e} vs {b:e}"
            );
        }
    }

    #[test]
    fn normal_quantile_is_symmetric_and_exact_at_half() {
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-15);
        assert!((normal_quantile(0.1) + normal_quantile(0.9)).abs() < 1e-15);
    }
}
