//! The HDF5 store: the output file, written only by rank 0.
//!
//! The file is created as `<output>.partial` with every declared group and
//! dataset (so that its layout is complete from the start), filled by
//! records, flushed at least every few seconds by the executor (so that a
//! killed run leaves every row up to the last flush readable, with extents
//! that say how far), and renamed into place when the run completes.
//! Float datasets are filled with NaN, so a row not yet written is never
//! mistaken for a sample.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use hdf5::types::{FixedUnicode, VarLenUnicode};
use hdf5::{Dataset, File, H5Type, Location, SliceOrIndex};
use ndarray::{ArrayView, IxDyn};

use super::{
    check_target, partial_path, Attr, Column, DatasetDecl, Dtype, Extents, Layout, OutputLock,
    Pending, Record, Store, StoreError, TargetError,
};
use crate::limits::NAME_MAX;

/// Values buffered per dataset before they are written (1 MiB of floats).
const PENDING_VALUES: usize = 1 << 17;

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
    /// The output's lock, held until the file is in place (or abandoned).
    lock: Option<OutputLock>,
}

type NameString = FixedUnicode<NAME_MAX>;

/// Free space kept on the output's filesystem for metadata and the final
/// status (see `ensure_space`).
const SPACE_RESERVE: u64 = 4 << 20;

/// Bytes available to this process on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
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
            lock: Some(lock),
        }
    }

    pub fn partial(&self) -> &Path {
        &self.partial
    }

    fn err(&self, cause: impl ToString) -> StoreError {
        let message = cause.to_string();
        // HDF5's report of a full disk is a page of detail: say it in words.
        let message = if message.contains("errno = 28") || message.contains("No space left") {
            "no space left on device".to_string()
        } else {
            message
        };
        StoreError::Hdf5 {
            path: self.partial.clone(),
            message,
        }
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
            return Err(StoreError::Hdf5 {
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
    fn write_pending(&mut self, i: usize) -> Result<(), StoreError> {
        let bytes = (self.pending[i].values * 8) as u64;
        if bytes > 0 {
            self.ensure_space(bytes)?;
        }
        for r in self.pending[i].take() {
            let end = r.first_row + r.rows;
            if self.decls[i].rows.is_none() && end > self.allocated[i] {
                let mut shape = vec![end as usize];
                shape.extend(&self.decls[i].row_shape);
                self.datasets[i].resize(shape).map_err(|e| self.err(e))?;
                self.allocated[i] = end;
            }
            write_record(&self.datasets[i], &self.decls[i], &r).map_err(|e| self.err(e))?;
            self.written[i].advance(r.first_row, r.rows);
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
                .unwrap_or(0);
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
        // Best effort: the run has already failed, and the reason is what
        // counts. Rows received are written if they can be; the extents
        // then say exactly the rows that reached the file.
        if self.flush().is_err() {
            let _ = self.write_extent_attrs(true);
        }
        let _ = self.set_status(&format!("failed: {reason}"));
        self.partial.clone()
    }
}

/// The store's part of a checkpoint: the rows written per dataset, beside
/// the executor's state.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoreCheckpoint {
    extents: Vec<Extents>,
    state: Vec<u8>,
}

/// The group holding the checkpoint: two slots, written in turn, and the
/// attributes `slot` (the one that is whole), `bytes` and `checksum`.
const CHECKPOINT: &str = "checkpoint";

/// Decides whether a file may be gone on with, before anything in it
/// changes: shown the resolved spec the file records and the executor's
/// state from its last checkpoint (if any); an error refuses.
pub type Accept<'a> = &'a dyn Fn(&str, Option<&[u8]>) -> Result<(), String>;

/// FNV-1a of the checkpoint's bytes: a torn slot is never taken for whole.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Hdf5Store {
    /// Opens the `.partial` of a paused or killed run to go on with it:
    /// takes the output's lock, checks that the file has the job's layout,
    /// and returns the store with the rows its last checkpoint accounts for,
    /// and the executor's state from that checkpoint (`None` if the run
    /// never wrote one: it starts again, writing the same rows).
    /// `accept` is shown the resolved spec recorded in the file first, and
    /// may refuse it (nothing is changed then).
    pub fn reopen(
        target: &Path,
        layout: &Layout,
        info: &RunInfo,
        accept: Accept<'_>,
    ) -> Result<(Self, Option<Vec<u8>>), CreateError> {
        let lock = OutputLock::acquire(target)?;
        let partial = partial_path(target);
        if !partial.exists() {
            return Err(CreateError::Refused(if target.exists() {
                format!(
                    "{} is complete: there is nothing to resume",
                    target.display()
                )
            } else {
                format!(
                    "nothing to resume: {} does not exist (start the run without --resume)",
                    partial.display()
                )
            }));
        }
        Self::open_partial(target, layout, info, accept, lock)
    }

    /// Goes on from the complete `target` with a longer run: `accept` is
    /// shown the resolved spec recorded in it first (and may refuse it:
    /// nothing is changed then); the file is then copied to `.partial` and
    /// reopened as for a resume. The complete file stays as it is until the
    /// longer run completes and replaces it.
    pub fn extend(
        target: &Path,
        layout: &Layout,
        info: &RunInfo,
        accept: Accept<'_>,
    ) -> Result<(Self, Option<Vec<u8>>), CreateError> {
        let lock = OutputLock::acquire(target)?;
        let partial = partial_path(target);
        if partial.exists() {
            return Err(CreateError::Refused(format!(
                "{} exists: resume it (or remove it) first",
                partial.display()
            )));
        }
        {
            let refused =
                |why: String| CreateError::Refused(format!("{}: {why}", target.display()));
            let file = File::open(target).map_err(|e| refused(e.to_string()))?;
            let attr = |name: &str| {
                file.attr(name)
                    .and_then(|a| a.read_scalar::<VarLenUnicode>())
                    .map(|v| v.as_str().to_string())
            };
            let recorded = attr("resolved_spec").map_err(|_| {
                refused("it has no resolved spec: it was not written by sampo run".into())
            })?;
            if attr("status").ok().as_deref() != Some("complete") {
                return Err(refused(
                    "it is not complete: there is nothing to extend".into(),
                ));
            }
            let Some(saved) = read_checkpoint(&file).map_err(&refused)? else {
                return Err(refused(
                    "it holds no final state of its tasks (written by an older sampo): it \
                     cannot be extended"
                        .into(),
                ));
            };
            accept(&recorded, Some(&saved.state)).map_err(CreateError::Refused)?;
        }
        if let Err(e) = std::fs::copy(target, &partial) {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Hdf5 {
                path: partial,
                message: format!("cannot copy {} to extend it: {e}", target.display()),
            }
            .into());
        }
        let opened = Self::open_partial(target, layout, info, &|_, _| Ok(()), lock);
        if opened.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        opened
    }

    /// A new output from the complete file `source`, for a run that redoes
    /// its last stage (`--from`): `accept` is shown the resolved spec
    /// recorded in `source` first (and may refuse it); the file is copied to
    /// `<target>.partial`, the groups `drop` (what the stage rewrites, the
    /// old checkpoint) are removed, and what the layout has that the copy
    /// lacks is created. Every dataset the copy keeps counts as written.
    /// `source` itself is only read.
    pub fn derive(
        source: &Path,
        target: &Path,
        force: bool,
        layout: &Layout,
        drop: &[&str],
        accept: Accept<'_>,
    ) -> Result<Self, CreateError> {
        let lock = OutputLock::acquire(target)?;
        check_target(target, force)?;
        let refused = |why: String| CreateError::Refused(format!("{}: {why}", source.display()));
        {
            let file = File::open(source).map_err(|e| refused(e.to_string()))?;
            let attr = |name: &str| {
                file.attr(name)
                    .and_then(|a| a.read_scalar::<VarLenUnicode>())
                    .map(|v| v.as_str().to_string())
            };
            let recorded = attr("resolved_spec").map_err(|_| {
                refused("it has no resolved spec: it was not written by sampo run".into())
            })?;
            if attr("status").ok().as_deref() != Some("complete") {
                return Err(refused("it is not complete".into()));
            }
            accept(&recorded, None).map_err(CreateError::Refused)?;
        }
        let partial = partial_path(target);
        let err = |message: String| StoreError::Hdf5 {
            path: partial.clone(),
            message,
        };
        std::fs::copy(source, &partial).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            err(format!("cannot copy {}: {e}", source.display()))
        })?;
        type Opened = (File, Vec<Dataset>, Vec<u64>, Vec<Extents>);
        let opened = (|| -> hdf5::Result<Opened> {
            let file = File::open_rw(&partial)?;
            for g in drop {
                if file.link_exists(g) {
                    file.unlink(g)?;
                }
            }
            for g in &layout.groups {
                let group = match file.group(&g.path) {
                    Ok(group) => group,
                    Err(_) => file.create_group(&g.path)?,
                };
                for (name, value) in &g.attrs {
                    write_attr(&group, name, value)?;
                }
            }
            let (mut datasets, mut allocated, mut extents) = (Vec::new(), Vec::new(), Vec::new());
            for decl in &layout.datasets {
                let (ds, ext) = match file.dataset(&decl.path) {
                    Ok(ds) => {
                        let mut ext = Extents::new(decl.lane_count());
                        let rows = ds.shape().first().copied().unwrap_or(0) as u64;
                        for _ in 0..decl.lane_count() {
                            ext.advance(0, rows);
                        }
                        (ds, ext)
                    }
                    Err(_) => (
                        create_dataset(&file, decl)?,
                        Extents::new(decl.lane_count()),
                    ),
                };
                if ds.shape().get(1..) != Some(&decl.row_shape[..]) {
                    return Err(hdf5::Error::from(format!(
                        "dataset /{} has shape {:?}, not rows × {:?}",
                        decl.path,
                        ds.shape(),
                        decl.row_shape
                    )));
                }
                allocated.push(ds.shape().first().copied().unwrap_or(0) as u64);
                datasets.push(ds);
                extents.push(ext);
            }
            file.flush()?;
            Ok((file, datasets, allocated, extents))
        })();
        match opened {
            Ok((file, datasets, allocated, extents)) => Ok(Self::assemble(
                file,
                target,
                layout,
                (datasets, allocated),
                extents,
                lock,
            )),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(err(format!("{} cannot be reused: {e}", source.display())).into())
            }
        }
    }

    /// Writes the root attributes of a longer run's spec (`root`) and the
    /// layout's group attributes again, over those of the run it goes on
    /// from.
    pub fn restamp(&mut self, root: &[(String, Attr)], layout: &Layout) -> Result<(), StoreError> {
        for (name, value) in root {
            self.set_attr("/", name, value.clone())?;
        }
        for g in &layout.groups {
            for (name, value) in &g.attrs {
                self.set_attr(&g.path, name, value.clone())?;
            }
        }
        // The extent attributes were overwritten with the layout's zeros.
        self.written_extents.clear();
        self.update_extent_attrs()?;
        self.file.flush().map_err(|e| self.err(e))
    }

    /// The `.partial` of `target`, opened to go on writing (see `reopen`).
    fn open_partial(
        target: &Path,
        layout: &Layout,
        info: &RunInfo,
        accept: Accept<'_>,
        lock: OutputLock,
    ) -> Result<(Self, Option<Vec<u8>>), CreateError> {
        let partial = partial_path(target);
        let err = |message: String| StoreError::Hdf5 {
            path: partial.clone(),
            message,
        };
        let file = File::open_rw(&partial).map_err(|e| err(e.to_string()))?;
        let recorded = file
            .attr("resolved_spec")
            .and_then(|a| a.read_scalar::<VarLenUnicode>())
            .map_err(|_| {
                CreateError::Refused(format!(
                    "{} has no resolved spec: it was not written by sampo run",
                    partial.display()
                ))
            })?;
        let saved = read_checkpoint(&file).map_err(err)?;
        accept(recorded.as_str(), saved.as_ref().map(|c| &c.state[..]))
            .map_err(CreateError::Refused)?;
        let mut datasets = Vec::with_capacity(layout.datasets.len());
        let mut allocated = Vec::with_capacity(layout.datasets.len());
        for decl in &layout.datasets {
            let ds = file.dataset(&decl.path).map_err(|_| {
                err(format!(
                    "has no dataset /{}: it was not written by this spec",
                    decl.path
                ))
            })?;
            let shape = ds.shape();
            if shape.get(1..) != Some(&decl.row_shape[..]) {
                return Err(err(format!(
                    "dataset /{} has shape {shape:?}, not rows × {:?}: it was not written by \
                     this spec",
                    decl.path, decl.row_shape
                ))
                .into());
            }
            allocated.push(shape[0] as u64);
            datasets.push(ds);
        }
        let (extents, state) = match saved {
            Some(c) if c.extents.len() == layout.datasets.len() => (c.extents, Some(c.state)),
            Some(_) => {
                return Err(err("its checkpoint does not match the spec's layout".into()).into())
            }
            None => (fresh_extents(layout), None),
        };
        let mut store = Self::assemble(file, target, layout, (datasets, allocated), extents, lock);
        let resumes = match store.file.attr("resumes") {
            Ok(a) => a.read_scalar::<u64>().unwrap_or(0),
            Err(_) => 0,
        };
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        for (name, value) in [
            ("status", Attr::Str("running".into())),
            ("resumes", Attr::U64(resumes + 1)),
            ("resumed_at", Attr::Str(now)),
            ("resume_command_line", Attr::Str(info.command_line.clone())),
            ("ranks", Attr::U64(info.ranks as u64)),
            ("threads_per_rank", Attr::U64(info.threads as u64)),
        ] {
            store.set_attr("/", name, value)?;
        }
        store.update_extent_attrs()?;
        store.file.flush().map_err(|e| store.err(e))?;
        Ok((store, state))
    }

    /// Marks the file paused (its checkpoint written) and leaves it as
    /// `.partial`, unlocked, for `--resume`; returns its path.
    pub fn pause(mut self, why: &str) -> Result<PathBuf, StoreError> {
        self.set_attr("/", "paused_reason", Attr::Str(why.into()))?;
        self.set_status("paused")?;
        Ok(self.partial.clone())
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

/// The last whole checkpoint of a file, if any.
fn read_checkpoint(file: &File) -> Result<Option<StoreCheckpoint>, String> {
    let Ok(group) = file.group(CHECKPOINT) else {
        return Ok(None);
    };
    let read = || -> hdf5::Result<(u64, u64, u64)> {
        Ok((
            group.attr("slot")?.read_scalar::<u64>()?,
            group.attr("bytes")?.read_scalar::<u64>()?,
            group.attr("checksum")?.read_scalar::<u64>()?,
        ))
    };
    // A run killed while writing its first checkpoint has the group only.
    let Ok((slot, bytes, sum)) = read() else {
        return Ok(None);
    };
    let data = group
        .dataset(&format!("slot{slot}"))
        .and_then(|d| d.read_raw::<u8>())
        .map_err(|e| format!("its checkpoint cannot be read: {e}"))?;
    if data.len() as u64 != bytes || checksum(&data) != sum {
        return Err("its checkpoint is damaged (size or checksum)".into());
    }
    postcard::from_bytes(&data)
        .map(Some)
        .map_err(|e| format!("its checkpoint cannot be decoded: {e}"))
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
        if self.pending[i].values >= PENDING_VALUES {
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
        self.write_pending(dataset)?;
        let decl = &self.decls[dataset];
        let rows = rows.start.min(self.allocated[dataset])..rows.end.min(self.allocated[dataset]);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let selection = hyperslab(decl, rows.start, rows.end - rows.start, lane);
        let values = self.datasets[dataset]
            .read_slice::<f64, _, IxDyn>(selection)
            .map_err(|e| self.err(e))?;
        Ok(values.iter().copied().collect())
    }

    fn rows_written(&self, dataset: usize) -> u64 {
        self.extents[dataset].complete()
    }

    fn checkpoint(&mut self, state: &[u8]) -> Result<(), StoreError> {
        self.flush()?;
        let record = StoreCheckpoint {
            extents: self.extents.clone(),
            state: state.to_vec(),
        };
        let bytes = postcard::to_stdvec(&record).map_err(|e| self.err(e))?;
        self.ensure_space(bytes.len() as u64)?;
        let group = match self.file.group(CHECKPOINT) {
            Ok(g) => g,
            Err(_) => self
                .file
                .create_group(CHECKPOINT)
                .map_err(|e| self.err(e))?,
        };
        let current = group.attr("slot").and_then(|a| a.read_scalar::<u64>()).ok();
        // The slot not in use is written whole and flushed before `slot`
        // points at it.
        let slot = current.map_or(0, |c| 1 - c);
        let name = format!("slot{slot}");
        if group.link_exists(&name) {
            group.unlink(&name).map_err(|e| self.err(e))?;
        }
        let ds = group
            .new_dataset::<u8>()
            .shape(bytes.len())
            .create(name.as_str())
            .map_err(|e| self.err(e))?;
        ds.write_raw(&bytes).map_err(|e| self.err(e))?;
        self.file.flush().map_err(|e| self.err(e))?;
        for (attr, value) in [
            ("bytes", bytes.len() as u64),
            ("checksum", checksum(&bytes)),
            ("slot", slot),
        ] {
            write_attr(&group, attr, &Attr::U64(value)).map_err(|e| self.err(e))?;
        }
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        write_attr(&group, "time", &Attr::Str(now)).map_err(|e| self.err(e))?;
        self.file.flush().map_err(|e| self.err(e))
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

/// The hostname, for provenance.
fn create_dataset(file: &File, decl: &DatasetDecl) -> hdf5::Result<Dataset> {
    let rows = decl.rows.unwrap_or(0) as usize;
    let mut shape = vec![hdf5::Extent::new(rows, decl.rows.is_some().then_some(rows))];
    shape.extend(decl.row_shape.iter().map(|&n| hdf5::Extent::fixed(n)));
    let mut chunk = vec![decl.chunk_rows.max(1)];
    chunk.extend(decl.row_shape.iter().map(|&n| n.max(1)));
    if decl.lanes && chunk.len() > 1 {
        chunk[1] = 1;
    }
    let extents = hdf5::SimpleExtents::from_vec(shape);
    let ds = match decl.dtype {
        Dtype::F64 => file
            .new_dataset::<f64>()
            .chunk(chunk.clone())
            .fill_value(f64::NAN)
            .shape(extents)
            .create(decl.path.as_str())?,
        Dtype::I64 => file
            .new_dataset::<i64>()
            .chunk(chunk.clone())
            .shape(extents)
            .create(decl.path.as_str())?,
        Dtype::U8 => file
            .new_dataset::<u8>()
            .chunk(chunk.clone())
            .shape(extents)
            .create(decl.path.as_str())?,
        Dtype::Str(_) => file
            .new_dataset::<NameString>()
            .chunk(chunk.clone())
            .shape(extents)
            .create(decl.path.as_str())?,
    };
    if let Some(values) = &decl.init {
        let record = Record {
            dataset: 0,
            first_row: 0,
            rows: values.len() as u64 / decl.lane_len().max(1) as u64,
            lane: None,
            values: values.clone(),
        };
        if decl.rows.is_none() {
            let mut full = vec![record.rows as usize];
            full.extend(&decl.row_shape);
            ds.resize(full)?;
        }
        write_record(&ds, decl, &record)?;
    }
    Ok(ds)
}

/// The selection of `rows` rows from `first` (of one lane, if given).
fn hyperslab(decl: &DatasetDecl, first: u64, rows: u64, lane: Option<u64>) -> hdf5::Hyperslab {
    rows_slab(first, 1, rows, &decl.row_shape, lane)
}

/// The selection of `count` rows from `first`, every `step`-th, of a
/// dataset whose rows have `row_shape` (of one lane — an index along the
/// row's first axis — if given). The store and the reader both select so.
pub(super) fn rows_slab(
    first: u64,
    step: u64,
    count: u64,
    row_shape: &[usize],
    lane: Option<u64>,
) -> hdf5::Hyperslab {
    let mut sel = vec![SliceOrIndex::SliceCount {
        start: first as usize,
        step: step.max(1) as usize,
        count: count as usize,
        block: 1,
    }];
    for (axis, &n) in row_shape.iter().enumerate() {
        sel.push(match lane {
            Some(l) if axis == 0 => SliceOrIndex::Index(l as usize),
            _ => SliceOrIndex::SliceCount {
                start: 0,
                step: 1,
                count: n,
                block: 1,
            },
        });
    }
    hdf5::Hyperslab::from(sel)
}

fn write_record(ds: &Dataset, decl: &DatasetDecl, r: &Record) -> hdf5::Result<()> {
    let mut shape = vec![r.rows as usize];
    let skip = usize::from(r.lane.is_some());
    shape.extend(decl.row_shape.iter().skip(skip));
    let sel = hyperslab(decl, r.first_row, r.rows, r.lane);
    fn view<'a, T>(shape: &[usize], v: &'a [T]) -> hdf5::Result<ArrayView<'a, T, IxDyn>> {
        ArrayView::from_shape(IxDyn(shape), v)
            .map_err(|e| hdf5::Error::from(e.to_string().as_str()))
    }
    match &r.values {
        Column::F64(v) => ds.write_slice(view(&shape, v)?, sel),
        Column::I64(v) => ds.write_slice(view(&shape, v)?, sel),
        Column::U8(v) => ds.write_slice(view(&shape, v)?, sel),
        Column::Str(v) => {
            let names: Vec<NameString> = v.iter().map(|s| name_string(s)).collect();
            ds.write_slice(view(&shape, &names)?, sel)
        }
    }
}

/// A name as a fixed-length string (names are validated to fit; longer
/// text is cut at a character boundary rather than failing a run).
fn name_string(s: &str) -> NameString {
    let mut end = s.len().min(NAME_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].replace('\0', " ")).parse().unwrap_or_default()
}

fn to_vlu(s: &str) -> VarLenUnicode {
    // Only fails on interior NUL bytes; replace them rather than fail a run.
    s.replace('\0', "\u{fffd}").parse().unwrap_or_default()
}

/// Creates or replaces an attribute.
fn write_attr(loc: &Location, name: &str, value: &Attr) -> hdf5::Result<()> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)?;
    }
    fn scalar<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5::Result<()> {
        loc.new_attr::<T>().create(name)?.write_scalar(v)
    }
    match value {
        Attr::Str(s) => scalar(loc, name, &to_vlu(s)),
        Attr::I64(v) => scalar(loc, name, v),
        Attr::U64(v) => scalar(loc, name, v),
        Attr::F64(v) => scalar(loc, name, v),
        Attr::Bool(v) => scalar(loc, name, v),
        Attr::F64s(values) => loc
            .new_attr::<f64>()
            .shape(values.len())
            .create(name)?
            .write(values),
        Attr::Strs(list) => {
            let values: Vec<VarLenUnicode> = list.iter().map(|s| to_vlu(s)).collect();
            loc.new_attr::<VarLenUnicode>()
                .shape(values.len())
                .create(name)?
                .write(&values)
        }
    }
}
