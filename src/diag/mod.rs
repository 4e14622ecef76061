//! Convergence and summary diagnostics of chains: emcee's integrated
//! autocorrelation time, posterior mean and sd, Monte Carlo standard error,
//! and the rank-normalised R-hat, ESS and MCSE of Vehtari et al. (2021) as
//! ArviZ computes them.

#[cfg(test)]
mod arviz_fixtures;
mod autocorr;
mod beta_quantile;
mod ess;
#[cfg(test)]
mod frozen;
#[cfg(test)]
mod noise;
mod pairwise;
mod rank;
mod sorted;
mod summary;
mod table;
mod vehtari;

pub use autocorr::{autocorr_function, integrated_time, Autocorr};
pub use summary::{ChainAccumulator, ChainSummary, TAU_MAX_SAMPLES};
pub use table::{
    blank_if_never_moved, summary_table, summary_values, write_table, SummaryRow, ESS_MIN,
    RHAT_MAX, SUMMARY_COLUMNS, TAU_LENGTHS,
};
pub use vehtari::{
    diagnose, ess_bulk, ess_mean, ess_quantile, ess_tail, mcse_mean, mcse_quantile, mcse_sd,
    quantile, rhat_bulk, rhat_rank, rhat_tail, ParamDiagnostics,
};
