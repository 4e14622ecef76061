//! The local executor: every task in this process, on one rayon pool. Tasks
//! run side by side as pool jobs (each parallel over its walkers inside); the
//! calling thread receives their blocks and alone touches the sink.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::event::{run_reporting, TaskEvent};
use super::{BlockSink, ExecError, Monitor, Task, TaskError, TaskRecord};
use crate::spec::RunSpec;

/// Runs `tasks` on `pool`, writing every block to `sink` from this thread.
/// On the first failure the other tasks are cancelled and the error returned.
pub fn run_local(
    spec: &RunSpec,
    tasks: &[Task],
    pool: &rayon::ThreadPool,
    sink: &mut dyn BlockSink,
    monitor: &mut dyn Monitor,
) -> Result<Vec<TaskRecord>, ExecError> {
    let started = Instant::now();
    let progress = AtomicU64::new(0);
    let cancel = AtomicBool::new(false);
    // Bounded, so that a slow disk holds the samplers back instead of
    // letting blocks pile up in memory.
    let (tx, rx) = mpsc::sync_channel::<TaskEvent>(4 + 2 * pool.current_num_threads());
    let mut records = Vec::with_capacity(tasks.len());
    let mut failure: Option<ExecError> = None;

    let mut order: Vec<&Task> = tasks.iter().collect();
    order.sort_by(|a, b| b.expected_cost(spec).total_cmp(&a.expected_cost(spec)));

    pool.in_place_scope(|scope| {
        for &task in &order {
            let tx = tx.clone();
            let (progress, cancel) = (&progress, &cancel);
            scope.spawn(move |_| run_reporting(spec, *task, started, progress, cancel, &tx));
        }
        drop(tx);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(TaskEvent::Block(block)) => {
                    if failure.is_none() {
                        if let Err(e) = sink.write_block(&block) {
                            cancel.store(true, Ordering::Relaxed);
                            failure = Some(ExecError::Sink(e));
                        }
                    }
                }
                Ok(TaskEvent::Done(task, start, end, Ok(stats))) => records.push(TaskRecord {
                    task,
                    rank: 0,
                    start,
                    end,
                    stats,
                }),
                Ok(TaskEvent::Done(_, _, _, Err(TaskError::Cancelled))) => {}
                Ok(TaskEvent::Done(_, _, _, Err(e))) => {
                    cancel.store(true, Ordering::Relaxed);
                    failure.get_or_insert(ExecError::Task(e));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            monitor.tick(progress.load(Ordering::Relaxed));
        }
    });
    match failure {
        Some(e) => Err(e),
        None => {
            records.sort_by_key(|r| r.task.id);
            Ok(records)
        }
    }
}
