//! sampo: a Monte Carlo sampler for HPC. One TOML run spec says what to
//! sample; the executors run it in one process or across MPI ranks, and rank 0
//! writes everything into one HDF5 file.
//!
//! Data flows one way: spec → plan of tasks → executor (samplers run inside
//! tasks) → blocks → output sink → report.

pub mod diag;
pub mod exec;
pub mod model;
pub mod output;
pub mod report;
pub mod sampler;
pub mod seed;
pub mod spec;
