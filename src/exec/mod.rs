//! Execution: the plan of tasks, running one task, and the executors that run
//! a plan (locally here; across MPI ranks in `mpi`). An executor knows tasks
//! and blocks, never a sampler's internals.

mod event;
mod layout;
mod local;
pub mod mpi;
pub(crate) mod task;
mod wire;

pub use layout::{resolve_threads, ThreadSource};
pub use local::run_local;
pub use task::{plan, run_task, Block, Task, TaskError, TaskHooks, TaskRecord, TaskStats};

/// Errors a sink may return; the executor only passes them on.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where result blocks go (the HDF5 writer on rank 0, or a test's buffer).
pub trait BlockSink {
    fn write_block(&mut self, block: &Block) -> Result<(), SinkError>;
}

/// Told how far the run is, from the main thread, every few hundred ms.
pub trait Monitor {
    fn tick(&mut self, walker_steps_done: u64);
}

/// A monitor that does nothing (tests, `--quiet`).
impl Monitor for () {
    fn tick(&mut self, _: u64) {}
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("writing the output failed: {0}")]
    Sink(SinkError),
    /// A task failed on some rank; the message names rank, task and state.
    #[error("{0}")]
    Remote(String),
    #[error("malformed message {0}")]
    Protocol(String),
}
