//! The convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter &
//! Bürkner (2021), "Rank-normalization, folding, and localization", for one
//! parameter from several chains, computed as ArviZ 0.23 computes them
//! (checked to 1e-8 against it by `src/diag/fixtures/arviz.json`):
//! rank-normalised split R-hat (bulk, tail, and the larger), bulk- and
//! tail-ESS, and the Monte Carlo standard errors of the mean, the sd and
//! quantiles, with the mean, sd and 5/50/95% quantiles of `az.summary`.
//!
//! Input: `chains[c][i]`, draw i of chain c, every chain the same length.
//!
//! Memory, for C chains of N draws (CN values), besides the caller's draws:
//! the draws sorted with their positions, 16 CN bytes (one sort serves
//! every rank, fold and quantile), and merged in folded order, 16 CN bytes; one series of CN f64, 8 CN bytes, reused for the
//! rank-normalised draws, the quantile indicators and the squared
//! deviations; the normal scores of every rank and half rank 1..CN, 16 CN
//! bytes (shared by the parameters of a summary); and for the ESS, two sets
//! of FFT buffers of a padded length L ≈ 1.1 N/2 (about 2.5 L f64 each;
//! twice that again if a sequence runs past lag N/16, see `ess`) and two
//! series of N/2 f64. A summary diagnoses its parameters in parallel, each
//! thread with its own buffers (all but the scores), kept from one
//! parameter to the next.
//!
//! Time: one sort of CN values, 2 CN normal
//! quantiles (AS 241; once per summary), two linear walks of the sorted
//! draws, and six ESS estimates of 2C split chains, each a real FFT per
//! chain and one inverse (the FFTs of each estimate on two rayon tasks;
//! results do not depend on the threads).
//!
//! Degenerate input never panics (only chains of unequal lengths, or more
//! than 2^32 values, do); what comes back then is what ArviZ returns:
//! - a NaN anywhere: every diagnostic, the mean, sd and quantiles are NaN;
//! - fewer than 4 draws per chain: the diagnostics are NaN, the mean, sd and
//!   quantiles are computed;
//! - one chain: the R-hats are NaN, the rest is computed (on its halves);
//! - a constant parameter: R-hats NaN (0/0), ESS = the number of split
//!   draws (ArviZ's convention for a range below 1e-15), MCSE of the mean
//!   and of quantiles 0, MCSE of the sd NaN (0/0);
//! - ±∞ among the draws: rank-based values (R-hat, ESS, quantile MCSE) are
//!   computed; the mean is ±∞ and the sd, the mean's ESS and MCSE and the
//!   sd's MCSE are NaN.
//!
//! ArviZ folds the tail R-hat about the median of the split draws in
//! `az.rhat`, but about the median of all draws in `az.summary`; the two
//! differ when the number of draws is odd (the middle draw of each chain is
//! left out of the split). This module follows `az.rhat`.

use rayon::slice::ParallelSliceMut;

use super::beta_quantile::beta_quantile;
use super::ess::SplitEss;
use super::pairwise;
use super::rank;
use super::sorted::Sorted;

/// ArviZ's probabilities for an MCSE of a quantile: the order statistics
/// between which the quantile lies with probability Φ(1) − Φ(−1).
const MCSE_PROBS: [f64; 2] = [0.1586553, 0.8413447];

/// Diagnostics of one parameter from several chains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamDiagnostics {
    /// Mean and sd (divisor draws − 1) of all draws.
    pub mean: f64,
    pub sd: f64,
    /// 5% and 95% quantiles (numpy's linear interpolation, the `eti` of
    /// `az.summary`) and the median (numpy's, as `az.summary`'s).
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
    /// Monte Carlo standard errors of the mean, sd and quantiles.
    pub mcse_mean: f64,
    pub mcse_sd: f64,
    pub mcse_q05: f64,
    pub mcse_q50: f64,
    pub mcse_q95: f64,
    /// Bulk-ESS (of the rank-normalised split draws) and tail-ESS (the
    /// smaller ESS of the 5% and 95% quantile indicators).
    pub ess_bulk: f64,
    pub ess_tail: f64,
    /// Rank-normalised split R-hat of the draws, of the draws folded about
    /// their median, and the larger of the two.
    pub rhat_bulk: f64,
    pub rhat_tail: f64,
    pub rhat: f64,
}

/// Every diagnostic of one parameter, sharing one sort and one set of FFT
/// plans. See the module docs for degenerate input.
///
/// # Panics
/// If the chains differ in length or hold more than 2^32 values in all.
pub fn diagnose(chains: &[&[f64]]) -> ParamDiagnostics {
    let draws = chains.first().map_or(0, |c| c.len());
    let scores = scores_for(chains.len(), draws);
    diagnose_with(chains, &scores, &mut Workspace::default())
}

/// The normal scores of the ranks of `chains` chains of `draws` draws (the
/// ranks of their split draws), to share between parameters.
pub(super) fn scores_for(chains: usize, draws: usize) -> rank::Scores {
    rank::Scores::new(2 * chains * (draws / 2))
}

/// The buffers of one parameter's diagnostics, kept for the next parameter
/// of the same shape: the sorted draws (and the folded ones),
/// the series, and the FFT plans of the ESS.
#[derive(Default)]
pub(super) struct Workspace {
    sorted: Vec<(f64, u32)>,
    folded: Vec<(f64, u32)>,
    series: Vec<f64>,
    ess: Option<SplitEss>,
}

/// As [`diagnose`], with the normal scores of chains of this shape (see
/// [`scores_for`]; others are made if they do not fit) and buffers reused.
pub(super) fn diagnose_with(
    chains: &[&[f64]],
    scores: &rank::Scores,
    workspace: &mut Workspace,
) -> ParamDiagnostics {
    let mut p = Param::new(chains);
    p.take(workspace);
    let d = p.diagnose(scores);
    p.give(workspace);
    d
}

impl Param<'_> {
    fn diagnose(&mut self, scores: &rank::Scores) -> ParamDiagnostics {
        let p = self;
        let mean = p.mean();
        let sd = p.sd();
        let (q05, q50, q95) = if p.has_nan {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            let sorted = p.sorted();
            (
                sorted.numpy_quantile(0.05),
                sorted.numpy_median(),
                sorted.numpy_quantile(0.95),
            )
        };
        let mut d = ParamDiagnostics {
            mean,
            sd,
            q05,
            q50,
            q95,
            mcse_mean: f64::NAN,
            mcse_sd: f64::NAN,
            mcse_q05: f64::NAN,
            mcse_q50: f64::NAN,
            mcse_q95: f64::NAN,
            ess_bulk: f64::NAN,
            ess_tail: f64::NAN,
            rhat_bulk: f64::NAN,
            rhat_tail: f64::NAN,
            rhat: f64::NAN,
        };
        if !p.valid(1) {
            return d;
        }
        let several_chains = p.valid(2);
        let own;
        let scores = if scores.count() == 2 * p.chains.len() * p.half {
            scores
        } else {
            own = p.scores();
            &own
        };
        d.rhat_tail = p.normalise(scores, true, several_chains);
        (d.rhat_bulk, d.ess_bulk) = p.bulk(several_chains, true);
        if several_chains {
            d.rhat = larger(d.rhat_bulk, d.rhat_tail);
        }
        let ess_q05 = p.ess_quantile(0.05);
        let ess_q95 = p.ess_quantile(0.95);
        let ess_q50 = p.ess_quantile(0.5);
        d.ess_tail = smaller(ess_q05, ess_q95);
        d.mcse_mean = sd / p.ess_mean().sqrt();
        d.mcse_sd = p.mcse_sd();
        d.mcse_q05 = p.mcse_quantile_with(0.05, ess_q05);
        d.mcse_q50 = p.mcse_quantile_with(0.5, ess_q50);
        d.mcse_q95 = p.mcse_quantile_with(0.95, ess_q95);
        d
    }
}

/// Rank-normalised split R-hat, the larger of the bulk and tail R-hats
/// (ArviZ's `rhat(method="rank")`). NaN for fewer than 2 chains or 4 draws,
/// a NaN draw, or a constant parameter.
pub fn rhat_rank(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(2) {
        return f64::NAN;
    }
    let tail = p.normalise(&p.scores(), true, true);
    larger(p.bulk(true, false).0, tail)
}

/// R-hat of the rank-normalised split draws (ArviZ's `rhat(method="z_scale")`).
/// NaN as [`rhat_rank`].
pub fn rhat_bulk(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(2) {
        return f64::NAN;
    }
    p.normalise(&p.scores(), true, false);
    p.bulk(true, false).0
}

/// R-hat of the rank-normalised split draws folded about their median
/// (ArviZ's `rhat(method="folded")`). NaN as [`rhat_rank`].
pub fn rhat_tail(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(2) {
        return f64::NAN;
    }
    p.normalise(&p.scores(), false, true)
}

/// ESS of the rank-normalised split draws (ArviZ's `ess(method="bulk")`).
/// NaN for fewer than 4 draws or a NaN draw; the number of split draws for
/// a constant parameter.
pub fn ess_bulk(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    p.normalise(&p.scores(), true, false);
    p.bulk(false, true).1
}

/// The smaller ESS of the indicators of the 5% and 95% quantiles (ArviZ's
/// `ess(method="tail")`). NaN as [`ess_bulk`].
pub fn ess_tail(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    let low = p.ess_quantile(0.05);
    smaller(low, p.ess_quantile(0.95))
}

/// ESS of the split draws themselves, the ESS behind the MCSE of the mean
/// (ArviZ's `ess(method="mean")`). NaN as [`ess_bulk`], and with ±∞ draws.
pub fn ess_mean(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    p.ess_mean()
}

/// ESS of the indicator of draws at or below the `prob` quantile (ArviZ's
/// `ess(method="quantile", prob)`). NaN as [`ess_bulk`].
pub fn ess_quantile(chains: &[&[f64]], prob: f64) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    p.ess_quantile(prob)
}

/// MCSE of the mean: sd / √ESS of the mean (ArviZ's `mcse(method="mean")`).
/// NaN as [`ess_mean`]; 0 for a constant parameter.
pub fn mcse_mean(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    p.sd() / p.ess_mean().sqrt()
}

/// MCSE of the sd, by the delta method from the ESS of the squared
/// deviations (ArviZ's `mcse(method="sd")`). NaN as [`ess_mean`], and for
/// a constant parameter.
pub fn mcse_sd(chains: &[&[f64]]) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    p.mcse_sd()
}

/// MCSE of the `prob` quantile (ArviZ's `mcse(method="quantile", prob)`):
/// half the distance between the order statistics at the 15.9% and 84.1%
/// points of Beta(ESS·prob + 1, ESS·(1 − prob) + 1), ESS being that of the
/// quantile's indicator. NaN as [`ess_bulk`]; 0 for a constant parameter.
pub fn mcse_quantile(chains: &[&[f64]], prob: f64) -> f64 {
    let mut p = Param::new(chains);
    if !p.valid(1) {
        return f64::NAN;
    }
    let ess = p.ess_quantile(prob);
    p.mcse_quantile_with(prob, ess)
}

/// The `prob` quantile of all draws by numpy's default (linear)
/// interpolation, as `az.summary`'s `eti` columns. NaN with a NaN draw or
/// no draws. (`az.summary`'s median, [`ParamDiagnostics::q50`], is
/// numpy's median, which may differ from this at 0.5 in the last bit.)
pub fn quantile(chains: &[&[f64]], prob: f64) -> f64 {
    let mut p = Param::new(chains);
    if p.has_nan {
        return f64::NAN;
    }
    p.sorted().numpy_quantile(prob)
}

/// Python's `max(a, b)`, which ArviZ uses: `a` unless `b > a` (so a NaN
/// first argument wins, a NaN second one loses).
fn larger(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: `a` unless `b < a`.
fn smaller(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// One parameter's draws and the work shared between its diagnostics.
struct Param<'a> {
    chains: &'a [&'a [f64]],
    /// Draws per chain, and per half of a split chain.
    draws: usize,
    half: usize,
    has_nan: bool,
    /// All draws sorted by value, with their flat index c · draws + i,
    /// once `is_sorted`; `folded`, the buffer of the folded draws.
    sorted: Vec<(f64, u32)>,
    folded: Vec<(f64, u32)>,
    is_sorted: bool,
    /// One series over the flat index (the middle draws of odd chains are
    /// not part of the split chains and are left alone).
    series: Vec<f64>,
    ess: Option<SplitEss>,
}

impl<'a> Param<'a> {
    fn new(chains: &'a [&'a [f64]]) -> Self {
        let draws = chains.first().map_or(0, |c| c.len());
        assert!(
            chains.iter().all(|c| c.len() == draws),
            "chains of one parameter must have the same number of draws"
        );
        assert!(
            u32::try_from(chains.len() * draws).is_ok(),
            "more than 2^32 draws of one parameter"
        );
        let has_nan = chains.iter().any(|c| c.iter().any(|v| v.is_nan()));
        Self {
            chains,
            draws,
            half: draws / 2,
            has_nan,
            sorted: Vec::new(),
            folded: Vec::new(),
            is_sorted: false,
            series: Vec::new(),
            ess: None,
        }
    }

    /// ArviZ's `_not_valid` with min_draws = 4: no NaN, enough draws and
    /// chains.
    fn valid(&self, min_chains: usize) -> bool {
        !self.has_nan && self.draws >= 4 && self.chains.len() >= min_chains
    }

    fn total(&self) -> usize {
        self.chains.len() * self.draws
    }

    /// Takes the buffers of `workspace` (emptied: they hold nothing of this
    /// parameter).
    fn take(&mut self, workspace: &mut Workspace) {
        self.sorted = std::mem::take(&mut workspace.sorted);
        self.folded = std::mem::take(&mut workspace.folded);
        self.series = std::mem::take(&mut workspace.series);
        self.ess = workspace.ess.take();
        self.is_sorted = false;
    }

    /// Hands the buffers back to `workspace`.
    fn give(self, workspace: &mut Workspace) {
        workspace.sorted = self.sorted;
        workspace.folded = self.folded;
        workspace.series = self.series;
        workspace.ess = self.ess;
    }

    /// The normal scores of this parameter's split draws.
    fn scores(&self) -> rank::Scores {
        scores_for(self.chains.len(), self.draws)
    }

    /// Sorts the draws (once).
    fn sort(&mut self) {
        if self.is_sorted {
            return;
        }
        self.sorted.clear();
        self.sorted.reserve_exact(self.total());
        for (c, chain) in self.chains.iter().enumerate() {
            let base = c * self.draws;
            self.sorted.extend(
                chain
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (v, (base + i) as u32)),
            );
        }
        // Ties may come out in any order, which changes no result: tied
        // draws share a rank, and only their values feed quantiles. (An LSD
        // radix sort on the float bits measured no quicker: its scatters
        // miss the caches and TLB at these sizes.)
        self.sorted.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        self.is_sorted = true;
    }

    fn sorted(&mut self) -> Sorted<'_> {
        self.sort();
        Sorted(&self.sorted)
    }

    fn mean(&self) -> f64 {
        pairwise::sum_map(self.chains, |v| v) / self.total() as f64
    }

    fn sd(&self) -> f64 {
        pairwise::var_chains(self.chains, 1).sqrt()
    }

    /// Whether the draw at a flat index is in a split chain (not the middle
    /// draw of an odd-length chain).
    fn in_split(draws: usize, half: usize) -> impl Fn(u32) -> bool + Copy {
        // Chains of even length have no middle draw: skip the division.
        let all = draws == 2 * half;
        let (draws, half) = (draws as u32, half as u32);
        move |j| {
            all || {
                let i = j % draws;
                i < half || i >= draws - half
            }
        }
    }

    /// A series over the flat index viewed as split chains, in ArviZ's
    /// order: the first halves of the chains, then the second halves.
    fn split<'s>(&self, flat: &'s [f64]) -> Vec<&'s [f64]> {
        let (n, h) = (self.draws, self.half);
        let starts = (0..self.chains.len()).map(|c| c * n);
        let firsts = starts.clone().map(|s| &flat[s..s + h]);
        let seconds = starts.map(|s| &flat[s + n - h..s + n]);
        firsts.chain(seconds).collect()
    }

    /// The split chains of the draws themselves.
    fn split_draws(&self) -> Vec<&'a [f64]> {
        let (n, h) = (self.draws, self.half);
        let firsts = self.chains.iter().map(|c| &c[..h]);
        let seconds = self.chains.iter().map(|c| &c[n - h..]);
        firsts.chain(seconds).collect()
    }

    fn series(&mut self) -> Vec<f64> {
        let mut s = std::mem::take(&mut self.series);
        s.resize(self.total(), 0.0);
        s
    }

    /// ESS of split chains of this parameter (the plans are made once).
    fn ess_of(&mut self, split: &[&[f64]]) -> f64 {
        let half = self.half;
        match &mut self.ess {
            Some(e) if e.len() == half => e,
            e => e.insert(SplitEss::new(half)),
        }
        .ess(split)
    }

    /// Rank-normalises the split draws into `series` if `bulk`, and if
    /// `tail` returns the R-hat of the split draws folded about their
    /// median (else NaN), from per-chain moments of scores never stored.
    fn normalise(&mut self, scores: &rank::Scores, bulk: bool, tail: bool) -> f64 {
        self.sort();
        let (m, draws, half) = (self.chains.len(), self.draws, self.half);
        let include = Self::in_split(draws, half);
        if bulk {
            let mut z = self.series();
            rank::normal_scores(&self.sorted, include, scores, &mut z);
            self.series = z;
        }
        if !tail {
            return f64::NAN;
        }
        // Split chain c is the first half of chain c; m + c its second half.
        // (u32 division: it runs once per draw, and is quicker than u64's.)
        let (draws32, half32) = (draws as u32, half as u32);
        let split_chain = |j: u32| {
            let (c, i) = ((j / draws32) as usize, j % draws32);
            if i < half32 {
                c
            } else {
                m + c
            }
        };
        let mut moments = rank::ChainMoments::new(2 * m);
        let median = self.split_median();
        let mut folded = std::mem::take(&mut self.folded);
        rank::folded_normal_scores(
            &self.sorted,
            median,
            include,
            scores,
            &mut folded,
            |z, j| moments.push(split_chain(j), z),
        );
        self.folded = folded;
        moments.rhat()
    }

    /// numpy's median of the split draws (an even number of them).
    fn split_median(&self) -> f64 {
        let count = 2 * self.chains.len() * self.half;
        if count == self.sorted.len() {
            return (self.sorted[count / 2 - 1].0 + self.sorted[count / 2].0) / 2.0;
        }
        let include = Self::in_split(self.draws, self.half);
        let mut kept = self
            .sorted
            .iter()
            .filter(|p| include(p.1))
            .skip(count / 2 - 1);
        let lower = kept.next().expect("at least 4 split draws").0;
        let upper = kept.next().expect("at least 4 split draws").0;
        (lower + upper) / 2.0
    }

    /// R-hat (when asked, else NaN) and ESS (likewise) of the
    /// rank-normalised split draws in `series` (see [`Self::normalise`]).
    fn bulk(&mut self, rhat: bool, ess: bool) -> (f64, f64) {
        let z = std::mem::take(&mut self.series);
        let split = self.split(&z);
        let r = if rhat {
            rank::split_rhat(&split)
        } else {
            f64::NAN
        };
        let e = if ess { self.ess_of(&split) } else { f64::NAN };
        drop(split);
        self.series = z;
        (r, e)
    }

    fn ess_quantile(&mut self, prob: f64) -> f64 {
        let threshold = self.sorted().r7_quantile(prob);
        let mut s = self.series();
        for (c, chain) in self.chains.iter().enumerate() {
            let out = &mut s[c * self.draws..(c + 1) * self.draws];
            for (o, &v) in out.iter_mut().zip(chain.iter()) {
                *o = if v <= threshold { 1.0 } else { 0.0 };
            }
        }
        let split = self.split(&s);
        let e = self.ess_of(&split);
        drop(split);
        self.series = s;
        e
    }

    fn ess_mean(&mut self) -> f64 {
        let split = self.split_draws();
        self.ess_of(&split)
    }

    /// ArviZ's `_mcse_sd`.
    fn mcse_sd(&mut self) -> f64 {
        let mean = self.mean();
        let mut s = self.series();
        for (c, chain) in self.chains.iter().enumerate() {
            let out = &mut s[c * self.draws..(c + 1) * self.draws];
            for (o, &v) in out.iter_mut().zip(chain.iter()) {
                *o = (v - mean) * (v - mean);
            }
        }
        // ArviZ checks the squared deviations for NaN (from ±∞ draws)
        // before splitting, middle draws included.
        let ess = if s.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            let split = self.split(&s);
            self.ess_of(&split)
        };
        let total = self.total() as f64;
        let evar = pairwise::sum(&s) / total;
        let fourth = pairwise::sum_map(&[&s], |v| v * v) / total;
        self.series = s;
        let varvar = (fourth - evar * evar) / ess;
        let varsd = varvar / evar / 4.0;
        varsd.sqrt()
    }

    /// ArviZ's `_mcse_quantile`, given the ESS of the quantile's indicator.
    fn mcse_quantile_with(&mut self, prob: f64, ess: f64) -> f64 {
        let sorted = self.sorted();
        let (a, b) = (ess * prob + 1.0, ess * (1.0 - prob) + 1.0);
        let size = sorted.0.len() as f64;
        let lower = beta_quantile(MCSE_PROBS[0], a, b) * size - 1.0;
        let upper = beta_quantile(MCSE_PROBS[1], a, b) * size - 1.0;
        // np.nanmax((lower, 0)) and np.nanmin((upper, size - 1)).
        let lower = if lower.is_nan() { 0.0 } else { lower.max(0.0) };
        let upper = if upper.is_nan() {
            size - 1.0
        } else {
            upper.min(size - 1.0)
        };
        let th1 = sorted.at(lower.floor() as usize);
        let th2 = sorted.at(upper.ceil() as usize);
        (th2 - th1) / 2.0
    }
}
