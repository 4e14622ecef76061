//! The MPI executor: master–worker over ranks, two-level parallelism.
//!
//! Rank 0 holds the output and a queue of tasks (longest first). When there
//! are at least as many tasks as ranks, every rank takes one task at a time
//! from the queue (workers ask with REQUEST; rank 0 runs tasks on its own
//! pool too, while its main thread dispatches and writes). When there are
//! fewer tasks than ranks, the ranks are split into one group per task and
//! the walkers of each ensemble are shared within its group (every half-step
//! is exchanged with an all-gather); group leaders stream the blocks.
//!
//! Only the main thread of a rank calls MPI (`Threading::Funneled`): tasks
//! run on the rayon pool and hand blocks to the main thread. Every rank ends
//! with STOP from rank 0 and a BYE back, so that no message is left in
//! flight; a failure anywhere makes rank 0 send STOP to all at once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mpi::datatype::PartitionMut;
use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

use super::event::{self, TaskEvent};
use super::wire::{self, tag};
use super::{
    run_task, Block, BlockSink, ExecError, Monitor, Task, TaskError, TaskHooks, TaskRecord,
    TaskStats,
};
use crate::sampler::{split_range, HalfView, SampleError, WalkerShare, Whole};
use crate::spec::RunSpec;

/// How long rank 0 waits, after a failure, for every rank to stop before it
/// aborts the job (a rank inside one very long evaluation cannot listen).
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// True when this process was started by an MPI launcher (mpiexec, mpirun,
/// srun with PMI/PMIx), or when `SAMPO_MPI=1` asks for MPI explicitly.
pub fn launched_under_mpi() -> bool {
    const VARS: [&str; 6] = [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMI_RANK",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
        "MV2_COMM_WORLD_SIZE",
    ];
    std::env::var("SAMPO_MPI").is_ok_and(|v| v == "1")
        || VARS.iter().any(|v| std::env::var_os(v).is_some())
}

/// Ranks sharing this rank's node (an MPI shared-memory split); collective.
pub fn ranks_on_node(world: &SimpleCommunicator) -> (usize, usize) {
    let node = world.split_shared(world.rank());
    (node.size() as usize, node.rank() as usize)
}

/// Sends rank 0's verdict on the spec to every rank: `Ok(payload)` or the
/// exit code every rank should leave with. Collective.
pub fn broadcast_startup(
    world: &SimpleCommunicator,
    verdict: Option<Result<Vec<u8>, u8>>,
) -> Result<Vec<u8>, u8> {
    let root = world.process_at_rank(0);
    let mut header = [0u64; 2];
    if let Some(v) = &verdict {
        header = match v {
            Ok(bytes) => [0, bytes.len() as u64],
            Err(code) => [*code as u64, 0],
        };
    }
    root.broadcast_into(&mut header[..]);
    if header[0] != 0 {
        return Err(header[0] as u8);
    }
    let mut payload = match verdict {
        Some(Ok(bytes)) => bytes,
        _ => vec![0u8; header[1] as usize],
    };
    root.broadcast_into(&mut payload[..]);
    Ok(payload)
}

/// A rank other than 0 leaving with the exit code rank 0 decided; rank 0
/// has printed the reason.
#[derive(Debug, thiserror::Error)]
#[error("leaving with exit code {0}, as rank 0 decided")]
pub struct PeerExit(pub u8);

/// How tasks map onto ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One task at a time per rank, from rank 0's queue.
    Queue,
    /// Group g (ranks `groups[g]`) shares the walkers of task g.
    Groups(Vec<std::ops::Range<usize>>),
}

pub fn mode(tasks: usize, ranks: usize) -> Mode {
    if tasks >= ranks {
        Mode::Queue
    } else {
        Mode::Groups(
            (0..tasks)
                .map(|g| split_range(0..ranks, g, tasks))
                .collect(),
        )
    }
}

/// Why rank 0's run ended badly.
#[derive(Debug)]
pub struct MpiFailure {
    pub error: ExecError,
    /// Ranks that had not stopped within [`STOP_GRACE`]: the caller aborts.
    pub unresponsive: Vec<usize>,
}

fn send(world: &SimpleCommunicator, rank: usize, tag: i32, bytes: &[u8]) {
    world.process_at_rank(rank as i32).send_with_tag(bytes, tag);
}

/// A non-blocking look for any message; receives it if there is one.
fn try_receive(world: &SimpleCommunicator) -> Option<(usize, i32, Vec<u8>)> {
    let status = world.any_process().immediate_probe()?;
    let (src, t) = (status.source_rank(), status.tag());
    let (bytes, _) = world.process_at_rank(src).receive_vec_with_tag::<u8>(t);
    Some((src as usize, t, bytes))
}

/// The walkers of an ensemble shared among the ranks of a group.
struct GroupShare<'a> {
    comm: &'a SimpleCommunicator,
    member: usize,
    members: usize,
    ndim: usize,
    /// Asked on the leader only: has rank 0 told the group to stop?
    stop_requested: &'a dyn Fn() -> bool,
}

impl GroupShare<'_> {
    fn counts(&self, half: &std::ops::Range<usize>, per_walker: usize) -> (Vec<Count>, Vec<Count>) {
        let counts: Vec<Count> = (0..self.members)
            .map(|m| (split_range(half.clone(), m, self.members).len() * per_walker) as Count)
            .collect();
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

impl WalkerShare for GroupShare<'_> {
    fn owned(&self, half: std::ops::Range<usize>) -> std::ops::Range<usize> {
        split_range(half, self.member, self.members)
    }

    fn exchange(&mut self, failed: bool, v: HalfView<'_>) -> Result<(), SampleError> {
        // First agree on whether to go on: 1 = a member failed, 2 = stop.
        let status: u64 = if failed {
            1
        } else if self.member == 0 && (self.stop_requested)() {
            2
        } else {
            0
        };
        let mut all = vec![0u64; self.members];
        self.comm.all_gather_into(&status, &mut all[..]);
        if all.contains(&1) {
            return Err(SampleError::Stopped(
                "a rank sharing this ensemble failed".into(),
            ));
        }
        if all.contains(&2) {
            return Err(SampleError::Stopped("stopped by rank 0".into()));
        }
        let d = self.ndim;
        let mine = self.owned(v.walkers.clone());
        let rel = (mine.start - v.walkers.start)..(mine.end - v.walkers.start);

        let send: Vec<f64> = v.positions[rel.start * d..rel.end * d].to_vec();
        let (counts, displs) = self.counts(&v.walkers, d);
        let mut partition = PartitionMut::new(&mut v.positions[..], counts, &displs[..]);
        self.comm
            .all_gather_varcount_into(&send[..], &mut partition);

        let send: Vec<f64> = v.log_prob[rel.clone()].to_vec();
        let (counts, displs) = self.counts(&v.walkers, 1);
        let mut partition = PartitionMut::new(&mut v.log_prob[..], counts.clone(), &displs[..]);
        self.comm
            .all_gather_varcount_into(&send[..], &mut partition);

        let send: Vec<u64> = v.accepted[rel].to_vec();
        let mut partition = PartitionMut::new(&mut v.accepted[..], counts, &displs[..]);
        self.comm
            .all_gather_varcount_into(&send[..], &mut partition);
        Ok(())
    }
}

/// Sums counters over a group (evaluations are counted where they happen).
fn sum_over(comm: &SimpleCommunicator, stats: TaskStats) -> TaskStats {
    let mine = [stats.evaluations, stats.nan_evaluations];
    let mut total = [0u64; 2];
    comm.all_reduce_into(
        &mine[..],
        &mut total[..],
        mpi::collective::SystemOperation::sum(),
    );
    TaskStats {
        accepted: stats.accepted,
        evaluations: total[0],
        nan_evaluations: total[1],
    }
}

fn describe(rank: usize, task: &Task, e: &TaskError) -> String {
    format!("rank {rank}, task {}: {e}", task.id)
}

/// Rank 0's side: dispatching, writing, and its own share of the work.
struct Master<'a> {
    world: &'a SimpleCommunicator,
    spec: &'a RunSpec,
    tasks: &'a [Task],
    sink: &'a mut dyn BlockSink,
    records: Vec<TaskRecord>,
    failure: Option<ExecError>,
    failed_at: Option<Instant>,
    queue: VecDeque<Task>,
    /// Tasks handed out (or run here) that have not reported back.
    outstanding: usize,
    told_stop: Vec<bool>,
    said_bye: Vec<bool>,
    /// Walker-steps of other ranks, counted from the blocks received.
    remote_steps: u64,
}

impl<'a> Master<'a> {
    fn fail(&mut self, error: ExecError) {
        if self.failure.is_none() {
            tracing::error!("{error}");
            self.failure = Some(error);
            self.failed_at = Some(Instant::now());
            self.queue.clear();
            self.stop_all(1);
        }
    }

    fn stop_all(&mut self, code: u64) {
        for r in 1..self.told_stop.len() {
            if !self.told_stop[r] {
                send(self.world, r, tag::STOP, &wire::encode_u64s(&[code]));
                self.told_stop[r] = true;
            }
        }
    }

    fn write(&mut self, block: &Block) {
        if self.failure.is_some() {
            return;
        }
        if let Err(e) = self.sink.write_block(block) {
            self.fail(ExecError::Sink(e));
        }
    }

    /// Handles every message waiting; true if there was any.
    fn poll(&mut self) -> bool {
        let mut any = false;
        while let Some((src, t, bytes)) = try_receive(self.world) {
            any = true;
            self.handle(src, t, &bytes);
        }
        any
    }

    fn handle(&mut self, src: usize, t: i32, bytes: &[u8]) {
        match t {
            tag::REQUEST => {
                if self.told_stop[src] {
                    return;
                }
                match self.queue.pop_front() {
                    Some(task) => {
                        self.outstanding += 1;
                        send(
                            self.world,
                            src,
                            tag::ASSIGN,
                            &wire::encode_u64s(&[task.id as u64]),
                        );
                    }
                    None => send(self.world, src, tag::NO_MORE, &wire::encode_u64s(&[0])),
                }
            }
            tag::BLOCK => match wire::decode_block(bytes) {
                Ok(block) => {
                    let st = &self.spec.states[self.tasks[block.task].state];
                    self.remote_steps +=
                        (block.rows * st.ensemble.thin * st.ensemble.walkers) as u64;
                    self.write(&block);
                }
                Err(e) => self.fail(ExecError::Protocol(format!("from rank {src}: {e}"))),
            },
            tag::DONE => match wire::decode_done(bytes, src, self.tasks) {
                Ok(record) => {
                    self.outstanding -= 1;
                    self.records.push(record);
                }
                Err(e) => self.fail(ExecError::Protocol(format!("from rank {src}: {e}"))),
            },
            tag::FAILED => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.fail(ExecError::Remote(
                    String::from_utf8_lossy(bytes).into_owned(),
                ));
            }
            tag::BYE => self.said_bye[src] = true,
            other => self.fail(ExecError::Protocol(format!(
                "unexpected tag {other} from rank {src}"
            ))),
        }
    }

    fn all_gone(&self) -> bool {
        self.said_bye.iter().skip(1).all(|&b| b)
    }

    /// Tells everyone to stop and waits for their BYE (after a failure, at
    /// most `STOP_GRACE`). Returns the ranks that never answered.
    fn finish(&mut self) -> Vec<usize> {
        let code = u64::from(self.failure.is_some());
        self.stop_all(code);
        let mut idle = Backoff::default();
        while !self.all_gone() {
            if let Some(at) = self.failed_at {
                if at.elapsed() > STOP_GRACE {
                    break;
                }
            }
            if self.poll() {
                idle.reset();
            } else {
                idle.wait();
            }
        }
        (1..self.said_bye.len())
            .filter(|&r| !self.said_bye[r])
            .collect()
    }
}

/// Sleeps growing from 20 µs to 320 µs while nothing happens, so that an
/// idle rank 0 neither burns a core nor answers slowly.
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    fn reset(&mut self) {
        self.0 = 0;
    }
    fn current(&self) -> Duration {
        Duration::from_micros(20u64 << self.0.min(4))
    }
    fn wait(&mut self) {
        std::thread::sleep(self.current());
        self.0 += 1;
    }
}

/// Rank 0: runs the plan across all ranks, writing every block to `sink`.
pub fn run_rank0(
    world: &SimpleCommunicator,
    spec: Arc<RunSpec>,
    tasks: &[Task],
    sink: &mut dyn BlockSink,
    monitor: &mut dyn Monitor,
) -> Result<Vec<TaskRecord>, MpiFailure> {
    let size = world.size() as usize;
    let started = Instant::now();
    let mut order: Vec<Task> = tasks.to_vec();
    order.sort_by(|a, b| b.expected_cost(&spec).total_cmp(&a.expected_cost(&spec)));
    let mode = mode(tasks.len(), size);
    let mut master = Master {
        world,
        spec: &spec,
        tasks,
        sink,
        records: Vec::new(),
        failure: None,
        failed_at: None,
        queue: VecDeque::new(),
        outstanding: 0,
        told_stop: vec![false; size],
        said_bye: vec![false; size],
        remote_steps: 0,
    };
    match &mode {
        Mode::Queue => {
            master.queue = order.into();
            queue_rank0(&mut master, spec.clone(), started, monitor);
        }
        Mode::Groups(groups) => {
            let comm = world
                .split_by_color(Color::with_value(0))
                .expect("rank 0 is in group 0");
            master.outstanding = tasks.len() - 1; // the other groups' tasks
            group_rank0(
                &mut master,
                &spec,
                &tasks[0],
                groups[0].len(),
                &comm,
                started,
                monitor,
            );
        }
    }
    let unresponsive = master.finish();
    match master.failure.take() {
        Some(error) => Err(MpiFailure {
            error,
            unresponsive,
        }),
        None => {
            let mut records = std::mem::take(&mut master.records);
            records.sort_by_key(|r| r.task.id);
            Ok(records)
        }
    }
}

/// Queue mode on rank 0: one task at a time on this rank's pool, while the
/// main thread answers requests and writes.
fn queue_rank0(
    master: &mut Master<'_>,
    spec: Arc<RunSpec>,
    started: Instant,
    monitor: &mut dyn Monitor,
) {
    let progress = Arc::new(AtomicU64::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<TaskEvent>(4);
    let mut own_running = false;
    let mut idle = Backoff::default();
    loop {
        if !own_running && master.failure.is_none() {
            if let Some(task) = master.queue.pop_front() {
                own_running = true;
                master.outstanding += 1;
                let (spec, tx, progress, cancel) =
                    (spec.clone(), tx.clone(), progress.clone(), cancel.clone());
                rayon::spawn(move || {
                    event::run_reporting(&spec, task, started, &progress, &cancel, &tx)
                });
            }
        }
        let mut progressed = master.poll();
        match rx.recv_timeout(if progressed {
            Duration::ZERO
        } else {
            idle.current()
        }) {
            Ok(TaskEvent::Block(b)) => {
                master.write(&b);
                progressed = true;
            }
            Ok(TaskEvent::Done(task, start, end, result)) => {
                own_running = false;
                master.outstanding -= 1;
                progressed = true;
                match result {
                    Ok(stats) => master.records.push(TaskRecord {
                        task,
                        rank: 0,
                        start,
                        end,
                        stats,
                    }),
                    Err(TaskError::Cancelled) => {}
                    Err(e) => master.fail(ExecError::Remote(describe(0, &task, &e))),
                }
            }
            Err(_) => {}
        }
        if master.failure.is_some() {
            cancel.store(true, Ordering::Relaxed);
        }
        monitor.tick(progress.load(Ordering::Relaxed) + master.remote_steps);
        if !own_running && master.outstanding == 0 && master.queue.is_empty() {
            break;
        }
        if master.failure.is_some() && !own_running {
            break;
        }
        if progressed {
            idle.reset();
        } else {
            idle.0 += 1;
        }
    }
}

/// Group mode on rank 0: lead group 0's shared ensemble on the main thread,
/// serving the other leaders between iterations.
fn group_rank0(
    master: &mut Master<'_>,
    spec: &RunSpec,
    task: &Task,
    members: usize,
    comm: &SimpleCommunicator,
    started: Instant,
    monitor: &mut dyn Monitor,
) {
    let progress = AtomicU64::new(0);
    let master = RefCell::new(master);
    let last_poll = Cell::new(Instant::now());
    let poll = || {
        if last_poll.get().elapsed() > Duration::from_millis(2) {
            last_poll.set(Instant::now());
            master.borrow_mut().poll();
        }
        master.borrow().failure.is_some()
    };
    let mut share = GroupShare {
        comm,
        member: 0,
        members,
        ndim: spec.states[task.state].dim(),
        stop_requested: &poll,
    };
    let mut emit = |b: Block| {
        master.borrow_mut().write(&b);
        Ok(())
    };
    let never = || false;
    let start = started.elapsed().as_secs_f64();
    let hooks = TaskHooks {
        emit: Some(&mut emit),
        progress: &progress,
        cancelled: &never,
        share: &mut share,
    };
    let result = run_task(spec, task, hooks);
    let end = started.elapsed().as_secs_f64();
    let master = master.into_inner();
    match result {
        Ok(stats) => {
            let stats = sum_over(comm, stats);
            master.records.push(TaskRecord {
                task: *task,
                rank: 0,
                start,
                end,
                stats,
            });
        }
        Err(TaskError::Cancelled) => {
            // A rank of this group failed (or rank 0 stopped the job): wait
            // for its report, so that the others are told the job failed.
            let since = Instant::now();
            let mut idle = Backoff::default();
            while master.failure.is_none() && since.elapsed() < STOP_GRACE {
                if !master.poll() {
                    idle.wait();
                }
            }
        }
        Err(e) => master.fail(ExecError::Remote(describe(0, task, &e))),
    }
    let mut idle = Backoff::default();
    while master.outstanding > 0 && master.failure.is_none() {
        if master.poll() {
            idle.reset();
        } else {
            idle.wait();
        }
        monitor.tick(progress.load(Ordering::Relaxed) + master.remote_steps);
    }
}

/// A worker rank (rank > 0): runs what rank 0 hands it, then returns the
/// exit code rank 0 sent with STOP (0, or 1 when the job failed).
pub fn run_worker(world: &SimpleCommunicator, spec: &RunSpec, tasks: &[Task]) -> u8 {
    let rank = world.rank() as usize;
    let size = world.size() as usize;
    let started = Instant::now();
    let root = world.process_at_rank(0);
    let progress = AtomicU64::new(0);
    // Between iterations: has rank 0 sent STOP? Probed every 20 ms at most.
    let last_probe = Cell::new(Instant::now());
    let stop_seen = Cell::new(false);
    let stop_pending = || {
        if !stop_seen.get() && last_probe.get().elapsed() > Duration::from_millis(20) {
            last_probe.set(Instant::now());
            stop_seen.set(root.immediate_probe_with_tag(tag::STOP).is_some());
        }
        stop_seen.get()
    };
    let mut emit = |b: Block| {
        send(world, 0, tag::BLOCK, &wire::encode_block(&b));
        Ok(())
    };
    let report = |task: &Task, start: f64, result: Result<TaskStats, TaskError>| match result {
        Ok(stats) => send(
            world,
            0,
            tag::DONE,
            &wire::encode_done(task.id, &stats, start, started.elapsed().as_secs_f64()),
        ),
        Err(TaskError::Cancelled) => {}
        Err(e) => send(world, 0, tag::FAILED, describe(rank, task, &e).as_bytes()),
    };

    match mode(tasks.len(), size) {
        Mode::Queue => {
            // One request is always ahead: the next task is asked for as soon
            // as one starts, so that a worker never waits on rank 0 between
            // tasks.
            let request = || send(world, 0, tag::REQUEST, &wire::encode_u64s(&[rank as u64]));
            request();
            loop {
                if stop_seen.get() {
                    return drain_until_stop(world);
                }
                let (bytes, t) = wait_for_root(world, None);
                let body = wire::decode_u64s(&bytes);
                match t {
                    tag::STOP => return bye(world, &body),
                    tag::NO_MORE => return drain_until_stop(world),
                    _ => {}
                }
                let task = tasks[body[0] as usize];
                request();
                let start = started.elapsed().as_secs_f64();
                let hooks = TaskHooks {
                    emit: Some(&mut emit),
                    progress: &progress,
                    cancelled: &stop_pending,
                    share: &mut Whole,
                };
                report(&task, start, run_task(spec, &task, hooks));
            }
        }
        Mode::Groups(groups) => {
            let g = groups
                .iter()
                .position(|r| r.contains(&rank))
                .expect("every rank is in a group");
            let comm = world
                .split_by_color(Color::with_value(g as i32))
                .expect("every rank has a colour");
            let member = rank - groups[g].start;
            let task = tasks[g];
            let mut share = GroupShare {
                comm: &comm,
                member,
                members: groups[g].len(),
                ndim: spec.states[task.state].dim(),
                stop_requested: &stop_pending,
            };
            let never = || false;
            let start = started.elapsed().as_secs_f64();
            let hooks = TaskHooks {
                emit: if member == 0 { Some(&mut emit) } else { None },
                progress: &progress,
                cancelled: &never,
                share: &mut share,
            };
            let result = run_task(spec, &task, hooks).map(|stats| sum_over(&comm, stats));
            match result {
                Ok(_) if member != 0 => {}
                other => report(&task, start, other),
            }
            let (bytes, _) = wait_for_root(world, Some(tag::STOP));
            bye(world, &wire::decode_u64s(&bytes))
        }
    }
}

/// The next message from rank 0 (with tag `only`, if given), and its tag.
/// Polls with short sleeps rather than blocking in MPI_Recv, which OpenMPI
/// busy-waits in: an idle worker must not take a core from sampling threads.
fn wait_for_root(world: &SimpleCommunicator, only: Option<i32>) -> (Vec<u8>, i32) {
    let root = world.process_at_rank(0);
    let mut idle = Backoff::default();
    loop {
        let status = match only {
            Some(t) => root.immediate_probe_with_tag(t),
            None => root.immediate_probe(),
        };
        if let Some(status) = status {
            let t = status.tag();
            let (bytes, _) = root.receive_vec_with_tag::<u8>(t);
            return (bytes, t);
        }
        idle.wait();
    }
}

/// Receives (and drops) rank 0's messages up to its STOP, then says BYE.
fn drain_until_stop(world: &SimpleCommunicator) -> u8 {
    loop {
        let (bytes, t) = wait_for_root(world, None);
        if t == tag::STOP {
            return bye(world, &wire::decode_u64s(&bytes));
        }
    }
}

fn bye(world: &SimpleCommunicator, stop_body: &[u64]) -> u8 {
    send(
        world,
        0,
        tag::BYE,
        &wire::encode_u64s(&[world.rank() as u64]),
    );
    stop_body.first().copied().unwrap_or(1).min(255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_tasks_than_ranks_makes_groups() {
        assert_eq!(mode(5, 3), Mode::Queue);
        assert_eq!(mode(3, 3), Mode::Queue);
        assert_eq!(mode(2, 3), Mode::Groups(vec![0..2, 2..3]));
        assert_eq!(mode(1, 4), Mode::Groups(std::iter::once(0..4).collect()));
    }

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
