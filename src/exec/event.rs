//! A task run on a pool thread, reporting to the thread that owns the sink
//! through a bounded channel: its blocks as they come, then its outcome.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use super::{run_task, Block, Task, TaskError, TaskHooks, TaskStats};
use crate::sampler::Whole;
use crate::spec::RunSpec;

pub(crate) enum TaskEvent {
    Block(Block),
    /// The task, its start and end (seconds since `started`), and its outcome.
    Done(Task, f64, f64, Result<TaskStats, TaskError>),
}

/// Runs `task` whole (no sharing of walkers), sending its blocks and then
/// its outcome on `tx`; stops early when `cancel` is set.
pub(crate) fn run_reporting(
    spec: &RunSpec,
    task: Task,
    started: Instant,
    progress: &AtomicU64,
    cancel: &AtomicBool,
    tx: &SyncSender<TaskEvent>,
) {
    let start = started.elapsed().as_secs_f64();
    let mut emit = |b: Block| {
        tx.send(TaskEvent::Block(b))
            .map_err(|e| e.to_string().into())
    };
    let cancelled = || cancel.load(Ordering::Relaxed);
    let hooks = TaskHooks {
        emit: Some(&mut emit),
        progress,
        cancelled: &cancelled,
        share: &mut Whole,
    };
    let result = run_task(spec, &task, hooks);
    let end = started.elapsed().as_secs_f64();
    // The receiver outlives every task; a failed send means it already
    // stopped on an error, which it reports.
    let _ = tx.send(TaskEvent::Done(task, start, end, result));
}
