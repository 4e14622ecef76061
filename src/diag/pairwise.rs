//! Sums, means and variances in numpy's pairwise summation order, so that
//! the diagnostics round as ArviZ's do where rounding shows: the mean of a
//! parameter that barely moves (a spread of 1e-12 on an offset of 1) decides
//! every deviation from it.

/// numpy's blocks: runs up to this long are summed with eight interleaved
/// accumulators, longer runs are halved (`PW_BLOCKSIZE` in numpy's loops).
const BLOCK: usize = 128;

/// numpy's `pairwise_sum` of a short run (at most [`BLOCK`] values).
fn block_sum(x: &[f64]) -> f64 {
    block_sum_map(x, |v| v)
}

/// [`block_sum`] of the values mapped by `f`.
fn block_sum_map(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let n = x.len();
    if n < 8 {
        // numpy starts from 0.0, not from the first value: -0.0 sums to 0.0.
        return x.iter().fold(0.0, |s, &v| s + f(v));
    }
    let mut r = [0.0; 8];
    for (acc, &v) in r.iter_mut().zip(&x[..8]) {
        *acc = f(v);
    }
    let whole = n - n % 8;
    for chunk in x[8..whole].chunks_exact(8) {
        for (acc, &v) in r.iter_mut().zip(chunk) {
            *acc += f(v);
        }
    }
    let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for &v in &x[whole..] {
        res += f(v);
    }
    res
}

/// The sum of `f` over the values of equal-length `chains` laid end to end,
/// in the order numpy's `add.reduce` sums a C-contiguous (chain, draw) array
/// over all its axes (one pairwise sum from 0.0, as measured against numpy
/// 2.x). `f` maps each value first, as numpy would sum a derived array
/// such as `(x - mean)**2`.
pub(super) fn sum_map(chains: &[&[f64]], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    let n = chains.first().map_or(0, |c| c.len());
    debug_assert!(chains.iter().all(|c| c.len() == n));
    sum_range(chains, n, 0, chains.len() * n, f)
}

/// numpy's recursion on the run `start..start + len` of the concatenation.
fn sum_range(
    chains: &[&[f64]],
    n: usize,
    start: usize,
    len: usize,
    f: impl Fn(f64) -> f64 + Copy,
) -> f64 {
    if len <= BLOCK {
        if len == 0 {
            return 0.0;
        }
        // A run of at least one value: the chains are not empty.
        let (mut c, mut j) = (start / n, start % n);
        if j + len <= n {
            // Within one chain: summed where it lies.
            return block_sum_map(&chains[c][j..j + len], f);
        }
        // Gather the run (it crosses from one chain into the next).
        let mut buf = [0.0; BLOCK];
        let mut filled = 0;
        while filled < len {
            let take = (n - j).min(len - filled);
            for (b, v) in buf[filled..filled + take]
                .iter_mut()
                .zip(&chains[c][j..j + take])
            {
                *b = f(*v);
            }
            filled += take;
            c += 1;
            j = 0;
        }
        return block_sum(&buf[..len]);
    }
    // Halve, but keep the first half a multiple of the unrolling.
    let mut half = len / 2;
    half -= half % 8;
    sum_range(chains, n, start, half, f) + sum_range(chains, n, start + half, len - half, f)
}

/// numpy's sum of one run of values.
pub(super) fn sum(x: &[f64]) -> f64 {
    sum_map(&[x], |v| v)
}

/// numpy's `mean` of one run: the pairwise sum over the count.
pub(super) fn mean(x: &[f64]) -> f64 {
    sum(x) / x.len() as f64
}

/// numpy's `var(x, ddof)` of one run: mean first, then the pairwise sum of
/// squared deviations over `len - ddof`.
pub(super) fn var(x: &[f64], ddof: usize) -> f64 {
    var_chains(&[x], ddof)
}

/// numpy's `var(x, ddof)` over all values of equal-length `chains`.
pub(super) fn var_chains(chains: &[&[f64]], ddof: usize) -> f64 {
    let count = chains.iter().map(|c| c.len()).sum::<usize>();
    let mean = sum_map(chains, |v| v) / count as f64;
    sum_map(chains, |v| (v - mean) * (v - mean)) / count.saturating_sub(ddof) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook recursion, written plainly, to check the gathering.
    fn reference(x: &[f64]) -> f64 {
        if x.len() <= BLOCK {
            return block_sum(x);
        }
        let mut half = x.len() / 2;
        half -= half % 8;
        reference(&x[..half]) + reference(&x[half..])
    }

    #[test]
    fn concatenated_chains_sum_as_one_run() {
        // Values whose sum depends on the order: 1 + tiny offsets.
        let x: Vec<f64> = (0..3001)
            .map(|i| 1.0 + 1e-13 * ((i * 7919 % 1000) as f64 - 500.0))
            .collect();
        for n in [1, 7, 100, 1000, 3001] {
            let m = x.len() / n;
            let chains: Vec<&[f64]> = x[..m * n].chunks(n).collect();
            assert_eq!(
                sum_map(&chains, |v| v).to_bits(),
                reference(&x[..m * n]).to_bits(),
                "n={n}"
            );
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[-0.0]).to_bits(), 0.0f64.to_bits());
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(var(&[1.0, 2.0, 3.0, 4.0], 1), 5.0 / 3.0);
        assert!(var(&[1.0], 1).is_nan());
    }
}
