//! `kind = "batch"`: a forward model evaluated once at every point of a
//! design — Monte Carlo uncertainty studies, parameter sweeps, training
//! sets. A task is a chunk of consecutive items of one state; every item's
//! point comes from the design alone (`design`) and its results go to its
//! own row, so the file is the same bit for bit whatever the ranks ×
//! threads and whatever pauses happened, and a rank holds one chunk at a
//! time.
//!
//! Output, per state, in `/batch/<state>` (attributes `params`, `outputs`,
//! `items`, `design`): `inputs` (items × parameters), `outputs` (items ×
//! outputs; NaN where an item failed), `status` (items; 0 where it
//! succeeded, the model's status where it failed, −1 where it has not run
//! yet), `messages` (items; what a failed
//! item's model said, with `on_error = "record"`), and at the end
//! `statistics` (a row per statistic of attribute `statistics`: count,
//! mean, sd, min, the quantiles, max; a column per output), and with
//! `validate` the largest differences found (`validated`,
//! `validate_max_abs`, `validate_max_rel`).

mod design;
pub mod spec;
pub mod stats;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::sync::{Arc, OnceLock};

pub use spec::Spec;
pub(crate) use spec::{resolve, RawSampler, RawState, StateKeys};

use self::design::Points;
use self::spec::OnError;
use crate::jobs::summary::{SummaryError, SummaryOptions};
use crate::jobs::{
    Chunks, EmitClock, Job, JobError, Kind, Outcome, Plan, RunSpec, TaskContext, TaskError,
    TaskId,
};
use crate::model::{Forward, Prior};
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Reader, Record, Store};
use crate::spec::NAME_MAX;
use crate::table::{Cell, Column as TableColumn, Table};

/// Outputs differing from a sequential re-run by more than this, relative,
/// fail validation.
pub const VALIDATE_RTOL: f64 = 1e-10;

/// The status of an item not evaluated yet (a run still going, or killed).
pub const NOT_RUN: i64 = -1;

/// Values read at once when computing statistics (every column of a block
/// of items).
const READ_VALUES: u64 = 1 << 22;

pub fn job(spec: Arc<RunSpec>) -> Box<dyn Job> {
    Box::new(BatchJob::new(spec))
}

#[derive(Debug, Clone, Copy)]
struct StateSets {
    inputs: usize,
    outputs: usize,
    status: usize,
    messages: usize,
    statistics: usize,
}

pub struct BatchJob {
    spec: Arc<RunSpec>,
    layout: Layout,
    sets: Vec<StateSets>,
    chunks: Chunks,
    priors: Vec<Option<Prior>>,
    /// Made on first use in this process, shared by its tasks.
    forwards: Vec<OnceLock<Result<Forward, String>>>,
    points: Vec<OnceLock<Result<Points, String>>>,
}

fn settings(spec: &RunSpec) -> &Spec {
    match &spec.sampler {
        crate::jobs::SamplerSpec::Batch(s) => s,
        _ => unreachable!("a batch job is built from a batch spec"),
    }
}

impl BatchJob {
    pub fn new(spec: Arc<RunSpec>) -> Self {
        let s = settings(&spec).clone();
        let mut layout = Layout::default();
        let mut sets = Vec::new();
        for (st, b) in spec.states.iter().zip(&s.states) {
            let g = format!("batch/{}", st.name);
            let (d, n) = (st.dim(), b.outputs.len());
            layout.group(
                &g,
                vec![
                    ("state".into(), Attr::Str(st.name.clone())),
                    ("kind".into(), Attr::Str("batch".into())),
                    ("params".into(), Attr::Strs(st.params.clone())),
                    ("outputs".into(), Attr::Strs(b.outputs.clone())),
                    ("items".into(), Attr::U64(b.items)),
                    ("design".into(), Attr::Str(s.design.name().into())),
                    (
                        "statistics".into(),
                        Attr::Strs(stats::names(&s.quantiles)),
                    ),
                ],
            );
            let fixed = |name: &str, dtype, shape| {
                DatasetDecl::fixed(format!("{g}/{name}"), dtype, shape, b.items)
            };
            sets.push(StateSets {
                inputs: layout.add(fixed("inputs", Dtype::F64, vec![d])),
                outputs: layout.add(fixed("outputs", Dtype::F64, vec![n])),
                status: layout.add(fixed("status", Dtype::I64, vec![]).with_int_fill(NOT_RUN)),
                messages: layout.add(
                    fixed("messages", Dtype::Str(NAME_MAX), vec![]).with_rare_rows(),
                ),
                statistics: layout.add(DatasetDecl::fixed(
                    format!("{g}/statistics"),
                    Dtype::F64,
                    vec![n],
                    stats::names(&s.quantiles).len() as u64,
                )),
            });
        }
        let priors = s
            .states
            .iter()
            .map(|b| {
                b.prior.as_ref().map(|p| {
                    Prior::from_spec(p).expect("the prior was checked when the spec was read")
                })
            })
            .collect();
        let count = spec.states.len();
        Self {
            spec,
            layout,
            sets,
            chunks: Chunks::new(s.states.iter().map(|b| b.items).collect(), s.chunk),
            priors,
            forwards: (0..count).map(|_| OnceLock::new()).collect(),
            points: (0..count).map(|_| OnceLock::new()).collect(),
        }
    }

    fn settings(&self) -> &Spec {
        settings(&self.spec)
    }

    fn forward(&self, s: usize) -> Result<&Forward, String> {
        let st = &self.spec.states[s];
        let b = &self.settings().states[s];
        self.forwards[s]
            .get_or_init(|| {
                let n = Some(b.outputs.len());
                Forward::build(&b.model, b.plugin.as_ref(), &st.name, st.dim(), false, n)
                    .map(|f| f.with_cost(b.cost_us))
                    .map_err(|e| format!("model.{e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn points(&self, s: usize) -> Result<&Points, String> {
        let st = &self.spec.states[s];
        let items = self.settings().states[s].items;
        self.points[s]
            .get_or_init(|| {
                let key = Kind::Batch.streams(self.spec.seed, 0, s as u64);
                Points::new(
                    &self.settings().design,
                    st,
                    self.priors[s].as_ref(),
                    items,
                    key,
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Re-runs `validate` items of state `s` spread over its design, one at
    /// a time in a model of their own, and compares them with the stored
    /// outputs: the largest (absolute, relative) difference, or the first
    /// item beyond [`VALIDATE_RTOL`].
    fn validate(&self, s: usize, store: &mut dyn Store) -> Result<(f64, f64), JobError> {
        let s_ = self.settings();
        let (st, b, sets) = (&self.spec.states[s], &s_.states[s], self.sets[s]);
        let n = Some(b.outputs.len());
        let fresh = Forward::build(&b.model, b.plugin.as_ref(), &st.name, st.dim(), true, n)
            .map_err(|e| JobError::Other(format!("validation: state `{}`: model.{e}", st.name)))?;
        let points = self.points(s).map_err(JobError::Other)?;
        let (d, n) = (st.dim(), b.outputs.len());
        let (mut x, mut y) = (vec![0.0; d], vec![0.0; n]);
        let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
        for k in 0..s_.validate {
            // Spread evenly, the first and (for two or more) the last.
            let item = if s_.validate == 1 {
                0
            } else {
                k * (b.items - 1) / (s_.validate - 1)
            };
            let status = store.read_f64(sets.status, item..item + 1, None)?;
            if status.first().copied() != Some(0.0) {
                continue; // a failed item has nothing to compare
            }
            points.point(item, &mut x);
            let stored = store.read_f64(sets.outputs, item..item + 1, None)?;
            fresh.forward(&x, &mut y).map_err(|e| {
                JobError::Other(format!(
                    "validation: state `{}`, item {item} at {x:?}: the sequential re-run failed \
                     (status {}): {}",
                    st.name, e.status, e.message
                ))
            })?;
            for (j, (&a, &b)) in stored.iter().zip(&y).enumerate() {
                let abs = (a - b).abs();
                let same = a == b || (a.is_nan() && b.is_nan());
                let rel = if same { 0.0 } else { abs / a.abs().max(b.abs()) };
                let abs = if same { 0.0 } else { abs };
                max_abs = max_abs.max(abs);
                max_rel = max_rel.max(rel);
                if rel.is_nan() || rel > VALIDATE_RTOL {
                    return Err(JobError::Other(format!(
                        "validation failed: state `{}`, item {item} at {x:?}: output {} is {a:e} \
                         in the run but {b:e} when re-run alone (relative difference {rel:e} > \
                         {VALIDATE_RTOL:e}); the model is not deterministic, or not safe the \
                         way it was called (threads, global state)",
                        st.name, self.settings().states[s].outputs[j]
                    )));
                }
            }
        }
        Ok((max_abs, max_rel))
    }

    /// Every statistic of every output of state `s` (statistics × outputs),
    /// from blocks of [`READ_VALUES`] read in a few passes over the outputs
    /// (see [`stats::Streamed`]).
    fn statistics(&self, s: usize, store: &mut dyn Store) -> Result<Vec<f64>, JobError> {
        let b = &self.settings().states[s];
        let quantiles = &self.settings().quantiles;
        let n = b.outputs.len();
        let rows = stats::names(quantiles).len();
        let mut table = vec![f64::NAN; rows * n];
        let block = (READ_VALUES / n.max(1) as u64).max(1);
        let mut streamed = stats::Streamed::new(n, quantiles);
        while streamed.wants_pass() {
            let mut first = 0;
            while first < b.items {
                let end = (first + block).min(b.items);
                streamed.rows(&store.read_f64(self.sets[s].outputs, first..end, None)?);
                first = end;
            }
            streamed.end_pass();
        }
        for (c, column) in streamed.finish().into_iter().enumerate() {
            for (r, v) in column.into_iter().enumerate() {
                table[r * n + c] = v;
            }
        }
        Ok(table)
    }

    /// The table of state `s`'s statistics (`table`: statistics × outputs).
    fn statistics_table(&self, s: usize, table: &[f64], extra: Vec<(String, Cell)>) -> Table {
        let st = &self.spec.states[s];
        let b = &self.settings().states[s];
        let names = stats::names(&self.settings().quantiles);
        let n = b.outputs.len();
        let mut t = Table::new("states", "outputs")
            .title(format!(
                "state `{}`: {} items ({} design), {} outputs",
                st.name,
                b.items,
                self.settings().design.name(),
                n
            ))
            .field("state", st.name.as_str())
            .field("items", b.items);
        for (k, v) in extra {
            t = t.field(k, v);
        }
        t = t.column(TableColumn::new("output"));
        for name in &names {
            let column = TableColumn::new(name.as_str());
            t = t.column(if name == "count" { column } else { column.sci(5) });
        }
        for (j, output) in b.outputs.iter().enumerate() {
            let mut cells = vec![Cell::from(output.as_str())];
            for r in 0..names.len() {
                let v = table[r * n + j];
                cells.push(if r == 0 {
                    Cell::from(v as u64)
                } else {
                    Cell::from(v)
                });
            }
            t.push(cells);
        }
        t
    }

    /// Items of state `s` that failed.
    fn failures(&self, s: usize, store: &mut dyn Store) -> Result<u64, JobError> {
        let items = self.settings().states[s].items;
        let mut failed = 0;
        let mut first = 0;
        while first < items {
            let end = (first + READ_VALUES).min(items);
            let status = store.read_f64(self.sets[s].status, first..end, None)?;
            failed += status.iter().filter(|&&v| v != 0.0).count() as u64;
            first = end;
        }
        Ok(failed)
    }
}

/// What a chunk holds until it is emitted: consecutive items from `first`.
struct Rows {
    first: u64,
    inputs: Vec<f64>,
    outputs: Vec<f64>,
    status: Vec<i64>,
}

impl Rows {
    fn new(first: u64) -> Self {
        Self {
            first,
            inputs: Vec::new(),
            outputs: Vec::new(),
            status: Vec::new(),
        }
    }

    fn emit(&mut self, cx: &mut TaskContext<'_>, sets: StateSets) -> Result<(), TaskError> {
        let rows = self.status.len() as u64;
        if rows == 0 {
            return Ok(());
        }
        let record = |dataset, values| Record {
            dataset,
            first_row: self.first,
            rows,
            lane: None,
            values,
        };
        let records = vec![
            record(sets.inputs, Column::F64(std::mem::take(&mut self.inputs))),
            record(sets.outputs, Column::F64(std::mem::take(&mut self.outputs))),
            record(sets.status, Column::I64(std::mem::take(&mut self.status))),
        ];
        self.first += rows;
        cx.emit_all(records)
    }
}

impl Job for BatchJob {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn plan(&self, _stage: u32) -> Plan {
        // Every item costs alike: the executor hands tasks out in order.
        self.chunks.plan(|_| 1.0)
    }

    fn run(
        &self,
        task: TaskId,
        resume: Option<&[u8]>,
        cx: &mut TaskContext<'_>,
    ) -> Result<Outcome, TaskError> {
        let (s, chunk) = self.chunks.task_of(task.index);
        let spec = self.settings();
        let (st, b, sets) = (&self.spec.states[s], &spec.states[s], self.sets[s]);
        let fail = |message: String| {
            TaskError::Failed(format!(
                "batch: state `{}` (seed {}): {message}",
                st.name, self.spec.seed
            ))
        };
        let forward = self.forward(s).map_err(fail)?;
        let points = self.points(s).map_err(fail)?;
        let items = self.chunks.items_of(s, chunk);
        let (first, end) = (items.start, items.end);
        let start = match resume {
            Some(bytes) => postcard::from_bytes::<u64>(bytes)
                .map_err(|e| fail(format!("undecodable snapshot: {e}")))?,
            None => first,
        };
        let (d, n) = (st.dim(), b.outputs.len());
        let mut rows = Rows::new(start);
        let mut clock = EmitClock::default();
        let mut done = 0u64;
        for item in start..end {
            if cx.cancelled() {
                return Err(TaskError::Cancelled);
            }
            if cx.pause_requested() && item > start {
                rows.emit(cx, sets)?;
                cx.add_progress(done);
                cx.evaluations = item - start;
                let bytes = postcard::to_stdvec(&item)
                    .map_err(|e| fail(format!("cannot snapshot: {e}")))?;
                return Ok(Outcome::Yielded(bytes));
            }
            let at = rows.inputs.len();
            rows.inputs.resize(at + d, 0.0);
            points.point(item, &mut rows.inputs[at..]);
            let at_out = rows.outputs.len();
            rows.outputs.resize(at_out + n, f64::NAN);
            let x = &rows.inputs[at..];
            match forward.forward(x, &mut rows.outputs[at_out..]) {
                Ok(()) => rows.status.push(0),
                Err(e) => match spec.on_error {
                    OnError::Fail => {
                        return Err(TaskError::Evaluation(format!(
                            "batch: state `{}`, item {item} (seed {}) at {x:?}: {} (status {}); \
                             on_error = \"record\" keeps going and stores it",
                            st.name, self.spec.seed, e.message, e.status
                        )))
                    }
                    OnError::Record => {
                        rows.outputs[at_out..].fill(f64::NAN);
                        // −1 means not run yet, 0 success: a model failing with
                        // either is stored as 1.
                        let status = if e.status == 0 || e.status == NOT_RUN { 1 } else { e.status };
                        rows.status.push(status);
                        cx.emit(Record {
                            dataset: sets.messages,
                            first_row: item,
                            rows: 1,
                            lane: None,
                            values: Column::Str(vec![e.message]),
                        })?;
                    }
                },
            }
            done += 1;
            if clock.due() {
                rows.emit(cx, sets)?;
                cx.add_progress(done);
                done = 0;
            }
        }
        rows.emit(cx, sets)?;
        cx.add_progress(done);
        cx.evaluations = end - start;
        Ok(Outcome::Done)
    }

    fn finish_stage(&self, _stage: u32, store: &mut dyn Store) -> Result<Vec<u8>, JobError> {
        for s in 0..self.spec.states.len() {
            let table = self.statistics(s, store)?;
            store.write(Record {
                dataset: self.sets[s].statistics,
                first_row: 0,
                rows: stats::names(&self.settings().quantiles).len() as u64,
                lane: None,
                values: Column::F64(table),
            })?;
            let group = format!("batch/{}", self.spec.states[s].name);
            let failed = self.failures(s, store)?;
            store.set_attr(&group, "failed", Attr::U64(failed))?;
            if self.settings().validate > 0 {
                let (abs, rel) = self.validate(s, store)?;
                store.set_attr(&group, "validated", Attr::U64(self.settings().validate))?;
                store.set_attr(&group, "validate_max_abs", Attr::F64(abs))?;
                store.set_attr(&group, "validate_max_rel", Attr::F64(rel))?;
            }
        }
        Ok(Vec::new())
    }

    fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = self.settings();
        writeln!(
            out,
            "kind      batch (a forward model at every point of a {} design, {} items per task)",
            s.design.name(),
            s.chunk
        )?;
        for (st, b) in self.spec.states.iter().zip(&s.states) {
            writeln!(
                out,
                "state     `{}`: {} items × {} parameters → {} outputs",
                st.name,
                b.items,
                st.dim(),
                b.outputs.len()
            )?;
        }
        let on_error = match s.on_error {
            OnError::Fail => "a failed item stops the job",
            OnError::Record => "a failed item is recorded (status, message) and the job goes on",
        };
        writeln!(out, "errors    {on_error}")?;
        if s.validate > 0 {
            writeln!(
                out,
                "validate  {} items per state re-run alone at the end, to {VALIDATE_RTOL:e} relative",
                s.validate
            )?;
        }
        Ok(())
    }

    fn work(&self) -> (u64, &'static str) {
        (
            self.settings().states.iter().map(|b| b.items).sum(),
            "items",
        )
    }

    fn report(&self, store: &mut dyn Store, out: &mut dyn Write) -> Result<(), JobError> {
        let names = stats::names(&self.settings().quantiles).len() as u64;
        let mut tables = Vec::new();
        for s in 0..self.spec.states.len() {
            let table = store.read_f64(self.sets[s].statistics, 0..names, None)?;
            let failed = self.failures(s, store)?;
            tables.push(self.statistics_table(s, &table, vec![("failed".into(), failed.into())]));
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
            let path = |d: usize| self.layout.datasets[d].path.clone();
            let statistics = path(self.sets[s].statistics);
            let group = format!("batch/{}", st.name);
            let values = file.read_f64(&statistics, None, None)?;
            let mut extra = Vec::new();
            if let Some(failed) = file.attr_u64(&group, "failed")? {
                extra.push(("failed".to_string(), Cell::from(failed)));
            }
            for name in ["validate_max_abs", "validate_max_rel"] {
                if let Some(Attr::F64(v)) = file.attr(&group, name)? {
                    extra.push((name.to_string(), Cell::from(v)));
                }
            }
            tables.push(self.statistics_table(s, &values, extra));
        }
        Ok(tables)
    }
}
