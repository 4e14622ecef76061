//! Tasks (one ensemble = one state of one replicate), the plan that lists
//! them, and `run_task`, which runs one and emits its chain in blocks.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::SinkError;
use crate::model::Posterior;
use crate::sampler::{Ensemble, SampleError, WalkerShare};
use crate::seed::TaskKey;
use crate::spec::RunSpec;

/// One unit of work handed to a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: usize,
    pub state: usize,
    pub replicate: usize,
}

impl Task {
    pub fn key(&self, spec: &RunSpec) -> TaskKey {
        TaskKey {
            seed: spec.seed,
            state: self.state as u64,
            replicate: self.replicate as u64,
        }
    }

    /// The HDF5 group of this task's ensemble.
    pub fn group(&self, spec: &RunSpec) -> String {
        let name = &spec.states[self.state].name;
        if spec.replicates == 1 {
            format!("states/{name}")
        } else {
            format!("replicates/{}/states/{name}", self.replicate)
        }
    }

    /// Relative cost, for handing out the longest tasks first.
    pub fn expected_cost(&self, spec: &RunSpec) -> f64 {
        let st = &spec.states[self.state];
        // An evaluation of a built-in model costs roughly 0.05 µs per parameter.
        let per_eval = st.cost_us as f64 + 0.05 * st.dim() as f64;
        (st.ensemble.walkers * st.ensemble.steps) as f64 * per_eval
    }
}

/// Every task of a run, ordered by id (replicate-major, then state).
pub fn plan(spec: &RunSpec) -> Vec<Task> {
    (0..spec.replicates)
        .flat_map(|replicate| (0..spec.states.len()).map(move |state| (replicate, state)))
        .enumerate()
        .map(|(id, (replicate, state))| Task {
            id,
            state,
            replicate,
        })
        .collect()
}

/// Consecutive stored rows of one task's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub task: usize,
    /// Index of the first stored row in this block.
    pub first_row: usize,
    pub rows: usize,
    /// rows × walkers × ndim, row-major.
    pub chain: Vec<f64>,
    /// rows × walkers.
    pub log_prob: Vec<f64>,
    /// Accepted proposals per walker, cumulative up to the block's last row.
    pub accepted: Vec<f64>,
}

/// Counters of a finished task.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskStats {
    /// Accepted proposals, summed over walkers.
    pub accepted: u64,
    pub evaluations: u64,
    pub nan_evaluations: u64,
}

/// Where and when a task ran (written to /timings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskRecord {
    pub task: Task,
    pub rank: usize,
    /// Seconds since the run started.
    pub start: f64,
    pub end: f64,
    pub stats: TaskStats,
}

/// A task that failed, with everything needed to reproduce the failure.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("state `{state}` (replicate {replicate}, seed {seed}): {cause}")]
    Sample {
        state: String,
        replicate: usize,
        seed: u64,
        cause: SampleError,
    },
    #[error("state `{state}` (replicate {replicate}): {message}")]
    Setup {
        state: String,
        replicate: usize,
        message: String,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("could not hand a block on: {0}")]
    Emit(SinkError),
}

/// Rows per block: about 1 MiB of chain, so that memory stays bounded however
/// long the run, and at most the whole chain.
pub fn rows_per_block(walkers: usize, ndim: usize, stored_rows: usize) -> usize {
    ((1 << 17) / (walkers * ndim).max(1)).clamp(1, stored_rows.max(1))
}

/// What a task is connected to while it runs.
pub struct TaskHooks<'a> {
    /// Where blocks go; `None` on a process that helps with a shared
    /// ensemble without leading it (the leader emits the blocks).
    pub emit: Option<&'a mut dyn FnMut(Block) -> Result<(), SinkError>>,
    /// Walker-steps done, for progress.
    pub progress: &'a AtomicU64,
    /// Asked before every iteration; true stops the task (`Cancelled`).
    pub cancelled: &'a dyn Fn() -> bool,
    /// How the walkers are shared with other processes (`Whole`: not at all).
    pub share: &'a mut dyn WalkerShare,
}

/// Runs one task to the end, handing its chain to `hooks.emit` block by block.
pub fn run_task(spec: &RunSpec, task: &Task, hooks: TaskHooks<'_>) -> Result<TaskStats, TaskError> {
    let TaskHooks {
        mut emit,
        progress,
        cancelled,
        share,
    } = hooks;
    let st = &spec.states[task.state];
    let settings = &st.ensemble;
    let sample_err = |cause| match cause {
        SampleError::Stopped(_) => TaskError::Cancelled,
        cause => TaskError::Sample {
            state: st.name.clone(),
            replicate: task.replicate,
            seed: spec.seed,
            cause,
        },
    };
    let mut posterior = Posterior::from_state(st).map_err(|e| TaskError::Setup {
        state: st.name.clone(),
        replicate: task.replicate,
        message: e.to_string(),
    })?;
    if let Some(after) = injected_fault(&st.name) {
        posterior = posterior.fail_after(after);
    }
    if cancelled() {
        return Err(TaskError::Cancelled);
    }
    let mut ensemble =
        Ensemble::start_shared(&posterior, settings, task.key(spec), share).map_err(sample_err)?;
    let (n, d) = (ensemble.walkers(), ensemble.ndim());
    let per_block = rows_per_block(n, d, settings.stored_rows());
    let mut block = new_block(task.id, 0, per_block, n, d);
    for it in 1..=settings.steps {
        if cancelled() {
            return Err(TaskError::Cancelled);
        }
        ensemble
            .step_shared(&posterior, settings, share)
            .map_err(sample_err)?;
        progress.fetch_add(n as u64, Ordering::Relaxed);
        let Some(emit) = emit.as_mut() else { continue };
        if it % settings.thin != 0 {
            continue;
        }
        block.chain.extend_from_slice(ensemble.positions());
        block.log_prob.extend_from_slice(ensemble.log_prob());
        block.rows += 1;
        if block.rows == per_block || it + settings.thin > settings.steps {
            block.accepted = ensemble.accepted().map(|a| a as f64).collect();
            let next = new_block(task.id, block.first_row + block.rows, per_block, n, d);
            emit(std::mem::replace(&mut block, next)).map_err(TaskError::Emit)?;
        }
    }
    Ok(TaskStats {
        accepted: ensemble.accepted().sum(),
        evaluations: ensemble.evaluations(),
        nan_evaluations: ensemble.nan_count(),
    })
}

/// `SAMPO_INJECT_FAULT=<state>:<n>` makes evaluations of that state fail
/// after n of them, in every replicate: a test hook for failure handling,
/// read per task so that it acts on whichever rank runs the state.
fn injected_fault(state: &str) -> Option<u64> {
    let value = std::env::var("SAMPO_INJECT_FAULT").ok()?;
    let (name, after) = value.rsplit_once(':')?;
    (name == state).then(|| after.parse().ok()).flatten()
}

fn new_block(task: usize, first_row: usize, rows: usize, n: usize, d: usize) -> Block {
    Block {
        task,
        first_row,
        rows: 0,
        chain: Vec::with_capacity(rows * n * d),
        log_prob: Vec::with_capacity(rows * n),
        accepted: Vec::new(),
    }
}
