//! The scheduler in one process with the in-memory store: ordering of
//! records, failures, cancellation, and tasks that pause and resume.

use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Instant;

use super::checkpoint::{Checkpoint, CheckpointPolicy};
use super::scheduler::{layout, run_root, RunEnd, Setup};
use super::transport::Alone;
use crate::jobs::{
    Decision, Job, JobError, Outcome, Plan, PlanRun, TaskContext, TaskError, TaskId,
};
use crate::output::{Column, DatasetDecl, Dtype, Layout, MemoryStore, Record, Store};

/// A job of `tasks` tasks; task i writes rows 3i..3i+3 of `values` (row r
/// holds r + 100 × round), pausing after each of `rounds` rounds.
struct TestJob {
    tasks: u64,
    rounds: u32,
    fail: Option<u64>,
    panic: Option<u64>,
    layout: Layout,
    rounds_decided: AtomicU32,
    /// Each task waits in a rayon join (two 2 ms sleeps); `running` counts
    /// the tasks under way, `most` the most at once.
    join: bool,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl TestJob {
    fn new(tasks: u64, rounds: u32) -> Self {
        let mut layout = Layout::default();
        layout.add(DatasetDecl::fixed(
            "values",
            Dtype::F64,
            vec![rounds as usize],
            3 * tasks,
        ));
        Self {
            tasks,
            rounds,
            fail: None,
            panic: None,
            layout,
            rounds_decided: AtomicU32::new(0),
            join: false,
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        }
    }
}

impl Job for TestJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn plan(&self, _: u32) -> Plan {
        // Two runs, the later one costlier: it is handed out first.
        let half = self.tasks / 2;
        Plan {
            runs: vec![
                PlanRun {
                    tasks: 0..half,
                    cost: 1.0,
                },
                PlanRun {
                    tasks: half..self.tasks,
                    cost: 2.0,
                },
            ],
        }
    }
    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        let round = resume.map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()));
        if Some(task.index) == self.fail && round == self.rounds - 1 {
            return Err(TaskError::Failed(format!("task {} broke", task.index)));
        }
        if Some(task.index) == self.panic {
            panic!("a bug in task {}", task.index);
        }
        if cx.cancelled() {
            return Err(TaskError::Cancelled);
        }
        if self.join {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let nap = || std::thread::sleep(std::time::Duration::from_millis(2));
            rayon::join(nap, nap);
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        for row in 3 * task.index..3 * task.index + 3 {
            // One value per round at column `round`: rewrite the whole row.
            let mut values = vec![f64::NAN; self.rounds as usize];
            for (k, v) in values.iter_mut().enumerate().take(round as usize + 1) {
                *v = row as f64 + 100.0 * k as f64;
            }
            cx.emit(Record {
                dataset: 0,
                first_row: row,
                rows: 1,
                lane: None,
                values: Column::F64(values),
            })?;
        }
        cx.evaluations = 1;
        cx.add_progress(1);
        if round + 1 < self.rounds {
            Ok(Outcome::Paused((round + 1).to_le_bytes().to_vec()))
        } else {
            Ok(Outcome::Done)
        }
    }
    fn round(&self, _: u32, store: &mut dyn Store) -> Result<Decision, JobError> {
        let r = self.rounds_decided.fetch_add(1, Ordering::SeqCst);
        // Every row of the round is in the store when the round is decided.
        let values = store.read_f64(0, 0..3 * self.tasks, None)?;
        let column = values.iter().skip(r as usize).step_by(self.rounds as usize);
        assert!(
            column.clone().all(|v| v.is_finite()),
            "round {r} incomplete"
        );
        Ok(Decision::Continue)
    }
    fn describe(&self, _: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }
    fn work(&self) -> (u64, &'static str) {
        (self.tasks * self.rounds as u64, "tasks")
    }
    fn report(&self, _: &mut dyn Store, _: &mut dyn Write) -> Result<(), JobError> {
        Ok(())
    }
}

fn run(job: &TestJob, threads: usize) -> (MemoryStore, Result<super::RunStats, String>) {
    run_from(job, threads, None, &[])
}

/// Runs `job` from `restore`, with the store holding `written` (the rows
/// the file of the paused run would have).
fn run_from(
    job: &TestJob,
    threads: usize,
    restore: Option<&Checkpoint>,
    written: &[Record],
) -> (MemoryStore, Result<super::RunStats, String>) {
    let (layout, timings) = layout(job);
    let mut store = MemoryStore::new(layout);
    for r in written {
        store.write(r.clone()).unwrap();
    }
    let before = store.records.len();
    let setup = Setup {
        job,
        transport: &Alone,
        capacity: vec![threads],
        started: Instant::now(),
        rank_timeout: super::RANK_TIMEOUT,
        checkpoints: CheckpointPolicy::NONE,
    };
    let result = run_root(&setup, &mut store, timings, &mut (), restore).map_err(|f| f.message);
    let result = result.map(|end| match end {
        RunEnd::Complete(stats) => stats,
        RunEnd::Paused { why, .. } => panic!("paused: {why}"),
    });
    store.records.drain(..before);
    (store, result)
}

#[test]
fn a_run_resumed_from_a_checkpoint_runs_only_what_was_left() {
    let job = TestJob::new(5, 2);
    let round1 = 1u32.to_le_bytes().to_vec();
    let cp = Checkpoint {
        // Tasks 0 and 1 are done; 3 goes on in this round; 4 waits for the
        // round's decision; 2 never started.
        done: std::iter::once(0..2).collect(),
        ready: vec![(3, round1.clone())],
        waiting: vec![(4, round1)],
        timing_rows: 7,
        ..Checkpoint::default()
    };
    // The file holds both rounds of tasks 0 and 1, round 0 of 3 and 4.
    let row = |r: u64, rounds: usize| Record {
        dataset: 0,
        first_row: r,
        rows: 1,
        lane: None,
        values: Column::F64(
            (0..2)
                .map(|k| {
                    if k < rounds {
                        r as f64 + 100.0 * k as f64
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
        ),
    };
    let written: Vec<Record> = (0..6)
        .map(|r| row(r, 2))
        .chain((9..15).map(|r| row(r, 1)))
        .collect();
    let (store, result) = run_from(&job, 1, Some(&cp), &written);
    result.unwrap();
    assert_eq!(job.rounds_decided.load(Ordering::SeqCst), 1);
    // Task 3 from its snapshot, task 2 afresh; after the round 2 and 4.
    let tasks = store.f64_rows("timings/task");
    assert_eq!(&tasks[7..], [3.0, 2.0, 2.0, 4.0]);
    // Only what the run wrote (the file's rows are left out).
    let values = store.f64_rows("values");
    assert!(values[..6 * 2].iter().all(|v| v.is_nan()), "tasks 0, 1 ran");
    // Task 2 wrote both rounds; 3 and 4 only the round after their snapshot.
    assert_eq!(&values[6 * 2..6 * 2 + 2], [6.0, 106.0]);
    assert_eq!(&values[9 * 2..9 * 2 + 2], [9.0, 109.0]);
    assert_eq!(&values[12 * 2..12 * 2 + 2], [12.0, 112.0]);
}

#[test]
fn every_record_reaches_the_store_whatever_the_threads() {
    for threads in [1, 3] {
        let job = TestJob::new(10, 1);
        let (store, result) = run(&job, threads);
        let stats = result.unwrap();
        assert_eq!((stats.tasks, stats.evaluations), (10, 10));
        let values = store.f64_rows("values");
        assert_eq!(values, (0..30).map(f64::from).collect::<Vec<_>>());
        // One timing row per task, every task once.
        let mut tasks: Vec<f64> = store.f64_rows("timings/task");
        tasks.sort_by(f64::total_cmp);
        assert_eq!(tasks, (0..10).map(f64::from).collect::<Vec<_>>());
        assert!(store.flushes >= 1);
    }
}

#[test]
fn the_costliest_tasks_start_first() {
    let job = TestJob::new(6, 1);
    let (store, result) = run(&job, 1);
    result.unwrap();
    // With one thread, tasks run in dispatch order: run 3..6 (cost 2) first.
    assert_eq!(
        store.f64_rows("timings/task"),
        vec![3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
    );
}

#[test]
fn a_task_given_ahead_waits_for_the_thread_it_was_given_to() {
    // One task at a time (capacity 1) on a pool of 3 threads, each task
    // waiting in a join: the task given ahead must start when the running
    // one ends, neither taken by an idle pool thread nor run inside the join.
    let mut job = TestJob::new(12, 1);
    job.join = true;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let (store, result) = pool.install(|| run(&job, 1));
    assert_eq!(result.unwrap().tasks, 12);
    assert_eq!(job.most.load(Ordering::SeqCst), 1, "tasks ran at once");
    let order: Vec<f64> = (6..12).chain(0..6).map(|t| t as f64).collect();
    assert_eq!(store.f64_rows("timings/task"), order);
}

#[test]
fn paused_tasks_resume_from_their_snapshots_round_after_round() {
    let job = TestJob::new(5, 3);
    let (store, result) = run(&job, 2);
    let stats = result.unwrap();
    // Three runs of each task (two pauses, one end), two rounds decided.
    assert_eq!(stats.tasks, 15);
    assert_eq!(job.rounds_decided.load(Ordering::SeqCst), 2);
    let values = store.f64_rows("values");
    for row in 0..15 {
        for round in 0..3 {
            assert_eq!(values[row * 3 + round], row as f64 + 100.0 * round as f64);
        }
    }
    assert_eq!(store.f64_rows("timings/task").len(), 15);
}

#[test]
fn a_failing_task_ends_the_run_with_its_message() {
    let mut job = TestJob::new(8, 2);
    job.fail = Some(6);
    let (_, result) = run(&job, 2);
    let message = result.unwrap_err();
    assert!(
        message.contains("task 6") && message.contains("broke"),
        "{message}"
    );
    assert!(message.starts_with("rank 0, task 6:"), "{message}");
}

#[test]
fn a_panicking_task_is_a_failure_not_a_hang() {
    let mut job = TestJob::new(4, 1);
    job.panic = Some(1);
    let (_, result) = run(&job, 2);
    let message = result.unwrap_err();
    assert!(
        message.contains("panicked") && message.contains("a bug in task 1"),
        "{message}"
    );
}
