//! Convergence and summary diagnostics of ensemble chains: emcee's integrated
//! autocorrelation time, posterior mean and sd, Monte Carlo standard error.

mod autocorr;

pub use autocorr::{autocorr_function, integrated_time};

/// Mean, sd and autocorrelation time of one parameter of an ensemble chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainSummary {
    pub mean: f64,
    pub sd: f64,
    /// Integrated autocorrelation time in iterations (emcee's estimator).
    pub tau: f64,
    /// Samples behind the summary: iterations × walkers.
    pub samples: usize,
    pub walkers: usize,
}

impl ChainSummary {
    /// Summarises parameter `k` of a chain stored row-major as
    /// (iteration, walker, parameter).
    pub fn of_param(chain: &[f64], walkers: usize, ndim: usize, k: usize) -> Self {
        let iters = chain.len() / (walkers * ndim);
        // series[w][t]: walker-major, for the autocorrelation estimate.
        let series: Vec<Vec<f64>> = (0..walkers)
            .map(|w| {
                (0..iters)
                    .map(|t| chain[(t * walkers + w) * ndim + k])
                    .collect()
            })
            .collect();
        Self::of_walkers(&series)
    }

    /// Summarises one parameter given as one series per walker.
    pub fn of_walkers(series: &[Vec<f64>]) -> Self {
        let walkers = series.len();
        let n: usize = series.iter().map(Vec::len).sum();
        let mean = series.iter().flatten().sum::<f64>() / n as f64;
        let var = series
            .iter()
            .flatten()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / (n as f64 - 1.0).max(1.0);
        Self {
            mean,
            sd: var.sqrt(),
            tau: integrated_time(series),
            samples: n,
            walkers,
        }
    }

    /// Effective sample size: samples / τ.
    pub fn ess(&self) -> f64 {
        self.samples as f64 / self.tau.max(1.0)
    }

    /// Monte Carlo standard error of the mean: sd / √ESS.
    pub fn mcse(&self) -> f64 {
        self.sd / self.ess().sqrt()
    }
}
