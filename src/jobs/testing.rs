//! A test driver for jobs: runs a job in one process, task after task, the
//! way the executor does (stages, rounds, carries), with every record in a
//! [`MemoryStore`], and pauses tasks where a test asks, so that a kind's
//! `Job` is tested without the executor (which `jobs` must not import).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{Decision, Job, Outcome, RunSpec, TaskContext, TaskError, TaskId};
use crate::output::{Attr, Dtype, MemoryStore, Reader, Record, Store};
use crate::spec::SpecSource;
use crate::table::{Cell, Table};

/// More yields than this from one task is a task that never gets on.
const MAX_YIELDS: usize = 10_000;

/// Where the driver asks tasks to pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Never: an uninterrupted run.
    Never,
    /// Every time a task runs, it is asked to pause at its `n`-th step
    /// boundary (n ≥ 2, so that each run gets on): a run resumed from
    /// snapshot after snapshot.
    AtAsk(u64),
    /// Once, after the `k`-th message of records of the run: the
    /// executor's flag (a checkpoint, a signal), set at a moment between
    /// steps and seen by every task until one pauses; a task that ends
    /// before it asks again does not pause.
    AfterEmits(usize),
}

/// What a driven run left.
pub(crate) struct Driven {
    pub store: MemoryStore,
    /// Times a task yielded and was resumed from its snapshot.
    pub yields: usize,
    /// Rounds decided by `Job::round`.
    pub rounds: usize,
    /// Evaluations the tasks reported, over every run of each.
    pub evaluations: u64,
}

/// The resolved spec of `text` (a file `t.toml`).
pub(crate) fn spec(text: &str) -> Arc<RunSpec> {
    let source = SpecSource::new("t.toml", text);
    Arc::new(RunSpec::from_source(&source).unwrap_or_else(|e| panic!("bad test spec: {e}")))
}

/// Runs `job` to the end in one process: for each stage, `begin_stage`
/// with the carry (after the first), every task of its plan in index order
/// (a yielded task resumed from its snapshot at once, as a resumed run
/// would), `round` after every round in which some task paused, then
/// `finish_stage` for the carry. The store ends marked complete, as the
/// HDF5 store marks a finished file.
pub(crate) fn drive(job: &dyn Job, pause: Pause) -> Driven {
    let mut driven = Driven {
        store: MemoryStore::new(job.layout().clone()),
        yields: 0,
        rounds: 0,
        evaluations: 0,
    };
    let mut flag = Flag::default();
    let mut carry = Vec::new();
    for stage in 0..job.stages() {
        if stage > 0 {
            job.begin_stage(stage, &carry)
                .unwrap_or_else(|e| panic!("starting stage {stage}: {e}"));
        }
        let plan = job.plan(stage);
        let mut pending: Vec<(TaskId, Option<Vec<u8>>)> = plan
            .runs
            .iter()
            .flat_map(|r| r.tasks.clone())
            .map(|index| (TaskId { stage, index }, None))
            .collect();
        while !pending.is_empty() {
            let mut paused = Vec::new();
            for (task, mut resume) in pending {
                let mut yields = 0;
                loop {
                    let outcome =
                        run_task(job, task, resume.as_deref(), pause, &mut flag, &mut driven);
                    match outcome {
                        Outcome::Done | Outcome::Final(_) => break,
                        Outcome::Paused(snapshot) => {
                            paused.push((task, Some(snapshot)));
                            break;
                        }
                        Outcome::Yielded(snapshot) => {
                            // The checkpoint is taken: the flag is down.
                            flag.up.store(false, Ordering::Relaxed);
                            yields += 1;
                            assert!(yields < MAX_YIELDS, "task {task:?} never gets on");
                            driven.yields += 1;
                            resume = Some(snapshot);
                        }
                    }
                }
            }
            if paused.is_empty() {
                break;
            }
            driven.store.flush().expect("a memory store flushes");
            driven.rounds += 1;
            let decision = job
                .round(stage, &mut driven.store)
                .unwrap_or_else(|e| panic!("deciding round {}: {e}", driven.rounds));
            pending = match decision {
                Decision::Continue => paused,
                Decision::Finish => Vec::new(),
            };
        }
        carry = job
            .finish_stage(stage, &mut driven.store)
            .unwrap_or_else(|e| panic!("finishing stage {stage}: {e}"));
    }
    driven
        .store
        .set_attr("/", "status", Attr::Str("complete".into()))
        .expect("a memory store sets attributes");
    driven
}

/// The executor's pause flag, and the messages of records that count
/// towards [`Pause::AfterEmits`].
#[derive(Default)]
struct Flag {
    up: AtomicBool,
    emits: usize,
}

/// Runs one task once, its records going straight into the store.
fn run_task(
    job: &dyn Job,
    task: TaskId,
    resume: Option<&[u8]>,
    pause: Pause,
    flag: &mut Flag,
    driven: &mut Driven,
) -> Outcome {
    let (progress, cancel) = (AtomicU64::new(0), AtomicBool::new(false));
    let store = &mut driven.store;
    let Flag { up, emits } = flag;
    let mut emit = |records: Vec<Record>| -> Result<(), TaskError> {
        for r in records {
            store
                .write(r)
                .map_err(|e| TaskError::Failed(format!("bad record: {e}")))?;
        }
        *emits += 1;
        if pause == Pause::AfterEmits(*emits) {
            up.store(true, Ordering::Relaxed);
        }
        Ok(())
    };
    let mut cx = TaskContext::new(&mut emit, &progress, &cancel).pausable(up);
    if let Pause::AtAsk(n) = pause {
        assert!(
            n >= 2,
            "a task asked to pause at its first ask never gets on"
        );
        cx = cx.pause_at_ask(n);
    }
    let outcome = job
        .run(task, resume, &mut cx)
        .unwrap_or_else(|e| panic!("task {task:?}: {e}"));
    driven.evaluations += cx.evaluations;
    outcome
}

/// Every dataset of a store as its reader sees it (floats as bits, so that
/// NaN equals NaN) and every attribute set: what must be the same, bit for
/// bit, however a run was paused.
pub(crate) fn contents(store: &MemoryStore) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = store
        .layout
        .datasets
        .iter()
        .map(|d| {
            let values = match d.dtype {
                Dtype::Str(_) => format!("{:?}", store.read_strings(&d.path).unwrap()),
                _ => {
                    let v = Reader::read_f64(store, &d.path, None, None).unwrap();
                    format!("{:?}", v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
                }
            };
            (d.path.clone(), values)
        })
        .collect();
    out.extend(
        store
            .attrs
            .iter()
            .map(|((g, n), v)| (format!("{g}@{n}"), format!("{v:?}"))),
    );
    out
}

/// Asserts that two runs wrote the same datasets and attributes, naming
/// the first that differs.
pub(crate) fn assert_same_contents(a: &MemoryStore, b: &MemoryStore) {
    let (a, b) = (contents(a), contents(b));
    assert_eq!(a.len(), b.len());
    for ((pa, va), (pb, vb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert!(va == vb, "{pa} differs after pausing");
    }
}

/// A float field of a table.
pub(crate) fn field(table: &Table, name: &str) -> f64 {
    match table.get(name) {
        Some(Cell::Float(v)) => *v,
        Some(Cell::Int(v)) => *v as f64,
        other => panic!("field {name}: {other:?}"),
    }
}

/// The value in column `column` of the row whose first shown cell (or
/// whose `param`/`state` cell) is `row`.
pub(crate) fn cell(table: &Table, row: &str, column: &str) -> f64 {
    let c = table
        .columns
        .iter()
        .position(|c| c.name == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let r = table
        .rows
        .iter()
        .find(|r| r.cells.iter().any(|c| *c == Cell::Text(row.into())))
        .unwrap_or_else(|| panic!("no row {row}"));
    match &r.cells[c] {
        Cell::Float(v) => *v,
        Cell::Int(v) => *v as f64,
        other => panic!("{row}/{column}: {other:?}"),
    }
}

/// The names of a table's rows (the cells of its column `key`).
pub(crate) fn row_names(table: &Table, key: &str) -> Vec<String> {
    let c = table
        .columns
        .iter()
        .position(|c| c.name == key)
        .unwrap_or_else(|| panic!("no column {key}"));
    table
        .rows
        .iter()
        .filter(|r| r.shown.table)
        .map(|r| match &r.cells[c] {
            Cell::Text(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}
