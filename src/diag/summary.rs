//! Per-parameter summaries of a set of parallel chains (an ensemble's
//! walkers, or independent chains) stored row by row as (row, chain,
//! parameter), accumulated from blocks of rows as they are produced or read,
//! so that the rows are seen once for all parameters and the memory is
//! bounded whatever the length of the run.

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use super::vehtari::{diagnose_with, scores_for, Workspace};
use super::{summary_values, Autocorr, ParamDiagnostics};

/// The most values (rows × chains × parameters) held in memory for τ and the
/// rank-based diagnostics: 2^23 doubles, 64 MiB (plus 2 × one parameter's
/// share for the normal scores, and 5 × its share for each parameter being
/// diagnosed, as many at once as the rank has threads: see `vehtari`). Longer runs are
/// strided for those (see [`ChainSummary::tau_stride`]); the mean and sd
/// always use every value. The same everywhere a summary is computed (an
/// ensemble's task, rank 0 for chains, `sampo summary`), so that each gives
/// the same table for the same rows.
pub const TAU_MAX_SAMPLES: usize = 1 << 23;

/// Mean, sd, autocorrelation time and the diagnostics of Vehtari et al.
/// (2021) of one parameter of a set of parallel chains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainSummary {
    /// Posterior mean, over every sample.
    pub mean: f64,
    /// Posterior sd (divisor samples − 1), over every sample.
    pub sd: f64,
    /// Integrated autocorrelation time (emcee's estimator, c = 5) in stored
    /// rows, i.e. iterations / thin: emcee's convention, the value of
    /// `HDFBackend.get_autocorr_time(discard=burn_rows, thin=tau_stride, tol=0)`.
    pub tau: f64,
    /// τ was estimated on every `tau_stride`-th row (rows burn_rows +
    /// tau_stride − 1, burn_rows + 2 tau_stride − 1, …, as emcee's
    /// `get_chain(thin=…)` takes them) and multiplied by `tau_stride`.
    /// 1 (every row) unless the chain holds more than [`TAU_MAX_SAMPLES`]
    /// values, which bounds the memory of the estimate.
    pub tau_stride: usize,
    /// Samples behind the mean and sd: rows × walkers.
    pub samples: usize,
    pub walkers: usize,
    /// Rank-normalised R-hat, bulk/tail ESS, MCSE and quantiles of the rows
    /// kept (every `tau_stride`-th), each walker (or chain) taken as a chain.
    pub diagnostics: ParamDiagnostics,
}

impl ChainSummary {
    /// Summarises every parameter of a chain stored row-major as (row,
    /// walker, parameter).
    pub fn of_chain(chain: &[f64], walkers: usize, ndim: usize) -> Vec<Self> {
        let rows = chain.len() / (walkers * ndim).max(1);
        let mut acc = ChainAccumulator::new(walkers, ndim, rows);
        acc.push(chain);
        acc.finish()
    }

    /// Summarises parameter `k` of a chain stored as in [`Self::of_chain`].
    pub fn of_param(chain: &[f64], walkers: usize, ndim: usize, k: usize) -> Self {
        Self::of_chain(chain, walkers, ndim)[k]
    }

    /// Monte Carlo standard error of the mean (Vehtari et al.: sd / √ESS of
    /// the mean).
    pub fn mcse(&self) -> f64 {
        self.diagnostics.mcse_mean
    }

    /// The row of the summary table ([`super::SUMMARY_COLUMNS`]): mean and
    /// sd of every sample, the rest from the diagnostics and τ.
    pub fn values(&self, acceptance: f64) -> Vec<f64> {
        let mut values = summary_values(&self.diagnostics, self.tau, acceptance);
        values[0] = self.mean;
        values[1] = self.sd;
        super::blank_if_never_moved(&mut values);
        values
    }
}

/// Count, mean and sum of squared deviations of one parameter's samples.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Moments {
    count: usize,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Joins the moments of another set of samples (Chan, Golub & LeVeque).
    fn merge(&mut self, other: Moments) {
        let count = self.count + other.count;
        if count == 0 {
            return;
        }
        let delta = other.mean - self.mean;
        let (na, nb) = (self.count as f64, other.count as f64);
        self.mean += delta * nb / count as f64;
        self.m2 += other.m2 + delta * delta * na * nb / count as f64;
        self.count = count;
    }
}

/// Builds the [`ChainSummary`] of every parameter from a chain handed over
/// in blocks of consecutive rows: mean and sd from every sample, τ from the
/// rows kept in memory (every `tau_stride`-th).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChainAccumulator {
    walkers: usize,
    ndim: usize,
    /// Rows that will be pushed in all.
    rows: usize,
    rows_seen: usize,
    tau_stride: usize,
    /// Rows kept per series: rows / tau_stride.
    kept: usize,
    moments: Vec<Moments>,
    /// The kept rows, parameter-major then walker-major: series[(k W + w) kept + t].
    series: Vec<f64>,
    /// Rows not yet in `moments`: they are merged [`MERGE_ROWS`]-row
    /// groups at a time, counted from the first row, so that the mean and
    /// sd do not depend on how the rows were split into pushes (emission
    /// times, pauses, the reader's block size).
    unmerged: Vec<f64>,
    merge_rows: usize,
    /// Per-parameter scratch for a group's moments.
    #[serde(skip)]
    block: Vec<Moments>,
}

/// About this many values (1 MiB) per group of rows merged into the moments.
const MERGE_VALUES: usize = 1 << 17;

impl ChainAccumulator {
    /// For a chain of `rows` rows of `walkers` × `ndim` values.
    pub fn new(walkers: usize, ndim: usize, rows: usize) -> Self {
        Self::with_limit(walkers, ndim, rows, TAU_MAX_SAMPLES)
    }

    /// As [`Self::new`], holding at most about `limit` values for τ.
    pub fn with_limit(walkers: usize, ndim: usize, rows: usize, limit: usize) -> Self {
        let total = rows * walkers * ndim;
        let tau_stride = total.div_ceil(limit.max(1)).clamp(1, rows.max(1));
        let kept = rows / tau_stride;
        Self {
            walkers,
            ndim,
            rows,
            rows_seen: 0,
            tau_stride,
            kept,
            moments: vec![Moments::default(); ndim],
            series: vec![0.0; kept * walkers * ndim],
            unmerged: Vec::new(),
            merge_rows: (MERGE_VALUES / (walkers * ndim).max(1)).max(1),
            block: vec![Moments::default(); ndim],
        }
    }

    pub fn tau_stride(&self) -> usize {
        self.tau_stride
    }

    /// Adds the next rows (rows × walkers × ndim, row-major).
    pub fn push(&mut self, block: &[f64]) {
        let (w, d) = (self.walkers, self.ndim);
        let row_len = w * d;
        if row_len == 0 || block.is_empty() {
            return;
        }
        assert_eq!(block.len() % row_len, 0, "a block holds whole rows");
        let rows = block.len() / row_len;
        assert!(
            self.rows_seen + rows <= self.rows,
            "more rows than announced"
        );

        // The moments, a fixed group of rows at a time.
        let group = self.merge_rows * row_len;
        let mut rest = block;
        if !self.unmerged.is_empty() {
            let take = (group - self.unmerged.len()).min(rest.len());
            self.unmerged.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.unmerged.len() == group {
                let full = std::mem::take(&mut self.unmerged);
                self.merge(&full);
            }
        }
        let whole = rest.len() / group * group;
        for g in rest[..whole].chunks_exact(group) {
            self.merge(g);
        }
        self.unmerged.extend_from_slice(&rest[whole..]);

        // The rows kept for τ: stride − 1, 2 stride − 1, … from the start;
        // the block's i-th of them goes to t0 + i in every series. Series by
        // series, so that the writes are contiguous (the block is in cache).
        let s = self.tau_stride;
        let first = (s - 1 + s - self.rows_seen % s) % s;
        let t0 = (self.rows_seen + first + 1) / s - 1;
        let count = (first..rows)
            .step_by(s)
            .len()
            .min(self.kept.saturating_sub(t0));
        for k in (0..d).filter(|_| count > 0) {
            for walker in 0..w {
                let start = (k * w + walker) * self.kept + t0;
                let column = block[first * row_len + walker * d + k..]
                    .iter()
                    .step_by(s * row_len);
                for (y, &v) in self.series[start..start + count].iter_mut().zip(column) {
                    *y = v;
                }
            }
        }
        self.rows_seen += rows;
    }

    /// Merges the moments of whole rows into the running moments: the mean
    /// and squared deviations of the group (two passes over data in cache).
    fn merge(&mut self, rows: &[f64]) {
        let d = self.ndim;
        if self.block.len() != d {
            self.block = vec![Moments::default(); d];
        }
        let count = rows.len() / d;
        for m in &mut self.block {
            *m = Moments {
                count,
                mean: 0.0,
                m2: 0.0,
            };
        }
        for x in rows.chunks_exact(d) {
            for (m, v) in self.block.iter_mut().zip(x) {
                m.mean += v;
            }
        }
        for m in &mut self.block {
            m.mean /= count as f64;
        }
        for x in rows.chunks_exact(d) {
            for (m, v) in self.block.iter_mut().zip(x) {
                let dv = v - m.mean;
                m.m2 += dv * dv;
            }
        }
        for (total, b) in self.moments.iter_mut().zip(&self.block) {
            total.merge(*b);
        }
    }

    /// τ of every parameter (in stored rows) from the rows pushed so far,
    /// as [`Self::finish`] would give it: for a stopping rule.
    pub fn taus(&self) -> Vec<f64> {
        let mut autocorr = Autocorr::new(self.filled());
        (0..self.ndim)
            .map(|k| self.tau(&mut autocorr, &self.walker_series(k)))
            .collect()
    }

    /// Rows kept so far per series (only the rows pushed count, should
    /// fewer than announced come).
    fn filled(&self) -> usize {
        (self.rows_seen / self.tau_stride).min(self.kept)
    }

    /// Parameter k's kept rows, walker by walker.
    fn walker_series(&self, k: usize) -> Vec<&[f64]> {
        let (w, kept, filled) = (self.walkers, self.kept, self.filled());
        (0..w)
            .map(|walker| &self.series[(k * w + walker) * kept..][..filled])
            .collect()
    }

    /// τ in stored rows (emcee's estimator on the kept rows, times the stride).
    fn tau(&self, autocorr: &mut Autocorr, series: &[&[f64]]) -> f64 {
        autocorr.integrated_time(series.iter().copied()) * self.tau_stride as f64
    }

    /// Rows pushed so far.
    pub fn rows_seen(&self) -> usize {
        self.rows_seen
    }

    /// The summaries of the rows pushed, one per parameter: the parameters
    /// in parallel on the rank's threads, each with its own buffers and FFT
    /// plans and all with one table of normal scores (each parameter's
    /// values are computed alone, so they do not depend on the threads).
    pub fn finish(mut self) -> Vec<ChainSummary> {
        let w = self.walkers;
        if !self.unmerged.is_empty() {
            let rest = std::mem::take(&mut self.unmerged);
            self.merge(&rest);
        }
        let filled = self.filled();
        let scores = scores_for(w, filled);
        let this = &self;
        (0..self.ndim)
            .into_par_iter()
            .map_init(
                || (Autocorr::new(filled), Workspace::default()),
                |(autocorr, workspace), k| {
                    let m = &this.moments[k];
                    let walker_series = this.walker_series(k);
                    let tau = this.tau(autocorr, &walker_series);
                    ChainSummary {
                        diagnostics: diagnose_with(&walker_series, &scores, workspace),
                        mean: if m.count == 0 { f64::NAN } else { m.mean },
                        sd: (m.m2 / (m.count as f64 - 1.0).max(1.0)).sqrt(),
                        tau,
                        tau_stride: this.tau_stride,
                        samples: m.count,
                        walkers: w,
                    }
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::integrated_time;
    use crate::seed::StreamKey;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    /// rows × walkers × ndim, each series an AR(1) around its own mean.
    fn chain(rows: usize, walkers: usize, ndim: usize) -> Vec<f64> {
        let mut rng = StreamKey::of_seed(21).stream(0);
        let mut state = vec![0.0; walkers * ndim];
        let mut out = Vec::with_capacity(rows * walkers * ndim);
        for _ in 0..rows {
            for (i, x) in state.iter_mut().enumerate() {
                *x = 0.8 * *x + rng.sample::<f64, _>(StandardNormal);
                out.push(*x + (i % ndim) as f64 * 10.0);
            }
        }
        out
    }

    /// Parameter k of walker w, row by row.
    fn series(chain: &[f64], walkers: usize, ndim: usize, k: usize, w: usize) -> Vec<f64> {
        chain
            .chunks_exact(walkers * ndim)
            .map(|row| row[w * ndim + k])
            .collect()
    }

    fn pushed_in_blocks(
        c: &[f64],
        walkers: usize,
        ndim: usize,
        block_rows: usize,
        limit: usize,
    ) -> Vec<ChainSummary> {
        let rows = c.len() / (walkers * ndim);
        let mut acc = ChainAccumulator::with_limit(walkers, ndim, rows, limit);
        for block in c.chunks(block_rows * walkers * ndim) {
            acc.push(block);
        }
        acc.finish()
    }

    #[test]
    fn summaries_are_those_of_every_sample_and_every_walker() {
        let (rows, walkers, ndim) = (500, 6, 3);
        let c = chain(rows, walkers, ndim);
        let whole = ChainSummary::of_chain(&c, walkers, ndim);
        for (k, s) in whole.iter().enumerate() {
            let values: Vec<f64> = c.iter().skip(k).step_by(ndim).copied().collect();
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            assert!((s.mean - mean).abs() < 1e-12 * mean.abs().max(1.0), "{s:?}");
            assert!((s.sd - var.sqrt()).abs() < 1e-12 * var.sqrt(), "{s:?}");
            let per_walker: Vec<Vec<f64>> = (0..walkers)
                .map(|w| series(&c, walkers, ndim, k, w))
                .collect();
            assert_eq!(s.tau, integrated_time(&per_walker));
            assert_eq!(
                (s.samples, s.walkers, s.tau_stride),
                (rows * walkers, walkers, 1)
            );
        }
    }

    #[test]
    fn blocks_of_any_size_give_the_same_summaries_bit_for_bit() {
        // 64 × 8 values a row: the moments merge groups of 256 rows, so
        // 1000 rows cross several groups whatever the pushes.
        let (walkers, ndim) = (64, 8);
        let c = chain(1000, walkers, ndim);
        let whole = ChainSummary::of_chain(&c, walkers, ndim);
        let bits = |s: &[ChainSummary]| -> Vec<[u64; 3]> {
            s.iter()
                .map(|p| [p.mean.to_bits(), p.sd.to_bits(), p.tau.to_bits()])
                .collect()
        };
        for block_rows in [1, 7, 255, 300, 1000] {
            let blocks = pushed_in_blocks(&c, walkers, ndim, block_rows, TAU_MAX_SAMPLES);
            assert_eq!(bits(&whole), bits(&blocks), "blocks of {block_rows}");
        }
        // Paused half-way (a snapshot through serde) and resumed: the same.
        let row = walkers * ndim;
        let mut acc = ChainAccumulator::new(walkers, ndim, 1000);
        acc.push(&c[..333 * row]);
        let json = serde_json::to_string(&acc).unwrap();
        let mut resumed: ChainAccumulator = serde_json::from_str(&json).unwrap();
        resumed.push(&c[333 * row..]);
        assert_eq!(bits(&whole), bits(&resumed.finish()));
    }

    #[test]
    fn a_long_chain_is_strided_for_tau_only() {
        // 1003 rows × 4 walkers × 2 parameters = 8024 values, at most 2000
        // held: stride 5, rows 4, 9, …, 1002 (as emcee's thin = 5 takes them).
        let (rows, walkers, ndim) = (1003, 4, 2);
        let c = chain(rows, walkers, ndim);
        let whole = ChainSummary::of_chain(&c, walkers, ndim);
        for block_rows in [1, 13, 200, rows] {
            let strided = pushed_in_blocks(&c, walkers, ndim, block_rows, 2000);
            for (k, (a, b)) in whole.iter().zip(&strided).enumerate() {
                assert_eq!(b.tau_stride, 5);
                assert_eq!(b.samples, rows * walkers);
                assert!((a.mean - b.mean).abs() < 1e-12 * a.mean.abs().max(1.0));
                assert!((a.sd - b.sd).abs() < 1e-12 * a.sd);
                let thinned: Vec<Vec<f64>> = (0..walkers)
                    .map(|w| {
                        let s = series(&c, walkers, ndim, k, w);
                        s.into_iter().skip(4).step_by(5).collect()
                    })
                    .collect();
                assert_eq!(thinned[0].len(), 200);
                assert_eq!(
                    b.tau,
                    5.0 * integrated_time(&thinned),
                    "blocks of {block_rows}"
                );
                // Same size as the estimate from every row, roughly.
                assert!(
                    (b.tau - a.tau).abs() < 0.5 * a.tau,
                    "{} vs {}",
                    b.tau,
                    a.tau
                );
            }
        }
    }

    #[test]
    fn an_empty_chain_has_no_mean_or_tau() {
        let s = ChainSummary::of_chain(&[], 4, 2);
        assert_eq!(s.len(), 2);
        assert!(s[0].mean.is_nan() && s[0].tau.is_nan());
        assert_eq!(s[0].samples, 0);
    }
}
