//! Where results go: the records a task emits, the layout a job declares,
//! and the [`Store`] that writes them — the HDF5 file on rank 0 ([`hdf5`])
//! or an in-memory double for tests ([`memory`]).
//!
//! A store knows datasets, rows and lanes, never a kind of work: a job
//! declares its groups and datasets up front ([`Layout`]) and its tasks emit
//! [`Record`]s, rows of one declared dataset at their global index.

pub mod hdf5;
pub mod memory;
pub mod reader;
mod target;

use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use self::hdf5::{free_bytes, open, Accept, CreateError, Hdf5Store, Open, Opened, RunInfo};
pub use memory::MemoryStore;
pub use reader::{Hdf5Reader, ReadError, Reader, Rows};
pub use target::{check_target, mark_ending, partial_path, preflight, OutputLock, TargetError};

/// A value's postcard bytes in a buffer allocated once at their size: a
/// large checkpoint is then never held twice while its buffer grows.
pub fn encode_exact<T: serde::Serialize + ?Sized>(value: &T) -> postcard::Result<Vec<u8>> {
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())?;
    postcard::to_extend(value, Vec::with_capacity(size))
}

/// A byte count for people: `1.5 MiB` (sizes of outputs and estimates).
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// The version written into the file and into each emcee-style group.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Bytes of a chunk at most: few reads for a long chain, and one chunk fits
/// HDF5's default chunk cache (1 MiB per dataset) whole.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Bytes of a chunk of a growing dataset whose final length is unknown: its
/// first chunk is allocated whole, however few rows a run writes.
pub const GROWING_CHUNK_BYTES: usize = 64 << 10;

/// Element type of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dtype {
    F64,
    I64,
    U8,
    /// UTF-8 strings of at most this many bytes, stored fixed-length.
    Str(usize),
}

/// Values of a record, typed as the dataset they go to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Column {
    F64(Vec<f64>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    Str(Vec<String>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::U8(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn dtype_matches(&self, dtype: Dtype) -> bool {
        matches!(
            (self, dtype),
            (Column::F64(_), Dtype::F64)
                | (Column::I64(_), Dtype::I64)
                | (Column::U8(_), Dtype::U8)
                | (Column::Str(_), Dtype::Str(_))
        )
    }

    /// Appends `other` (of the same type) to this column.
    fn extend(&mut self, other: Column) {
        match (self, other) {
            (Column::F64(a), Column::F64(b)) => a.extend(b),
            (Column::I64(a), Column::I64(b)) => a.extend(b),
            (Column::U8(a), Column::U8(b)) => a.extend(b),
            (Column::Str(a), Column::Str(b)) => a.extend(b),
            _ => unreachable!("records are checked against their dataset's type"),
        }
    }
}

/// Rows of one declared dataset, at their global index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Index of the dataset in the job's [`Layout::datasets`].
    pub dataset: usize,
    /// Index of the first row along axis 0.
    pub first_row: u64,
    pub rows: u64,
    /// For a dataset with lanes: the index along axis 1 these rows belong to
    /// (a chain, a replicate); the values then hold `rows × lane size`.
    pub lane: Option<u64>,
    pub values: Column,
}

/// A value of an attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Attr {
    Str(String),
    Strs(Vec<String>),
    I64(i64),
    U64(u64),
    F64(f64),
    F64s(Vec<f64>),
    Bool(bool),
}

impl Attr {
    /// The bytes of its value.
    pub fn bytes(&self) -> u64 {
        match self {
            Attr::Str(s) => s.len() as u64,
            Attr::Strs(v) => v.iter().map(|s| s.len() as u64 + 16).sum(),
            Attr::F64s(v) => 8 * v.len() as u64,
            Attr::I64(_) | Attr::U64(_) | Attr::F64(_) => 8,
            Attr::Bool(_) => 1,
        }
    }
}

/// A group and its attributes, created with the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDecl {
    pub path: String,
    pub attrs: Vec<(String, Attr)>,
}

/// A dataset a job writes. Axis 0 is the row axis: rows are written at their
/// global index, and a dataset without a fixed row count grows as they come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDecl {
    pub path: String,
    pub dtype: Dtype,
    /// The shape of one row (the dataset's shape after axis 0).
    pub row_shape: Vec<usize>,
    /// A fixed number of rows (the dataset is created whole), or `None` for
    /// a dataset that grows as rows arrive.
    pub rows: Option<u64>,
    /// Records write one lane (an index along axis 1) at a time; lanes are
    /// chunked apart so that they never share a chunk.
    pub lanes: bool,
    /// Rows per chunk at most (`usize::MAX`: as many as the chunk's bytes
    /// allow); see [`Self::chunk_shape`].
    pub chunk_rows: usize,
    /// The rows a growing dataset reaches at most, when the job knows it
    /// (steps over thinning): its chunks are no longer than that, so that a
    /// short run's file is not mostly empty chunk.
    pub expected_rows: Option<u64>,
    /// An attribute (group path, name) kept equal to the rows written in
    /// every lane (emcee's `iteration`), updated at each flush.
    pub extent_attr: Option<(String, String)>,
    /// Values written when the file is created (a static table).
    pub init: Option<Column>,
    /// What an integer dataset holds where no row was written yet (0 by
    /// default; floats hold NaN).
    pub int_fill: Option<i64>,
    /// Rows are written for a few items only (what failed): the size
    /// estimate counts one chunk, not every row.
    pub rare_rows: bool,
    /// A fixed row count that a longer run going on from the file may
    /// raise (more items, more paths): the dataset's maximum shape is
    /// unlimited, and a store reopened for a layout declaring more rows
    /// grows it to them, the new rows holding the fill value.
    #[serde(default)]
    pub resizable: bool,
}

impl DatasetDecl {
    /// A growing dataset of `dtype` with rows of `row_shape`, chunked to
    /// about [`GROWING_CHUNK_BYTES`] while its final length is unknown (see
    /// [`Self::with_expected_rows`]).
    pub fn growing(path: impl Into<String>, dtype: Dtype, row_shape: Vec<usize>) -> Self {
        Self {
            path: path.into(),
            dtype,
            row_shape,
            rows: None,
            lanes: false,
            chunk_rows: usize::MAX,
            expected_rows: None,
            extent_attr: None,
            init: None,
            int_fill: None,
            rare_rows: false,
            resizable: false,
        }
    }

    /// A dataset of exactly `rows` rows.
    pub fn fixed(path: impl Into<String>, dtype: Dtype, row_shape: Vec<usize>, rows: u64) -> Self {
        let mut decl = Self::growing(path, dtype, row_shape);
        decl.rows = Some(rows);
        decl
    }

    /// Records write one lane (an index along axis 1) at a time.
    pub fn with_lanes(mut self) -> Self {
        self.lanes = true;
        self
    }

    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// A growing dataset that reaches `rows` rows at most (a run's steps
    /// over its thinning): chunks of up to [`CHUNK_BYTES`], no longer than
    /// that.
    pub fn with_expected_rows(mut self, rows: u64) -> Self {
        self.expected_rows = Some(rows);
        self
    }

    /// The rows this dataset has when the run is done, if known: its fixed
    /// rows, or the rows it is expected to reach.
    pub fn final_rows(&self) -> Option<u64> {
        self.rows.or(self.expected_rows)
    }

    /// The shape of one chunk: rows × (lanes) × the rest of the row. As
    /// many rows as fit in [`CHUNK_BYTES`] ([`GROWING_CHUNK_BYTES`] while
    /// the final rows are unknown), at least one, at most `chunk_rows` and
    /// the dataset's final rows; with lanes, as many lanes as then fit (at
    /// least one), so that a short run of many chains does not take a chunk
    /// per chain. A chunk is never larger than its dataset, where that is
    /// known.
    pub fn chunk_shape(&self) -> Vec<usize> {
        let target = match self.final_rows() {
            Some(_) => CHUNK_BYTES,
            None => GROWING_CHUNK_BYTES,
        };
        let mut rows = self.chunk_rows_for(target).min(self.chunk_rows).max(1);
        if let Some(n) = self.final_rows() {
            rows = rows.min(n.clamp(1, usize::MAX as u64) as usize);
        }
        let mut chunk = vec![rows];
        chunk.extend(self.row_shape.iter().map(|&n| n.max(1)));
        if self.lanes && chunk.len() > 1 {
            let lane_bytes = (self.lane_len().saturating_mul(self.element_size())).max(1);
            let fit = target / rows.saturating_mul(lane_bytes).max(1);
            chunk[1] = fit.clamp(1, chunk[1]);
        }
        chunk
    }

    /// The chunks this dataset has when it has `rows` rows.
    pub fn chunk_count(&self, rows: u64) -> u64 {
        if rows == 0 {
            return 0;
        }
        let mut shape = vec![rows];
        shape.extend(self.row_shape.iter().map(|&n| n as u64));
        shape
            .iter()
            .zip(&self.chunk_shape())
            .fold(1u64, |a, (&n, &c)| a.saturating_mul(n.div_ceil(c as u64)))
    }

    /// An upper bound of the bytes this dataset's chunks take when it has
    /// `rows` rows: every chunk it touches, whole.
    pub fn chunk_bytes_for(&self, rows: u64) -> u64 {
        let per_chunk = self
            .chunk_shape()
            .iter()
            .fold(self.element_size() as u64, |a, &c| {
                a.saturating_mul(c as u64)
            });
        self.chunk_count(rows).saturating_mul(per_chunk)
    }

    pub fn with_extent_attr(mut self, group: impl Into<String>, name: impl Into<String>) -> Self {
        self.extent_attr = Some((group.into(), name.into()));
        self
    }

    pub fn with_int_fill(mut self, fill: i64) -> Self {
        self.int_fill = Some(fill);
        self
    }

    /// Rows a longer run may add (see [`Self::resizable`]).
    pub fn with_resizable_rows(mut self) -> Self {
        self.resizable = true;
        self
    }

    /// Rows written for a few items only (see [`Self::rare_rows`]).
    pub fn with_rare_rows(mut self) -> Self {
        self.rare_rows = true;
        self
    }

    pub fn with_init(mut self, values: Column) -> Self {
        self.init = Some(values);
        self
    }

    /// Values in one row of one lane (or of the whole row, without lanes).
    pub fn lane_len(&self) -> usize {
        let skip = usize::from(self.lanes);
        self.row_shape.iter().skip(skip).product()
    }

    /// Number of lanes (1 without lanes).
    pub fn lane_count(&self) -> u64 {
        if self.lanes {
            self.row_shape.first().copied().unwrap_or(1) as u64
        } else {
            1
        }
    }

    fn element_size(&self) -> usize {
        match self.dtype {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 => 1,
            Dtype::Str(n) => n.max(1),
        }
    }

    /// Rows per chunk so that a chunk of one lane holds about `bytes`.
    fn chunk_rows_for(&self, bytes: usize) -> usize {
        (bytes / (self.lane_len().saturating_mul(self.element_size())).max(1)).max(1)
    }

    /// Checks a record against this declaration.
    pub fn check(&self, r: &Record) -> Result<(), String> {
        if !r.values.dtype_matches(self.dtype) {
            return Err(format!("{}: record of the wrong type", self.path));
        }
        match (self.lanes, r.lane) {
            (true, None) => return Err(format!("{}: record without a lane", self.path)),
            (false, Some(_)) => return Err(format!("{}: record with a lane", self.path)),
            (true, Some(l)) if l >= self.lane_count() => {
                return Err(format!("{}: lane {l} out of range", self.path))
            }
            _ => {}
        }
        if r.values.len() as u64 != r.rows * self.lane_len() as u64 {
            return Err(format!(
                "{}: {} values for {} rows of {}",
                self.path,
                r.values.len(),
                r.rows,
                self.lane_len()
            ));
        }
        if let Some(rows) = self.rows {
            if r.first_row + r.rows > rows {
                return Err(format!(
                    "{}: rows {}..{} beyond its {rows} rows",
                    self.path,
                    r.first_row,
                    r.first_row + r.rows
                ));
            }
        }
        Ok(())
    }
}

/// Everything a job writes: its groups (with attributes) and datasets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub groups: Vec<GroupDecl>,
    pub datasets: Vec<DatasetDecl>,
}

/// A layout HDF5 cannot create (a chunk over 4 GiB, a size that overflows):
/// found before any work, exit 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(pub String);

impl Layout {
    /// Checks what HDF5 would refuse only when the file is created: every
    /// chunk under HDF5's 4 GiB limit, and no size that overflows 64 bits.
    pub fn check(&self) -> Result<(), LayoutError> {
        for d in &self.datasets {
            let too_big = |what: &str| {
                LayoutError(format!(
                    "dataset /{}: {what}; reduce the walkers, chains, parameters or replicates",
                    d.path
                ))
            };
            let row = d
                .row_shape
                .iter()
                .try_fold(1u64, |a, &n| a.checked_mul(n.max(1) as u64))
                .ok_or_else(|| too_big("one row's size overflows"))?;
            if let Some(rows) = d.rows {
                rows.checked_mul(row)
                    .and_then(|n| n.checked_mul(d.element_size() as u64))
                    .ok_or_else(|| too_big("its size overflows"))?;
            }
            let chunk = d
                .chunk_shape()
                .iter()
                .try_fold(d.element_size() as u64, |a, &n| a.checked_mul(n as u64));
            match chunk {
                Some(bytes) if bytes < (1 << 32) => {}
                Some(bytes) => {
                    return Err(too_big(&format!(
                        "one row of one lane takes {bytes} bytes, over HDF5's 4 GiB chunk limit"
                    )))
                }
                None => return Err(too_big("a chunk's size overflows")),
            }
        }
        Ok(())
    }

    /// An upper bound of the bytes of a file with this layout once every
    /// dataset has its final rows (`rows_of` gives those of a growing
    /// dataset whose final rows the layout does not know), with the root
    /// attributes taking `root_bytes`: every chunk touched, whole, and
    /// HDF5's own structures (object headers, chunk indices, heaps).
    pub fn size_bound(&self, rows_of: &dyn Fn(&DatasetDecl) -> u64, root_bytes: u64) -> u64 {
        // Measured on HDF5 1.10 files with a margin: a group's header, heap
        // and symbol table; a dataset's header; a node of a chunk index (v1
        // B-tree, 64 chunks each); an attribute's header and heap entry.
        const FILE: u64 = 4 << 10;
        const GROUP: u64 = 2 << 10;
        const DATASET: u64 = 1536;
        const INDEX_NODE: u64 = 2 << 10;
        const ATTR: u64 = 256;
        let attrs = |attrs: &[(String, Attr)]| -> u64 {
            attrs
                .iter()
                .map(|(n, v)| ATTR + n.len() as u64 + v.bytes())
                .sum()
        };
        let groups: u64 = self.groups.iter().map(|g| GROUP + attrs(&g.attrs)).sum();
        let datasets: u64 = self
            .datasets
            .iter()
            .map(|d| {
                let mut rows = d.final_rows().unwrap_or_else(|| rows_of(d));
                if d.rare_rows {
                    rows = rows.min(d.chunk_shape()[0] as u64);
                }
                let chunks = d.chunk_count(rows);
                DATASET + chunks.div_ceil(64).max(1) * INDEX_NODE + d.chunk_bytes_for(rows)
            })
            .sum();
        // Parents of datasets not declared as groups (`timings`, `states`).
        let implicit = 8 * GROUP;
        FILE + implicit + groups + datasets + root_bytes
    }

    /// Adds a dataset, returning its index for records.
    pub fn add(&mut self, decl: DatasetDecl) -> usize {
        self.datasets.push(decl);
        self.datasets.len() - 1
    }

    pub fn group(&mut self, path: impl Into<String>, attrs: Vec<(String, Attr)>) {
        self.groups.push(GroupDecl {
            path: path.into(),
            attrs,
        });
    }

    /// The index of the dataset at `path`.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.datasets.iter().position(|d| d.path == path)
    }
}

/// Why a store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    Hdf5 { path: PathBuf, message: String },
    /// The output's filesystem is full (or would be after the next rows).
    #[error("{path}: {message}")]
    NoSpace { path: PathBuf, message: String },
    #[error("bad record: {0}")]
    Record(String),
}

/// Where records go. Only rank 0 has one.
pub trait Store {
    /// Writes a record (possibly buffered until the next flush).
    fn write(&mut self, record: Record) -> Result<(), StoreError>;
    /// Makes every record written so far durable and readable by others,
    /// with the extent attributes up to date.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Rows `rows` of a float dataset (of one lane, for a dataset with
    /// lanes), row-major; includes records not yet flushed.
    fn read_f64(
        &mut self,
        dataset: usize,
        rows: Range<u64>,
        lane: Option<u64>,
    ) -> Result<Vec<f64>, StoreError>;
    /// Rows `rows` of a byte dataset of scalar rows; includes records not
    /// yet flushed.
    fn read_u8(&mut self, dataset: usize, rows: Range<u64>) -> Result<Vec<u8>, StoreError>;
    /// Rows written in every lane of a dataset: the extent readers may trust.
    fn rows_written(&self, dataset: usize) -> u64;
    /// Sets (or replaces) an attribute of a declared group, or of the root ("/").
    fn set_attr(&mut self, group: &str, name: &str, value: Attr) -> Result<(), StoreError>;
    /// Records the executor's checkpoint `state` with the store's own
    /// account of the rows written, after every record written so far has
    /// been flushed. A crash at any instant leaves the previous checkpoint
    /// or this one, never a mixture.
    fn checkpoint(&mut self, state: &[u8]) -> Result<(), StoreError>;

    // The end of a run: each consumes the store, so that nothing is written
    // after it.

    /// Where the rows are while the run is on (the `.partial`), for messages.
    fn partial(&self) -> PathBuf;
    /// The run completed: the output is marked complete and moved into
    /// place; returns where it is.
    fn finish(self: Box<Self>) -> Result<PathBuf, StoreError>;
    /// The run paused with its checkpoint written: the output is kept for
    /// `--resume`, marked paused with `why`; returns where it is.
    fn pause(self: Box<Self>, why: &str) -> Result<PathBuf, StoreError>;
    /// The run failed: every row received is kept (best effort) and the
    /// output marked failed with `reason`; returns where it is.
    fn abandon(self: Box<Self>, reason: &str) -> PathBuf;
    /// What `abandon` records, with the store left open: for a process
    /// that must end without returning (a task thread that can never be
    /// joined).
    fn mark_failed(&mut self, reason: &str);
    /// Nothing was run in a new output: it is removed, so that it does not
    /// block the next run.
    fn discard(self: Box<Self>);
}

/// Rows written per lane, kept as a count of lanes at each extent so that a
/// dataset with 10⁸ lanes costs as little as one with a single lane: lanes
/// are written in order, so a record moves one lane from `first_row` to
/// `first_row + rows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Extents {
    lanes_at: std::collections::BTreeMap<u64, u64>,
    /// The largest row written in any lane.
    pub(crate) max: u64,
}

impl Extents {
    pub(crate) fn new(lanes: u64) -> Self {
        Self {
            lanes_at: [(0, lanes)].into_iter().collect(),
            max: 0,
        }
    }

    /// Records rows `first..first + rows` of a lane; rows of a lane that do
    /// not follow on from what it had (a rewrite) leave its extent alone.
    pub(crate) fn advance(&mut self, first: u64, rows: u64) {
        let end = first + rows;
        self.max = self.max.max(end);
        if rows == 0 {
            return;
        }
        if let Some(n) = self.lanes_at.get_mut(&first) {
            *n -= 1;
            if *n == 0 {
                self.lanes_at.remove(&first);
            }
            *self.lanes_at.entry(end).or_insert(0) += 1;
        }
    }

    /// Rows written in every lane.
    pub(crate) fn complete(&self) -> u64 {
        self.lanes_at.keys().next().copied().unwrap_or(self.max)
    }
}

/// Pending records of one dataset, merged while they continue one another,
/// so that many small records cost one write.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) runs: Vec<Record>,
    pub(crate) values: usize,
}

impl Pending {
    pub(crate) fn push(&mut self, r: Record) {
        self.values += r.values.len();
        if let Some(last) = self.runs.last_mut() {
            if last.lane == r.lane && last.first_row + last.rows == r.first_row {
                last.rows += r.rows;
                last.values.extend(r.values);
                return;
            }
        }
        self.runs.push(r);
    }

    /// The runs to write: sorted by lane and row and merged where they meet,
    /// so that rows arriving interleaved from several ranks still cost few
    /// writes. Records of the same rows keep their order (the sort is
    /// stable); if two runs overlap only in part, nothing is reordered.
    pub(crate) fn take(&mut self) -> Vec<Record> {
        self.values = 0;
        let runs = std::mem::take(&mut self.runs);
        if runs.len() < 2 {
            return runs;
        }
        // The order is decided on indices, so that the records are moved,
        // never copied.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by_key(|&i| (runs[i].lane, runs[i].first_row));
        let partial_overlap = order.windows(2).any(|w| {
            let (a, b) = (&runs[w[0]], &runs[w[1]]);
            a.lane == b.lane
                && b.first_row < a.first_row + a.rows
                && !(a.first_row == b.first_row && a.rows == b.rows)
        });
        if partial_overlap {
            return runs;
        }
        let mut slots: Vec<Option<Record>> = runs.into_iter().map(Some).collect();
        let mut merged: Vec<Record> = Vec::with_capacity(slots.len());
        for r in order.into_iter().filter_map(|i| slots[i].take()) {
            if let Some(last) = merged.last_mut() {
                if last.lane == r.lane && last.first_row + last.rows == r.first_row {
                    last.rows += r.rows;
                    last.values.extend(r.values);
                    continue;
                }
            }
            merged.push(r);
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_follow_the_slowest_lane() {
        let mut e = Extents::new(3);
        assert_eq!(e.complete(), 0);
        e.advance(0, 5);
        e.advance(0, 2);
        assert_eq!((e.complete(), e.max), (0, 5));
        e.advance(0, 4);
        assert_eq!(e.complete(), 2);
        e.advance(2, 3);
        assert_eq!(e.complete(), 4);
        e.advance(4, 1);
        assert_eq!(e.complete(), 5);
        // A rewrite of rows already counted changes nothing.
        e.advance(0, 1);
        assert_eq!(e.complete(), 5);
    }

    #[test]
    fn pending_records_merge_when_they_follow_on() {
        let rec = |first, rows, lane| Record {
            dataset: 0,
            first_row: first,
            rows,
            lane,
            values: Column::F64(vec![first as f64; rows as usize]),
        };
        let mut p = Pending::default();
        p.push(rec(0, 2, None));
        p.push(rec(2, 3, None));
        p.push(rec(7, 1, None));
        p.push(rec(8, 1, Some(1)));
        let runs = p.take();
        // (2 lanes: None then Some(1); None's rows 0..5 and 7..8.)
        assert_eq!(runs.len(), 3);
        assert_eq!((runs[0].first_row, runs[0].rows), (0, 5));
        assert_eq!(runs[0].values.len(), 5);
        assert!(p.take().is_empty());
        // Interleaved arrivals (two ranks) merge when taken; rewrites of the
        // same rows keep their order.
        for first in [2, 0, 3, 1] {
            p.push(rec(first, 1, None));
        }
        p.push(rec(1, 1, None));
        let runs = p.take();
        assert_eq!(
            runs.iter()
                .map(|r| (r.first_row, r.rows))
                .collect::<Vec<_>>(),
            [(0, 2), (1, 3)]
        );
        // A partial overlap keeps the arrival order.
        p.push(rec(2, 2, None));
        p.push(rec(0, 3, None));
        let runs = p.take();
        assert_eq!(
            runs.iter()
                .map(|r| (r.first_row, r.rows))
                .collect::<Vec<_>>(),
            [(2, 2), (0, 3)]
        );
    }
}
