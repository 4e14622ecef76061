//! A rank's own threads: tasks given to the pool's threads, each thread
//! taking the next one itself (their records and ends sent to the main
//! thread), or a task run on the main thread inside a collective, its
//! outcome told as an [`End`].

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::exec::transport::Backoff;
use crate::exec::wire::{End, Finished};
use crate::jobs::{Collective, Job, Outcome, TaskContext, TaskError, TaskId};
use crate::output::Record;

/// Counters shared with the tasks of this rank.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) progress: AtomicU64,
    pub(super) cancel: AtomicBool,
    /// Tasks pause at their next step (a checkpoint is being taken).
    pub(super) pause: AtomicBool,
}

/// What a task on the pool tells the main thread.
pub(super) enum Local {
    Records(Vec<Record>),
    Finished(Finished),
}

/// A task handed to a rank, with the snapshot it goes on from (`None`: from
/// its start).
pub(super) type Given = (TaskId, Option<Vec<u8>>);

/// The tasks a rank has been given and its pool threads that run them: at
/// most `capacity` threads, each taking the next waiting task itself as its
/// current one ends, so that a task given ahead starts without waiting for
/// the main thread. A waiting task is no rayon job: a pool thread waiting in
/// a join inside a multi-threaded task cannot pick it up and run it nested.
/// Each task's records and end go to the main thread on `tx`.
pub(super) struct Runners<'s> {
    job: &'s dyn Job,
    shared: &'s Shared,
    tx: SyncSender<Local>,
    started: Instant,
    capacity: usize,
    state: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    tasks: VecDeque<Given>,
    /// Pool threads running tasks from `tasks`.
    running: usize,
}

impl<'s> Runners<'s> {
    pub(super) fn new(
        job: &'s dyn Job,
        shared: &'s Shared,
        tx: SyncSender<Local>,
        started: Instant,
        capacity: usize,
    ) -> Self {
        Self {
            job,
            shared,
            tx,
            started,
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    /// Gives `task` to this rank: a free pool thread starts it, or the
    /// first to end its current task.
    pub(super) fn give(&'s self, scope: &rayon::Scope<'s>, task: Given) {
        let start_thread = {
            let mut w = self.lock();
            w.tasks.push_back(task);
            let free = w.running < self.capacity;
            w.running += usize::from(free);
            free
        };
        if start_thread {
            scope.spawn(move |_| self.run_waiting());
        }
    }

    /// Takes back the tasks not started (a pause or a stop), in the order
    /// they were given.
    pub(super) fn withdraw(&self) -> Vec<Given> {
        self.lock().tasks.drain(..).collect()
    }

    /// A pool thread's work: the waiting tasks, one after another.
    fn run_waiting(&self) {
        loop {
            let next = {
                let mut w = self.lock();
                let next = w.tasks.pop_front();
                // Counted off under the lock that `give` counts on.
                w.running -= usize::from(next.is_none());
                next
            };
            let Some((task, resume)) = next else {
                return;
            };
            let records = self.tx.clone();
            let mut emit = move |r: Vec<Record>| {
                records
                    .send(Local::Records(r))
                    .map_err(|_| TaskError::Cancelled)
            };
            let cx = TaskContext::new(&mut emit, &self.shared.progress, &self.shared.cancel)
                .pausable(&self.shared.pause);
            let finished = run(self.job, task, resume.as_deref(), cx, true, self.started);
            // The receiver outlives every task.
            let _ = self.tx.send(Local::Finished(finished));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A task's panic is caught inside `run`, never under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs a shared `task` on this thread as a member of its group's
/// `collective`, its records handed to `emit`. Shared tasks have no rounds:
/// they yield, never pause.
pub(super) fn run_shared(
    job: &dyn Job,
    task: TaskId,
    resume: Option<&[u8]>,
    collective: &mut dyn Collective,
    emit: &mut dyn FnMut(Vec<Record>) -> Result<(), TaskError>,
    shared: &Shared,
    started: Instant,
) -> Finished {
    let cx = TaskContext::new(emit, &shared.progress, &shared.cancel).shared(collective);
    run(job, task, resume, cx, false, started)
}

/// Runs `task` in its context and says how it ended, when, and what it
/// evaluated. A panic in the job is caught and reported as a failure, so
/// that a bug cannot leave the executor waiting forever.
fn run(
    job: &dyn Job,
    task: TaskId,
    resume: Option<&[u8]>,
    mut cx: TaskContext<'_>,
    can_pause: bool,
    started: Instant,
) -> Finished {
    let start = started.elapsed().as_secs_f64();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| job.run(task, resume, &mut cx)));
    Finished {
        task,
        end: end_of(result, can_pause),
        start,
        finish: started.elapsed().as_secs_f64(),
        evaluations: cx.evaluations,
        nan_evaluations: cx.nan_evaluations,
    }
}

/// How a task ended, from what `Job::run` returned or the panic it raised.
/// Shared tasks have no rounds (`Outcome::Paused`); they yield like any.
pub(super) fn end_of(
    result: std::thread::Result<Result<Outcome, TaskError>>,
    can_pause: bool,
) -> End {
    match result {
        Ok(Ok(Outcome::Done)) => End::Done,
        Ok(Ok(Outcome::Final(s))) => End::Final(s),
        Ok(Ok(Outcome::Yielded(s))) => End::Yielded(s),
        Ok(Ok(Outcome::Paused(s))) if can_pause => End::Paused(s),
        Ok(Ok(Outcome::Paused(_))) => End::Failed(TaskError::Failed(
            "a shared task cannot pause for a round (not supported)".into(),
        )),
        Ok(Err(TaskError::Cancelled)) => End::Cancelled,
        Ok(Err(e)) => End::Failed(e),
        Err(panic) => End::Failed(TaskError::Failed(format!(
            "task panicked: {}",
            panic_message(&panic)
        ))),
    }
}

pub(super) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

pub(super) fn channel(capacity: usize) -> (SyncSender<Local>, Receiver<Local>) {
    // Bounded, so that a slow disk holds the tasks back instead of letting
    // records pile up in memory.
    mpsc::sync_channel(4 + 2 * capacity)
}

/// No wait after progress; otherwise the idle backoff.
pub(super) fn wait_for(progressed: bool, idle: &Backoff) -> Duration {
    if progressed {
        Duration::ZERO
    } else {
        idle.current()
    }
}

/// Hands the tasks' events to `take`: waits up to `wait` for the first,
/// then takes what is queued until `take` says enough. True if any came.
pub(super) fn drain(
    rx: &Receiver<Local>,
    wait: Duration,
    mut take: impl FnMut(Local) -> bool,
) -> bool {
    let mut first = rx.recv_timeout(wait).ok();
    let mut any = false;
    while let Some(event) = first.take().or_else(|| rx.try_recv().ok()) {
        any = true;
        if !take(event) {
            break;
        }
    }
    any
}
