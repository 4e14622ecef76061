//! How ranks talk: a [`Transport`] moves [`Message`]s between rank 0 and
//! the workers and makes the [`Collective`] of a group of ranks. One
//! process is a transport of one rank; MPI is the other implementation.

use std::cell::Cell;
use std::time::{Duration, Instant};

use mpi::datatype::PartitionMut;
use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

use super::wire::{tag, Message};
use crate::jobs::{Collective, Vote};

pub trait Transport {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    fn send(&self, to: usize, msg: &Message);
    /// A message from any rank, if one is waiting.
    fn try_recv(&self) -> Option<(usize, Result<Message, String>)>;
    /// A message from rank 0 with tag `only` (any tag if `None`), if one is waiting.
    fn try_recv_from_root(&self, only: Option<i32>) -> Option<Result<Message, String>>;
    /// True when a message from rank 0 with tag `tag` is waiting (it stays there).
    fn peek_from_root(&self, tag: i32) -> bool;
    /// The collective of the ranks with colour `group` (called by every rank
    /// with its own group). `between` is asked at every vote of the group's
    /// leader: what rank 0 wants of the group (go on, pause, stop).
    fn collective<'a>(
        &'a self,
        group: usize,
        between: &'a dyn Fn() -> Vote,
    ) -> Box<dyn Collective + 'a>;
}

/// One process: nothing to send, nobody to share a task with.
pub struct Alone;

impl Transport for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn send(&self, to: usize, _: &Message) {
        unreachable!("a single process has no rank {to} to send to")
    }
    fn try_recv(&self) -> Option<(usize, Result<Message, String>)> {
        None
    }
    fn try_recv_from_root(&self, _: Option<i32>) -> Option<Result<Message, String>> {
        None
    }
    fn peek_from_root(&self, _: i32) -> bool {
        false
    }
    fn collective<'a>(&'a self, _: usize, _: &'a dyn Fn() -> Vote) -> Box<dyn Collective + 'a> {
        unreachable!("a single process never shares a task")
    }
}

/// The MPI world: point-to-point messages as tagged byte buffers.
pub struct MpiTransport<'w> {
    pub world: &'w SimpleCommunicator,
}

impl Transport for MpiTransport<'_> {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn send(&self, to: usize, msg: &Message) {
        self.world
            .process_at_rank(to as i32)
            .send_with_tag(&msg.encode()[..], msg.tag());
    }
    fn try_recv(&self) -> Option<(usize, Result<Message, String>)> {
        let status = self.world.any_process().immediate_probe()?;
        let (src, t) = (status.source_rank(), status.tag());
        let (bytes, _) = self
            .world
            .process_at_rank(src)
            .receive_vec_with_tag::<u8>(t);
        Some((src as usize, Message::decode(&bytes)))
    }
    fn try_recv_from_root(&self, only: Option<i32>) -> Option<Result<Message, String>> {
        let root = self.world.process_at_rank(0);
        let status = match only {
            Some(t) => root.immediate_probe_with_tag(t),
            None => root.immediate_probe(),
        }?;
        let (bytes, _) = root.receive_vec_with_tag::<u8>(status.tag());
        Some(Message::decode(&bytes))
    }
    fn peek_from_root(&self, tag: i32) -> bool {
        self.world
            .process_at_rank(0)
            .immediate_probe_with_tag(tag)
            .is_some()
    }
    fn collective<'a>(
        &'a self,
        group: usize,
        between: &'a dyn Fn() -> Vote,
    ) -> Box<dyn Collective + 'a> {
        let comm = {
            super::watchdog::label("forming the groups of ranks");
            let _in = super::watchdog::enter();
            self.world
                .split_by_color(Color::with_value(group as i32))
                .expect("every rank has a colour")
        };
        super::watchdog::label(format!(
            "a collective step of the {} ranks sharing task group {group}",
            comm.size()
        ));
        Box::new(MpiCollective {
            comm,
            between,
            paused: false,
        })
    }
}

/// The ranks of one group, over their own communicator. Only the main
/// thread calls it (Funneled).
struct MpiCollective<'a> {
    comm: SimpleCommunicator,
    between: &'a dyn Fn() -> Vote,
    /// A vote came out `Pause`.
    paused: bool,
}

impl MpiCollective<'_> {
    fn displacements(counts: &[usize]) -> (Vec<Count>, Vec<Count>) {
        let counts: Vec<Count> = counts.iter().map(|&c| c as Count).collect();
        let displs = counts
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        (counts, displs)
    }
}

impl Collective for MpiCollective<'_> {
    fn member(&self) -> usize {
        self.comm.rank() as usize
    }
    fn members(&self) -> usize {
        self.comm.size() as usize
    }
    fn gather_f64(&mut self, mine: &[f64], all: &mut [f64], counts: &[usize]) {
        let _in = super::watchdog::enter();
        let (counts, displs) = Self::displacements(counts);
        let mut partition = PartitionMut::new(all, counts, &displs[..]);
        self.comm.all_gather_varcount_into(mine, &mut partition);
    }
    fn gather_u64(&mut self, mine: &[u64], all: &mut [u64], counts: &[usize]) {
        let _in = super::watchdog::enter();
        let (counts, displs) = Self::displacements(counts);
        let mut partition = PartitionMut::new(all, counts, &displs[..]);
        self.comm.all_gather_varcount_into(mine, &mut partition);
    }
    fn agree(&mut self, vote: Vote) -> Vote {
        let mut mine = vote;
        // A signal to this rank pauses the group (a checkpoint); the rank
        // reports it to rank 0 once the task has paused.
        if super::signals::received().is_some() {
            mine = mine.max(Vote::Pause);
        }
        if self.member() == 0 {
            mine = mine.max((self.between)());
        }
        let mut all = vec![0u64; self.members()];
        {
            let _in = super::watchdog::enter();
            self.comm.all_gather_into(&(mine as u64), &mut all[..]);
        }
        let agreed = match all.into_iter().max().unwrap_or(0) {
            0 => Vote::Continue,
            1 => Vote::Pause,
            2 => Vote::Stop,
            _ => Vote::Failed,
        };
        self.paused |= agreed == Vote::Pause;
        agreed
    }
    fn paused(&self) -> bool {
        self.paused
    }
    fn sum_u64(&mut self, values: &mut [u64]) {
        let _in = super::watchdog::enter();
        let mine = values.to_vec();
        self.comm
            .all_reduce_into(&mine[..], values, mpi::collective::SystemOperation::sum());
    }
}

/// Sleeps growing from 20 µs to 320 µs while nothing happens, so that an
/// idle main thread neither burns a core nor answers slowly.
#[derive(Default)]
pub(crate) struct Backoff(pub(crate) u32);

impl Backoff {
    pub(crate) fn reset(&mut self) {
        self.0 = 0;
    }
    pub(crate) fn current(&self) -> Duration {
        Duration::from_micros(20u64 << self.0.min(4))
    }
    pub(crate) fn wait(&mut self) {
        std::thread::sleep(self.current());
        self.0 += 1;
    }
}

/// Something to do at most every `every`: a cheap guard for polls made from
/// inside hot loops.
pub(crate) struct Every {
    last: Cell<Instant>,
    every: Duration,
}

impl Every {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            last: Cell::new(Instant::now()),
            every,
        }
    }
    pub(crate) fn due(&self) -> bool {
        if self.last.get().elapsed() >= self.every {
            self.last.set(Instant::now());
            true
        } else {
            false
        }
    }
}

/// The tag that, alone, a worker looks for while it runs a shared task.
pub(crate) const STOP_TAG: i32 = tag::STOP;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_third_of_a_millisecond() {
        let mut b = Backoff::default();
        assert_eq!(b.current(), Duration::from_micros(20));
        b.0 = 10;
        assert_eq!(b.current(), Duration::from_micros(320));
        b.reset();
        assert_eq!(b.current(), Duration::from_micros(20));
    }
}
