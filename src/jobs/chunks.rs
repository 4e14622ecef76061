//! Tasks as chunks of items: the plan of the kinds whose work is many
//! independent items per state (`batch`'s design points, `paths`'s paths).
//! A task is a run of consecutive items of one state, states one after
//! another (or, when every state has as many items, chunk after chunk, the
//! states of each in turn: then a run with more items has the same tasks
//! first); the plan is one run per state, so 10¹⁰ items plan in constant
//! memory.

use std::ops::Range;

use super::{Plan, PlanRun};

/// The chunks of every state.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunks {
    /// Items per task (the last task of a state may hold fewer).
    pub chunk: u64,
    /// Each state's items.
    items: Vec<u64>,
    /// Each state's first task index (and, last, the number of tasks).
    first_task: Vec<u64>,
    /// Task i is chunk i / states of state i % states (see
    /// [`Self::interleaved`]).
    interleaved: bool,
}

impl Chunks {
    /// Chunks of `chunk` items (at least 1) of states with `items` each.
    pub fn new(items: Vec<u64>, chunk: u64) -> Self {
        let chunk = chunk.max(1);
        let mut first_task = vec![0];
        for &n in &items {
            let last = first_task.last().copied().unwrap_or(0);
            first_task.push(last + n.div_ceil(chunk));
        }
        Self {
            chunk,
            items,
            first_task,
            interleaved: false,
        }
    }

    /// Chunks of `chunk` items of `states` states with `items` each, in
    /// the order chunk 0 of every state, chunk 1 of every state, …: the
    /// tasks of a run with fewer items are the first tasks of one with more
    /// (the same indices, the same items but in the last chunk of each
    /// state, which then holds more).
    pub fn interleaved(states: usize, items: u64, chunk: u64) -> Self {
        let mut chunks = Self::new(vec![items; states], chunk);
        chunks.interleaved = true;
        chunks
    }

    /// The state and the chunk within it of task `index`.
    pub fn task_of(&self, index: u64) -> (usize, u64) {
        if self.interleaved {
            let states = self.items.len() as u64;
            return ((index % states) as usize, index / states);
        }
        let s = self.first_task.partition_point(|&f| f <= index) - 1;
        (s, index - self.first_task[s])
    }

    /// The items of chunk `chunk` of state `s`.
    pub fn items_of(&self, s: usize, chunk: u64) -> Range<u64> {
        let first = chunk * self.chunk;
        first..(first + self.chunk).min(self.items[s])
    }

    /// Tasks of state `s`.
    pub fn tasks_of(&self, s: usize) -> u64 {
        self.first_task[s + 1] - self.first_task[s]
    }

    /// One run per state, every task of the same cost `cost(s)` (chunks
    /// interleaved: one run, of the states' mean cost): the executor hands
    /// them out in order.
    pub fn plan(&self, cost: impl Fn(usize) -> f64) -> Plan {
        if self.interleaved {
            let states = self.items.len();
            let mean = (0..states).map(&cost).sum::<f64>() / states.max(1) as f64;
            return Plan {
                runs: vec![PlanRun {
                    tasks: 0..self.first_task.last().copied().unwrap_or(0),
                    cost: mean,
                }],
            };
        }
        let runs = self
            .first_task
            .windows(2)
            .enumerate()
            .map(|(s, w)| PlanRun {
                tasks: w[0]..w[1],
                cost: cost(s),
            })
            .collect();
        Plan { runs }
    }
}

/// The automatic chunk: about `tasks` tasks for the largest state, each
/// of at most `max` items (enough tasks to balance a few hundred workers,
/// few enough that each costs far more than its hand-out).
pub fn auto_chunk(largest: u64, tasks: u64, max: u64) -> u64 {
    (largest / tasks.max(1)).clamp(1, max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_of_every_state_once() {
        let c = Chunks::new(vec![1000, 1, 0, 300], 300);
        // ⌈1000/300⌉ + 1 + 0 + 1 tasks.
        assert_eq!(c.plan(|_| 1.0).tasks(), 6);
        assert_eq!(c.task_of(3), (0, 3));
        assert_eq!(c.items_of(0, 3), 900..1000);
        assert_eq!(c.task_of(4), (1, 0));
        assert_eq!(c.items_of(1, 0), 0..1);
        // The empty state has no task: task 5 is the last state's.
        assert_eq!(c.task_of(5), (3, 0));
        assert_eq!(c.tasks_of(2), 0);
        assert_eq!(c.items_of(3, 0), 0..300);
        assert_eq!(auto_chunk(100_000, 256, 4096), 390);
        assert_eq!(auto_chunk(10, 256, 4096), 1);
        assert_eq!(auto_chunk(1 << 40, 256, 4096), 4096);
    }

    #[test]
    fn interleaved_chunks_of_fewer_items_are_the_first_of_more() {
        let (few, more) = (
            Chunks::interleaved(3, 1000, 300),
            Chunks::interleaved(3, 1700, 300),
        );
        assert_eq!(few.plan(|_| 1.0).tasks(), 12);
        assert_eq!(more.plan(|s| s as f64).runs[0].tasks, 0..18);
        for t in 0..12 {
            let (s, c) = few.task_of(t);
            assert_eq!((s, c), more.task_of(t));
            assert_eq!(s as u64, t % 3);
            let (a, b) = (few.items_of(s, c), more.items_of(s, c));
            assert_eq!(a.start, b.start);
            // Only each state's last chunk grows.
            assert_eq!(a.end == b.end, c < 3, "task {t}");
        }
        assert_eq!(more.task_of(17), (2, 5));
        assert_eq!(more.items_of(2, 5), 1500..1700);
    }
}
