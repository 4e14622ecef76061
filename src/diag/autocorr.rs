//! emcee's integrated autocorrelation time (Goodman & Weare 2010; Sokal's
//! automatic window), via FFT.

use rustfft::{num_complex::Complex, FftPlanner};

/// The normalised autocorrelation function of a series, by FFT with zero
/// padding to twice the next power of two (as emcee's `function_1d`).
pub fn autocorr_function(x: &[f64], planner: &mut FftPlanner<f64>) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let size = 2 * n.next_power_of_two();
    let mean = x.iter().sum::<f64>() / n as f64;
    let mut buf: Vec<Complex<f64>> = x
        .iter()
        .map(|&v| Complex::new(v - mean, 0.0))
        .chain(std::iter::repeat(Complex::new(0.0, 0.0)))
        .take(size)
        .collect();
    planner.plan_fft_forward(size).process(&mut buf);
    for c in &mut buf {
        *c = Complex::new(c.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(size).process(&mut buf);
    let c0 = buf[0].re;
    if c0 <= 0.0 {
        // A constant series: no correlation structure to speak of.
        let mut acf = vec![0.0; n];
        acf[0] = 1.0;
        return acf;
    }
    buf[..n].iter().map(|c| c.re / c0).collect()
}

/// Integrated autocorrelation time of one parameter from several walkers'
/// series (emcee's `integrated_time` with c = 5): the walker-averaged
/// autocorrelation function summed up to the smallest window M ≥ c τ(M).
pub fn integrated_time(series: &[Vec<f64>]) -> f64 {
    let n = series.iter().map(Vec::len).min().unwrap_or(0);
    if n == 0 {
        return f64::NAN;
    }
    let mut planner = FftPlanner::new();
    let mut f = vec![0.0; n];
    for s in series {
        for (fi, a) in f.iter_mut().zip(autocorr_function(&s[..n], &mut planner)) {
            *fi += a / series.len() as f64;
        }
    }
    const C: f64 = 5.0;
    let mut cumulative = 0.0;
    let mut tau = 1.0;
    for (m, fm) in f.iter().enumerate() {
        cumulative += fm;
        tau = 2.0 * cumulative - 1.0;
        if m as f64 >= C * tau {
            return tau;
        }
    }
    tau
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::TaskKey;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    /// AR(1) with coefficient φ has τ = (1 + φ)/(1 − φ).
    fn ar1(phi: f64, n: usize, walker: u64) -> Vec<f64> {
        let mut rng = TaskKey {
            seed: 5,
            state: 0,
            replicate: 0,
        }
        .stream(walker);
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
        let mut planner = FftPlanner::new();
        let acf = autocorr_function(&[1.0, 2.0, 0.5, 3.0, 1.0], &mut planner);
        assert!((acf[0] - 1.0).abs() < 1e-12);
        let flat = autocorr_function(&[2.0; 8], &mut planner);
        assert_eq!(flat[0], 1.0);
        assert_eq!(integrated_time(&[vec![2.0; 64]]), 1.0);
    }
}
