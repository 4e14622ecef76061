//! Execution: the scheduler that runs any job's tasks on one process or
//! across MPI ranks, the transports under it, the wire format, and how many
//! threads a rank uses. It knows tasks, records and datasets — never a
//! kind's internals.

mod checkpoint;
mod failure;
pub mod mpi;
mod scheduler;
pub mod signals;
mod start;
mod threads;
pub mod transport;
pub mod watchdog;
mod wire;

pub use checkpoint::{Checkpoint, CheckpointPolicy, FinalSets};
pub use failure::{Cause, Failure};
pub use scheduler::{
    layout, mode, run_root, run_worker, ExecSets, Mode, Monitor, RunEnd, RunStats, Setup,
    FLUSH_EVERY, HEARTBEAT, RANK_TIMEOUT, STOP_GRACE,
};
pub use start::{begin, root_attrs, Begin, Started};
pub use threads::{
    bound_cores, build_pool, layout_warnings, node_cores, resolve_threads, serialized_warning,
    threads_for, ThreadSource, MAX_THREADS,
};

#[cfg(test)]
mod tests;
