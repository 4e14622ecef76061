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
pub(super) struct SplitEss {
    /// Length of each (split) chain.
    len: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    padded: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Autocovariances summed over the chains, lag by lag.
    acov_sum: Vec<f64>,
    /// Geyer's sequence of autocorrelations.
    rho: Vec<f64>,
    chain_means: Vec<f64>,
}

impl SplitEss {
    /// Plans FFTs for chains of `len` draws (zero-padded, see `fft_size`).
    pub(super) fn new(len: usize) -> Self {
        let mut planner = RealFftPlanner::<f64>::new();
        let size = fft_size(len);
        let forward = planner.plan_fft_forward(size);
        let inverse = planner.plan_fft_inverse(size);
        let scratch =
            vec![Complex::default(); forward.get_scratch_len().max(inverse.get_scratch_len())];
        Self {
            len,
            padded: forward.make_input_vec(),
            spectrum: forward.make_output_vec(),
            forward,
            inverse,
            scratch,
            acov_sum: vec![0.0; len],
            rho: vec![0.0; len],
            chain_means: Vec::new(),
        }
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
        let size = (m * n) as f64;
        if m == 0 || n < 2 {
            return f64::NAN;
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in chains.iter().flat_map(|c| c.iter()) {
            if v.is_nan() {
                return f64::NAN;
            }
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi - lo < CONSTANT_RANGE {
            return size;
        }

        // Autocovariance of each chain (divisor n, as ArviZ's `autocov`),
        // summed over chains; numpy's irfft scales by 1/size, then by 1/n.
        self.acov_sum.fill(0.0);
        self.chain_means.clear();
        let scale = 1.0 / self.padded.len() as f64;
        for chain in chains {
            let mean = pairwise::mean(chain);
            self.chain_means.push(mean);
            for (p, v) in self.padded.iter_mut().zip(chain.iter()) {
                *p = v - mean;
            }
            self.padded[n..].fill(0.0);
            // Lengths come from the plans, so neither transform can fail.
            self.forward
                .process_with_scratch(&mut self.padded, &mut self.spectrum, &mut self.scratch)
                .expect("buffers made by the forward plan");
            for c in &mut self.spectrum {
                *c = Complex::new(c.norm_sqr(), 0.0);
            }
            self.inverse
                .process_with_scratch(&mut self.spectrum, &mut self.padded, &mut self.scratch)
                .expect("buffers made by the inverse plan");
            for (s, a) in self.acov_sum.iter_mut().zip(&self.padded[..n]) {
                *s += a * scale / n as f64;
            }
        }
        let mean_acov = |t: usize| self.acov_sum[t] / m as f64;

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
            rho_even = rho_at(t + 1);
            rho_odd = rho_at(t + 2);
            if rho_even + rho_odd >= 0.0 {
                rho[t + 1] = rho_even;
                rho[t + 2] = rho_odd;
            }
            t += 2;
        }
        // t ≥ 1, so max_t ≥ -1; ArviZ's slices make max_t + 1 the index used.
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
            return f64::NAN;
        }
        size / tau_hat
    }
}
