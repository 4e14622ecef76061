//! Statistics of the output columns over every item that succeeded: count,
//! mean, sd, min, the requested quantiles and max. The quantiles are exact
//! (the order statistics themselves, found by a radix selection on the
//! values' bits), in a few passes over the table whatever its size, holding
//! a bounded number of values: [`Streamed`]; [`of_column`] is the same from
//! one column in memory (sorted).

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

/// A value's place in `f64::total_cmp`'s order as an unsigned integer:
/// −∞ < … < −0 < +0 < … < +∞ (NaNs are left out before).
fn key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn value_of(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Most bits of the key a selection pass looks at, below those already
/// known (the first pass: the sign and the exponent).
const DIGIT: u32 = 12;

/// At most this many values of one order statistic's group are gathered
/// and sorted; a larger group is narrowed by another pass first.
const GATHER: u64 = 1 << 16;

/// At most this many values are gathered in one pass, over every column
/// (32 MB): the largest groups beyond it are narrowed first. A pass's
/// histograms take at most 32 KB per order statistic besides.
const GATHER_TOTAL: u64 = 1 << 22;

/// Statistics of every column of a table of `width` columns, read row block
/// by row block (row-major) in a few passes (see [`Streamed::pass`]): the
/// same order statistics as sorting each column, the mean and sd as sums in
/// row order (compensated, so equal to the sorted ones up to rounding).
pub struct Streamed {
    width: usize,
    quantiles: Vec<f64>,
    passes: u32,
    columns: Vec<ColumnPass>,
    /// Order statistics being looked for, per column, and the range of keys
    /// their groups span.
    targets: Vec<Vec<Target>>,
    spans: Vec<(u64, u64)>,
    /// Order statistics found, per column: (rank, value).
    found: Vec<Vec<(u64, f64)>>,
    gather_limit: u64,
    gather_total: u64,
}

#[derive(Clone, Default)]
struct ColumnPass {
    count: u64,
    sum: f64,
    compensation: f64,
    min: u64,
    max: u64,
    mean: f64,
    squares: f64,
    /// The first pass's histogram of the keys' top `DIGIT` bits.
    top: Vec<u64>,
}

/// The `rank`-th value (from 0) among the values of its column whose keys
/// start with the `known` bits of `prefix` (the rest of `prefix` zero).
#[derive(Clone)]
struct Target {
    /// The order statistic looked for, in its column.
    of: u64,
    rank: u64,
    known: u32,
    prefix: u64,
    /// Values with that prefix.
    group: u64,
    /// Bits of the key below `known` that `histogram` counts.
    width: u32,
    histogram: Vec<u64>,
    gathered: Vec<f64>,
    value: Option<f64>,
}

impl Target {
    fn matches(&self, k: u64) -> bool {
        self.known == 0 || (k ^ self.prefix) >> (64 - self.known) == 0
    }

    fn digit(&self, k: u64) -> usize {
        ((k << self.known) >> (64 - self.width)) as usize
    }

    /// Moves into the digit holding the rank, given the digits' counts.
    fn descend(&mut self, counts: &[u64]) {
        let width = self.width;
        let mut below = 0;
        for (d, &c) in counts.iter().enumerate() {
            if self.rank < below + c {
                self.rank -= below;
                self.group = c;
                self.prefix |= (d as u64) << (64 - self.known - width);
                self.known += width;
                if self.known == 64 {
                    // Every value of the group has these very bits.
                    self.value = Some(value_of(self.prefix));
                }
                return;
            }
            below += c;
        }
        unreachable!("the rank lies within the group's counts");
    }
}

impl Streamed {
    pub fn new(width: usize, quantiles: &[f64]) -> Self {
        Self::with_gather_limits(width, quantiles, GATHER, GATHER_TOTAL)
    }

    fn with_gather_limits(
        width: usize,
        quantiles: &[f64],
        gather_limit: u64,
        gather_total: u64,
    ) -> Self {
        let column = ColumnPass {
            min: u64::MAX,
            top: vec![0; 1 << DIGIT],
            ..ColumnPass::default()
        };
        Self {
            width,
            quantiles: quantiles.to_vec(),
            passes: 0,
            columns: vec![column; width],
            targets: vec![Vec::new(); width],
            spans: vec![(u64::MAX, 0); width],
            found: vec![Vec::new(); width],
            gather_limit,
            gather_total,
        }
    }

    /// Whether another pass over the table is needed.
    pub fn wants_pass(&self) -> bool {
        self.passes < 2 || self.targets.iter().any(|t| !t.is_empty())
    }

    /// Takes a block of whole rows of the current pass.
    pub fn rows(&mut self, block: &[f64]) {
        match self.passes {
            0 => self.first(block),
            1 => self.second(block),
            _ => self.narrow(block),
        }
    }

    /// Ends a pass over every row.
    pub fn end_pass(&mut self) {
        if self.passes == 0 {
            self.targets_from_top();
        } else {
            for targets in &mut self.targets {
                for t in targets.iter_mut().filter(|t| t.value.is_none()) {
                    if !t.gathered.is_empty() {
                        t.gathered.sort_unstable_by(f64::total_cmp);
                        t.value = Some(t.gathered[t.rank as usize]);
                        t.gathered = Vec::new();
                    } else if !t.histogram.is_empty() {
                        let counts = std::mem::take(&mut t.histogram);
                        t.descend(&counts);
                    }
                }
            }
        }
        self.passes += 1;
        self.prepare();
    }

    /// Count, sum, min, max and the top digit of every key.
    fn first(&mut self, block: &[f64]) {
        for row in block.chunks_exact(self.width) {
            for (c, &v) in self.columns.iter_mut().zip(row) {
                if v.is_nan() {
                    continue;
                }
                c.count += 1;
                // Neumaier's compensated sum.
                let t = c.sum + v;
                c.compensation += if c.sum.abs() >= v.abs() {
                    (c.sum - t) + v
                } else {
                    (v - t) + c.sum
                };
                c.sum = t;
                let k = key(v);
                c.min = c.min.min(k);
                c.max = c.max.max(k);
                c.top[(k >> (64 - DIGIT)) as usize] += 1;
            }
        }
    }

    /// The order statistics each column needs, placed in their top digit.
    fn targets_from_top(&mut self) {
        for (c, col) in self.columns.iter_mut().enumerate() {
            let n = col.count;
            col.mean = (col.sum + col.compensation) / n as f64;
            if n == 0 {
                continue;
            }
            let mut ranks = Vec::new();
            for &q in &self.quantiles {
                let (lo, hi) = order_statistics(n, q);
                ranks.extend([lo, hi]);
            }
            ranks.sort_unstable();
            ranks.dedup();
            let top = std::mem::take(&mut col.top);
            self.targets[c] = ranks
                .into_iter()
                .map(|rank| {
                    let mut t = Target {
                        of: rank,
                        rank,
                        known: 0,
                        prefix: 0,
                        group: n,
                        width: DIGIT,
                        histogram: Vec::new(),
                        gathered: Vec::new(),
                        value: None,
                    };
                    t.descend(&top);
                    t
                })
                .collect();
        }
    }

    /// Before a pass: each target still looked for either gathers its
    /// group (small enough) or counts its next digit.
    fn prepare(&mut self) {
        let limit = self.gather_limit;
        for (targets, found) in self.targets.iter_mut().zip(&mut self.found) {
            found.extend(targets.iter().filter_map(|t| Some((t.of, t.value?))));
            targets.retain(|t| t.value.is_none());
        }
        // The groups to gather, largest first: those past the total are
        // narrowed instead.
        let mut gather: Vec<(u64, usize, usize)> = self
            .targets
            .iter()
            .enumerate()
            .flat_map(|(c, targets)| {
                targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.group <= limit)
                    .map(move |(i, t)| (t.group, c, i))
            })
            .collect();
        gather.sort_unstable_by(|a, b| b.cmp(a));
        let mut total: u64 = gather.iter().map(|g| g.0).sum();
        let mut narrow: Vec<(usize, usize)> = Vec::new();
        for &(group, c, i) in &gather {
            // (A single value is gathered whatever the total.)
            if total <= self.gather_total.max(limit) || group <= 1 {
                break;
            }
            narrow.push((c, i));
            total -= group;
        }
        for (c, (targets, span)) in self.targets.iter_mut().zip(&mut self.spans).enumerate() {
            *span = (u64::MAX, 0);
            for (i, t) in targets.iter_mut().enumerate() {
                if t.group > limit {
                    // Enough digits to leave about a sixteenth of the limit
                    // in each, if the values spread: a small histogram
                    // stays in the cache.
                    let wanted = (16 * t.group / limit.max(1)).next_power_of_two();
                    t.width = wanted.trailing_zeros().clamp(4, DIGIT).min(64 - t.known);
                    t.histogram = vec![0; 1 << t.width];
                } else if narrow.contains(&(c, i)) {
                    t.width = DIGIT.min(64 - t.known);
                    t.histogram = vec![0; 1 << t.width];
                }
                let below = if t.known == 0 {
                    u64::MAX
                } else {
                    u64::MAX >> t.known
                };
                *span = (span.0.min(t.prefix), span.1.max(t.prefix | below));
            }
        }
    }

    /// The squared deviations from the mean, and the targets' pass.
    fn second(&mut self, block: &[f64]) {
        for row in block.chunks_exact(self.width) {
            for (c, &v) in self.columns.iter_mut().zip(row) {
                if !v.is_nan() {
                    let d = v - c.mean;
                    c.squares += d * d;
                }
            }
        }
        self.narrow(block);
    }

    fn narrow(&mut self, block: &[f64]) {
        for row in block.chunks_exact(self.width) {
            for ((targets, &(lo, hi)), &v) in self.targets.iter_mut().zip(&self.spans).zip(row) {
                if v.is_nan() {
                    continue;
                }
                let k = key(v);
                if k < lo || k > hi {
                    continue;
                }
                for t in targets.iter_mut().filter(|t| t.matches(k)) {
                    if t.histogram.is_empty() {
                        t.gathered.push(v);
                    } else {
                        let d = t.digit(k);
                        t.histogram[d] += 1;
                    }
                }
            }
        }
    }

    /// Every column's statistics, in the order of [`names`], as
    /// [`of_column`] gives them.
    pub fn finish(&self) -> Vec<Vec<f64>> {
        self.columns
            .iter()
            .zip(&self.found)
            .map(|(col, found)| {
                let n = col.count;
                let mut out = vec![n as f64];
                if n == 0 {
                    out.extend(std::iter::repeat_n(f64::NAN, self.quantiles.len() + 4));
                    return out;
                }
                let sd = if n > 1 {
                    (col.squares / (n - 1) as f64).sqrt()
                } else {
                    f64::NAN
                };
                out.extend([col.mean, sd, value_of(col.min)]);
                let at = |rank: u64| {
                    found
                        .iter()
                        .find(|f| f.0 == rank)
                        .expect("every order statistic was found")
                        .1
                };
                out.extend(self.quantiles.iter().map(|&q| {
                    let (lo, hi) = order_statistics(n, q);
                    interpolate(at(lo), at(hi), (n - 1) as f64 * q - lo as f64)
                }));
                out.push(value_of(col.max));
                out
            })
            .collect()
    }
}

/// The order statistics (from 0) between which the q-quantile of n values
/// lies (Hyndman & Fan's type 7).
fn order_statistics(n: u64, q: f64) -> (u64, u64) {
    let lo = ((n - 1) as f64 * q).floor() as u64;
    (lo, (lo + 1).min(n - 1))
}

fn interpolate(lo: f64, hi: f64, fraction: f64) -> f64 {
    lo + fraction * (hi - lo)
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

    /// `Streamed` over `columns` (row-major in blocks of `block` rows).
    fn streamed(
        columns: &[Vec<f64>],
        quantiles: &[f64],
        block: usize,
        (limit, total): (u64, u64),
    ) -> (Vec<Vec<f64>>, u32) {
        let (width, rows) = (columns.len(), columns[0].len());
        let table: Vec<f64> = (0..rows)
            .flat_map(|r| columns.iter().map(move |c| c[r]))
            .collect();
        let mut s = Streamed::with_gather_limits(width, quantiles, limit, total);
        let mut passes = 0;
        while s.wants_pass() {
            for b in table.chunks(block * width) {
                s.rows(b);
            }
            s.end_pass();
            passes += 1;
            assert!(passes <= 8, "too many passes");
        }
        (s.finish(), passes)
    }

    #[test]
    fn streamed_order_statistics_are_those_of_the_sorted_columns() {
        // Awkward columns: ties, ±0, ±∞, NaNs, a heavy tail, a constant,
        // values within one binade, a single value, none.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut uniform = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 5000;
        let mut columns: Vec<Vec<f64>> = vec![
            (0..n).map(|_| uniform()).collect(),
            (0..n).map(|_| (uniform() * 7.0).floor() - 3.0).collect(),
            (0..n).map(|_| 1.0 / (uniform() - 0.5)).collect(),
            (0..n).map(|_| 1.0 + uniform() * 1e-9).collect(),
            vec![2.5; n],
            (0..n)
                .map(|i| [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN][i % 5])
                .collect(),
            (0..n).map(|i| if i == 17 { 4.0 } else { f64::NAN }).collect(),
            vec![f64::NAN; n],
        ];
        columns[0][3] = f64::NAN;
        let quantiles = [0.0, 0.001, 0.1, 0.5, 0.9, 0.975, 1.0];
        let expected: Vec<Vec<f64>> = columns
            .iter()
            .map(|c| of_column(&mut c.clone(), &quantiles))
            .collect();
        // Gathering at once, narrowing digit by digit first, and narrowing
        // the largest groups past a total.
        let whole = (GATHER, GATHER_TOTAL);
        for (block, limits) in [(1, whole), (333, whole), (n, (1, 1)), (64, (10, 10)), (n, (GATHER, 50))] {
            let (limit, total) = limits;
            let (got, passes) = streamed(&columns, &quantiles, block, limits);
            // Two passes (every group is small at 5000 values) unless the
            // limits make it narrow first.
            assert_eq!(passes == 2, limits == whole, "{passes} passes at {limits:?}");
            for (c, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(g.len(), e.len());
                for (k, (a, b)) in g.iter().zip(e).enumerate() {
                    // Mean and sd (k = 1, 2) are sums in another order.
                    let same = if k == 1 || k == 2 {
                        a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-12 * b.abs()
                    } else {
                        a.to_bits() == b.to_bits()
                    };
                    assert!(
                        same,
                        "column {c}, statistic {k} (block {block}, limits {limit}, {total}): {a} vs {b}"
                    );
                }
            }
        }
    }
}
