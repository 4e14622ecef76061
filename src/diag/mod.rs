//! Convergence and summary diagnostics of ensemble chains: emcee's integrated
//! autocorrelation time, posterior mean and sd, Monte Carlo standard error.

mod autocorr;
mod summary;

pub use autocorr::{autocorr_function, integrated_time, Autocorr};
pub use summary::{ChainAccumulator, ChainSummary, TAU_MAX_SAMPLES};
