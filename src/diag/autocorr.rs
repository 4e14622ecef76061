//! emcee's integrated autocorrelation time (Goodman & Weare 2010; Sokal's
//! automatic window), via real-to-complex FFTs.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Autocorrelation of series of one length: the FFT plans and buffers are
/// made once and reused for every series (every walker of every parameter).
pub struct Autocorr {
    /// Length of the series.
    n: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    /// The zero-padded series, then its autocorrelation (first `n` entries).
    padded: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Sum of the walkers' power spectra, each divided by its variance.
    power: Vec<f64>,
}

impl Autocorr {
    /// Plans FFTs for series of length `n`, zero-padded (see `fft_size`).
    pub fn new(n: usize) -> Self {
        let size = fft_size(n);
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(size);
        let inverse = planner.plan_fft_inverse(size);
        let scratch =
            vec![Complex::default(); forward.get_scratch_len().max(inverse.get_scratch_len())];
        let spectrum = forward.make_output_vec();
        Self {
            n,
            padded: forward.make_input_vec(),
            power: vec![0.0; spectrum.len()],
            spectrum,
            forward,
            inverse,
            scratch,
        }
    }

    /// The normalised autocorrelation function of `x` (of the planned length).
    pub fn function(&mut self, x: &[f64]) -> &[f64] {
        assert_eq!(x.len(), self.n, "series length differs from the plan");
        let n = self.n;
        if n == 0 {
            return &[];
        }
        let mean = x.iter().sum::<f64>() / n as f64;
        for (p, v) in self.padded.iter_mut().zip(x) {
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
        let acf = &mut self.padded[..n];
        let c0 = acf[0];
        if c0 > 0.0 {
            for a in acf.iter_mut() {
                *a /= c0;
            }
        } else {
            // A constant series: no correlation structure to speak of.
            acf.fill(0.0);
            acf[0] = 1.0;
        }
        acf
    }

    /// Integrated autocorrelation time of one parameter from several
    /// walkers' series (emcee's `integrated_time` with c = 5): the
    /// walker-averaged autocorrelation function summed up to the smallest
    /// window M ≥ c τ(M). In steps of the series.
    ///
    /// The sum of the walkers' functions is one inverse transform: each
    /// function is the inverse transform of the walker's power spectrum over
    /// its value at lag 0 (N Σ (x − x̄)², N the padded length), so the
    /// spectra are summed, each over that value, and transformed back once.
    /// The same as summing [`Self::function`]s, up to rounding.
    pub fn integrated_time<'a>(&mut self, walkers: impl IntoIterator<Item = &'a [f64]>) -> f64 {
        let n = self.n;
        if n == 0 {
            return f64::NAN;
        }
        let size = self.padded.len() as f64;
        self.power.fill(0.0);
        // Constant walkers: a function of 1 at lag 0 and 0 elsewhere.
        let mut constant = 0usize;
        let mut count = 0usize;
        for x in walkers {
            assert_eq!(x.len(), n, "series length differs from the plan");
            count += 1;
            let mean = x.iter().sum::<f64>() / n as f64;
            let mut squares = 0.0;
            for (p, v) in self.padded.iter_mut().zip(x) {
                *p = v - mean;
                squares += *p * *p;
            }
            if squares <= 0.0 {
                constant += 1;
                continue;
            }
            self.padded[n..].fill(0.0);
            self.forward
                .process_with_scratch(&mut self.padded, &mut self.spectrum, &mut self.scratch)
                .expect("buffers made by the forward plan");
            let scale = 1.0 / (size * squares);
            for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
                *p += c.norm_sqr() * scale;
            }
        }
        for (c, p) in self.spectrum.iter_mut().zip(&self.power) {
            *c = Complex::new(*p, 0.0);
        }
        self.inverse
            .process_with_scratch(&mut self.spectrum, &mut self.padded, &mut self.scratch)
            .expect("buffers made by the inverse plan");
        self.padded[0] += constant as f64;
        // As emcee: the sum of the functions, then divided by the walkers.
        const C: f64 = 5.0;
        let mut cumulative = 0.0;
        let mut tau = f64::NAN;
        for (m, s) in self.padded[..n].iter().enumerate() {
            cumulative += s / count as f64;
            tau = 2.0 * cumulative - 1.0;
            if m as f64 >= C * tau {
                break;
            }
        }
        tau
    }
}

/// The length of the zero-padded series: at least 2n − 1, so that the
/// circular autocorrelation is the ordinary one (emcee pads to twice the next
/// power of two; any such length gives the same function, up to rounding).
/// The smallest even 2^a 3^b 5^c that is, when it saves at least a quarter of
/// emcee's length: mixed-radix transforms cost more per point than
/// power-of-two ones, so a smaller saving is no gain.
pub(super) fn fft_size(n: usize) -> usize {
    let pow2 = 2 * n.next_power_of_two();
    let min = (2 * n).saturating_sub(1);
    let mut smooth = pow2;
    let mut p2 = 2;
    while p2 < smooth {
        let mut p3 = p2;
        while p3 < smooth {
            let mut p5 = p3;
            while p5 < smooth {
                if p5 >= min {
                    smooth = p5;
                }
                p5 *= 5;
            }
            p3 *= 3;
        }
        p2 *= 2;
    }
    if 4 * smooth <= 3 * pow2 {
        smooth
    } else {
        pow2
    }
}

/// The normalised autocorrelation function of one series.
pub fn autocorr_function(x: &[f64]) -> Vec<f64> {
    Autocorr::new(x.len()).function(x).to_vec()
}

/// Integrated autocorrelation time of one parameter from several walkers'
/// series (see [`Autocorr::integrated_time`]); series are cut to the
/// shortest.
pub fn integrated_time(series: &[Vec<f64>]) -> f64 {
    let n = series.iter().map(Vec::len).min().unwrap_or(0);
    Autocorr::new(n).integrated_time(series.iter().map(|s| &s[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::StreamKey;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    /// AR(1) with coefficient φ has τ = (1 + φ)/(1 − φ).
    fn ar1(phi: f64, n: usize, walker: u64) -> Vec<f64> {
        let mut rng = StreamKey::of_seed(5).stream(walker);
        let mut x = 0.0;
        let scale = (1.0 - phi * phi).sqrt();
        (0..n)
            .map(|_| {
                x = phi * x + scale * rng.sample::<f64, _>(StandardNormal);
                x
            })
            .collect()
    }

    #[test]
    fn recovers_the_autocorrelation_time_of_ar1() {
        for phi in [0.0, 0.5, 0.9] {
            let series: Vec<Vec<f64>> = (0..32).map(|w| ar1(phi, 20_000, w)).collect();
            let tau = integrated_time(&series);
            let exact = (1.0 + phi) / (1.0 - phi);
            assert!(
                (tau - exact).abs() < 0.1 * exact,
                "phi={phi}: tau {tau} vs {exact}"
            );
        }
    }

    #[test]
    fn acf_starts_at_one_and_handles_constants() {
        let acf = autocorr_function(&[1.0, 2.0, 0.5, 3.0, 1.0]);
        assert!((acf[0] - 1.0).abs() < 1e-12);
        let flat = autocorr_function(&[2.0; 8]);
        assert_eq!(flat[0], 1.0);
        assert_eq!(integrated_time(&[vec![2.0; 64]]), 1.0);
        assert!(integrated_time(&[vec![]]).is_nan());
    }

    #[test]
    fn fft_sizes_are_long_enough_and_smooth() {
        for n in [0, 1, 2, 3, 5, 300, 1000, 3000, 16_000, 20_000, 65_537] {
            let size = fft_size(n);
            assert!(size >= 2 * n && size.is_multiple_of(2), "n={n}: {size}");
            let mut m = size;
            for p in [2, 3, 5] {
                while m.is_multiple_of(p) {
                    m /= p;
                }
            }
            assert_eq!(m, 1, "n={n}: {size}");
        }
        assert_eq!(fft_size(20_000), 40_000);
        assert_eq!(fft_size(16_000), 32_768);
    }

    #[test]
    fn acf_is_the_direct_sum() {
        // ρ(t) = Σ_s (x_s − x̄)(x_{s+t} − x̄) / Σ_s (x_s − x̄)², the FFT's
        // zero padding making it the non-circular sum.
        // 256 is padded to a power of two, 300 to 600 = 2³ 3 5².
        for n in [256, 300] {
            let x = ar1(0.7, n, 3);
            let mean = x.iter().sum::<f64>() / n as f64;
            let r: Vec<f64> = x.iter().map(|v| v - mean).collect();
            let c = |t: usize| (0..n - t).map(|s| r[s] * r[s + t]).sum::<f64>();
            let mut ac = Autocorr::new(n);
            // Twice, to check that reusing the buffers leaves nothing behind.
            for _ in 0..2 {
                let acf = ac.function(&x);
                for t in [0, 1, 5, 50, n - 1] {
                    assert!((acf[t] - c(t) / c(0)).abs() < 1e-12, "n={n} t={t}");
                }
            }
        }
    }
}
