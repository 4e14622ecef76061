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

use std::collections::VecDeque;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use super::checkpoint::{Checkpoint, CheckpointPolicy, Pausing, RangeSet, FINALS_MAX_BYTES};
use super::failure::{Cause, Failure};
use super::transport::{Backoff, Every, Transport, STOP_TAG};
use super::wire::{tag, End, Event, Finished, Message};
use crate::jobs::{Decision, Job, Outcome, Plan, PlanRun, TaskContext, TaskError, TaskId, Vote};
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

/// The executor's own datasets: `/timings`, a row per task run.
#[derive(Debug, Clone, Copy)]
pub struct TimingSets {
    first: usize,
}

const TIMING_INTS: [&str; 5] = ["stage", "task", "rank", "evaluations", "nan_evaluations"];
const TIMING_FLOATS: [&str; 2] = ["start", "end"];

/// The job's layout plus `/timings`.
pub fn layout(job: &dyn Job) -> (Layout, TimingSets) {
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
                .with_chunk_rows(4096),
        );
    }
    for name in TIMING_FLOATS {
        layout.add(
            DatasetDecl::growing(format!("timings/{name}"), Dtype::F64, vec![])
                .with_chunk_rows(4096),
        );
    }
    (layout, TimingSets { first })
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

/// Counters shared with the tasks of this rank.
#[derive(Default)]
struct Shared {
    progress: AtomicU64,
    cancel: AtomicBool,
    /// Tasks pause at their next step (a checkpoint is being taken).
    pause: AtomicBool,
}

/// What a task on the pool tells the main thread.
enum Local {
    Records(Vec<Record>),
    Finished(Finished),
}

/// Starts `task` on the pool; its records and its end come back on `tx`.
/// A panic in the job is caught and reported as a failure, so that a bug
/// cannot leave the executor waiting forever.
fn spawn<'s>(
    scope: &rayon::Scope<'s>,
    job: &'s dyn Job,
    task: TaskId,
    resume: Option<Vec<u8>>,
    shared: &'s Shared,
    tx: SyncSender<Local>,
    started: Instant,
) {
    scope.spawn(move |_| {
        let start = started.elapsed().as_secs_f64();
        let records = tx.clone();
        let mut emit = move |r: Vec<Record>| {
            records
                .send(Local::Records(r))
                .map_err(|_| TaskError::Cancelled)
        };
        let mut cx =
            TaskContext::new(&mut emit, &shared.progress, &shared.cancel).pausable(&shared.pause);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            job.run(task, resume.as_deref(), &mut cx)
        }));
        let (evaluations, nan_evaluations) = (cx.evaluations, cx.nan_evaluations);
        let end = end_of(result, true);
        // The receiver outlives every task.
        let _ = tx.send(Local::Finished(Finished {
            task,
            end,
            start,
            finish: started.elapsed().as_secs_f64(),
            evaluations,
            nan_evaluations,
        }));
    });
}

/// How a task ended, from what `Job::run` returned or the panic it raised.
/// Shared tasks have no rounds (`Outcome::Paused`); they yield like any.
fn end_of(result: std::thread::Result<Result<Outcome, TaskError>>, can_pause: bool) -> End {
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

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn channel(capacity: usize) -> (SyncSender<Local>, Receiver<Local>) {
    // Bounded, so that a slow disk holds the tasks back instead of letting
    // records pile up in memory.
    mpsc::sync_channel(4 + 2 * capacity)
}

/// The tasks of a round not yet handed out: the tasks to go on from a
/// snapshot (paused in the previous round, or at a checkpoint) in task
/// order, then the plan's runs, longest first, less the tasks a checkpoint
/// accounted for.
struct Queue {
    runs: Vec<PlanRun>,
    run: usize,
    next: u64,
    resumes: VecDeque<(TaskId, Option<Vec<u8>>)>,
    stage: u32,
    /// Indices of the plan not to hand out (sorted, disjoint), and how many
    /// of them are still ahead.
    skip: Vec<Range<u64>>,
    skip_ahead: u64,
}

impl Queue {
    fn new(stage: u32, plan: Plan) -> Self {
        let mut runs = plan.runs;
        runs.retain(|r| !r.tasks.is_empty());
        // Stable: equal costs keep the plan's order.
        runs.sort_by(|a, b| b.cost.total_cmp(&a.cost));
        let next = runs.first().map_or(0, |r| r.tasks.start);
        Self {
            runs,
            run: 0,
            next,
            resumes: VecDeque::new(),
            stage,
            skip: Vec::new(),
            skip_ahead: 0,
        }
    }

    /// The queue of a stage resumed from a checkpoint: its ready tasks
    /// first; the plan less every task the checkpoint accounts for.
    fn restored(stage: u32, plan: Plan, cp: &Checkpoint) -> Self {
        let mut q = Self::new(stage, plan);
        q.skip = cp.accounted();
        q.skip_ahead = q
            .runs
            .iter()
            .flat_map(|run| {
                q.skip.iter().map(move |s| {
                    s.end
                        .min(run.tasks.end)
                        .saturating_sub(s.start.max(run.tasks.start))
                })
            })
            .sum();
        let task = |index| TaskId { stage, index };
        q.requeue(
            cp.ready
                .iter()
                .map(|(i, snap)| (task(*i), Some(snap.clone())))
                .collect(),
        );
        q
    }

    fn resume(&mut self, paused: Vec<(TaskId, Vec<u8>)>) {
        self.requeue(paused.into_iter().map(|(t, s)| (t, Some(s))).collect());
    }

    /// Puts tasks back at the front, in task order (`None`: from its start).
    fn requeue(&mut self, mut tasks: Vec<(TaskId, Option<Vec<u8>>)>) {
        tasks.sort_by_key(|p| p.0);
        tasks.extend(self.resumes.drain(..));
        self.resumes = tasks.into();
    }

    fn pop(&mut self) -> Option<(TaskId, Option<Vec<u8>>)> {
        if let Some((task, snapshot)) = self.resumes.pop_front() {
            return Some((task, snapshot));
        }
        while let Some(run) = self.runs.get(self.run) {
            if self.next < run.tasks.end {
                // Past the indices a checkpoint accounted for.
                let k = self.skip.partition_point(|s| s.end <= self.next);
                if let Some(s) = self.skip.get(k).filter(|s| s.start <= self.next) {
                    let to = s.end.min(run.tasks.end);
                    self.skip_ahead -= to - self.next;
                    self.next = to;
                    continue;
                }
                self.next += 1;
                let task = TaskId {
                    stage: self.stage,
                    index: self.next - 1,
                };
                return Some((task, None));
            }
            self.run += 1;
            self.next = self.runs.get(self.run).map_or(0, |r| r.tasks.start);
        }
        None
    }

    fn len(&self) -> u64 {
        let rest: u64 = self
            .runs
            .iter()
            .skip(self.run + 1)
            .map(|r| r.tasks.end - r.tasks.start)
            .sum();
        let current = self
            .runs
            .get(self.run)
            .map_or(0, |r| r.tasks.end - self.next);
        self.resumes.len() as u64 + current + rest - self.skip_ahead
    }

    /// The tasks waiting to go on from a snapshot (for a checkpoint).
    fn ready(&self) -> impl Iterator<Item = (u64, &Vec<u8>)> {
        self.resumes
            .iter()
            .filter_map(|(t, s)| s.as_ref().map(|s| (t.index, s)))
    }

    fn clear(&mut self) {
        self.resumes.clear();
        self.run = self.runs.len();
        self.skip_ahead = 0;
    }
}

/// Rank 0.
struct Root<'a> {
    setup: &'a Setup<'a>,
    store: &'a mut dyn Store,
    timings: TimingSets,
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
    /// The last states of the stage's tasks done, while they are few
    /// enough to keep (see [`Root::keep_final`]).
    finals: Vec<(u64, Vec<u8>)>,
    finals_bytes: usize,
    finals_kept: bool,
    /// `Checkpoint::spec`, kept from the checkpoint the run resumed from.
    spec: String,
}

impl<'a> Root<'a> {
    fn size(&self) -> usize {
        self.setup.transport.size()
    }

    fn fail(&mut self, cause: Cause, message: String, shared: &Shared) {
        if self.failure.is_none() {
            // Said once, at the end, by the caller (`debug` shows when).
            tracing::debug!("failing: {message}");
            self.failure = Some((cause, message));
            self.failed_at = Some(Instant::now());
            shared.cancel.store(true, Ordering::Relaxed);
            self.stop_all(1);
        }
    }

    fn stop_all(&mut self, code: u8) {
        self.tell_workers(&Message::Stop { code });
        self.told_stop.fill(true);
    }

    fn write(&mut self, record: Record, shared: &Shared) {
        if self.failure.is_some() {
            return;
        }
        if let Err(e) = self.store.write(record) {
            self.fail(
                Cause::of_store(&e),
                format!("writing the output failed: {e}"),
                shared,
            );
        }
    }

    /// Books a task's end, from `rank`.
    fn finished(&mut self, rank: usize, f: Finished, shared: &Shared) {
        self.outstanding[rank] = self.outstanding[rank].saturating_sub(1);
        self.unfinished = self.unfinished.saturating_sub(1);
        match f.end {
            End::Failed(error) => {
                self.fail(
                    Cause::of_task(&error),
                    format!("rank {rank}, task {}: {error}", f.task.index),
                    shared,
                );
                return;
            }
            End::Cancelled => return,
            End::Returned(resume) => {
                // Handed back before it started: nothing ran.
                self.yielded.push((f.task, resume));
                return;
            }
            End::Yielded(snapshot) => self.yielded.push((f.task, Some(snapshot))),
            End::Paused(snapshot) => self.paused.push((f.task, snapshot)),
            End::Done => self.done.insert(f.task.index),
            End::Final(snapshot) => {
                self.done.insert(f.task.index);
                self.keep_final(f.task.index, snapshot);
            }
        }
        self.stats.tasks += 1;
        self.stats.evaluations += f.evaluations;
        self.stats.nan_evaluations += f.nan_evaluations;
        // A shared task keeps busy the members of its group it can use.
        let members = match self.groups.iter().find(|g| g.start == rank) {
            Some(g) => g
                .clone()
                .take(self.setup.job.useful_members(f.task))
                .collect(),
            None => vec![rank],
        };
        for r in members {
            if let Some(b) = self.stats.busy.get_mut(r) {
                *b += f.finish - f.start;
            }
        }
        let row = self.timing_rows;
        self.timing_rows += 1;
        let t = self.timings.first;
        let ints = [
            f.task.stage as i64,
            f.task.index as i64,
            rank as i64,
            f.evaluations as i64,
            f.nan_evaluations as i64,
        ];
        for (k, v) in ints.into_iter().enumerate() {
            self.write(timing_record(t + k, row, Column::I64(vec![v])), shared);
        }
        for (k, v) in [f.start, f.finish].into_iter().enumerate() {
            let dataset = t + TIMING_INTS.len() + k;
            self.write(timing_record(dataset, row, Column::F64(vec![v])), shared);
        }
    }

    /// Keeps a task's last state for the checkpoints (a run asking for more
    /// steps goes on from them), until they would take more than
    /// [`FINALS_MAX_BYTES`]: then none is kept, and the run cannot be
    /// extended (rather than checkpoints that grow without bound).
    fn keep_final(&mut self, task: u64, snapshot: Vec<u8>) {
        if !self.finals_kept {
            return;
        }
        self.finals_bytes += snapshot.len();
        if self.finals_bytes > FINALS_MAX_BYTES {
            tracing::info!(
                "the tasks' last states take more than {} MiB: they are not kept, and this run \
                 cannot be extended with more steps",
                FINALS_MAX_BYTES >> 20
            );
            self.finals_kept = false;
            self.finals = Vec::new();
        } else {
            self.finals.push((task, snapshot));
        }
    }

    /// The executor's state as a checkpoint records it.
    fn checkpoint_record(
        &self,
        stage: u32,
        ready: Vec<(u64, Vec<u8>)>,
        shared: &Shared,
    ) -> Checkpoint {
        Checkpoint {
            stage,
            carry: self.carry.clone(),
            done: self.done.ranges(),
            ready,
            waiting: self
                .paused
                .iter()
                .map(|(t, s)| (t.index, s.clone()))
                .collect(),
            finals: self.finals.clone(),
            timing_rows: self.timing_rows,
            units_done: self.units_done(shared),
            spec: self.spec.clone(),
        }
    }

    fn handle(&mut self, src: usize, msg: Result<Message, String>, shared: &Shared) {
        match msg {
            Ok(Message::Events { progress, events }) => {
                self.remote_progress += progress;
                for e in events {
                    match e {
                        Event::Record(r) => self.write(r, shared),
                        Event::Finished(f) => self.finished(src, f, shared),
                        Event::Interrupted(sig) => self.pause(
                            Pausing::Stop(format!(
                                "{} (on rank {src})",
                                super::signals::paused_by(sig)
                            )),
                            shared,
                        ),
                    }
                }
            }
            Ok(Message::Bye) => self.said_bye[src] = true,
            Ok(other) => self.fail(
                Cause::Other,
                format!("unexpected message from rank {src}: {other:?}"),
                shared,
            ),
            Err(e) => self.fail(Cause::Other, format!("from rank {src}: {e}"), shared),
        }
    }

    /// Handles every message waiting; true if there was any.
    fn poll(&mut self, shared: &Shared) -> bool {
        // Silence while rank 0 was not listening (writing, deciding a
        // round) is not the workers' fault.
        if self.last_poll.elapsed() > 2 * HEARTBEAT {
            self.last_heard.fill(Instant::now());
        }
        self.last_poll = Instant::now();
        let mut any = false;
        while let Some((src, msg)) = self.setup.transport.try_recv() {
            any = true;
            if let Some(at) = self.last_heard.get_mut(src) {
                *at = Instant::now();
            }
            self.handle(src, msg, shared);
        }
        any
    }

    /// Sends `msg` to every worker not yet told to stop.
    fn tell_workers(&self, msg: &Message) {
        for r in (1..self.size()).filter(|&r| !self.told_stop[r]) {
            self.setup.transport.send(r, msg);
        }
    }

    /// Asks every task to pause at its next step, for a checkpoint.
    fn pause(&mut self, why: Pausing, shared: &Shared) {
        if self.failure.is_some() {
            return;
        }
        match (&self.pausing, &why) {
            (None, _) => {
                if let Pausing::Stop(why) = &why {
                    // Said at once: a step may take a while.
                    tracing::warn!(
                        "{why}: finishing the current step, then writing a checkpoint (a second \
                         Ctrl-C stops at once, without one)"
                    );
                }
                shared.pause.store(true, Ordering::Relaxed);
                self.tell_workers(&Message::Pause { on: true });
                self.pausing = Some(why);
            }
            // A stop asked during a periodic checkpoint ends the run after it.
            (Some(Pausing::Checkpoint), Pausing::Stop(_)) => self.pausing = Some(why),
            _ => {}
        }
    }

    /// Pauses the run when it is due: a signal, the wall time, a periodic
    /// checkpoint.
    fn maybe_pause(&mut self, shared: &Shared) {
        if super::signals::hurried() {
            self.fail(Cause::Other, super::signals::stopped_at_once(), shared);
            return;
        }
        if let Some(sig) = super::signals::received() {
            self.pause(Pausing::Stop(super::signals::paused_by(sig)), shared);
        }
        let policy = self.setup.checkpoints;
        if policy.deadline.is_some_and(|d| Instant::now() >= d) {
            self.pause(
                Pausing::Stop("paused before the wall-time limit".into()),
                shared,
            );
        }
        if policy
            .every
            .is_some_and(|every| self.last_checkpoint.elapsed() >= every)
        {
            self.pause(Pausing::Checkpoint, shared);
        }
    }

    /// Once every task has ended after a pause: flushes the rows, writes the
    /// checkpoint, and either ends the run (paused) or lets it go on. The
    /// tasks that paused go back to the queue's front.
    fn checkpoint(&mut self, stage: u32, queue: &mut Queue, shared: &Shared) {
        let Some(why) = self.pausing.take() else {
            return;
        };
        queue.requeue(std::mem::take(&mut self.yielded));
        if self.failure.is_some() {
            return;
        }
        let ready = queue.ready().map(|(t, s)| (t, s.clone())).collect();
        let cp = self.checkpoint_record(stage, ready, shared);
        let started = Instant::now();
        // Rows first, then the record that says where they end.
        let written = self
            .store
            .flush()
            .and_then(|()| self.store.checkpoint(&cp.encode()));
        if let Err(e) = written {
            self.fail(
                Cause::of_store(&e),
                format!("writing a checkpoint failed: {e}"),
                shared,
            );
            return;
        }
        tracing::debug!(
            "checkpoint written in {:.3} s ({} done, {} ready, {} waiting)",
            started.elapsed().as_secs_f64(),
            cp.done.len(),
            cp.ready.len(),
            cp.waiting.len()
        );
        self.last_checkpoint = Instant::now();
        self.last_flush = Instant::now();
        match why {
            Pausing::Stop(why) => self.paused_for = Some(why),
            Pausing::Checkpoint => {
                shared.pause.store(false, Ordering::Relaxed);
                // Workers of a queue stage hold the pause until told; a
                // group's ranks learn it per task, from their leader.
                if self.groups.is_empty() {
                    self.tell_workers(&Message::Pause { on: false });
                }
            }
        }
    }

    fn units_done(&self, shared: &Shared) -> u64 {
        self.base_progress + shared.progress.load(Ordering::Relaxed) + self.remote_progress
    }

    fn maybe_flush(&mut self, shared: &Shared) {
        if self.failure.is_none() {
            self.maybe_pause(shared);
        }
        // Workers of a queue stage answer at least every HEARTBEAT; one that
        // falls silent is gone. (A group's ranks are inside their shared
        // task, rank 0 with them, and cannot be watched this way.)
        if self.failure.is_none() && self.groups.is_empty() {
            let timeout = self.setup.rank_timeout;
            if let Some(r) = (1..self.size())
                .find(|&r| !self.said_bye[r] && self.last_heard[r].elapsed() > timeout)
            {
                self.fail(
                    Cause::Unresponsive,
                    format!(
                        "rank {r} has not answered for {} s (stopped, hung, or its node is \
                         gone); [parallel] timeout sets this limit",
                        timeout.as_secs_f64()
                    ),
                    shared,
                );
            }
        }
        if self.failure.is_none() && self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush(shared);
        }
    }

    fn flush(&mut self, shared: &Shared) {
        self.last_flush = Instant::now();
        if let Err(e) = self.store.flush() {
            self.fail(
                Cause::of_store(&e),
                format!("writing the output failed: {e}"),
                shared,
            );
        }
    }

    fn tick(&mut self, shared: &Shared) {
        let done = self.units_done(shared);
        self.monitor.tick(done);
    }

    /// Hands out tasks while rank `r` has free slots (plus one ahead for a
    /// worker while the queue is longer than the number of ranks).
    fn fill_worker(&mut self, r: usize, queue: &mut Queue) {
        loop {
            let ahead = usize::from(queue.len() > self.size() as u64);
            if self.failure.is_some()
                || self.pausing.is_some()
                || self.outstanding[r] >= self.setup.capacity[r] + ahead
            {
                return;
            }
            let Some((task, resume)) = queue.pop() else {
                return;
            };
            self.setup
                .transport
                .send(r, &Message::Assign { task, resume });
            self.outstanding[r] += 1;
            self.unfinished += 1;
        }
    }

    /// Runs one stage in queue mode, round after round.
    fn queue_stage(&mut self, stage: u32, mut queue: Queue, shared: &Shared) {
        let job = self.setup.job;
        let (tx, rx) = channel(self.setup.capacity[0]);
        let started = self.setup.started;
        rayon::in_place_scope(|scope| {
            let mut idle = Backoff::default();
            loop {
                while self.failure.is_none()
                    && self.pausing.is_none()
                    && self.outstanding[0] < self.setup.capacity[0]
                {
                    let Some((task, resume)) = queue.pop() else {
                        break;
                    };
                    spawn(scope, job, task, resume, shared, tx.clone(), started);
                    self.outstanding[0] += 1;
                    self.unfinished += 1;
                }
                for r in 1..self.size() {
                    self.fill_worker(r, &mut queue);
                }
                let mut progressed = self.poll(shared);
                // Local events; wait a little for one when nothing else happened.
                progressed |= drain(&rx, wait_for(progressed, &idle), |event| {
                    match event {
                        Local::Records(records) => {
                            for r in records {
                                self.write(r, shared);
                            }
                        }
                        Local::Finished(f) => self.finished(0, f, shared),
                    }
                    true
                });
                if self.failure.is_some() {
                    queue.clear();
                }
                self.maybe_flush(shared);
                self.tick(shared);
                // After a failure the workers stop on their own (they were
                // told); only this rank's tasks must end before `finish`.
                if self.failure.is_some() && self.outstanding[0] == 0 {
                    break;
                }
                if self.pausing.is_some() && self.unfinished == 0 {
                    self.checkpoint(stage, &mut queue, shared);
                    if self.paused_for.is_some() {
                        break;
                    }
                    progressed = true;
                }
                if self.unfinished == 0 && queue.len() == 0 {
                    if self.failure.is_some() || self.paused.is_empty() {
                        break;
                    }
                    // A round is over: every task paused or done.
                    self.flush(shared);
                    let decision = job.round(stage, &mut *self.store);
                    match decision {
                        Ok(Decision::Continue) => queue.resume(std::mem::take(&mut self.paused)),
                        Ok(Decision::Finish) => {
                            // Their snapshots are their last states.
                            for (task, snapshot) in std::mem::take(&mut self.paused) {
                                self.done.insert(task.index);
                                self.keep_final(task.index, snapshot);
                            }
                            break;
                        }
                        Err(e) => {
                            self.fail(
                                Cause::of_job(&e),
                                format!("deciding the next round: {e}"),
                                shared,
                            );
                            break;
                        }
                    }
                    progressed = true;
                }
                if progressed {
                    idle.reset();
                } else {
                    idle.0 += 1;
                }
            }
            // After a failure: let this rank's own tasks see the cancel and end.
            while self.outstanding[0] > 0 {
                match rx.recv() {
                    Ok(Local::Finished(f)) => self.finished(0, f, shared),
                    Ok(Local::Records(_)) => {}
                    Err(_) => break,
                }
            }
        });
    }

    /// Runs one stage in group mode: group g runs the plan's g-th task, rank
    /// 0 leading group 0's on its main thread and serving the other groups
    /// between collective steps. Each round every rank is told its group's
    /// task (or none); a checkpoint pauses every task, and those not done
    /// run again from their snapshots in the next round.
    fn group_stage(
        &mut self,
        stage: u32,
        groups: &[Range<usize>],
        restore: Option<&Checkpoint>,
        shared: &Shared,
    ) {
        let job = self.setup.job;
        self.groups = groups.to_vec();
        let tasks = plan_order(job, stage);
        // What each group runs next: its task and snapshot, or nothing (done).
        let mut next: Vec<Option<(TaskId, Option<Vec<u8>>)>> = tasks
            .iter()
            .map(|&task| match restore {
                None => Some((task, None)),
                Some(cp) if cp.done.iter().any(|r| r.contains(&task.index)) => None,
                Some(cp) => Some((
                    task,
                    cp.ready
                        .iter()
                        .find(|(i, _)| *i == task.index)
                        .map(|(_, s)| s.clone()),
                )),
            })
            .collect();
        while next.iter().any(Option::is_some) {
            for (g, range) in groups.iter().enumerate() {
                let (task, resume) = match &next[g] {
                    Some((t, r)) => (Some(*t), r.clone()),
                    None => (None, None),
                };
                for r in range.clone().filter(|&r| r != 0) {
                    let msg = Message::Group {
                        task,
                        resume: resume.clone(),
                    };
                    self.setup.transport.send(r, &msg);
                }
                if g > 0 && task.is_some() {
                    self.outstanding[range.start] += 1;
                    self.unfinished += 1;
                }
            }
            match next[0].take() {
                Some((task, resume)) => {
                    self.unfinished += 1;
                    self.outstanding[0] += 1;
                    self.lead_group_task(task, resume, shared);
                }
                // Rank 0's group has nothing left: it joins the split only.
                None => drop(self.setup.transport.collective(0, &|| Vote::Continue)),
            }
            next.iter_mut().for_each(|n| *n = None);
            let mut idle = Backoff::default();
            while self.unfinished > 0 && self.failure.is_none() {
                if self.poll(shared) {
                    idle.reset();
                } else {
                    idle.wait();
                }
                self.maybe_flush(shared);
                self.tick(shared);
            }
            if self.failure.is_some() || self.yielded.is_empty() {
                break;
            }
            if self.pausing.is_none() {
                // A signal to a rank of a group paused it (`agree`); its
                // report is on the way.
                let since = Instant::now();
                while self.pausing.is_none() && since.elapsed() < STOP_GRACE {
                    if !self.poll(shared) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    self.maybe_pause(shared);
                }
                if self.pausing.is_none() {
                    self.pause(Pausing::Stop("paused by a signal".into()), shared);
                }
            }
            let mut resumes = Queue::new(stage, Plan { runs: Vec::new() });
            self.checkpoint(stage, &mut resumes, shared);
            if self.failure.is_some() || self.paused_for.is_some() {
                break;
            }
            while let Some((task, resume)) = resumes.pop() {
                if let Some(g) = tasks.iter().position(|t| *t == task) {
                    next[g] = Some((task, resume));
                }
            }
        }
        // The workers' group loop ends on the next STAGE or STOP.
    }

    /// Runs group 0's task on rank 0's main thread (rank 0 leads it),
    /// serving the other ranks between collective steps.
    fn lead_group_task(&mut self, task: TaskId, resume: Option<Vec<u8>>, shared: &Shared) {
        let job = self.setup.job;
        let started = self.setup.started;
        let root = std::cell::RefCell::new(&mut *self);
        let every = Every::new(Duration::from_millis(2));
        let between = || {
            if every.due() {
                root.borrow_mut().poll(shared);
                let mut r = root.borrow_mut();
                r.maybe_flush(shared);
                r.tick(shared);
            }
            let r = root.borrow();
            if r.failure.is_some() {
                Vote::Stop
            } else if r.pausing.is_some() {
                Vote::Pause
            } else {
                Vote::Continue
            }
        };
        let transport = root.borrow().setup.transport;
        let mut collective = transport.collective(0, &between);
        let mut emit = |records: Vec<Record>| {
            let mut root = root.borrow_mut();
            for r in records {
                root.write(r, shared);
            }
            Ok(())
        };
        let start = started.elapsed().as_secs_f64();
        let mut cx = TaskContext::new(&mut emit, &shared.progress, &shared.cancel)
            .shared(collective.as_mut());
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            job.run(task, resume.as_deref(), &mut cx)
        }));
        let (evaluations, nan_evaluations) = (cx.evaluations, cx.nan_evaluations);
        drop(collective);
        let end = end_of(result, false);
        let cancelled = end == End::Cancelled;
        let me = root.into_inner();
        me.finished(
            0,
            Finished {
                task,
                end,
                start,
                finish: started.elapsed().as_secs_f64(),
                evaluations,
                nan_evaluations,
            },
            shared,
        );
        if cancelled {
            // A member of this group failed (or rank 0 stopped the job): wait
            // for its report, so that the others are told the job failed.
            let since = Instant::now();
            let mut idle = Backoff::default();
            while me.failure.is_none() && since.elapsed() < STOP_GRACE {
                if !me.poll(shared) {
                    idle.wait();
                }
                // Or this rank's own signal.
                me.maybe_flush(shared);
            }
        }
    }

    fn all_gone(&self) -> bool {
        self.said_bye.iter().skip(1).all(|&b| b)
    }

    /// Tells everyone to stop and waits for their BYE (after a failure, at
    /// most `STOP_GRACE`). Returns the ranks that never answered.
    fn finish(&mut self, shared: &Shared) -> Vec<usize> {
        let code = u8::from(self.failure.is_some());
        self.stop_all(code);
        let mut idle = Backoff::default();
        while !self.all_gone() {
            if self.failed_at.is_some_and(|at| at.elapsed() > STOP_GRACE) {
                break;
            }
            if self.poll(shared) {
                idle.reset();
            } else {
                idle.wait();
            }
        }
        (1..self.size()).filter(|&r| !self.said_bye[r]).collect()
    }
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

/// Rank 0: runs every stage of the job across all ranks, writing to `store`,
/// from the start or from a checkpoint.
pub fn run_root(
    setup: &Setup<'_>,
    store: &mut dyn Store,
    timings: TimingSets,
    monitor: &mut dyn Monitor,
    restore: Option<&Checkpoint>,
) -> Result<RunEnd, Failure> {
    let size = setup.transport.size();
    let shared = Shared::default();
    let mut root = Root {
        setup,
        store,
        timings,
        monitor,
        outstanding: vec![0; size],
        unfinished: 0,
        paused: Vec::new(),
        failure: None,
        failed_at: None,
        told_stop: vec![false; size],
        said_bye: vec![false; size],
        last_heard: vec![Instant::now(); size],
        last_poll: Instant::now(),
        remote_progress: 0,
        timing_rows: restore.map_or(0, |cp| cp.timing_rows),
        stats: RunStats {
            busy: vec![0.0; size],
            ..RunStats::default()
        },
        last_flush: Instant::now(),
        groups: Vec::new(),
        pausing: None,
        yielded: Vec::new(),
        done: RangeSet::default(),
        carry: restore.map_or_else(Vec::new, |cp| cp.carry.clone()),
        last_checkpoint: Instant::now(),
        base_progress: restore.map_or(0, |cp| cp.units_done),
        paused_for: None,
        finals: restore.map_or_else(Vec::new, |cp| cp.finals.clone()),
        finals_bytes: restore.map_or(0, |cp| cp.finals.iter().map(|(_, s)| s.len()).sum()),
        finals_kept: true,
        spec: restore.map_or_else(String::new, |cp| cp.spec.clone()),
    };
    let job = setup.job;
    let first = restore.map_or(0, |cp| cp.stage);
    if first > 0 {
        if let Err(e) = job.begin_stage(first, &root.carry) {
            root.fail(
                Cause::of_job(&e),
                format!("starting stage {first}: {e}"),
                &shared,
            );
        }
    }
    for stage in first..job.stages() {
        if root.failure.is_some() {
            break;
        }
        let restore = restore.filter(|cp| cp.stage == stage);
        if stage > first {
            let carry = match job.finish_stage(stage - 1, &mut *root.store) {
                Ok(c) => c,
                Err(e) => {
                    root.fail(
                        Cause::of_job(&e),
                        format!("finishing stage {}: {e}", stage - 1),
                        &shared,
                    );
                    break;
                }
            };
            for r in 1..size {
                let msg = Message::Stage {
                    stage,
                    carry: carry.clone(),
                };
                setup.transport.send(r, &msg);
            }
            if let Err(e) = job.begin_stage(stage, &carry) {
                root.fail(
                    Cause::of_job(&e),
                    format!("starting stage {stage}: {e}"),
                    &shared,
                );
                break;
            }
            root.carry = carry;
            tracing::info!("stage {stage}: {} task(s)", job.plan(stage).tasks());
        }
        root.done.clear();
        root.groups.clear();
        if restore.is_none() {
            // A stage's final states are kept for the last stage only.
            root.finals.clear();
            root.finals_bytes = 0;
        }
        let plan = job.plan(stage);
        match mode(plan.tasks(), size, job.shareable(stage)) {
            Mode::Queue => {
                let queue = match restore {
                    Some(cp) => {
                        for r in &cp.done {
                            root.done.insert_range(r.clone());
                        }
                        let task = |index| TaskId { stage, index };
                        root.paused = cp
                            .waiting
                            .iter()
                            .map(|(i, s)| (task(*i), s.clone()))
                            .collect();
                        Queue::restored(stage, plan, cp)
                    }
                    None => Queue::new(stage, plan),
                };
                root.queue_stage(stage, queue, &shared)
            }
            Mode::Groups(groups) => {
                if let Some(cp) = restore {
                    for r in &cp.done {
                        root.done.insert_range(r.clone());
                    }
                }
                root.group_stage(stage, &groups, restore, &shared)
            }
        }
        if root.failure.is_some() || root.paused_for.is_some() {
            break;
        }
        root.flush(&shared);
    }
    if root.failure.is_none() && root.paused_for.is_none() {
        if let Err(e) = job.finish_stage(job.stages() - 1, &mut *root.store) {
            root.fail(
                Cause::of_job(&e),
                format!("finishing the last stage: {e}"),
                &shared,
            );
        }
    }
    if root.failure.is_none() && root.paused_for.is_none() {
        // A complete run's checkpoint holds its tasks' last states: a run
        // asking for more steps goes on from them (`Job::extend`).
        let cp = root.checkpoint_record(job.stages() - 1, Vec::new(), &shared);
        let written = root
            .store
            .flush()
            .and_then(|()| root.store.checkpoint(&cp.encode()));
        if let Err(e) = written {
            root.fail(
                Cause::of_store(&e),
                format!("writing the final checkpoint failed: {e}"),
                &shared,
            );
        }
    }
    let unresponsive = root.finish(&shared);
    match (root.failure.take(), root.paused_for.take()) {
        (Some((cause, message)), _) => Err(Failure {
            cause,
            message,
            unresponsive,
        }),
        (None, Some(why)) => Ok(RunEnd::Paused {
            why,
            stats: std::mem::take(&mut root.stats),
        }),
        (None, None) => Ok(RunEnd::Complete(std::mem::take(&mut root.stats))),
    }
}

/// A worker rank (rank > 0): runs what rank 0 hands it, stage after stage,
/// and returns the exit code rank 0 sent with STOP (0, or 1 on failure).
/// `start` is the stage (and its carry) a resumed run begins with.
pub fn run_worker(setup: &Setup<'_>, start: (u32, Vec<u8>)) -> u8 {
    let job = setup.job;
    let t = setup.transport;
    let mut stage = start.0;
    if stage > 0 {
        if let Err(e) = job.begin_stage(stage, &start.1) {
            tracing::error!("rank {}: starting stage {stage}: {e}", t.rank());
        }
    }
    loop {
        let plan = job.plan(stage);
        let next = match mode(plan.tasks(), t.size(), job.shareable(stage)) {
            Mode::Queue => worker_queue_stage(setup),
            Mode::Groups(groups) => worker_group_stage(setup, &groups),
        };
        match next {
            Next::Stage(s, carry) => {
                if let Err(e) = job.begin_stage(s, &carry) {
                    // Rank 0 hears of it through its own begin_stage, which
                    // runs the same code on the same carry.
                    tracing::error!("rank {}: starting stage {s}: {e}", t.rank());
                }
                stage = s;
            }
            Next::Stop(code) => {
                t.send(0, &Message::Bye);
                return code;
            }
            Next::Run(..) => unreachable!("group tasks are run inside the group stage"),
        }
    }
}

/// What a worker does after a stage (or, in group mode, next).
enum Next {
    Stage(u32, Vec<u8>),
    Stop(u8),
    /// Group mode: this round's task of the rank's group, if any.
    Run(Option<TaskId>, Option<Vec<u8>>),
}

/// Sends everything a worker's tasks produced since the last call.
fn forward(t: &dyn Transport, shared: &Shared, sent: &mut u64, events: Vec<Event>) {
    let done = shared.progress.load(Ordering::Relaxed);
    if events.is_empty() && done == *sent {
        return;
    }
    let msg = Message::Events {
        progress: done - *sent,
        events,
    };
    *sent = done;
    t.send(0, &msg);
}

fn worker_queue_stage(setup: &Setup<'_>) -> Next {
    let (job, t) = (setup.job, setup.transport);
    let capacity = setup.capacity[t.rank()];
    let shared = Shared::default();
    let (tx, rx) = channel(capacity);
    let mut assigned: VecDeque<(TaskId, Option<Vec<u8>>)> = VecDeque::new();
    let mut running = 0usize;
    let mut sent = 0u64;
    let mut stop: Option<u8> = None;
    let mut next = None;
    let mut interrupted = false;
    let mut last_sent = Instant::now();
    rayon::in_place_scope(|scope| {
        let mut idle = Backoff::default();
        loop {
            let mut progressed = false;
            if stop.is_none() && next.is_none() {
                while let Some(msg) = t.try_recv_from_root(None) {
                    progressed = true;
                    match msg {
                        Ok(Message::Assign { task, resume }) => assigned.push_back((task, resume)),
                        Ok(Message::Pause { on }) => shared.pause.store(on, Ordering::Relaxed),
                        Ok(Message::Stage { stage, carry }) => next = Some((stage, carry)),
                        Ok(Message::Stop { code }) => stop = Some(code),
                        Ok(other) => tracing::error!("rank {}: unexpected {other:?}", t.rank()),
                        Err(e) => tracing::error!("rank {}: {e}", t.rank()),
                    }
                    if stop.is_some() || next.is_some() {
                        break;
                    }
                }
            }
            if stop.is_some() {
                shared.cancel.store(true, Ordering::Relaxed);
                assigned.clear();
            }
            let mut events = Vec::new();
            if shared.pause.load(Ordering::Relaxed) {
                // A checkpoint: tasks not started go back as they came.
                for (task, resume) in assigned.drain(..) {
                    events.push(Event::Finished(Finished {
                        task,
                        end: End::Returned(resume),
                        start: 0.0,
                        finish: 0.0,
                        evaluations: 0,
                        nan_evaluations: 0,
                    }));
                }
            }
            while running < capacity {
                let Some((task, resume)) = assigned.pop_front() else {
                    break;
                };
                spawn(scope, job, task, resume, &shared, tx.clone(), setup.started);
                running += 1;
                progressed = true;
            }
            let mut bytes = 0usize;
            // At most about 4 MiB of rows per message.
            progressed |= drain(&rx, wait_for(progressed, &idle), |event| {
                match event {
                    Local::Records(records) => {
                        for r in records {
                            bytes += 8 * r.values.len();
                            events.push(Event::Record(r));
                        }
                    }
                    Local::Finished(f) => {
                        running -= 1;
                        events.push(Event::Finished(f));
                    }
                }
                bytes <= 1 << 22
            });
            if !interrupted {
                if let Some(sig) = super::signals::received() {
                    // Rank 0 stops the job; the tasks here go on until it does.
                    events.push(Event::Interrupted(sig));
                    interrupted = true;
                }
            }
            if stop.is_none() {
                if events.is_empty() && last_sent.elapsed() >= HEARTBEAT {
                    // Nothing to say, but alive.
                    t.send(
                        0,
                        &Message::Events {
                            progress: 0,
                            events: Vec::new(),
                        },
                    );
                    last_sent = Instant::now();
                } else if !events.is_empty() {
                    last_sent = Instant::now();
                }
                forward(t, &shared, &mut sent, events);
            }
            if running == 0 && (stop.is_some() || next.is_some()) {
                break;
            }
            if progressed {
                idle.reset();
            } else {
                idle.0 += 1;
            }
        }
    });
    match (stop, next) {
        (Some(code), _) => Next::Stop(code),
        (None, Some((stage, carry))) => Next::Stage(stage, carry),
        (None, None) => unreachable!("the loop ends on STOP or STAGE"),
    }
}

fn worker_group_stage(setup: &Setup<'_>, groups: &[Range<usize>]) -> Next {
    let (job, t) = (setup.job, setup.transport);
    let rank = t.rank();
    let g = groups
        .iter()
        .position(|r| r.contains(&rank))
        .expect("every rank is in a group");
    loop {
        let (task, resume) = match wait_for_root(t) {
            Next::Run(task, resume) => (task, resume),
            other => return other,
        };
        let shared = Shared::default();
        // Between collective steps the leader looks (at most every 20 ms)
        // for rank 0's STOP or PAUSE; they are left in the queue for
        // `wait_for_root` to take.
        let every = Every::new(Duration::from_millis(20));
        let seen = std::cell::Cell::new(Vote::Continue);
        let between = || {
            if seen.get() != Vote::Stop && every.due() {
                if t.peek_from_root(STOP_TAG) {
                    seen.set(Vote::Stop);
                } else if t.peek_from_root(tag::PAUSE) {
                    seen.set(Vote::Pause);
                }
            }
            seen.get()
        };
        let mut collective = t.collective(g, &between);
        let Some(task) = task else {
            // Nothing for this group this round: the split only.
            continue;
        };
        let mut sent = 0u64;
        let start = setup.started.elapsed().as_secs_f64();
        let leader = collective.member() == 0;
        let (result, evaluations, nan_evaluations) = {
            let shared_ref = &shared;
            let sent_ref = &mut sent;
            let mut emit = |records: Vec<Record>| {
                forward(
                    t,
                    shared_ref,
                    sent_ref,
                    records.into_iter().map(Event::Record).collect(),
                );
                Ok(())
            };
            let mut cx = TaskContext::new(&mut emit, &shared.progress, &shared.cancel)
                .shared(collective.as_mut());
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                job.run(task, resume.as_deref(), &mut cx)
            }));
            (result, cx.evaluations, cx.nan_evaluations)
        };
        drop(collective);
        let end = end_of(result, false);
        // A signal to this rank paused its group (see `agree`): say so.
        let mut events: Vec<Event> = super::signals::received()
            .map(Event::Interrupted)
            .into_iter()
            .collect();
        // The leader reports the task; a member reports only its own failure.
        if leader || matches!(end, End::Failed(_)) {
            let f = Finished {
                task,
                end,
                start,
                finish: setup.started.elapsed().as_secs_f64(),
                evaluations,
                nan_evaluations,
            };
            events.push(Event::Finished(f));
        }
        if !events.is_empty() {
            forward(t, &shared, &mut sent, events);
        }
    }
}

/// Waits for rank 0's next STAGE, STOP or group task, polling with short sleeps rather
/// than blocking in MPI_Recv (which OpenMPI busy-waits in).
fn wait_for_root(t: &dyn Transport) -> Next {
    let mut idle = Backoff::default();
    loop {
        match t.try_recv_from_root(None) {
            Some(Ok(Message::Stop { code })) => return Next::Stop(code),
            Some(Ok(Message::Stage { stage, carry })) => return Next::Stage(stage, carry),
            Some(Ok(Message::Group { task, resume })) => return Next::Run(task, resume),
            Some(_) => idle.reset(),
            None => idle.wait(),
        }
    }
}

/// No wait after progress; otherwise the idle backoff.
fn wait_for(progressed: bool, idle: &Backoff) -> Duration {
    if progressed {
        Duration::ZERO
    } else {
        idle.current()
    }
}

/// Hands the tasks' events to `take`: waits up to `wait` for the first,
/// then takes what is queued until `take` says enough. True if any came.
fn drain(rx: &Receiver<Local>, wait: Duration, mut take: impl FnMut(Local) -> bool) -> bool {
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

    #[test]
    fn the_queue_hands_out_the_costliest_runs_first_then_resumes_in_task_order() {
        let plan = Plan {
            runs: vec![
                PlanRun {
                    tasks: 0..2,
                    cost: 1.0,
                },
                PlanRun {
                    tasks: 2..3,
                    cost: 5.0,
                },
                PlanRun {
                    tasks: 3..3,
                    cost: 9.0,
                },
                PlanRun {
                    tasks: 3..5,
                    cost: 1.0,
                },
            ],
        };
        let mut q = Queue::new(0, plan);
        assert_eq!(q.len(), 5);
        let order: Vec<u64> = std::iter::from_fn(|| q.pop())
            .map(|(t, _)| t.index)
            .collect();
        assert_eq!(order, vec![2, 0, 1, 3, 4]);
        assert_eq!(q.len(), 0);
        let id = |index| TaskId { stage: 0, index };
        q.resume(vec![(id(4), vec![4]), (id(1), vec![1])]);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some((id(1), Some(vec![1]))));
        assert_eq!(q.pop(), Some((id(4), Some(vec![4]))));
        assert_eq!(q.pop(), None);
    }
}
