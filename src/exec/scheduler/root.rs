//! Rank 0: the stages of a job, the store, checkpoints and pauses, and
//! what the workers report.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::queue::Queue;
use super::tasks::Shared;
use super::{
    mode, timing_record, ExecSets, Mode, Monitor, Root, RunEnd, RunStats, Setup, FLUSH_EVERY,
    HEARTBEAT, STOP_GRACE, TIMING_INTS,
};

use crate::exec::checkpoint::{Checkpoint, Pausing, RangeSet};
use crate::exec::failure::{Cause, Failure};
use crate::exec::transport::Backoff;
use crate::exec::wire::{End, Event, Finished, Message};
use crate::jobs::TaskId;
use crate::output::{Column, Record, Store};

/// Rank 0: runs every stage of the job across all ranks, writing to `store`,
/// from the start or from a checkpoint.
pub fn run_root(
    setup: &Setup<'_>,
    store: &mut dyn Store,
    sets: ExecSets,
    monitor: &mut dyn Monitor,
    restore: Option<&Checkpoint>,
) -> Result<RunEnd, Failure> {
    let size = setup.transport.size();
    let shared = Shared::default();
    let mut root = Root {
        setup,
        store,
        sets,
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
        last_alive: Instant::now(),
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
        final_rows: restore.map_or(0, |cp| cp.final_rows),
        final_bytes: restore.map_or(0, |cp| cp.final_bytes),
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
        // A complete run ends with a checkpoint, which counts its tasks'
        // last states in the output: a run asking for more steps goes on
        // from them (`Job::extend`).
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

impl<'a> Root<'a> {
    pub(super) fn size(&self) -> usize {
        self.setup.transport.size()
    }

    pub(super) fn fail(&mut self, cause: Cause, message: String, shared: &Shared) {
        if self.failure.is_none() {
            // Said once, at the end, by the caller (`debug` shows when).
            tracing::debug!("failing: {message}");
            self.failure = Some((cause, message));
            self.failed_at = Some(Instant::now());
            // A run started on this output meanwhile waits for this one.
            crate::output::mark_ending();
            shared.cancel.store(true, Ordering::Relaxed);
            self.stop_all(1);
        }
    }

    /// A task of this rank has not ended within `STOP_GRACE` of the job's
    /// failure (stuck in an evaluation that does not return, so its thread
    /// can never be joined): records the failure in the file with every row
    /// received, says it, and ends the process (under MPI the launcher then
    /// ends the job).
    pub(super) fn give_up_if_stuck(&mut self) {
        if self.outstanding[0] > 0 && self.failed_at.is_some_and(|at| at.elapsed() > STOP_GRACE) {
            self.give_up();
        }
    }

    fn give_up(&mut self) -> ! {
        let why = self
            .failure
            .as_ref()
            .map_or_else(|| "a task did not end".to_string(), |f| f.1.clone());
        self.store.mark_failed(&why);
        let _ = writeln!(
            std::io::stderr().lock(),
            "error: {why}\nerror: a task of rank 0 did not end within {} s of the failure (an \
             evaluation that does not return); ending the process. {} keeps every row \
             received; `sampo run --resume` goes on from its last checkpoint",
            STOP_GRACE.as_secs(),
            self.store.partial().display()
        );
        crate::model::exit_hook::disarm();
        std::process::exit(1)
    }

    pub(super) fn stop_all(&mut self, code: u8) {
        self.tell_workers(&Message::Stop { code });
        self.told_stop.fill(true);
    }

    pub(super) fn write(&mut self, record: Record, shared: &Shared) {
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
    pub(super) fn finished(&mut self, rank: usize, f: Finished, shared: &Shared) {
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
                self.keep_final(f.task, snapshot, shared);
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
        let t = self.sets.timings;
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

    /// Writes the last state of a task of the last stage to the output (a
    /// run asking for more steps goes on from them; see [`FinalSets`]).
    pub(super) fn keep_final(&mut self, task: TaskId, snapshot: Vec<u8>, shared: &Shared) {
        if task.stage + 1 != self.setup.job.stages() {
            return;
        }
        let len = snapshot.len() as u64;
        let records =
            self.sets
                .finals
                .records(task.index, snapshot, self.final_rows, self.final_bytes);
        self.final_rows += 1;
        self.final_bytes += len;
        for r in records {
            self.write(r, shared);
        }
    }

    /// The executor's state as a checkpoint records it.
    pub(super) fn checkpoint_record(
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
            final_rows: self.final_rows,
            final_bytes: self.final_bytes,
            timing_rows: self.timing_rows,
            units_done: self.units_done(shared),
            spec: self.spec.clone(),
        }
    }

    pub(super) fn handle(&mut self, src: usize, msg: Result<Message, String>, shared: &Shared) {
        match msg {
            Ok(Message::Events { progress, events }) => {
                self.remote_progress += progress;
                for e in events {
                    match e {
                        Event::Record(r) => self.write(r, shared),
                        Event::Finished(f) => self.finished(src, f, shared),
                        Event::Failed(why) => self.fail(Cause::Evaluation, why, shared),
                        Event::Interrupted(sig) => self.pause(
                            Pausing::Stop(format!(
                                "{} (on rank {src})",
                                crate::exec::signals::paused_by(sig)
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
    pub(super) fn poll(&mut self, shared: &Shared) -> bool {
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
    pub(super) fn tell_workers(&self, msg: &Message) {
        for r in (1..self.size()).filter(|&r| !self.told_stop[r]) {
            self.setup.transport.send(r, msg);
        }
    }

    /// Asks every task to pause at its next step, for a checkpoint.
    pub(super) fn pause(&mut self, why: Pausing, shared: &Shared) {
        if self.failure.is_some() {
            return;
        }
        match (&self.pausing, &why) {
            (None, _) => {
                if let Pausing::Stop(why) = &why {
                    crate::output::mark_ending();
                    // Recorded in the file before it is said: a launcher's
                    // SIGTERM after a rank's death is followed by SIGKILL,
                    // and a run killed before its checkpoint must not read
                    // `running` while its log says it paused.
                    let status = format!(
                        "pausing: {why} (a checkpoint was being written; if this status stays, \
                         the run was killed before it: `--resume` goes on from the last one)"
                    );
                    let recorded = self
                        .store
                        .set_attr("/", "status", crate::output::Attr::Str(status))
                        .and_then(|()| self.store.flush());
                    if let Err(e) = recorded {
                        tracing::warn!("cannot record the pause in the output: {e}");
                    }
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
    pub(super) fn maybe_pause(&mut self, shared: &Shared) {
        if crate::exec::signals::hurried() {
            self.fail(
                Cause::Other,
                crate::exec::signals::stopped_at_once(),
                shared,
            );
            return;
        }
        if let Some(sig) = crate::exec::signals::received() {
            self.pause(Pausing::Stop(crate::exec::signals::paused_by(sig)), shared);
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
    pub(super) fn checkpoint(&mut self, stage: u32, queue: &mut Queue, shared: &Shared) {
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

    pub(super) fn units_done(&self, shared: &Shared) -> u64 {
        self.base_progress + shared.progress.load(Ordering::Relaxed) + self.remote_progress
    }

    pub(super) fn maybe_flush(&mut self, shared: &Shared) {
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
        if self.failure.is_none() {
            if let Some(what) = crate::model::eval_watch::overdue() {
                self.fail(Cause::Evaluation, format!("rank 0: {what}"), shared);
            }
        }
        if self.groups.is_empty() && self.last_alive.elapsed() >= HEARTBEAT {
            // The workers of a queue stage watch rank 0 as it watches them.
            self.last_alive = Instant::now();
            for r in 1..self.size() {
                if !self.told_stop[r] && !self.said_bye[r] {
                    self.setup.transport.send(r, &Message::Alive);
                }
            }
        }
        if self.failure.is_none() && self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush(shared);
        }
    }

    pub(super) fn flush(&mut self, shared: &Shared) {
        self.last_flush = Instant::now();
        if let Err(e) = self.store.flush() {
            self.fail(
                Cause::of_store(&e),
                format!("writing the output failed: {e}"),
                shared,
            );
        }
    }

    pub(super) fn tick(&mut self, shared: &Shared) {
        let done = self.units_done(shared);
        self.monitor.tick(done, self.base_progress);
    }

    pub(super) fn all_gone(&self) -> bool {
        self.said_bye.iter().skip(1).all(|&b| b)
    }

    /// Tells everyone to stop and waits for their BYE (after a failure, at
    /// most `STOP_GRACE`). Returns the ranks that never answered.
    pub(super) fn finish(&mut self, shared: &Shared) -> Vec<usize> {
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
