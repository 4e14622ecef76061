//! Going on with an existing file: the `.partial` of a paused or stopped
//! run (resume), a complete file asked for more steps (extend), and a new
//! output that keeps a complete file's earlier stages (derive).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File};

use super::io::{create_dataset, write_attr};
use super::slots::read_checkpoint;
use super::{fresh_extents, CreateError, Hdf5Store, RunInfo};
use crate::output::{
    check_target, partial_path, Attr, DatasetDecl, Extents, Layout, OutputLock, Store, StoreError,
};

/// Decides whether a file may be gone on with, before anything in it
/// changes: shown the resolved spec the file records and the executor's
/// state from its last checkpoint (if any); an error refuses.
pub type Accept<'a> = &'a dyn Fn(&str, Option<&[u8]>) -> Result<(), String>;

/// How a run's output is opened.
pub enum Open<'a> {
    /// A new output with the root attributes `root`, replacing an old one
    /// only with `force`.
    Create {
        force: bool,
        root: &'a [(String, Attr)],
    },
    /// Going on with the `.partial` of a paused or stopped run (`accept`
    /// decides), or — when only the complete output is there — a longer run
    /// from it (`accept_complete` decides).
    Resume {
        accept: Accept<'a>,
        accept_complete: Accept<'a>,
    },
    /// A new output from the complete output `source`, without its groups
    /// `drop` (`accept` decides), replacing an old one only with `force`.
    Derive {
        source: &'a Path,
        force: bool,
        drop: &'a [&'a str],
        accept: Accept<'a>,
    },
}

/// An opened output: the store, the executor's state from its last
/// checkpoint, and whether it goes on from a complete output.
pub struct Opened {
    pub store: Hdf5Store,
    pub state: Option<Vec<u8>>,
    pub from_complete: bool,
}

/// Opens `target`'s output as `how` says, after the checks that make a
/// run safe to start there (see `preflight`).
pub fn open(
    target: &Path,
    layout: &Layout,
    info: &RunInfo,
    how: Open<'_>,
) -> Result<Opened, CreateError> {
    let opened = |store, state, from_complete| Opened {
        store,
        state,
        from_complete,
    };
    match how {
        Open::Create { force, root } => {
            crate::output::preflight(target, force)?;
            let store = Hdf5Store::create(target, force, layout, root, info)?;
            Ok(opened(store, None, false))
        }
        Open::Resume {
            accept,
            accept_complete,
        } => {
            if !partial_path(target).exists() && target.exists() {
                let (store, state) = Hdf5Store::extend(target, layout, info, accept_complete)?;
                Ok(opened(store, state, true))
            } else {
                let (store, state) = Hdf5Store::reopen(target, layout, info, accept)?;
                Ok(opened(store, state, false))
            }
        }
        Open::Derive {
            source,
            force,
            drop,
            accept,
        } => {
            crate::output::preflight(target, force)?;
            let store = Hdf5Store::derive(source, target, force, layout, drop, accept)?;
            Ok(opened(store, None, false))
        }
    }
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
            let (file, recorded) =
                open_complete(target, "it is not complete: there is nothing to extend")?;
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
        let (_, recorded) = open_complete(source, "it is not complete")?;
        accept(&recorded, None).map_err(CreateError::Refused)?;
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
                // The extent attributes keep the rows on disk (the layout
                // has zeros there).
                let extent = |d: &DatasetDecl| {
                    d.extent_attr
                        .as_ref()
                        .is_some_and(|(group, attr)| *group == g.path && attr == name)
                };
                if !layout.datasets.iter().any(extent) {
                    self.set_attr(&g.path, name, value.clone())?;
                }
            }
        }
        self.update_extent_attrs()?;
        self.file.flush().map_err(|e| self.err(e))
    }

    /// The `.partial` of `target`, opened to go on writing (see `reopen`).
    /// Everything that may refuse it is checked on the file opened
    /// read-only, so that a refused file is left byte for byte as it was.
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
        let saved = {
            let file = File::open(&partial).map_err(|e| {
                CreateError::Refused(format!(
                    "{} cannot be opened as HDF5 ({}): a run was killed while creating it, or \
                     its disk filled; nothing in it can be resumed. Run again with --force \
                     instead of --resume to replace it",
                    partial.display(),
                    first_line(&e.to_string())
                ))
            })?;
            let not_ours = |why: &str| {
                CreateError::Refused(format!(
                    "cannot resume {}: {why}; choose another output, or remove it",
                    partial.display()
                ))
            };
            let recorded = file
                .attr("resolved_spec")
                .and_then(|a| a.read_scalar::<VarLenUnicode>())
                .map_err(|_| {
                    not_ours("it has no resolved spec: it was not written by sampo run")
                })?;
            let saved = read_checkpoint(&file).map_err(|why| {
                CreateError::Refused(format!(
                    "cannot resume {}: {why}. Run again with --force instead of --resume to \
                     start over",
                    partial.display()
                ))
            })?;
            accept(recorded.as_str(), saved.as_ref().map(|c| &c.state[..]))
                .map_err(CreateError::Refused)?;
            for decl in &layout.datasets {
                let ds = file.dataset(&decl.path).map_err(|_| {
                    not_ours(&format!(
                        "it has no dataset /{}: it was not written by this spec",
                        decl.path
                    ))
                })?;
                let shape = ds.shape();
                if shape.get(1..) != Some(&decl.row_shape[..]) {
                    return Err(not_ours(&format!(
                        "its dataset /{} has shape {shape:?}, not rows × {:?}: it was not \
                         written by this spec",
                        decl.path, decl.row_shape
                    )));
                }
                let held = shape.first().copied().unwrap_or(0) as u64;
                if decl.rows.is_some_and(|rows| rows > held) && !ds.is_resizable() {
                    return Err(not_ours(&format!(
                        "its dataset /{} has {held} rows and cannot grow to the {} this spec \
                         declares (it was written by an older sampo)",
                        decl.path,
                        decl.rows.unwrap_or(0)
                    )));
                }
            }
            if saved
                .as_ref()
                .is_some_and(|c| c.extents.len() != layout.datasets.len())
            {
                return Err(not_ours("its checkpoint does not match the spec's layout"));
            }
            saved
        };
        let file = File::open_rw(&partial).map_err(|e| err(e.to_string()))?;
        let mut datasets = Vec::with_capacity(layout.datasets.len());
        let mut allocated = Vec::with_capacity(layout.datasets.len());
        for decl in &layout.datasets {
            let ds = file
                .dataset(&decl.path)
                .map_err(|e| err(format!("/{}: {e}", decl.path)))?;
            // A longer run declares more rows (checked above to be
            // possible): the new ones hold the fill value.
            if let Some(rows) = decl.rows.filter(|&r| r > ds.shape()[0] as u64) {
                let mut shape = vec![rows as usize];
                shape.extend(&decl.row_shape);
                ds.resize(shape)
                    .map_err(|e| err(format!("/{}: cannot grow it: {e}", decl.path)))?;
            }
            allocated.push(ds.shape()[0] as u64);
            datasets.push(ds);
        }
        let (extents, state) = match saved {
            Some(c) => (c.extents, Some(c.state)),
            None => (fresh_extents(layout), None),
        };
        let mut store = Self::assemble(file, target, layout, (datasets, allocated), extents, lock);
        store.keep_extents_on_disk();
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

    /// Takes the extent attributes the file has as the least they may say
    /// from now on: the rows they count are on disk, and a resume writes
    /// them again with the same values (from its checkpoint, or from the
    /// start without one).
    fn keep_extents_on_disk(&mut self) {
        for (i, decl) in self.decls.iter().enumerate() {
            let Some((group, name)) = &decl.extent_attr else {
                continue;
            };
            let Ok(attr) = self.file.group(group).and_then(|g| g.attr(name)) else {
                continue;
            };
            let rows = attr.read_scalar::<i64>().unwrap_or(0).max(0) as u64;
            // Never more than every growing dataset of the group holds.
            let prefix = format!("{group}/");
            let held = self
                .decls
                .iter()
                .enumerate()
                .filter(|(j, d)| *j == i || (d.rows.is_none() && d.path.starts_with(&prefix)))
                .map(|(j, _)| self.allocated[j])
                .min()
                .unwrap_or(0);
            self.extent_floor.insert(i, rows.min(held));
            self.written_extents.insert(i, rows);
        }
    }

    /// Marks the file paused (its checkpoint written) and leaves it as
    /// `.partial`, unlocked, for `--resume`; returns its path.
    pub fn pause(mut self, why: &str) -> Result<PathBuf, StoreError> {
        self.set_attr("/", "paused_reason", Attr::Str(why.into()))?;
        self.set_status("paused")?;
        Ok(self.partial.clone())
    }
}

/// A complete output written by `sampo run`, opened read-only, and the
/// resolved spec it records; refused (naming it) otherwise, with
/// `incomplete` as the reason when it is not complete.
fn open_complete(path: &Path, incomplete: &str) -> Result<(File, String), CreateError> {
    let refused = |why: String| CreateError::Refused(format!("{}: {why}", path.display()));
    let file = File::open(path).map_err(|e| refused(e.to_string()))?;
    let attr = |name: &str| {
        file.attr(name)
            .and_then(|a| a.read_scalar::<VarLenUnicode>())
            .map(|v| v.as_str().to_string())
    };
    let recorded = attr("resolved_spec")
        .map_err(|_| refused("it has no resolved spec: it was not written by sampo run".into()))?;
    if attr("status").ok().as_deref() != Some("complete") {
        return Err(refused(incomplete.into()));
    }
    Ok((file, recorded))
}

/// The first line of an HDF5 error (its report can run to a page).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
