//! Queue mode: rank 0 hands a stage's tasks out from its queue, longest
//! first, as the ranks' slots free up; each rank runs them on its pool.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use super::tasks::{channel, drain, wait_for};
use super::tasks::{Given, Local, Runners, Shared};
use super::worker::{forward, Next};
use super::{Root, Setup, HEARTBEAT};

use crate::exec::checkpoint::Checkpoint;
use crate::exec::failure::Cause;
use crate::exec::transport::Backoff;
use crate::exec::wire::{Event, Finished, Message};
use crate::jobs::{Decision, Plan, PlanRun, TaskId};

/// The tasks of a round not yet handed out: the tasks to go on from a
/// snapshot (paused in the previous round, or at a checkpoint) in task
/// order, then the plan's runs, longest first, less the tasks a checkpoint
/// accounted for.
pub(super) struct Queue {
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
    pub(super) fn new(stage: u32, plan: Plan) -> Self {
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
    pub(super) fn restored(stage: u32, plan: Plan, cp: &Checkpoint) -> Self {
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

    pub(super) fn resume(&mut self, paused: Vec<(TaskId, Vec<u8>)>) {
        self.requeue(paused.into_iter().map(|(t, s)| (t, Some(s))).collect());
    }

    /// Puts tasks back at the front, in task order (`None`: from its start).
    pub(super) fn requeue(&mut self, mut tasks: Vec<(TaskId, Option<Vec<u8>>)>) {
        tasks.sort_by_key(|p| p.0);
        tasks.extend(self.resumes.drain(..));
        self.resumes = tasks.into();
    }

    pub(super) fn pop(&mut self) -> Option<(TaskId, Option<Vec<u8>>)> {
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

    pub(super) fn len(&self) -> u64 {
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
    pub(super) fn ready(&self) -> impl Iterator<Item = (u64, &Vec<u8>)> {
        self.resumes
            .iter()
            .filter_map(|(t, s)| s.as_ref().map(|s| (t.index, s)))
    }

    pub(super) fn clear(&mut self) {
        self.resumes.clear();
        self.run = self.runs.len();
        self.skip_ahead = 0;
    }
}

impl Root<'_> {
    /// Hands out tasks while rank `r` has free slots (plus one ahead for a
    /// worker while the queue is longer than the number of ranks).
    pub(super) fn fill_worker(&mut self, r: usize, queue: &mut Queue) {
        while let Some((task, resume)) = self.next_for(r, queue) {
            self.setup
                .transport
                .send(r, &Message::Assign { task, resume });
        }
    }

    /// The next task for rank `r`, booked as outstanding there, while it has
    /// a free thread, or one task ahead of its threads while the queue is
    /// longer than the number of ranks (so that a thread whose task ends
    /// starts the next at once; near the end no rank holds a task another
    /// could start).
    fn next_for(&mut self, r: usize, queue: &mut Queue) -> Option<Given> {
        let ahead = usize::from(queue.len() > self.size() as u64);
        if self.failure.is_some()
            || self.pausing.is_some()
            || self.outstanding[r] >= self.setup.capacity[r] + ahead
        {
            return None;
        }
        let given = queue.pop()?;
        self.outstanding[r] += 1;
        self.unfinished += 1;
        Some(given)
    }

    /// Books the tasks this rank was given but has not started as handed
    /// back (a pause or a failure came first).
    fn take_back(&mut self, runners: &Runners<'_>, shared: &Shared) {
        for (task, resume) in runners.withdraw() {
            self.finished(0, Finished::returned(task, resume), shared);
        }
    }

    /// Runs one stage in queue mode, round after round.
    pub(super) fn queue_stage(&mut self, stage: u32, mut queue: Queue, shared: &Shared) {
        let job = self.setup.job;
        let (tx, rx) = channel(self.setup.capacity[0]);
        let runners = Runners::new(job, shared, tx, self.setup.started, self.setup.capacity[0]);
        rayon::in_place_scope(|scope| {
            let mut idle = Backoff::default();
            loop {
                while let Some(given) = self.next_for(0, &mut queue) {
                    runners.give(scope, given);
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
                if self.failure.is_some() || self.pausing.is_some() {
                    self.take_back(&runners, shared);
                }
                // After a failure the workers stop on their own (they were
                // told); only this rank's tasks must end before `finish`.
                if self.failure.is_some() && self.outstanding[0] == 0 {
                    break;
                }
                self.give_up_if_stuck();
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
                                self.keep_final(task, snapshot, shared);
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
            // After a failure: let this rank's own tasks see the cancel and
            // end; one stuck in an evaluation never does.
            self.take_back(&runners, shared);
            while self.outstanding[0] > 0 {
                match rx.recv_timeout(HEARTBEAT) {
                    Ok(Local::Finished(f)) => self.finished(0, f, shared),
                    Ok(Local::Records(_)) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => self.give_up_if_stuck(),
                }
            }
        });
    }
}

pub(super) fn worker_queue_stage(setup: &Setup<'_>) -> Next {
    let (job, t) = (setup.job, setup.transport);
    let capacity = setup.capacity[t.rank()];
    let shared = Shared::default();
    let (tx, rx) = channel(capacity);
    let runners = Runners::new(job, &shared, tx, setup.started, capacity);
    // Tasks given to this rank's threads and not yet ended.
    let mut running = 0usize;
    let mut sent = 0u64;
    let mut stop: Option<u8> = None;
    let mut next = None;
    let mut interrupted = false;
    let mut stuck = false;
    let mut last_sent = Instant::now();
    crate::exec::watchdog::watch_root(true);
    rayon::in_place_scope(|scope| {
        let mut idle = Backoff::default();
        loop {
            let mut progressed = false;
            if stop.is_none() && next.is_none() {
                while let Some(msg) = t.try_recv_from_root(None) {
                    progressed = true;
                    crate::exec::watchdog::heard_root();
                    match msg {
                        Ok(Message::Assign { task, resume }) => {
                            runners.give(scope, (task, resume));
                            running += 1;
                        }
                        Ok(Message::Pause { on }) => shared.pause.store(on, Ordering::Relaxed),
                        Ok(Message::Stage { stage, carry }) => next = Some((stage, carry)),
                        Ok(Message::Stop { code }) => {
                            // Rank 0 says nothing more: its silence is no news.
                            crate::exec::watchdog::watch_root(false);
                            stop = Some(code);
                        }
                        Ok(Message::Alive) => {}
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
                running -= runners.withdraw().len();
            }
            let mut events = Vec::new();
            if shared.pause.load(Ordering::Relaxed) {
                // A checkpoint: tasks not started go back as they came.
                for (task, resume) in runners.withdraw() {
                    running -= 1;
                    events.push(Event::Finished(Finished::returned(task, resume)));
                }
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
            if !stuck {
                if let Some(what) = crate::model::eval_watch::overdue() {
                    // Rank 0 fails the job with it; this rank's stuck
                    // thread cannot end, so rank 0 ends the job after its
                    // grace.
                    events.push(Event::Failed(format!("rank {}: {what}", t.rank())));
                    stuck = true;
                }
            }
            if !interrupted {
                if let Some(sig) = crate::exec::signals::received() {
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
    crate::exec::watchdog::watch_root(false);
    match (stop, next) {
        (Some(code), _) => Next::Stop(code),
        (None, Some((stage, carry))) => Next::Stage(stage, carry),
        (None, None) => unreachable!("the loop ends on STOP or STAGE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn the_queue_hands_out_the_costliest_runs_first_then_resumes_in_task_order() {
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
