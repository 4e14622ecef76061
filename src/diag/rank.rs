//! Rank normalisation (Vehtari et al. 2021, §4), as ArviZ's `_z_scale`:
//! each draw replaced by the normal quantile of its average rank r among
//! the S draws, Φ⁻¹((r − 3/8)/(S + 1/4)) (Blom), ties sharing the average
//! rank as scipy's `rankdata(method="average")` gives it; and split-R-hat
//! of such draws (ArviZ's `_rhat`).

use std::f64::consts::SQRT_2;

use statrs::function::erf::erfc_inv;

use super::pairwise;

/// The standard normal quantile; statrs's (Boost's rational
/// approximations) is within 1e-15 (relative) of scipy's `ndtri`.
fn normal_quantile(p: f64) -> f64 {
    -SQRT_2 * erfc_inv(2.0 * p)
}

/// Writes, at the flat index of each draw of `stream`, the normal score of
/// its average rank among the `count` draws of the stream. The stream gives
/// (value, flat index) in non-decreasing order of value; equal values (by
/// `==`, so −0 and +0 tie) share a rank. `group` is scratch space.
pub(super) fn normal_scores(
    stream: impl Iterator<Item = (f64, u32)>,
    count: usize,
    out: &mut [f64],
    group: &mut Vec<u32>,
) {
    // ArviZ's `_backtransform_ranks` with c = 3/8, in its order of operations.
    let denominator = (count as f64 - 0.75) + 1.0;
    let mut stream = stream.peekable();
    let mut below = 0usize;
    while let Some((value, index)) = stream.next() {
        group.clear();
        group.push(index);
        while let Some(&(next, j)) = stream.peek() {
            if next != value {
                break;
            }
            group.push(j);
            stream.next();
        }
        let k = group.len();
        // scipy: 0.5 (lo + hi + 1) for the sorted positions lo..hi of the tie.
        let rank = 0.5 * (2 * below + k + 1) as f64;
        let z = normal_quantile((rank - 0.375) / denominator);
        for &j in group.iter() {
            out[j as usize] = z;
        }
        below += k;
    }
}

/// The draws of `sorted` (sorted by value) that `include` keeps, folded
/// about `median` (|x − median|) and in non-decreasing order of the folded
/// value: the draws above the median ascending merged with those below it
/// descending, so that no second sort is needed. (x ↦ fl(x − median) is
/// monotone, so each run stays ordered after rounding.)
pub(super) fn folded<'a>(
    sorted: &'a [(f64, u32)],
    median: f64,
    include: impl Fn(u32) -> bool + Copy + 'a,
) -> impl Iterator<Item = (f64, u32)> + 'a {
    let split = sorted.partition_point(|&(v, _)| v < median);
    let mut up = sorted[split..]
        .iter()
        .filter(move |p| include(p.1))
        .map(move |&(v, j)| ((v - median).abs(), j))
        .peekable();
    let mut down = sorted[..split]
        .iter()
        .rev()
        .filter(move |p| include(p.1))
        .map(move |&(v, j)| ((v - median).abs(), j))
        .peekable();
    std::iter::from_fn(move || match (up.peek(), down.peek()) {
        (Some(u), Some(d)) => {
            if u.0 <= d.0 {
                up.next()
            } else {
                down.next()
            }
        }
        (Some(_), None) => up.next(),
        (None, _) => down.next(),
    })
}

/// ArviZ's `_rhat` of (split) chains of equal length: the square root of
/// (B/W + n − 1)/n, B being n times the variance of the chain means and W
/// the mean of the chain variances (divisors chains − 1 and n − 1). NaN
/// when W is 0 (every chain constant), as ArviZ's 0/0.
pub(super) fn split_rhat(chains: &[&[f64]]) -> f64 {
    let n = chains.first().map_or(0, |c| c.len()) as f64;
    let means: Vec<f64> = chains.iter().map(|c| pairwise::mean(c)).collect();
    let vars: Vec<f64> = chains.iter().map(|c| pairwise::var(c, 1)).collect();
    let between = n * pairwise::var(&means, 1);
    let within = pairwise::mean(&vars);
    ((between / within + n - 1.0) / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_of_ties() {
        // Values 3, 1, 3, 2 have ranks 3.5, 1, 3.5, 2.
        let mut sorted: Vec<(f64, u32)> = [3.0, 1.0, 3.0, 2.0].into_iter().zip(0..).collect();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut z = vec![0.0; 4];
        normal_scores(sorted.iter().copied(), 4, &mut z, &mut Vec::new());
        let blom = |r: f64| normal_quantile((r - 0.375) / 4.25);
        for (got, rank) in z.iter().zip([3.5, 1.0, 3.5, 2.0]) {
            assert_eq!(*got, blom(rank));
        }
    }

    #[test]
    fn folding_merges_both_sides_in_order() {
        let values = [-3.0, -1.0, 0.5, 1.0, 2.0, 4.0, -0.0];
        let mut sorted: Vec<(f64, u32)> = values.into_iter().zip(0..).collect();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<f64> = folded(&sorted, 1.0, |_| true).map(|p| p.0).collect();
        let mut want: Vec<f64> = values.iter().map(|v| (v - 1.0).abs()).collect();
        want.sort_unstable_by(f64::total_cmp);
        assert_eq!(got, want);
        // Excluded draws are skipped.
        assert_eq!(folded(&sorted, 1.0, |j| j != 3).count(), 6);
    }

    #[test]
    fn normal_quantile_is_symmetric_and_exact_at_half() {
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-15);
        assert!((normal_quantile(0.1) + normal_quantile(0.9)).abs() < 1e-15);
    }
}
