//! Execution: the scheduler that runs any job's tasks on one process or
//! across MPI ranks, the transports under it, the wire format, and how many
//! threads a rank uses. It knows tasks, records and datasets — never a
//! kind's internals.

mod checkpoint;
mod layout;
pub mod mpi;
mod scheduler;
pub mod signals;
pub mod transport;
pub mod watchdog;
mod wire;

pub use checkpoint::{Checkpoint, CheckpointPolicy};
pub use layout::{resolve_threads, ThreadSource, MAX_THREADS};
pub use scheduler::{
    layout, mode, run_root, run_worker, Failure, Mode, Monitor, RunEnd, RunStats, Setup,
    TimingSets, FLUSH_EVERY, HEARTBEAT, RANK_TIMEOUT, STOP_GRACE,
};

#[cfg(test)]
mod tests;
