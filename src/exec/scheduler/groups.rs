//! Group mode: fewer tasks than ranks, each task run by a group of ranks
//! together through a collective, rank 0 leading group 0's.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::queue::Queue;
use super::tasks::run_shared;
use super::tasks::Shared;
use super::worker::{forward, wait_for_root, Next};
use super::{plan_order, Root, Setup, STOP_GRACE};

use crate::exec::checkpoint::{Checkpoint, Pausing};
use crate::exec::transport::{Backoff, Every, STOP_TAG};
use crate::exec::wire::{tag, End, Event, Message};
use crate::jobs::{Plan, TaskId, Vote};
use crate::output::Record;

impl Root<'_> {
    /// Runs one stage in group mode: group g runs the plan's g-th task, rank
    /// 0 leading group 0's on its main thread and serving the other groups
    /// between collective steps. Each round every rank is told its group's
    /// task (or none); a checkpoint pauses every task, and those not done
    /// run again from their snapshots in the next round.
    pub(super) fn group_stage(
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
    pub(super) fn lead_group_task(
        &mut self,
        task: TaskId,
        resume: Option<Vec<u8>>,
        shared: &Shared,
    ) {
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
        let finished = run_shared(
            job,
            task,
            resume.as_deref(),
            collective.as_mut(),
            &mut emit,
            shared,
            started,
        );
        drop(collective);
        let cancelled = finished.end == End::Cancelled;
        let me = root.into_inner();
        me.finished(0, finished, shared);
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
}

pub(super) fn worker_group_stage(setup: &Setup<'_>, groups: &[Range<usize>]) -> Next {
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
        let leader = collective.member() == 0;
        let finished = {
            let sent = &mut sent;
            let mut emit = |records: Vec<Record>| {
                let events = records.into_iter().map(Event::Record).collect();
                forward(t, &shared, sent, events);
                Ok(())
            };
            let (resume, collective) = (resume.as_deref(), collective.as_mut());
            run_shared(
                job,
                task,
                resume,
                collective,
                &mut emit,
                &shared,
                setup.started,
            )
        };
        drop(collective);
        // A signal to this rank paused its group (see `agree`): say so.
        let mut events: Vec<Event> = crate::exec::signals::received()
            .map(Event::Interrupted)
            .into_iter()
            .collect();
        // The leader reports the task; a member reports only its own failure.
        if leader || matches!(finished.end, End::Failed(_)) {
            events.push(Event::Finished(finished));
        }
        if !events.is_empty() {
            forward(t, &shared, &mut sent, events);
        }
    }
}
