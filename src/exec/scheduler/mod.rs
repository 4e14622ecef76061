//! The scheduler: one loop for every kind of job, on one process or across
//! MPI ranks (a [`Transport`] underneath).
//!
//! Rank 0 holds the store and the queue of a stage's tasks (longest
//! first). Every rank, rank 0 included, runs up to its thread count of tasks
//! at once on its rayon pool; rank 0 pushes tasks to the workers as their
//! slots free up (one more ahead while the queue is longer than the number
//! of ranks), and its main thread writes what comes back. When a stage has
//! fewer tasks than ranks and its tasks can be shared, the ranks form one
//! group per task and run it together through a [`Collective`]
//! (`Job::shareable`).
//!
//! A task ends done, paused (a snapshot) or failed. When every task of a
//! round has ended and some paused, rank 0 asks the job whether to go on
//! (`Job::round`), and resumes the paused tasks from their snapshots; when
//! a stage ends, `Job::finish_stage` hands a carry to the next stage on
//! every rank. A failure anywhere stops every rank within seconds.
//!
//! Only the main thread of a rank calls the transport (MPI `Funneled`).
//!
//! Rank 0's loop is in `root`, a worker's in `worker`; each mode is written
//! once, both sides together (`queue`, `groups`); `tasks` runs a task on a
//! rank's pool or, shared, on its main thread.

pub use root::run_root;
pub use worker::run_worker;

use std::ops::Range;
use std::time::{Duration, Instant};

use super::checkpoint::{CheckpointPolicy, FinalSets, Pausing, RangeSet};
use super::failure::Cause;
use super::transport::Transport;
use crate::jobs::{Job, TaskId};
use crate::output::{Column, DatasetDecl, Dtype, Layout, Record, Store};

/// A worker in a queue stage sends at least one message this often, so that
/// rank 0 can tell a silent rank from a busy one.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

pub use crate::limits::RANK_TIMEOUT;

/// How long rank 0 waits, after a failure, for every rank to stop before it
/// gives up on them (a rank inside one very long evaluation cannot listen).
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often rank 0 flushes the store: a killed run loses at most this much.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// How a stage's tasks map onto ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Tasks from rank 0's queue, each run by one rank.
    Queue,
    /// Group g (ranks `groups[g]`) runs task g together.
    Groups(Vec<Range<usize>>),
}

/// The mode of a stage with `tasks` tasks on `ranks` ranks.
pub fn mode(tasks: u64, ranks: usize, shareable: bool) -> Mode {
    if !shareable || tasks >= ranks as u64 || tasks == 0 {
        Mode::Queue
    } else {
        let t = tasks as usize;
        Mode::Groups((0..t).map(|g| split(0..ranks, g, t)).collect())
    }
}

/// Member `m`'s contiguous part of `range` split as evenly as possible.
fn split(range: Range<usize>, m: usize, members: usize) -> Range<usize> {
    let (n, k) = (range.len(), members.max(1));
    let at = |i: usize| range.start + i * (n / k) + i.min(n % k);
    at(m)..at(m + 1)
}

pub use crate::report::Monitor;

/// The executor's own datasets: `/timings`, a row per task run, and the
/// tasks' last states ([`FinalSets`]).
#[derive(Debug, Clone, Copy)]
pub struct ExecSets {
    /// The first of `/timings`' datasets.
    timings: usize,
    pub finals: FinalSets,
}

const TIMING_INTS: [&str; 5] = ["stage", "task", "rank", "evaluations", "nan_evaluations"];
const TIMING_FLOATS: [&str; 2] = ["start", "end"];

/// Rows per chunk of `/timings`: 4 KiB a dataset for a short run.
const TIMING_CHUNK_ROWS: usize = 512;

/// The job's layout plus the executor's datasets.
pub fn layout(job: &dyn Job) -> (Layout, ExecSets) {
    let mut layout = job.layout().clone();
    layout.group(
        "timings",
        vec![(
            "description".into(),
            crate::output::Attr::Str(
                "one row per task run (a task paused and resumed has a row per round); \
                 start and end in seconds since its rank started"
                    .into(),
            ),
        )],
    );
    let first = layout.datasets.len();
    for name in TIMING_INTS {
        layout.add(
            DatasetDecl::growing(format!("timings/{name}"), Dtype::I64, vec![])
                .with_chunk_rows(TIMING_CHUNK_ROWS),
        );
    }
    for name in TIMING_FLOATS {
        layout.add(
            DatasetDecl::growing(format!("timings/{name}"), Dtype::F64, vec![])
                .with_chunk_rows(TIMING_CHUNK_ROWS),
        );
    }
    let finals = FinalSets::declare(&mut layout);
    (
        layout,
        ExecSets {
            timings: first,
            finals,
        },
    )
}

/// Totals of a finished run, for the closing lines.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub tasks: u64,
    pub evaluations: u64,
    pub nan_evaluations: u64,
    /// Seconds of task time per rank.
    pub busy: Vec<f64>,
}

/// What every rank's loop is given.
pub struct Setup<'a> {
    pub job: &'a dyn Job,
    pub transport: &'a dyn Transport,
    /// Tasks each rank runs at once (its threads).
    pub capacity: Vec<usize>,
    /// When this rank started (timings are relative to it).
    pub started: Instant,
    /// A worker not heard from for this long is taken as gone (stopped,
    /// hung, its node lost), and the job ends naming it.
    pub rank_timeout: Duration,
    /// Periodic checkpoints and the wall-time deadline (rank 0).
    pub checkpoints: CheckpointPolicy,
}

/// How rank 0's run ended, when it did not fail.
#[derive(Debug)]
pub enum RunEnd {
    Complete(RunStats),
    /// Paused (a signal, the wall time): the checkpoint is written.
    Paused {
        why: String,
        stats: RunStats,
    },
}

mod groups;
mod queue;
mod root;
mod tasks;
mod worker;

/// Rank 0.
struct Root<'a> {
    setup: &'a Setup<'a>,
    store: &'a mut dyn Store,
    sets: ExecSets,
    monitor: &'a mut dyn Monitor,
    /// Tasks handed to each rank (rank 0: running here) not yet ended.
    outstanding: Vec<usize>,
    /// Tasks handed out in this round, on any rank, not yet ended.
    unfinished: u64,
    paused: Vec<(TaskId, Vec<u8>)>,
    failure: Option<(Cause, String)>,
    failed_at: Option<Instant>,
    told_stop: Vec<bool>,
    said_bye: Vec<bool>,
    /// When each rank was last heard from, and when rank 0 last listened.
    last_heard: Vec<Instant>,
    last_poll: Instant,
    /// When rank 0 last told the workers of a queue stage it is alive.
    last_alive: Instant,
    remote_progress: u64,
    timing_rows: u64,
    stats: RunStats,
    last_flush: Instant,
    /// The groups of ranks of a stage run in group mode.
    groups: Vec<Range<usize>>,
    /// Tasks are being paused for a checkpoint, and why.
    pausing: Option<Pausing>,
    /// Tasks of this round that paused when asked, or came back unstarted.
    yielded: Vec<(TaskId, Option<Vec<u8>>)>,
    /// Tasks of the stage done.
    done: RangeSet,
    /// The carry the stage began with.
    carry: Vec<u8>,
    last_checkpoint: Instant,
    /// Progress from before a resume.
    base_progress: u64,
    /// Set once a pause that ends the run has its checkpoint written.
    paused_for: Option<String>,
    /// Rows and bytes of the tasks' last states written
    /// ([`Root::keep_final`]).
    final_rows: u64,
    final_bytes: u64,
    /// `Checkpoint::spec`, kept from the checkpoint the run resumed from.
    spec: String,
}

/// The tasks of a stage in plan order (group g runs the g-th).
fn plan_order(job: &dyn Job, stage: u32) -> Vec<TaskId> {
    job.plan(stage)
        .runs
        .iter()
        .flat_map(|r| r.tasks.clone())
        .map(|index| TaskId { stage, index })
        .collect()
}

fn timing_record(dataset: usize, row: u64, values: Column) -> Record {
    Record {
        dataset,
        first_row: row,
        rows: 1,
        lane: None,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_tasks_than_ranks_makes_groups_when_shareable() {
        assert_eq!(mode(5, 3, true), Mode::Queue);
        assert_eq!(mode(3, 3, true), Mode::Queue);
        assert_eq!(mode(2, 3, true), Mode::Groups(vec![0..2, 2..3]));
        assert_eq!(
            mode(1, 4, true),
            Mode::Groups(std::iter::once(0..4).collect())
        );
        assert_eq!(mode(1, 4, false), Mode::Queue);
    }
}
