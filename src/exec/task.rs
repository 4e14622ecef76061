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
    /// Accepted proposals per walker at the stored iterations only,
    /// cumulative up to the block's last row: emcee's convention (its
    /// `sample(thin_by=…)` saves the acceptance of the last step of each
    /// stored row), so that `accepted / iteration` is an acceptance fraction.
    /// Equal to all acceptances when `thin` is 1.
    pub accepted: Vec<f64>,
}

/// Counters of a finished task.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskStats {
    /// Accepted proposals, summed over walkers, at every iteration (stored
    /// or not).
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
    // Per walker: acceptances at the stored iterations (`Block::accepted`),
    // and the walker's count before the iteration being stored.
    let mut stored_accepted = vec![0u64; n];
    let mut accepted_before = vec![0u64; n];
    for it in 1..=settings.steps {
        if cancelled() {
            return Err(TaskError::Cancelled);
        }
        let stored = emit.is_some() && it % settings.thin == 0;
        if stored {
            for (b, a) in accepted_before.iter_mut().zip(ensemble.accepted()) {
                *b = a;
            }
        }
        ensemble
            .step_shared(&posterior, settings, share)
            .map_err(sample_err)?;
        progress.fetch_add(n as u64, Ordering::Relaxed);
        let Some(emit) = emit.as_mut().filter(|_| stored) else {
            continue;
        };
        for ((s, b), a) in stored_accepted
            .iter_mut()
            .zip(&accepted_before)
            .zip(ensemble.accepted())
        {
            *s += a - b;
        }
        block.chain.extend_from_slice(ensemble.positions());
        block.log_prob.extend_from_slice(ensemble.log_prob());
        block.rows += 1;
        if block.rows == per_block || it + settings.thin > settings.steps {
            block.accepted = stored_accepted.iter().map(|&a| a as f64).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Whole;
    use crate::spec::SpecSource;

    fn spec(thin: usize) -> RunSpec {
        let text = format!(
            r#"
[run]
seed = 11
[sampler]
walkers = 8
steps = 203
burn = 0
thin = {thin}
moves = [{{ kind = "stretch", a = 2.0, weight = 1.0 }}]
[[states]]
name = "g"
params = ["x", "y"]
model = {{ kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }}
prior = {{ kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }}
"#
        );
        RunSpec::from_source(&SpecSource::new("t.toml", &text)).unwrap()
    }

    /// Runs the spec's only task, returning its blocks and stats.
    fn run(spec: &RunSpec) -> (Vec<Block>, TaskStats) {
        let mut blocks = Vec::new();
        let mut emit = |b: Block| {
            blocks.push(b);
            Ok(())
        };
        let progress = AtomicU64::new(0);
        let hooks = TaskHooks {
            emit: Some(&mut emit),
            progress: &progress,
            cancelled: &|| false,
            share: &mut Whole,
        };
        let stats = run_task(spec, &plan(spec)[0], hooks).unwrap();
        (blocks, stats)
    }

    /// Per walker, the acceptances at iterations thin, 2 thin, …, found by
    /// stepping the ensemble by hand and differencing its counters.
    fn accepted_at_stored_iterations(spec: &RunSpec) -> Vec<u64> {
        let (task, st) = (plan(spec)[0], &spec.states[0]);
        let posterior = Posterior::from_state(st).unwrap();
        let s = &st.ensemble;
        let mut e = Ensemble::start(&posterior, s, task.key(spec)).unwrap();
        let mut stored = vec![0; s.walkers];
        for it in 1..=s.steps {
            let before: Vec<u64> = e.accepted().collect();
            e.step(&posterior, s).unwrap();
            if it % s.thin == 0 {
                for ((t, b), a) in stored.iter_mut().zip(before).zip(e.accepted()) {
                    *t += a - b;
                }
            }
        }
        stored
    }

    #[test]
    fn accepted_counts_the_stored_iterations_only() {
        let spec = spec(5);
        let (blocks, stats) = run(&spec);
        let rows: usize = blocks.iter().map(|b| b.rows).sum();
        assert_eq!(rows, 203 / 5);
        let accepted = &blocks.last().unwrap().accepted;
        let expected = accepted_at_stored_iterations(&spec);
        assert_eq!(
            accepted,
            &expected.iter().map(|&a| a as f64).collect::<Vec<_>>()
        );
        // emcee reads accepted / iteration as each walker's acceptance fraction.
        assert!(accepted.iter().all(|&a| a <= rows as f64), "{accepted:?}");
        // The stats still count every iteration: about thin times as many.
        let stored_total: f64 = accepted.iter().sum();
        assert!(stats.accepted as f64 > 3.0 * stored_total, "{stats:?}");
    }

    #[test]
    fn with_thin_one_accepted_counts_every_iteration() {
        let (blocks, stats) = run(&spec(1));
        let accepted: f64 = blocks.last().unwrap().accepted.iter().sum();
        assert_eq!(accepted, stats.accepted as f64);
    }
}
