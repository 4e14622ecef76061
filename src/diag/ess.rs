//! Effective sample size of split chains by Geyer's initial monotone
//! sequence on FFT autocovariances, as ArviZ's `_ess` computes it.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::autocorr::fft_size;
use super::pairwise;

/// ArviZ's threshold below which a series counts as constant
/// (`np.finfo(float).resolution`).
const CONSTANT_RANGE: f64 = 1e-15;

/// The ESS estimator for chains of one length: FFT plans and buffers made
/// once and reused for every chain and every series of one parameter (the
/// rank-normalised draws, the quantile indicators, the raw draws, ...).
///
/// ArviZ pads each chain of n draws to at least 2n for all n lags, but
/// Geyer's sequence stops long before lag n unless the chains hardly mix.
/// So the chains are first padded by n/8 only (to a fast FFT length), which
/// gives the lags up to n/8 exactly (a zero-padded circular autocorrelation is the ordinary one
/// for lags up to the padding) at half the cost; the full padding is
/// planned, and the series transformed again, only when the sequence runs
/// past them. The two differ in rounding only.
pub(super) struct SplitEss {
    /// Length of each (split) chain.
    len: usize,
    short: Transform,
    full: Option<Transform>,
    /// Autocovariances summed over the chains, lag by lag.
    acov_sum: Vec<f64>,
    /// Geyer's sequence of autocorrelations.
    rho: Vec<f64>,
    chain_means: Vec<f64>,
}

/// Autocovariances of chains through FFTs of one padded length. The
/// autocovariances summed over chains are the inverse transform of the
/// summed power spectra, so each chain costs one forward FFT and each
/// series one inverse. The chains are transformed in two fixed halves on
/// two rayon tasks and summed in a fixed order: the result does not depend
/// on the number of threads.
struct Transform {
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    lanes: [Lane; 2],
}

/// The buffers of one task transforming chains.
struct Lane {
    padded: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Σ |FFT|² over this lane's chains.
    power: Vec<f64>,
    means: Vec<f64>,
    /// Range of the values seen, and whether one was NaN.
    lo: f64,
    hi: f64,
    nan: bool,
}

impl Lane {
    fn new(forward: &Arc<dyn RealToComplex<f64>>, inverse: &Arc<dyn ComplexToReal<f64>>) -> Self {
        let spectrum = forward.make_output_vec();
        Self {
            padded: forward.make_input_vec(),
            power: vec![0.0; spectrum.len()],
            spectrum,
            scratch: vec![
                Complex::default();
                forward.get_scratch_len().max(inverse.get_scratch_len())
            ],
            means: Vec::new(),
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            nan: false,
        }
    }

    /// Sums the power spectra of the mean-centred, zero-padded `chains`.
    fn transform(&mut self, forward: &dyn RealToComplex<f64>, chains: &[&[f64]]) {
        self.power.fill(0.0);
        self.means.clear();
        let (mut lo, mut hi, mut nan) = (f64::INFINITY, f64::NEG_INFINITY, false);
        for chain in chains {
            let mean = pairwise::mean(chain);
            self.means.push(mean);
            let n = chain.len();
            // Eight lanes of range, so that the loop vectorises (the range
            // does not depend on the order).
            let (mut lo8, mut hi8, mut nan8) = ([lo; 8], [hi; 8], [false; 8]);
            let whole = n - n % 8;
            for (p, x) in self.padded[..whole]
                .chunks_exact_mut(8)
                .zip(chain[..whole].chunks_exact(8))
            {
                let lanes = lo8.iter_mut().zip(&mut hi8).zip(&mut nan8);
                for ((p, &v), ((lo, hi), nan)) in p.iter_mut().zip(x).zip(lanes) {
                    *p = v - mean;
                    *lo = lo.min(v);
                    *hi = hi.max(v);
                    *nan |= v.is_nan();
                }
            }
            for (p, &v) in self.padded[whole..n].iter_mut().zip(&chain[whole..]) {
                *p = v - mean;
                lo = lo.min(v);
                hi = hi.max(v);
                nan |= v.is_nan();
            }
            lo = lo8.iter().fold(lo, |a, &b| a.min(b));
            hi = hi8.iter().fold(hi, |a, &b| a.max(b));
            nan |= nan8.iter().any(|&b| b);
            // The transform uses its input as scratch: pad every time.
            self.padded[n..].fill(0.0);
            // Lengths come from the plan, so the transform cannot fail.
            forward
                .process_with_scratch(&mut self.padded, &mut self.spectrum, &mut self.scratch)
                .expect("buffers made by the forward plan");
            for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
                *p += c.norm_sqr();
            }
        }
        (self.lo, self.hi, self.nan) = (lo, hi, nan);
    }
}

/// What the transform found besides the autocovariances.
enum Series {
    /// A NaN among the values.
    Nan,
    /// Values spanning less than [`CONSTANT_RANGE`].
    Constant,
    /// Autocovariances exact up to this lag.
    Lags(usize),
}

impl Transform {
    fn new(size: usize) -> Self {
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(size);
        let inverse = planner.plan_fft_inverse(size);
        Self {
            lanes: [Lane::new(&forward, &inverse), Lane::new(&forward, &inverse)],
            forward,
            inverse,
        }
    }

    /// Writes Σ_c autocov_c(t) (divisor n, as ArviZ's `autocov`) for the
    /// lags t < n of the chains into `acov_sum`, and the chain means.
    fn autocov_sum(
        &mut self,
        chains: &[&[f64]],
        acov_sum: &mut [f64],
        means: &mut Vec<f64>,
    ) -> Series {
        let n = acov_sum.len();
        let (first, second) = chains.split_at(chains.len() / 2);
        let forward = &*self.forward;
        let [lane0, lane1] = &mut self.lanes;
        rayon::join(
            || lane0.transform(forward, first),
            || lane1.transform(forward, second),
        );
        // ArviZ's checks, from the ranges the lanes found on the way.
        if lane0.nan || lane1.nan {
            return Series::Nan;
        }
        if lane0.hi.max(lane1.hi) - lane0.lo.min(lane1.lo) < CONSTANT_RANGE {
            return Series::Constant;
        }
        means.clear();
        means.extend(lane0.means.iter().chain(&lane1.means));
        for ((c, p0), p1) in lane0
            .spectrum
            .iter_mut()
            .zip(&lane0.power)
            .zip(&lane1.power)
        {
            *c = Complex::new(p0 + p1, 0.0);
        }
        self.inverse
            .process_with_scratch(&mut lane0.spectrum, &mut lane0.padded, &mut lane0.scratch)
            .expect("buffers made by the inverse plan");
        // numpy's irfft scales by 1/size, ArviZ then divides by n.
        let size = lane0.padded.len();
        let scale = 1.0 / size as f64;
        for (s, a) in acov_sum.iter_mut().zip(&lane0.padded[..n]) {
            *s = a * scale / n as f64;
        }
        Series::Lags(size - n)
    }
}

impl SplitEss {
    /// Plans FFTs for chains of `len` draws.
    pub(super) fn new(len: usize) -> Self {
        // fft_size(k) is a fast length of at least 2k − 1.
        let padding = (len / 8).max(64);
        Self {
            len,
            short: Transform::new(fft_size((len + padding).div_ceil(2) + 1)),
            full: None,
            acov_sum: vec![0.0; len],
            rho: vec![0.0; len],
            chain_means: Vec::new(),
        }
    }

    /// Length of each chain planned for.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// ArviZ's `_ess(ary)` of the series `chains` (each of the planned
    /// length; ArviZ passes split chains: first halves, then second halves).
    /// NaN if a value is NaN or the autocorrelations are not finite; the
    /// number of values if the series is constant (range below 1e-15).
    pub(super) fn ess(&mut self, chains: &[&[f64]]) -> f64 {
        let n = self.len;
        let m = chains.len();
        assert!(
            chains.iter().all(|c| c.len() == n),
            "chain length differs from the plan"
        );
        if m == 0 || n < 2 {
            return f64::NAN;
        }
        let size = (m * n) as f64;
        let series = self
            .short
            .autocov_sum(chains, &mut self.acov_sum, &mut self.chain_means);
        let exact = match series {
            Series::Nan => return f64::NAN,
            Series::Constant => return size,
            Series::Lags(exact) => exact,
        };
        if let Some(ess) = self.geyer(m, exact) {
            return ess;
        }
        let full = self.full.get_or_insert_with(|| Transform::new(fft_size(n)));
        full.autocov_sum(chains, &mut self.acov_sum, &mut self.chain_means);
        self.geyer(m, n)
            .expect("every lag is exact with the full padding")
    }

    /// Geyer's initial monotone sequence on `acov_sum` of `m` chains, as
    /// ArviZ's `_ess`; None if it needs a lag beyond `exact`.
    fn geyer(&mut self, m: usize, exact: usize) -> Option<f64> {
        let n = self.len;
        let size = (m * n) as f64;
        let acov = &self.acov_sum;
        let mean_acov = |t: usize| acov[t] / m as f64;

        let nf = n as f64;
        let mean_var = mean_acov(0) * nf / (nf - 1.0);
        let mut var_plus = mean_var * (nf - 1.0) / nf;
        if m > 1 {
            var_plus += pairwise::var(&self.chain_means, 1);
        }
        let rho_at = |t: usize| 1.0 - (mean_var - mean_acov(t)) / var_plus;

        let rho = &mut self.rho;
        rho.fill(0.0);
        let mut rho_even = 1.0;
        rho[0] = rho_even;
        let mut rho_odd = rho_at(1);
        rho[1] = rho_odd;

        // Geyer's initial positive sequence: sums of pairs of
        // autocorrelations while they stay positive.
        let mut t = 1;
        while t + 3 < n && rho_even + rho_odd > 0.0 {
            if t + 2 > exact {
                return None;
            }
            rho_even = rho_at(t + 1);
            rho_odd = rho_at(t + 2);
            if rho_even + rho_odd >= 0.0 {
                rho[t + 1] = rho_even;
                rho[t + 2] = rho_odd;
            }
            t += 2;
        }
        // ArviZ's max_t is t − 2 (≥ −1); its slices use max_t + 1.
        let max_t1 = t - 1;
        // As ArviZ: the last even autocorrelation computed, kept or not,
        // extends the sequence when positive.
        if rho_even > 0.0 {
            rho[max_t1] = rho_even;
        }
        // Geyer's initial monotone sequence.
        let mut t = 1;
        while t + 3 <= max_t1 {
            if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t] {
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0;
                rho[t + 2] = rho[t + 1];
            }
            t += 2;
        }

        let tail = rho.get(max_t1).copied().unwrap_or(0.0);
        let mut tau_hat = -1.0 + 2.0 * pairwise::sum(&rho[..max_t1]) + tail;
        // The antithetic bound: ESS at most size · log10(size).
        let floor = 1.0 / size.log10();
        if floor > tau_hat {
            tau_hat = floor;
        }
        if rho.iter().any(|r| r.is_nan()) {
            return Some(f64::NAN);
        }
        Some(size / tau_hat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AR(1) chains from a small xorshift generator (Box–Muller normals).
    fn ar1(phi: f64, chains: usize, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut uniform = super::super::noise::uniforms(seed);
        (0..chains)
            .map(|_| {
                let mut x = 0.0;
                (0..n)
                    .map(|_| {
                        let z = super::super::noise::normal(&mut uniform);
                        x = phi * x + (1.0 - phi * phi).sqrt() * z;
                        x
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn short_padding_falls_back_to_the_full_one() {
        // ρ = 0.999 for 2000 draws: Geyer's sequence runs past lag 250,
        // the exact lags of the short padding.
        let x = ar1(0.999, 4, 2000, 7);
        let chains: Vec<&[f64]> = x.iter().map(Vec::as_slice).collect();
        let mut e = SplitEss::new(2000);
        let short = e.ess(&chains);
        assert!(
            e.full.is_some(),
            "the sequence should have needed the full padding"
        );
        // The same with every lag exact from the start.
        let mut full = SplitEss::new(2000);
        full.short = Transform::new(fft_size(2000));
        let want = full.ess(&chains);
        assert!((short - want).abs() <= 1e-12 * want, "{short} vs {want}");
    }

    #[test]
    fn padding_changes_rounding_only() {
        let x = ar1(0.5, 4, 1000, 11);
        let chains: Vec<&[f64]> = x.iter().map(Vec::as_slice).collect();
        let short = SplitEss::new(1000).ess(&chains);
        let mut full = SplitEss::new(1000);
        full.short = Transform::new(fft_size(1000));
        let want = full.ess(&chains);
        assert!((short - want).abs() <= 1e-12 * want, "{short} vs {want}");
    }

    #[test]
    fn nan_and_constant_series() {
        let mut e = SplitEss::new(4);
        assert!(e
            .ess(&[&[1.0, 2.0, f64::NAN, 0.0], &[1.0, 2.0, 3.0, 0.0]])
            .is_nan());
        assert_eq!(e.ess(&[&[1.0; 4], &[1.0; 4]]), 8.0);
    }
}
