//! `kind = "paths"`: many independent sample paths of a stochastic process
//! per state (a Markov chain, a random walk, the M/M/1 queue, Poisson
//! counts, geometric Brownian motion, Ornstein–Uhlenbeck, or a user's
//! process from a plugin library or a Python file). A task is a chunk of consecutive paths of one
//! state; path i follows its own stream keyed (seed, paths, state, i), so
//! any path can be recomputed alone, and each chunk's partial sums go to
//! the chunk's own row, merged in chunk order at the end: the file is the
//! same bit for bit whatever the ranks × threads and whatever pauses
//! happened, and a rank holds one chunk's sums (and at most
//! [`ROW_VALUES`] stored values) per thread. Chunks are tasks chunk after
//! chunk (the states of each in turn) and their size never depends on
//! `paths`, so a run asking for more paths goes on from a complete one
//! (`Job::extend`: only each state's last chunk grows) to the file it would
//! have written from the start.
//!
//! Output, per state, in `/paths/<state>` (attributes `process`, `paths`,
//! `steps`, `every`, `record`, `labels`, `hitting`, `absorbing`,
//! `quantiles`): `times` (the model time of each recorded step), with
//! statistics `partials` (a row per chunk), `statistics` (per recorded
//! time: mean, sd, se), for a finite state space `occupation` and
//! `occupation_se` (per recorded time and state) and `quantiles`, with a
//! target set `hitting` (hit, mean, sd, se, never, never_se), for a chain
//! with absorbing states `absorption` (per absorbing state: probability by
//! the last step, se), where times are random (the queue) `time_statistics`
//! (per recorded step: mean, sd, se of its time); with paths `states`
//! (paths × recorded times; integers for discrete processes, `i64::MIN`
//! where a path has not run) and, where times are random, `path_times`.

mod exact;
pub mod process;
pub mod spec;
mod stats;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

pub use spec::Spec;
pub(crate) use spec::{resolve, RawSampler, RawState, StateKeys};

use self::process::{recorded_steps, Process, Simulator};
use self::stats::{
    quantiles_of_counts, share_se, Histogram, Partial, Shape, HITTING, MOMENTS, PILOT_PATHS,
};
use crate::jobs::summary::{SummaryError, SummaryOptions};
use crate::jobs::{
    Chunks, EmitClock, Extension, Job, JobError, Kind, Outcome, Plan, RunSpec, TaskContext,
    TaskError, TaskId,
};
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Reader, Record, Store};
use crate::table::{Cell, Column as TableColumn, Shown, Table};

/// What a path not run yet holds in an integer `states` dataset.
pub const NOT_RUN: i64 = i64::MIN;
/// Stored path values a task holds at most before emitting them.
pub const ROW_VALUES: usize = 1 << 17;
/// Values read at once when merging partial sums.
const READ_VALUES: u64 = 1 << 22;
/// Rows of the per-time table shown in the fixed-width report (CSV and
/// JSON have every recorded time).
const SHOWN_TIMES: usize = 21;

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(PathsJob::new(spec))
}

/// The datasets of one state (`None`: not recorded).
#[derive(Debug, Clone, Copy, Default)]
struct StateSets {
    partials: Option<usize>,
    statistics: Option<usize>,
    occupation: Option<(usize, usize)>,
    quantiles: Option<usize>,
    hitting: Option<usize>,
    absorption: Option<usize>,
    time_statistics: Option<usize>,
    /// A continuous value's quantiles: their standard errors, and the
    /// histogram's lower edge and bin width per recorded time.
    quantiles_se: Option<usize>,
    quantile_bins: Option<usize>,
    /// The hitting step's quantiles.
    hitting_quantiles: Option<usize>,
    states: Option<usize>,
    path_times: Option<usize>,
}

pub struct PathsJob {
    spec: Arc<RunSpec>,
    layout: Layout,
    sets: Vec<StateSets>,
    chunks: Chunks,
    recorded: Vec<u64>,
    /// Made on first use in this process, shared by its tasks.
    simulators: Vec<OnceLock<Result<Simulator, String>>>,
    /// Each continuous state's histogram bins, from its first paths.
    histograms: Vec<OnceLock<Result<Histogram, String>>>,
}

fn settings(spec: &RunSpec) -> &Spec {
    match &spec.sampler {
        crate::jobs::SamplerSpec::Paths(s) => s,
        _ => unreachable!("a paths job is built from a paths spec"),
    }
}

/// One path as the run computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct OnePath {
    /// Its value at each recorded step.
    pub values: Vec<f64>,
    /// The time of each recorded step where times are random, else empty.
    pub times: Vec<f64>,
    /// The first step at which it is in the target set.
    pub hit: Option<u64>,
}

/// A task's state between pauses: the next path and the sums so far. A
/// chunk done keeps `next` (its end) with no sums (an empty
/// `partial.mean`, which sums always have): they are its row of
/// `partials`, where a run with more paths reads them ([`Job::extend`]).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    next: u64,
    partial: Partial,
}

impl PathsJob {
    pub fn new(spec: Arc<RunSpec>) -> Self {
        let s = settings(&spec).clone();
        let recorded = recorded_steps(s.steps, s.every);
        let r = recorded.len();
        // Chunk after chunk, so that a run with more paths has the same
        // tasks first (`Job::extend`).
        let chunks = Chunks::interleaved(s.states.len(), s.paths, s.chunk);
        let mut layout = Layout::default();
        let mut sets = Vec::new();
        for (i, (st, p)) in spec.states.iter().zip(&s.states).enumerate() {
            let g = format!("paths/{}", st.name);
            let process = &p.process;
            let timed = process.random_times();
            let labels = process.labels();
            let k = labels.len();
            let absorbing = process.absorbing();
            let mut attrs = vec![
                ("state".into(), Attr::Str(st.name.clone())),
                ("kind".into(), Attr::Str("paths".into())),
                ("process".into(), Attr::Str(process.name().into())),
                ("paths".into(), Attr::U64(s.paths)),
                ("steps".into(), Attr::U64(s.steps)),
                ("every".into(), Attr::U64(s.every)),
                (
                    "record".into(),
                    Attr::Str(
                        match s.record {
                            spec::Record::Statistics => "statistics",
                            spec::Record::Paths => "paths",
                            spec::Record::Both => "both",
                        }
                        .into(),
                    ),
                ),
                ("chunk".into(), Attr::U64(s.chunk)),
            ];
            if k > 0 {
                attrs.push(("labels".into(), Attr::Strs(labels.clone())));
                attrs.push(("quantiles".into(), Attr::F64s(s.quantiles.clone())));
            }
            if !p.hitting.is_empty() {
                attrs.push(("hitting".into(), Attr::Strs(target_labels(process, &p.hitting))));
            }
            if !absorbing.is_empty() {
                let names = absorbing.iter().map(|&a| labels[a].clone()).collect();
                attrs.push(("absorbing".into(), Attr::Strs(names)));
            }
            layout.group(&g, attrs);
            let times: Vec<f64> = recorded.iter().map(|&t| process.time(t)).collect();
            layout.add(
                DatasetDecl::fixed(format!("{g}/times"), Dtype::F64, vec![], r as u64)
                    .with_init(Column::F64(times)),
            );
            let fixed = |name: &str, shape: Vec<usize>, rows: u64| {
                DatasetDecl::fixed(format!("{g}/{name}"), Dtype::F64, shape, rows)
            };
            let mut d = StateSets::default();
            if s.record.statistics() {
                let width = spec::shape(process, &p.hitting, r, &s.quantiles).width();
                let partials = fixed("partials", vec![width], chunks.tasks_of(i));
                d.partials = Some(layout.add(partials.with_resizable_rows()));
                d.statistics = Some(layout.add(fixed("statistics", vec![3], r as u64)));
                if k > 0 {
                    d.occupation = Some((
                        layout.add(fixed("occupation", vec![k], r as u64)),
                        layout.add(fixed("occupation_se", vec![k], r as u64)),
                    ));
                }
                let nq = s.quantiles.len();
                if nq > 0 {
                    d.quantiles = Some(layout.add(fixed("quantiles", vec![nq], r as u64)));
                    if k == 0 {
                        d.quantiles_se = Some(layout.add(fixed("quantiles_se", vec![nq], r as u64)));
                        d.quantile_bins = Some(layout.add(fixed("quantile_bins", vec![2], r as u64)));
                    }
                }
                if !p.hitting.is_empty() {
                    d.hitting = Some(layout.add(fixed("hitting", vec![6], 1)));
                    if nq > 0 {
                        d.hitting_quantiles =
                            Some(layout.add(fixed("hitting_quantiles", vec![nq], 1)));
                    }
                }
                if !absorbing.is_empty() {
                    d.absorption =
                        Some(layout.add(fixed("absorption", vec![2], absorbing.len() as u64)));
                }
                if timed {
                    d.time_statistics = Some(layout.add(fixed("time_statistics", vec![3], r as u64)));
                }
            }
            if s.record.paths() {
                let decl = if process.discrete() {
                    DatasetDecl::fixed(format!("{g}/states"), Dtype::I64, vec![r], s.paths)
                        .with_int_fill(NOT_RUN)
                } else {
                    fixed("states", vec![r], s.paths)
                };
                d.states = Some(layout.add(decl.with_resizable_rows()));
                if timed {
                    let times = fixed("path_times", vec![r], s.paths).with_resizable_rows();
                    d.path_times = Some(layout.add(times));
                }
            }
            sets.push(d);
        }
        let count = spec.states.len();
        Self {
            spec,
            layout,
            sets,
            chunks,
            recorded,
            simulators: (0..count).map(|_| OnceLock::new()).collect(),
            histograms: (0..count).map(|_| OnceLock::new()).collect(),
        }
    }

    fn settings(&self) -> &Spec {
        settings(&self.spec)
    }

    fn simulator(&self, s: usize) -> Result<&Simulator, String> {
        self.simulators[s]
            .get_or_init(|| {
                let p = &self.settings().states[s];
                Simulator::new(
                    &p.process,
                    &self.spec.states[s].name,
                    self.settings().steps,
                    self.recorded.clone(),
                    &p.hitting,
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Path `path` of state `s` computed alone, as the run computes it:
    /// its value at each recorded step, their times where times are random
    /// (empty otherwise), and its hitting step.
    pub fn path(&self, s: usize, path: u64) -> Result<OnePath, String> {
        let mut values = vec![0.0; self.recorded.len()];
        let mut times = vec![0.0; self.timed_len(s)];
        let mut rng = Kind::Paths.streams(self.spec.seed, 0, s as u64).stream(path);
        let hit = self.simulator(s)?.path(&mut rng, &mut values, &mut times)?;
        Ok(OnePath { values, times, hit })
    }

    /// The recorded times of a path of state `s` whose times are random;
    /// 0 when they are not.
    fn timed_len(&self, s: usize) -> usize {
        if self.settings().states[s].process.random_times() {
            self.recorded.len()
        } else {
            0
        }
    }

    /// What a chunk's partial sums of state `s` hold.
    fn shape(&self, s: usize) -> Shape {
        let spec = self.settings();
        let p = &spec.states[s];
        spec::shape(&p.process, &p.hitting, self.recorded.len(), &spec.quantiles)
    }

    /// The histogram bins of continuous state `s`: over twice the range of
    /// its first paths at each recorded time (the same on every rank).
    fn histogram(&self, s: usize) -> Result<&Histogram, String> {
        self.histograms[s]
            .get_or_init(|| {
                let pilot = self.settings().paths.min(PILOT_PATHS);
                let mut values = Vec::with_capacity(pilot as usize * self.recorded.len());
                for i in 0..pilot {
                    let path = self.path(s, i).map_err(|e| {
                        format!("path {i} (of the first paths, which set the quantiles' bins): {e}")
                    })?;
                    values.extend(path.values);
                }
                Ok(Histogram::from_pilot(&values, self.recorded.len()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether state `s`'s values are counted in the bins of a histogram
    /// (statistics with quantiles of an unbounded space).
    fn binned(&self, s: usize) -> bool {
        self.sets[s].partials.is_some() && self.shape(s).bins > 0 && self.states_of(s) == 0
    }

    /// The exact answers of state `s`, where the process has them.
    fn exact(&self, s: usize) -> exact::Exact {
        let spec = self.settings();
        let p = &spec.states[s];
        exact::exact(&p.process, spec.steps, &self.recorded, &p.hitting, &spec.quantiles)
    }

    /// Value − offset is the state index of a finite space.
    fn offset(&self, s: usize) -> i64 {
        match &self.settings().states[s].process {
            Process::RandomWalk {
                bounds: Some((lo, _)),
                ..
            } => *lo,
            _ => 0,
        }
    }

    fn states_of(&self, s: usize) -> usize {
        self.settings().states[s]
            .process
            .finite_values()
            .map_or(0, |v| v.len())
    }

    /// Every chunk's partial sums of state `s`, merged in chunk order.
    fn merged(&self, s: usize, store: &mut dyn Store) -> Result<Partial, JobError> {
        let dataset = self.sets[s].partials.expect("statistics are recorded");
        let shape = self.shape(s);
        let width = shape.width() as u64;
        let rows = self.chunks.tasks_of(s);
        let block = (READ_VALUES / width).max(1);
        let mut all = Partial::new(shape);
        let mut first = 0;
        while first < rows {
            let end = (first + block).min(rows);
            let values = store.read_f64(dataset, first..end, None)?;
            for (c, row) in values.chunks_exact(width as usize).enumerate() {
                if row[0].is_nan() {
                    return Err(JobError::Other(format!(
                        "paths: state `{}`: chunk {} has no partial sums",
                        self.spec.states[s].name,
                        first + c as u64
                    )));
                }
                all.merge(&Partial::from_row(row, shape));
            }
            first = end;
        }
        Ok(all)
    }

    /// The tables of state `s` from its datasets, read through `read`
    /// (the store at the end of a run, the file in `sampo summary`).
    fn tables<E>(
        &self,
        s: usize,
        read: &mut dyn FnMut(usize) -> Result<Vec<f64>, E>,
    ) -> Result<Vec<Table>, E> {
        let spec = self.settings();
        let st = &self.spec.states[s];
        let p = &spec.states[s];
        let sets = self.sets[s];
        let mut tables = Vec::new();
        let Some(statistics) = sets.statistics else {
            return Ok(tables);
        };
        let exact = self.exact(s);
        let labels = p.process.labels();
        let moments = read(statistics)?;
        let quantiles = match sets.quantiles {
            Some(q) => read(q)?,
            None => Vec::new(),
        };
        let times = match sets.time_statistics {
            Some(t) => read(t)?,
            None => Vec::new(),
        };
        let nq = spec.quantiles.len();
        let r = self.recorded.len();
        let mut t = Table::new("states", "times")
            .title(format!(
                "state `{}`: {} paths of {} ({} steps), statistics every {}",
                st.name,
                spec.paths,
                p.process.name(),
                spec.steps,
                spec.every
            ))
            .field("state", st.name.as_str())
            .field("process", p.process.name())
            .field("paths", spec.paths)
            .field("steps", spec.steps)
            .column(TableColumn::new("step"))
            .column(TableColumn::new("time").sci(5));
        for m in MOMENTS {
            t = t.column(TableColumn::new(m).sci(5));
        }
        if exact.moments.is_some() {
            t = t.column(TableColumn::new("exact").sci(5));
        }
        if !quantiles.is_empty() {
            for q in &spec.quantiles {
                t = t.column(TableColumn::new(format!("q{q}")).sci(5));
            }
        }
        if !times.is_empty() {
            t = t
                .column(TableColumn::new("time_mean").sci(5))
                .column(TableColumn::new("time_se").sci(2));
            if exact.time_mean.is_some() {
                t = t.column(TableColumn::new("time_exact").sci(5));
            }
        }
        // The fixed-width table shows about SHOWN_TIMES rows, the last included.
        let stride = r.div_ceil(SHOWN_TIMES).max(1);
        for (i, &step) in self.recorded.iter().enumerate() {
            let mut cells = vec![Cell::from(step), Cell::from(p.process.time(step))];
            cells.extend(moments[3 * i..3 * i + 3].iter().map(|&v| Cell::from(v)));
            if let Some(m) = &exact.moments {
                cells.push(Cell::from(m[i][0]));
            }
            if !quantiles.is_empty() {
                cells.extend(quantiles[nq * i..nq * (i + 1)].iter().map(|&v| Cell::from(v)));
            }
            if !times.is_empty() {
                cells.extend([Cell::from(times[3 * i]), Cell::from(times[3 * i + 2])]);
                if let Some(m) = &exact.time_mean {
                    cells.push(Cell::from(m[i]));
                }
            }
            let shown = if i % stride == 0 || i + 1 == r {
                Shown::ALL
            } else {
                Shown::DATA
            };
            t.push_shown(cells, shown);
        }
        if stride > 1 {
            t = t.note(format!(
                "every {stride}th recorded time shown; all in /paths/{}/statistics",
                st.name
            ));
        }
        if exact.moments.is_some() {
            t = t.note("exact: the process's exact mean at that step");
        }
        if sets.quantile_bins.is_some() {
            t = t.note(format!(
                "quantiles from {} bins per time over twice the range of the first paths: \
                 within a bin (/paths/{}/quantile_bins) of the sample quantile; se in \
                 quantiles_se",
                stats::BINS,
                st.name
            ));
        }
        tables.push(t);
        if let Some((occupation, se)) = sets.occupation {
            let (share, se) = (read(occupation)?, read(se)?);
            let k = labels.len();
            let last = (r - 1) * k;
            let mut t = Table::new("final", "states")
                .title(format!(
                    "state `{}`: distribution at step {}",
                    st.name, spec.steps
                ))
                .field("state", st.name.as_str())
                .column(TableColumn::new("label"))
                .column(TableColumn::new("share").fixed(5))
                .column(TableColumn::new("se").sci(2));
            if exact.occupation.is_some() {
                t = t.column(TableColumn::new("exact").fixed(5));
            }
            for (j, l) in labels.iter().enumerate() {
                let mut cells = vec![
                    Cell::from(l.as_str()),
                    Cell::from(share[last + j]),
                    Cell::from(se[last + j]),
                ];
                if let Some(o) = &exact.occupation {
                    cells.push(Cell::from(o[last + j]));
                }
                t.push(cells);
            }
            tables.push(t);
        }
        if let Some(hitting) = sets.hitting {
            let h = read(hitting)?;
            let target = target_labels(&p.process, &p.hitting).join(", ");
            let mut t = Table::new("hitting", "targets")
                .title(format!(
                    "state `{}`: first step in {{{target}}} (mean, sd over the paths that hit by \
                     step {})",
                    st.name, spec.steps
                ))
                .field("state", st.name.as_str())
                .column(TableColumn::new("target"));
            for name in HITTING {
                let c = TableColumn::new(name);
                t = t.column(if name == "hit" { c } else { c.sci(5) });
            }
            if exact.hitting.is_some() {
                t = t
                    .column(TableColumn::new("exact_mean").sci(5))
                    .column(TableColumn::new("exact_never").sci(5));
            }
            let hq = match sets.hitting_quantiles {
                Some(q) => read(q)?,
                None => Vec::new(),
            };
            if !hq.is_empty() {
                for q in &spec.quantiles {
                    t = t.column(TableColumn::new(format!("q{q}")));
                }
            }
            let mut cells = vec![Cell::from(target.as_str()), Cell::from(h[0] as u64)];
            cells.extend(h[1..].iter().map(|&v| Cell::from(v)));
            if let Some([mean, _, never]) = exact.hitting {
                cells.extend([Cell::from(mean), Cell::from(never)]);
            }
            cells.extend(hq.iter().map(|&v| Cell::from(v)));
            t.push(cells);
            tables.push(t);
        }
        if let Some(absorption) = sets.absorption {
            let a = read(absorption)?;
            let mut t = Table::new("absorption", "absorbing")
                .title(format!(
                    "state `{}`: absorbed by step {}",
                    st.name, spec.steps
                ))
                .field("state", st.name.as_str())
                .column(TableColumn::new("label"))
                .column(TableColumn::new("probability").fixed(5))
                .column(TableColumn::new("se").sci(2));
            if exact.absorption.is_some() {
                t = t.column(TableColumn::new("exact").fixed(5));
            }
            for (j, &i) in p.process.absorbing().iter().enumerate() {
                let mut cells = vec![
                    Cell::from(labels[i].as_str()),
                    Cell::from(a[2 * j]),
                    Cell::from(a[2 * j + 1]),
                ];
                if let Some(e) = &exact.absorption {
                    cells.push(Cell::from(e[j]));
                }
                t.push(cells);
            }
            tables.push(t);
        }
        Ok(tables)
    }
}

/// The labels of a target set.
fn target_labels(process: &Process, targets: &[i64]) -> Vec<String> {
    match process {
        Process::MarkovChain { labels, .. } => {
            targets.iter().map(|&t| labels[t as usize].clone()).collect()
        }
        _ => targets.iter().map(i64::to_string).collect(),
    }
}

/// Stored values a chunk holds until it emits them: consecutive paths.
struct Rows {
    first: u64,
    ints: Vec<i64>,
    floats: Vec<f64>,
    /// The paths' times, where they are random.
    times: Vec<f64>,
}

impl Rows {
    fn len(&self) -> usize {
        self.ints.len() + self.floats.len() + self.times.len()
    }

    /// The rows held, as records of `states` (and `path_times`), emptied.
    fn records(&mut self, sets: &StateSets, width: usize) -> Vec<Record> {
        let values = if self.ints.is_empty() {
            Column::F64(std::mem::take(&mut self.floats))
        } else {
            Column::I64(std::mem::take(&mut self.ints))
        };
        let times = std::mem::take(&mut self.times);
        let rows = (values.len() / width) as u64;
        let Some(states) = sets.states.filter(|_| rows > 0) else {
            return Vec::new();
        };
        let record = |dataset, values| Record {
            dataset,
            first_row: self.first,
            rows,
            lane: None,
            values,
        };
        let mut out = vec![record(states, values)];
        if let Some(d) = sets.path_times {
            out.push(record(d, Column::F64(times)));
        }
        self.first += rows;
        out
    }
}

impl Job for PathsJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn plan(&self, _stage: u32) -> Plan {
        // Every path costs alike.
        self.chunks.plan(|_| 1.0)
    }

    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        let (s, chunk) = self.chunks.task_of(task.index);
        let st = &self.spec.states[s];
        let sets = self.sets[s];
        let fail = |message: String| {
            TaskError::Failed(format!(
                "paths: state `{}`, chunk {chunk} (seed {}): {message}",
                st.name, self.spec.seed
            ))
        };
        let items = self.chunks.items_of(s, chunk);
        let r = self.recorded.len();
        let timed = self.timed_len(s);
        let shape = self.shape(s);
        let Snapshot { next, mut partial } = match resume {
            Some(bytes) => postcard::from_bytes(bytes)
                .map_err(|e| fail(format!("undecodable snapshot: {e}")))?,
            None => Snapshot {
                next: items.start,
                partial: Partial::new(shape),
            },
        };
        let sim = self.simulator(s).map_err(fail)?;
        let key = Kind::Paths.streams(self.spec.seed, 0, s as u64);
        let offset = self.offset(s);
        let discrete = self.settings().states[s].process.discrete();
        let statistics = sets.partials.is_some();
        // How each recorded value is counted: its state, its histogram bin.
        let histogram = if self.binned(s) {
            Some(self.histogram(s).map_err(fail)?)
        } else {
            None
        };
        let mut bins = vec![0usize; if statistics { shape.bins.min(1) * r } else { 0 }];
        let mut rows = Rows {
            first: next,
            ints: Vec::new(),
            floats: Vec::new(),
            times: Vec::new(),
        };
        let emit_rows = |rows: &mut Rows, cx: &mut TaskContext<'_>| -> Result<(), TaskError> {
            let records = rows.records(&sets, r);
            if records.is_empty() {
                return Ok(());
            }
            cx.emit_all(records)
        };
        let mut values = vec![0.0; r];
        let mut times = vec![0.0; timed];
        let mut clock = EmitClock::default();
        let mut done = 0u64;
        for path in next..items.end {
            if cx.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if path > next && cx.pause_requested() {
                emit_rows(&mut rows, cx)?;
                cx.add_progress(done);
                cx.evaluations = path - next;
                let bytes = postcard::to_stdvec(&Snapshot { next: path, partial })
                    .map_err(|e| fail(format!("cannot snapshot: {e}")))?;
                return Ok(Outcome::Yielded(bytes));
            }
            let hit = sim
                .path(&mut key.stream(path), &mut values, &mut times)
                .map_err(|m| {
                    TaskError::Failed(format!(
                        "paths: state `{}`, path {path} (seed {}): {m}",
                        st.name, self.spec.seed
                    ))
                })?;
            if statistics {
                match histogram {
                    Some(h) => {
                        for (i, (b, &v)) in bins.iter_mut().zip(&values).enumerate() {
                            *b = h.bin(i, v);
                        }
                    }
                    None => {
                        for (b, &v) in bins.iter_mut().zip(&values) {
                            *b = (v as i64 - offset) as usize;
                        }
                    }
                }
                let recorded = &self.recorded;
                let hit = hit.map(|t| (t, recorded.partition_point(|&x| x < t)));
                partial.add(&values, &bins, &times, hit);
            }
            if sets.states.is_some() {
                if discrete {
                    rows.ints.extend(values.iter().map(|&v| v as i64));
                } else {
                    rows.floats.extend_from_slice(&values);
                }
                rows.times.extend_from_slice(&times);
            }
            done += 1;
            if rows.len() >= ROW_VALUES || clock.due() {
                emit_rows(&mut rows, cx)?;
                cx.add_progress(done);
                done = 0;
            }
        }
        let mut records = rows.records(&sets, r);
        if let Some(d) = sets.partials {
            records.push(Record {
                dataset: d,
                first_row: chunk,
                rows: 1,
                lane: None,
                values: Column::F64(partial.to_row()),
            });
        }
        cx.emit_all(records)?;
        cx.add_progress(done);
        cx.evaluations = items.end - next;
        // Its end, for a run with more paths: a few bytes.
        let last = Snapshot {
            next: items.end,
            partial: Partial::default(),
        };
        postcard::to_stdvec(&last)
            .map(Outcome::Final)
            .map_err(|e| fail(format!("cannot snapshot: {e}")))
    }

    fn extends(&self, old: &RunSpec) -> Result<(), String> {
        let crate::jobs::SamplerSpec::Paths(old) = &old.sampler else {
            return Err("the run was not of kind = \"paths\"".into());
        };
        let new = self.settings();
        if new.paths < old.paths {
            return Err(format!(
                "paths {} → {}: a run can be extended, not shortened",
                old.paths, new.paths
            ));
        }
        let mut same = old.clone();
        same.paths = new.paths;
        if same != *new {
            return Err(
                "only paths may change when a run of kind = \"paths\" is extended".into(),
            );
        }
        // The bins of a continuous value's quantiles come from the first
        // paths: the run's own were fewer than the longer run's.
        if old.paths < PILOT_PATHS.min(new.paths) {
            if let Some(s) = (0..self.spec.states.len()).find(|&s| self.binned(s)) {
                return Err(format!(
                    "state `{}`: its quantiles are read from histograms whose bins are set by \
                     the first {PILOT_PATHS} paths, and the run has {}: run the {} paths \
                     afresh (or ask for no quantiles)",
                    self.spec.states[s].name, old.paths, new.paths
                ));
            }
        }
        Ok(())
    }

    fn extend(
        &self,
        task: TaskId,
        snapshot: &[u8],
        store: &mut dyn Store,
    ) -> Result<Extension, JobError> {
        let (s, chunk) = self.chunks.task_of(task.index);
        let items = self.chunks.items_of(s, chunk);
        let snap: Snapshot = postcard::from_bytes(snapshot)
            .map_err(|e| JobError::Other(format!("undecodable snapshot: {e}")))?;
        if snap.next >= items.end {
            return Ok(Extension::Done);
        }
        if !snap.partial.mean.is_empty() {
            // Paused within the chunk: it goes on as it would have.
            return Ok(Extension::Ready(snapshot.to_vec()));
        }
        // The last chunk of a state, done, now longer: it goes on from its
        // row of sums, path after path, as the longer run's chunk does.
        let partial = match self.sets[s].partials {
            Some(d) => {
                let row = store.read_f64(d, chunk..chunk + 1, None)?;
                if row.first().is_none_or(|n| n.is_nan()) {
                    return Err(JobError::Other(format!(
                        "paths: state `{}`: chunk {chunk} has no partial sums",
                        self.spec.states[s].name
                    )));
                }
                Partial::from_row(&row, self.shape(s))
            }
            None => Partial::new(self.shape(s)),
        };
        let next = Snapshot {
            next: snap.next,
            partial,
        };
        postcard::to_stdvec(&next)
            .map(Extension::Ready)
            .map_err(|e| JobError::Other(format!("cannot snapshot: {e}")))
    }

    fn finish_stage(&self, _stage: u32, store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        let r = self.recorded.len() as u64;
        for s in 0..self.spec.states.len() {
            let sets = self.sets[s];
            let Some(statistics) = sets.statistics else {
                continue;
            };
            let all = self.merged(s, store)?;
            let mut write = |dataset: usize, rows: u64, values: Vec<f64>| {
                store.write(Record {
                    dataset,
                    first_row: 0,
                    rows,
                    lane: None,
                    values: Column::F64(values),
                })
            };
            write(statistics, r, all.moments().concat())?;
            let p = &self.settings().states[s].process;
            if let Some((occupation, occupation_se)) = sets.occupation {
                let (share, se) = all.occupation();
                let k = share.len() / r as usize;
                if let Some(q) = sets.quantiles {
                    let values = p.finite_values().unwrap_or_default();
                    let qs: Vec<f64> = all
                        .counts
                        .chunks_exact(k)
                        .flat_map(|c| quantiles_of_counts(c, &values, &self.settings().quantiles))
                        .collect();
                    write(q, r, qs)?;
                }
                if let Some(a) = sets.absorption {
                    let last = (r as usize - 1) * k;
                    let abs = p.absorbing();
                    let values = abs
                        .iter()
                        .flat_map(|&i| [share[last + i], share_se(share[last + i], all.n)])
                        .collect();
                    write(a, abs.len() as u64, values)?;
                }
                write(occupation, r, share)?;
                write(occupation_se, r, se)?;
            }
            if let (Some(q), Some(se), Some(edges)) =
                (sets.quantiles, sets.quantiles_se, sets.quantile_bins)
            {
                let h = self.histogram(s).map_err(JobError::Other)?;
                let k = Histogram::bins();
                let (mut qs, mut ses) = (Vec::new(), Vec::new());
                for (i, counts) in all.counts.chunks_exact(k).enumerate() {
                    let (q, se) = h.quantiles(i, counts, &self.settings().quantiles);
                    qs.extend(q);
                    ses.extend(se);
                }
                write(q, r, qs)?;
                write(se, r, ses)?;
                let lo_width = h.lo.iter().zip(&h.width).flat_map(|(a, b)| [*a, *b]).collect();
                write(edges, r, lo_width)?;
            }
            if let Some(h) = sets.hitting {
                write(h, 1, all.hitting().to_vec())?;
            }
            if let Some(q) = sets.hitting_quantiles {
                let steps: Vec<i64> = self.recorded.iter().map(|&t| t as i64).collect();
                let qs = quantiles_of_counts(&all.hit_counts, &steps, &self.settings().quantiles);
                write(q, 1, qs)?;
            }
            if let Some(t) = sets.time_statistics {
                write(t, r, all.time_moments().concat())?;
            }
        }
        Ok(Vec::new())
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = self.settings();
        let record = match s.record {
            spec::Record::Statistics => "statistics",
            spec::Record::Paths => "every path",
            spec::Record::Both => "every path and statistics",
        };
        writeln!(
            out,
            "kind      paths ({} paths × {} steps per state, {} paths per task; records {record} \
             every {} steps)",
            s.paths, s.steps, s.chunk, s.every
        )?;
        for (st, p) in self.spec.states.iter().zip(&s.states) {
            let space = match p.process.finite_values() {
                Some(v) => format!("{} states", v.len()),
                None => "unbounded".into(),
            };
            writeln!(out, "state     `{}`: {} ({space})", st.name, p.process.name())?;
        }
        Ok(())
    }

    fn work(&self) -> (u64, &'static str) {
        let s = self.settings();
        (s.paths * s.states.len() as u64, "paths")
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        let mut tables = Vec::new();
        for s in 0..self.spec.states.len() {
            let layout = &self.layout;
            let mut read = |d: usize| {
                let rows = layout.datasets[d].rows.unwrap_or(0);
                store.read_f64(d, 0..rows, None)
            };
            tables.extend(self.tables(s, &mut read)?);
        }
        crate::table::write_fixed(out, &tables)?;
        Ok(())
    }

    fn summary(
        &self,
        file: &dyn Reader,
        options: &SummaryOptions,
    ) -> Result<Vec<Table>, SummaryError> {
        let mut tables = Vec::new();
        for (s, st) in self.spec.states.iter().enumerate() {
            if !options.wants(&st.name) {
                continue;
            }
            let mut read = |d: usize| {
                file.read_f64(&self.layout.datasets[d].path, None, None)
            };
            tables.extend(self.tables(s, &mut read)?);
        }
        Ok(tables)
    }
}
