//! What the executor writes at a checkpoint, for any job: where the run is
//! (stage, carry), which tasks are done, and the snapshot of every task that
//! paused. Tasks in none of these sets have not started. With the store's
//! own record of the rows written, it is all `--resume` needs.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::jobs::{Extension, Job, RunSpec, TaskId};
use crate::output::{Column, DatasetDecl, Dtype, Layout, Record, Store, StoreError};

/// The executor's state at a checkpoint, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The stage under way.
    pub stage: u32,
    /// The carry the stage began with (for `Job::begin_stage`).
    pub carry: Vec<u8>,
    /// Tasks of the stage done, as runs of indices.
    pub done: Vec<Range<u64>>,
    /// Tasks to go on from their snapshot in the current round.
    pub ready: Vec<(u64, Vec<u8>)>,
    /// Tasks paused at the end of the round, waiting for `Job::round`.
    pub waiting: Vec<(u64, Vec<u8>)>,
    /// Rows of `/checkpoint/final_tasks` and bytes of `/checkpoint/finals`
    /// written: the last states of the last stage's tasks done
    /// (`Outcome::Final`), from which a run asking for more steps goes on
    /// (`Job::extend`). They are in the output, not in the checkpoint, so
    /// that neither memory nor a checkpoint grows with the tasks.
    pub final_rows: u64,
    pub final_bytes: u64,
    /// Rows of `/timings` written.
    pub timing_rows: u64,
    /// Units of work done (for progress).
    pub units_done: u64,
    /// The resolved spec (JSON) the checkpoint belongs to, when it is not
    /// the one the file records (a run being extended to more steps):
    /// written with the checkpoint, so that the two change together.
    /// Empty: the file's `resolved_spec`.
    pub spec: String,
}

/// A checkpoint as sampo wrote it before `finals` and `spec`.
#[derive(Deserialize)]
struct CheckpointV1 {
    stage: u32,
    carry: Vec<u8>,
    done: Vec<Range<u64>>,
    ready: Vec<(u64, Vec<u8>)>,
    waiting: Vec<(u64, Vec<u8>)>,
    timing_rows: u64,
    units_done: u64,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a checkpoint is plain serde data")
    }

    /// Decodes a checkpoint, of this version or the one before.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match postcard::from_bytes::<Self>(bytes) {
            Ok(cp) => Ok(cp),
            Err(e) => match postcard::from_bytes::<CheckpointV1>(bytes) {
                Ok(v1) => Ok(Self {
                    stage: v1.stage,
                    carry: v1.carry,
                    done: v1.done,
                    ready: v1.ready,
                    waiting: v1.waiting,
                    final_rows: 0,
                    final_bytes: 0,
                    timing_rows: v1.timing_rows,
                    units_done: v1.units_done,
                    spec: String::new(),
                }),
                Err(_) => Err(format!("undecodable checkpoint: {e}")),
            },
        }
    }

    /// The checkpoint of a run whose spec asks for more steps, going on from
    /// this one (of the run the file holds): every task's snapshot or last
    /// state is placed in the longer run by `Job::extend` (rank 0, with the
    /// store). Only a run's last stage can be extended.
    pub fn extended(
        &self,
        job: &dyn Job,
        store: &mut dyn Store,
        sets: &FinalSets,
    ) -> Result<Self, String> {
        if self.stage + 1 != job.stages() {
            return Err("only the last stage of a run can be extended".into());
        }
        let finals = sets
            .read(store, self.final_rows, self.final_bytes)
            .map_err(|e| format!("reading the tasks' last states: {e}"))?;
        let done: u64 = self.done.iter().map(|r| r.end - r.start).sum();
        if (finals.len() as u64) < done {
            return Err(format!(
                "it holds the last states of {} of its {done} finished task(s)",
                finals.len()
            ));
        }
        let mut out = Self {
            stage: self.stage,
            carry: self.carry.clone(),
            timing_rows: self.timing_rows,
            units_done: self.units_done,
            spec: self.spec.clone(),
            // A task done in the longer run too keeps its last state where
            // it is; one that goes on adds a later one, which wins.
            final_rows: self.final_rows,
            final_bytes: self.final_bytes,
            ..Self::default()
        };
        let mut finished = RangeSet::default();
        for (index, snapshot) in finals.iter().chain(&self.ready).chain(&self.waiting) {
            let task = TaskId {
                stage: self.stage,
                index: *index,
            };
            match job
                .extend(task, snapshot, store)
                .map_err(|e| e.to_string())?
            {
                Extension::Ready(s) => out.ready.push((*index, s)),
                Extension::Waiting(s) => out.waiting.push((*index, s)),
                Extension::Done => finished.insert(*index),
            }
        }
        out.done = finished.ranges();
        Ok(out)
    }

    /// Every task index the checkpoint accounts for (done, ready, waiting),
    /// sorted and merged: the ones the plan must not hand out afresh.
    pub fn accounted(&self) -> Vec<Range<u64>> {
        let mut set = RangeSet::default();
        for r in &self.done {
            set.insert_range(r.clone());
        }
        for (t, _) in self.ready.iter().chain(&self.waiting) {
            set.insert(*t);
        }
        set.ranges()
    }
}

/// Where the output keeps the last states of the last stage's tasks done:
/// `/checkpoint/final_tasks`, a row (task, first byte, bytes) per task, and
/// `/checkpoint/finals`, their bytes one after another. Written as tasks
/// end; a task that ends again (in a longer run) adds a row, and the last
/// row of a task is its state.
#[derive(Debug, Clone, Copy)]
pub struct FinalSets {
    /// The datasets' indices in the layout.
    pub tasks: usize,
    pub bytes: usize,
}

impl FinalSets {
    pub const TASKS: &'static str = "checkpoint/final_tasks";
    pub const BYTES: &'static str = "checkpoint/finals";

    /// Adds the datasets to a layout.
    pub fn declare(layout: &mut Layout) -> Self {
        let tasks = layout.datasets.len();
        // Small chunks: a small run's file stays small, a large one's has
        // a chunk per few tasks.
        layout.add(DatasetDecl::growing(Self::TASKS, Dtype::I64, vec![3]).with_chunk_rows(128));
        layout.add(DatasetDecl::growing(Self::BYTES, Dtype::U8, vec![]).with_chunk_rows(4 << 10));
        Self {
            tasks,
            bytes: tasks + 1,
        }
    }

    /// The datasets in a layout made by [`crate::exec::layout`].
    pub fn of(layout: &Layout) -> Option<Self> {
        Some(Self {
            tasks: layout.find(Self::TASKS)?,
            bytes: layout.find(Self::BYTES)?,
        })
    }

    /// The records of task `task`'s last state `snapshot`, the output
    /// holding `rows` of them and `bytes` bytes so far.
    pub fn records(&self, task: u64, snapshot: Vec<u8>, rows: u64, bytes: u64) -> [Record; 2] {
        let len = snapshot.len() as u64;
        [
            Record {
                dataset: self.bytes,
                first_row: bytes,
                rows: len,
                lane: None,
                values: Column::U8(snapshot),
            },
            Record {
                dataset: self.tasks,
                first_row: rows,
                rows: 1,
                lane: None,
                values: Column::I64(vec![task as i64, bytes as i64, len as i64]),
            },
        ]
    }

    /// The last state of each task among the first `rows` rows (`bytes`
    /// bytes), by task.
    pub fn read(
        &self,
        store: &mut dyn Store,
        rows: u64,
        bytes: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let index = store.read_f64(self.tasks, 0..rows, None)?;
        let all = store.read_u8(self.bytes, 0..bytes)?;
        let mut last = BTreeMap::new();
        for row in index.chunks_exact(3) {
            let (task, first, len) = (row[0] as u64, row[1] as usize, row[2] as usize);
            let state = all.get(first..first + len).ok_or_else(|| {
                StoreError::Record(format!(
                    "/{}: task {task}'s last state lies beyond the {bytes} bytes written",
                    Self::BYTES
                ))
            })?;
            last.insert(task, state.to_vec());
        }
        Ok(last.into_iter().collect())
    }
}

/// A set of task indices kept as merged runs: tasks end roughly in order,
/// so 10⁸ done tasks cost a few runs.
#[derive(Debug, Clone, Default)]
pub struct RangeSet {
    /// start → end of each run.
    runs: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn insert(&mut self, i: u64) {
        self.insert_range(i..i + 1);
    }

    pub fn insert_range(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        // A run that starts at or before `start` and reaches it.
        if let Some((&s, &e)) = self.runs.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.runs.remove(&s);
            }
        }
        // Runs starting inside [start, end].
        while let Some((&s, &e)) = self.runs.range(start..=end).next() {
            end = end.max(e);
            self.runs.remove(&s);
        }
        self.runs.insert(start, end);
    }

    pub fn ranges(&self) -> Vec<Range<u64>> {
        self.runs.iter().map(|(&s, &e)| s..e).collect()
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

/// Why the executor is pausing its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pausing {
    /// A periodic checkpoint: the run goes on once it is written.
    Checkpoint,
    /// A signal or the wall time: the run ends, paused, once it is written.
    Stop(String),
}

/// Less time than this for work before a wall-time pause is said (see
/// [`CheckpointPolicy::short_budget`]).
pub const SHORT_WORK: Duration = Duration::from_secs(10);

/// When rank 0 takes checkpoints and when it must stop.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// Between periodic checkpoints (`None`: only when pausing).
    pub every: Option<Duration>,
    /// Pause (checkpoint and exit 75) at this instant: the wall-time budget
    /// less a margin for the checkpoint.
    pub deadline: Option<Instant>,
}

impl CheckpointPolicy {
    pub const NONE: Self = Self {
        every: None,
        deadline: None,
    };

    /// Periodic checkpoints (`[run] checkpoint_every`) and the wall-time
    /// deadline: `walltime` (`--walltime`), `[run] walltime`, or SLURM's job
    /// end time (`SLURM_JOB_END_TIME`, seconds since the epoch) when it is
    /// set; `started` is when this process started.
    pub fn for_run(spec: &RunSpec, walltime: Option<f64>, started: Instant) -> Self {
        let budget = walltime.or(spec.walltime).or_else(|| {
            let end: f64 = std::env::var("SLURM_JOB_END_TIME")
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            (end > now).then(|| end - now + started.elapsed().as_secs_f64())
        });
        // A budget beyond any allocation (an end time far in the future) is
        // no deadline; the spec's and the command line's are bounded.
        let budget = budget.filter(|b| b.is_finite() && *b <= crate::limits::MAX_DURATION_SECS);
        Self {
            every: spec.checkpoint_every.map(Duration::from_secs_f64),
            deadline: budget.and_then(|b| Self::deadline_for(started, Duration::from_secs_f64(b))),
        }
    }

    /// What to tell rank 0's user when the wall-time deadline leaves less
    /// than [`SHORT_WORK`] for work (a `--walltime` of a few seconds, a
    /// SLURM job about to end): the run pauses almost at once, and each
    /// resume with the same budget does as little.
    pub fn short_budget(&self, started: Instant) -> Option<String> {
        let left = self.deadline?.saturating_duration_since(started);
        (left < SHORT_WORK).then(|| {
            format!(
                "the wall time leaves {:.1} s for work before the pause (the rest is kept to \
                 write the checkpoint): the run will pause (exit 75) after little or no work, and \
                 so will each resume with this budget; give a longer --walltime or run.walltime",
                left.as_secs_f64()
            )
        })
    }

    /// The instant to pause for a wall-time budget of `walltime` from
    /// `started`: a twentieth of it is left for the tasks to reach a step
    /// boundary and the checkpoint to be written, between 1 s and 2 min.
    pub fn deadline_for(started: Instant, walltime: Duration) -> Option<Instant> {
        let margin = (walltime / 20).clamp(Duration::from_secs(1), Duration::from_secs(120));
        started.checked_add(walltime.saturating_sub(margin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_that_leaves_no_work_is_said() {
        let now = Instant::now();
        let policy = |secs: u64| CheckpointPolicy {
            every: None,
            deadline: CheckpointPolicy::deadline_for(now, Duration::from_secs(secs)),
        };
        let said = policy(1).short_budget(now).unwrap();
        assert!(said.contains("leaves 0.0 s for work"), "{said}");
        assert!(policy(5).short_budget(now).is_some());
        assert!(policy(60).short_budget(now).is_none());
        assert!(CheckpointPolicy::NONE.short_budget(now).is_none());
    }

    #[test]
    fn range_sets_merge_runs_in_any_order() {
        let mut s = RangeSet::default();
        for i in [5, 3, 4, 0, 10, 1, 11] {
            s.insert(i);
        }
        assert_eq!(s.ranges(), vec![0..2, 3..6, 10..12]);
        s.insert_range(1..11);
        assert_eq!(s.ranges(), vec![0..12]);
        s.insert(12);
        assert_eq!(s.ranges(), vec![0..13]);
    }

    #[test]
    fn checkpoints_round_trip_and_account_for_their_tasks() {
        let c = Checkpoint {
            stage: 0,
            carry: vec![],
            done: vec![0..3, 7..8],
            ready: vec![(3, vec![1, 2])],
            waiting: vec![(5, vec![3])],
            final_rows: 4,
            final_bytes: 1000,
            timing_rows: 9,
            units_done: 100,
            spec: "{}".into(),
        };
        assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
        assert_eq!(c.accounted(), vec![0..4, 5..6, 7..8]);
        assert!(Checkpoint::decode(&[0xff]).is_err());
    }

    #[test]
    fn the_last_state_of_each_task_is_read_back_from_the_store() {
        let mut layout = Layout::default();
        let sets = FinalSets::declare(&mut layout);
        assert_eq!(
            FinalSets::of(&layout).map(|s| (s.tasks, s.bytes)),
            Some((0, 1))
        );
        let mut store = crate::output::MemoryStore::new(layout);
        // Task 7 ends twice (a longer run went on from it): the later wins.
        let ends: [(u64, Vec<u8>); 4] = [
            (7, vec![1, 2, 3]),
            (2, vec![]),
            (9, vec![4; 300]),
            (7, vec![5, 6]),
        ];
        let (mut rows, mut bytes) = (0, 0);
        for (task, state) in ends.clone() {
            let len = state.len() as u64;
            for r in sets.records(task, state, rows, bytes) {
                store.write(r).unwrap();
            }
            rows += 1;
            bytes += len;
        }
        let got = sets.read(&mut store, rows, bytes).unwrap();
        assert_eq!(got, vec![(2, vec![]), (7, vec![5, 6]), (9, vec![4; 300])]);
        // A checkpoint taken before the last two ends sees the first two.
        let got = sets.read(&mut store, 2, 3).unwrap();
        assert_eq!(got, vec![(2, vec![]), (7, vec![1, 2, 3])]);
        // An index pointing beyond the bytes counted is an error.
        assert!(sets.read(&mut store, 3, 3).is_err());
    }

    #[test]
    fn the_deadline_leaves_a_margin() {
        let t = Instant::now();
        let d = CheckpointPolicy::deadline_for(t, Duration::from_secs(4 * 3600)).unwrap();
        assert_eq!(d - t, Duration::from_secs(4 * 3600 - 120));
        let d = CheckpointPolicy::deadline_for(t, Duration::from_secs(10)).unwrap();
        assert_eq!(d - t, Duration::from_secs(9));
        // Beyond what an instant can hold: no deadline rather than a panic.
        assert_eq!(CheckpointPolicy::deadline_for(t, Duration::MAX), None);
    }
}
