//! sampo: a Monte Carlo engine for HPC. One TOML run spec says what to do;
//! the scheduler runs it in one process or across MPI ranks, and rank 0
//! writes everything into one HDF5 file.
//!
//! Data flows one way: spec → job (a kind of work, `jobs`) → plan of tasks
//! → scheduler (`exec`) → records → store (`output`) → report.

pub mod diag;
pub mod exec;
pub mod jobs;
pub mod limits;
pub mod model;
pub mod numeric;
pub mod output;
pub mod plot;
pub mod report;
pub mod seed;
pub mod spec;
pub mod summary;
pub mod table;
