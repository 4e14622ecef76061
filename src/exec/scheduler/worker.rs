//! A worker rank (rank > 0): runs what rank 0 hands it.

use std::sync::atomic::Ordering;

use super::groups::worker_group_stage;
use super::queue::worker_queue_stage;
use super::tasks::Shared;
use super::{mode, Mode, Setup};

use crate::exec::transport::{Backoff, Transport};
use crate::exec::wire::{Event, Message};
use crate::jobs::TaskId;

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
pub(super) enum Next {
    Stage(u32, Vec<u8>),
    Stop(u8),
    /// Group mode: this round's task of the rank's group, if any.
    Run(Option<TaskId>, Option<Vec<u8>>),
}

/// Sends everything a worker's tasks produced since the last call.
pub(super) fn forward(t: &dyn Transport, shared: &Shared, sent: &mut u64, events: Vec<Event>) {
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
/// Waits for rank 0's next STAGE, STOP or group task, polling with short sleeps rather
/// than blocking in MPI_Recv (which OpenMPI busy-waits in).
pub(super) fn wait_for_root(t: &dyn Transport) -> Next {
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
