//! The HDF5 store: the output file, written only by rank 0.
//!
//! The file is created as `<output>.partial` with every declared group and
//! dataset (so that its layout is complete from the start), filled by
//! records, flushed at least every few seconds by the executor (so that a
//! killed run leaves every row up to the last flush readable, with extents
//! that say how far), and renamed into place when the run completes.
//! Float datasets are filled with NaN, so a row not yet written is never
//! mistaken for a sample.

mod io;
mod resume;
mod slots;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use hdf5::{Dataset, File};
use ndarray::IxDyn;

pub(crate) use self::io::rows_slab;
use self::io::{create_dataset, hyperslab, write_attr, write_lanes, write_record};
pub use self::resume::{open, Accept, Open, Opened};

// `free_bytes` calls statvfs through libc (already a dependency, for the
// node's cores and the lock's PID check) rather than a crate of its own.
use self::slots::CHECKPOINT;
use super::{
    check_target, partial_path, Attr, DatasetDecl, Extents, Layout, OutputLock, Pending, Record,
    Store, StoreError, TargetError,
};

/// Values buffered per dataset before they are written (1 MiB of floats).
const PENDING_VALUES: usize = 1 << 17;
/// Records buffered per dataset that did not merge (small rows of many
/// lanes or tasks, each a record's worth of memory) before they are written.
const PENDING_RUNS: usize = 1 << 12;

/// Provenance recorded in the root attributes.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub ranks: usize,
    pub threads: usize,
    /// The command line, as typed.
    pub command_line: String,
    /// The MPI library's own version string ("" when not under MPI).
    pub mpi_library: String,
}

/// Why the output could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--resume` found nothing to resume, or a spec that would change
    /// the results: nothing was touched (exit 2).
    #[error("{0}")]
    Refused(String),
}

/// The output file.
pub struct Hdf5Store {
    file: File,
    target: PathBuf,
    partial: PathBuf,
    started: Instant,
    decls: Vec<DatasetDecl>,
    datasets: Vec<Dataset>,
    /// Rows along axis 0 each dataset has now.
    allocated: Vec<u64>,
    extents: Vec<Extents>,
    pending: Vec<Pending>,
    /// Rows handed to HDF5 per dataset (`extents` counts rows received,
    /// some perhaps still pending): what a failed run's extents may claim.
    written: Vec<Extents>,
    /// Extent attributes as last written, to skip unchanged ones.
    written_extents: HashMap<usize, u64>,
    /// Extent attributes as the reopened file had them: rows valid on disk
    /// that a resume rewrites with the same values, so that the attributes
    /// never drop below them (readers would lose rows that are there).
    extent_floor: HashMap<usize, u64>,
    /// The output's lock, held until the file is in place (or abandoned).
    lock: Option<OutputLock>,
}

/// Free space kept on the output's filesystem for metadata and the final
/// status (see `ensure_space`).
const SPACE_RESERVE: u64 = 4 << 20;

/// Bytes available to this process on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a struct of the right type.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

impl Hdf5Store {
    /// Creates `<target>.partial` (replacing one only when `force`) with the
    /// root attributes (`root`, then provenance) and the job's layout.
    pub fn create(
        target: &Path,
        force: bool,
        layout: &Layout,
        root: &[(String, Attr)],
        info: &RunInfo,
    ) -> Result<Self, CreateError> {
        // The lock first: from here no other sampo run touches these files.
        let lock = OutputLock::acquire(target)?;
        check_target(target, force)?;
        let partial = partial_path(target);
        let err = |cause: hdf5::Error| StoreError::Hdf5 {
            path: partial.clone(),
            message: cause.to_string(),
        };
        let file = File::create(&partial).map_err(err)?;
        let mut store = Self::assemble(
            file,
            target,
            layout,
            (Vec::new(), Vec::new()),
            fresh_extents(layout),
            lock,
        );
        store.write_root(root, info).map_err(err)?;
        for g in &layout.groups {
            let group = store.file.create_group(&g.path).map_err(err)?;
            for (name, value) in &g.attrs {
                write_attr(&group, name, value).map_err(err)?;
            }
        }
        for decl in &layout.datasets {
            let ds = create_dataset(&store.file, decl).map_err(err)?;
            store
                .allocated
                .push(ds.shape().first().copied().unwrap_or(0) as u64);
            store.datasets.push(ds);
        }
        store.file.flush().map_err(err)?;
        Ok(store)
    }

    /// The store of an open file: its datasets (with the rows each has),
    /// empty to be created, and the rows known written.
    fn assemble(
        file: File,
        target: &Path,
        layout: &Layout,
        (datasets, allocated): (Vec<Dataset>, Vec<u64>),
        extents: Vec<Extents>,
        lock: OutputLock,
    ) -> Self {
        Self {
            file,
            target: target.to_path_buf(),
            partial: partial_path(target),
            started: Instant::now(),
            decls: layout.datasets.clone(),
            datasets,
            allocated,
            written: extents.clone(),
            extents,
            pending: layout.datasets.iter().map(|_| Pending::default()).collect(),
            written_extents: HashMap::new(),
            extent_floor: HashMap::new(),
            lock: Some(lock),
        }
    }

    fn err(&self, cause: impl ToString) -> StoreError {
        let message = cause.to_string();
        // HDF5's report of a full disk is a page of detail: say it in words.
        let path = self.partial.clone();
        if message.contains("errno = 28") || message.contains("No space left") {
            let message = "no space left on device".to_string();
            return StoreError::NoSpace { path, message };
        }
        StoreError::Hdf5 { path, message }
    }

    /// Refuses to write `bytes` more when the disk would be left with less
    /// than `SPACE_RESERVE`: a write that fails half-way leaves an HDF5 file
    /// whose metadata points past its end, unreadable; refusing first keeps
    /// the file as of its last flush, and room for its status.
    fn ensure_space(&self, bytes: u64) -> Result<(), StoreError> {
        let Some(free) = free_bytes(&self.partial) else {
            return Ok(());
        };
        let needed = bytes + bytes / 4 + SPACE_RESERVE;
        if free < needed {
            return Err(StoreError::NoSpace {
                path: self.partial.clone(),
                message: format!(
                    "no space left on device ({} free, {} needed for the next rows); the rows \
                     flushed before are kept",
                    super::human_bytes(free as f64),
                    super::human_bytes(needed as f64)
                ),
            });
        }
        Ok(())
    }

    fn write_root(&self, root: &[(String, Attr)], info: &RunInfo) -> hdf5::Result<()> {
        let f = &self.file;
        for (name, value) in root {
            write_attr(f, name, value)?;
        }
        let (a, b, c) = hdf5::library_version();
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let attrs = [
            ("sampo_version", Attr::Str(super::VERSION.into())),
            ("git_hash", Attr::Str(env!("SAMPO_GIT_HASH").into())),
            ("ranks", Attr::U64(info.ranks as u64)),
            ("threads_per_rank", Attr::U64(info.threads as u64)),
            ("command_line", Attr::Str(info.command_line.clone())),
            ("hostname", Attr::Str(super::target::hostname())),
            ("hdf5_version", Attr::Str(format!("{a}.{b}.{c}"))),
            ("mpi_library", Attr::Str(info.mpi_library.clone())),
            ("start_time", Attr::Str(now)),
            ("status", Attr::Str("running".into())),
            ("wall_seconds", Attr::F64(0.0)),
        ];
        for (name, value) in &attrs {
            write_attr(f, name, value)?;
        }
        Ok(())
    }

    /// Writes the buffered records of dataset `i`.
    /// Rows `rows` of a dataset (of one lane, if given) as `T`, row-major;
    /// the records not yet written are written first.
    fn read_rows<T: hdf5::H5Type + Copy>(
        &mut self,
        dataset: usize,
        rows: Range<u64>,
        lane: Option<u64>,
    ) -> Result<Vec<T>, StoreError> {
        self.write_pending(dataset)?;
        let rows = rows.start.min(self.allocated[dataset])..rows.end.min(self.allocated[dataset]);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let selection = hyperslab(
            &self.decls[dataset],
            rows.start,
            rows.end - rows.start,
            lane,
        );
        let values = self.datasets[dataset]
            .read_slice::<T, _, IxDyn>(selection)
            .map_err(|e| self.err(e))?;
        Ok(values.iter().copied().collect())
    }

    fn write_pending(&mut self, i: usize) -> Result<(), StoreError> {
        let bytes = (self.pending[i].values * 8) as u64;
        if bytes > 0 {
            self.ensure_space(bytes)?;
        }
        let runs = self.pending[i].take();
        let mut at = 0;
        while at < runs.len() {
            // Records of consecutive lanes over the same rows (replicates'
            // tasks ending together) make one block and one write.
            let r = &runs[at];
            let next_lane = |k: usize| r.lane.map(|l| l + (k - at) as u64);
            let mut end = at + 1;
            while end < runs.len()
                && r.lane.is_some()
                && runs[end].lane == next_lane(end)
                && (runs[end].first_row, runs[end].rows) == (r.first_row, r.rows)
            {
                end += 1;
            }
            let last = r.first_row + r.rows;
            if self.decls[i].rows.is_none() && last > self.allocated[i] {
                let mut shape = vec![last as usize];
                shape.extend(&self.decls[i].row_shape);
                self.datasets[i].resize(shape).map_err(|e| self.err(e))?;
                self.allocated[i] = last;
            }
            let written = if end - at > 1 {
                write_lanes(&self.datasets[i], &self.decls[i], &runs[at..end])
            } else {
                write_record(&self.datasets[i], &self.decls[i], r)
            };
            written.map_err(|e| self.err(e))?;
            for r in &runs[at..end] {
                self.written[i].advance(r.first_row, r.rows);
            }
            at = end;
        }
        Ok(())
    }

    fn update_extent_attrs(&mut self) -> Result<(), StoreError> {
        self.write_extent_attrs(false)
    }

    /// Extent attributes from the rows received (after a flush, all are
    /// written) or, for a failed run, from the rows actually written.
    fn write_extent_attrs(&mut self, written_only: bool) -> Result<(), StoreError> {
        for (i, decl) in self.decls.iter().enumerate() {
            let Some((group, name)) = &decl.extent_attr else {
                continue;
            };
            // The rows complete in every growing dataset of the group (a
            // chain and its log-probabilities), so that no reader is told
            // of a row one of them lacks.
            let counted = if written_only {
                &self.written
            } else {
                &self.extents
            };
            let prefix = format!("{group}/");
            let rows = self
                .decls
                .iter()
                .enumerate()
                .filter(|(j, d)| *j == i || (d.rows.is_none() && d.path.starts_with(&prefix)))
                .map(|(j, _)| counted[j].complete())
                .min()
                .unwrap_or(0)
                .max(self.extent_floor.get(&i).copied().unwrap_or(0));
            if self.written_extents.get(&i) == Some(&rows) {
                continue;
            }
            let result = self
                .file
                .group(group)
                .and_then(|g| write_attr(&g, name, &Attr::I64(rows as i64)));
            result.map_err(|e| self.err(e))?;
            self.written_extents.insert(i, rows);
        }
        Ok(())
    }

    fn set_status(&mut self, status: &str) -> Result<(), StoreError> {
        self.set_attr("/", "status", Attr::Str(status.into()))?;
        let wall = self.started.elapsed().as_secs_f64();
        self.set_attr("/", "wall_seconds", Attr::F64(wall))?;
        self.flush()
    }

    /// Marks the file complete, closes it and renames it into place. Its
    /// last checkpoint is kept (the executor writes one with the tasks' last
    /// states at the end: a run asking for more steps goes on from it); the
    /// other slot is removed.
    pub fn finish(mut self) -> Result<PathBuf, StoreError> {
        if let Ok(group) = self.file.group(CHECKPOINT) {
            if let Ok(slot) = group.attr("slot").and_then(|a| a.read_scalar::<u64>()) {
                let stale = format!("slot{}", 1 - slot.min(1));
                if group.link_exists(&stale) {
                    group.unlink(&stale).map_err(|e| self.err(e))?;
                }
            }
        }
        self.set_status("complete")?;
        let (partial, target) = (self.partial.clone(), self.target.clone());
        let lock = self.lock.take();
        drop(self); // closes the file before the rename
        let renamed = std::fs::rename(&partial, &target).map_err(|cause| StoreError::Hdf5 {
            path: target.clone(),
            message: format!("cannot rename {} into place: {cause}", partial.display()),
        });
        drop(lock);
        renamed?;
        Ok(target)
    }

    /// Marks the file failed and leaves it as `.partial`; returns its path.
    /// Removes the `.partial` of a run that never started (nothing in it
    /// but the layout), so that it does not block the next run.
    pub fn discard(self) {
        let partial = self.partial.clone();
        drop(self);
        let _ = std::fs::remove_file(partial);
    }

    pub fn abandon(mut self, reason: &str) -> PathBuf {
        self.mark_failed(reason);
        self.partial.clone()
    }

    pub fn mark_failed(&mut self, reason: &str) {
        // Best effort: the run has already failed, and the reason is what
        // counts. Rows received are written if they can be; the extents
        // then say exactly the rows that reached the file.
        if self.flush().is_err() {
            let _ = self.write_extent_attrs(true);
        }
        let _ = self.set_status(&format!("failed: {reason}"));
    }
}

/// No rows written in any dataset.
fn fresh_extents(layout: &Layout) -> Vec<Extents> {
    layout
        .datasets
        .iter()
        .map(|d| Extents::new(d.lane_count()))
        .collect()
}

impl Store for Hdf5Store {
    fn write(&mut self, record: Record) -> Result<(), StoreError> {
        let i = record.dataset;
        let decl = self
            .decls
            .get(i)
            .ok_or_else(|| StoreError::Record(format!("no dataset {i}")))?;
        decl.check(&record).map_err(StoreError::Record)?;
        self.extents[i].advance(record.first_row, record.rows);
        self.pending[i].push(record);
        if self.pending[i].values >= PENDING_VALUES || self.pending[i].runs.len() >= PENDING_RUNS {
            self.write_pending(i)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        for i in 0..self.pending.len() {
            self.write_pending(i)?;
        }
        self.update_extent_attrs()?;
        self.file.flush().map_err(|e| self.err(e))
    }

    fn read_f64(
        &mut self,
        dataset: usize,
        rows: Range<u64>,
        lane: Option<u64>,
    ) -> Result<Vec<f64>, StoreError> {
        self.read_rows(dataset, rows, lane)
    }

    fn read_u8(&mut self, dataset: usize, rows: Range<u64>) -> Result<Vec<u8>, StoreError> {
        self.read_rows(dataset, rows, None)
    }

    fn rows_written(&self, dataset: usize) -> u64 {
        self.extents[dataset].complete()
    }

    fn checkpoint(&mut self, state: &[u8]) -> Result<(), StoreError> {
        self.write_slot(state)
    }

    fn partial(&self) -> PathBuf {
        self.partial.clone()
    }

    fn finish(self: Box<Self>) -> Result<PathBuf, StoreError> {
        Hdf5Store::finish(*self)
    }

    fn pause(self: Box<Self>, why: &str) -> Result<PathBuf, StoreError> {
        Hdf5Store::pause(*self, why)
    }

    fn abandon(self: Box<Self>, reason: &str) -> PathBuf {
        Hdf5Store::abandon(*self, reason)
    }

    fn mark_failed(&mut self, reason: &str) {
        Hdf5Store::mark_failed(self, reason)
    }

    fn discard(self: Box<Self>) {
        Hdf5Store::discard(*self)
    }

    fn set_attr(&mut self, group: &str, name: &str, value: Attr) -> Result<(), StoreError> {
        let result = if group == "/" {
            write_attr(&self.file, name, &value)
        } else {
            self.file
                .group(group)
                .and_then(|g| write_attr(&g, name, &value))
        };
        result.map_err(|e| self.err(e))
    }
}
