//! `sampo summary`: rebuilds the job that wrote a file from its
//! `resolved_spec` and asks it for its tables ([`Job::summary`]) — of a
//! finished file, of one left by a failed run, or of a `.partial` still
//! being written. Every kind's tables go through the one table type and
//! its writers ([`crate::table`]).
//!
//! A file being written is opened without HDF5's file lock, which its
//! writer holds; its metadata may be caught mid-update, so a failed read is
//! retried a few times.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::jobs::RunSpec;
use crate::jobs::{self, Job};
use crate::output::{Hdf5Reader, ReadError, Reader};
use crate::table::{Cell, Document};

pub use crate::jobs::summary::{SummaryError, SummaryOptions as Options};
pub use crate::table::{write, Format};

/// Reads and summarises a file (retrying reads of a file being written).
pub fn summarise(path: &Path, options: &Options) -> Result<Document, SummaryError> {
    check_path(path)?;
    if options.thin == Some(0) {
        return Err(SummaryError::Usage("--thin must be at least 1".into()));
    }
    // Only a run's `.partial` held by a live run can be caught mid-update.
    let tries = if being_written(path) { 5 } else { 1 };
    let mut attempt = 0;
    loop {
        match read(path, options) {
            Err(SummaryError::Read(e)) if attempt + 1 < tries => {
                tracing::debug!("reading {} failed ({e}); retrying", path.display());
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            Err(SummaryError::Read(e)) if Hdf5Reader::open(path).is_err() => {
                return Err(unopenable(path, &e));
            }
            other => return other,
        }
    }
}

/// Opens an output to read it (`sampo plot`), with the checks and messages
/// of [`summarise`]: a missing file, a directory, a file HDF5 cannot open,
/// or one that is not a sampo output are the user's to fix.
pub fn open_output(path: &Path) -> Result<(Hdf5Reader, RunSpec), SummaryError> {
    check_path(path)?;
    let file = Hdf5Reader::open(path).map_err(|e| match e {
        ReadError::NotOutput { .. } if !is_partial(path) => SummaryError::Usage(e.to_string()),
        e => unopenable(path, &e),
    })?;
    let spec = spec_of(path, &file)?;
    Ok((file, spec))
}

/// A path that names a regular file (not a directory, device or pipe).
fn check_path(path: &Path) -> Result<(), SummaryError> {
    let usage = |why: &str| SummaryError::Usage(format!("{}: {why}", path.display()));
    // Followed through links: what is read is what they point at.
    let meta = std::fs::metadata(path).map_err(|_| usage("no such file"))?;
    if meta.is_dir() {
        return Err(usage("is a directory, not an output file"));
    }
    if !meta.is_file() {
        // A FIFO or a device would be read forever.
        return Err(usage("is a device, socket or pipe, not an output file"));
    }
    Ok(())
}

/// A file HDF5 cannot open: what it is likely to be, and what to do.
fn unopenable(path: &Path, e: &ReadError) -> SummaryError {
    let cause = e.to_string();
    let cause = cause.lines().next().unwrap_or("").trim();
    let what = match target_of(path) {
        Some(target) => format!(
            "it holds nothing that can be read (a run was killed while creating it, or its \
             disk filled); `sampo run SPEC -o {target} --force` replaces it"
        ),
        None => "it is not a whole HDF5 file (cut short, or not HDF5)".to_string(),
    };
    SummaryError::Usage(format!("cannot open {cause}: {what}"))
}

/// The output whose `.partial` `path` is, if it is one.
fn target_of(path: &Path) -> Option<&str> {
    path.to_str().and_then(|p| p.strip_suffix(".partial"))
}

fn is_partial(path: &Path) -> bool {
    target_of(path).is_some()
}

/// Whether `path` is the `.partial` of a run that is still writing it.
fn being_written(path: &Path) -> bool {
    target_of(path)
        .is_some_and(|target| crate::output::OutputLock::check(Path::new(target)).is_err())
}

fn read(path: &Path, options: &Options) -> Result<Document, SummaryError> {
    let file = Hdf5Reader::open(path).map_err(|e| match e {
        ReadError::NotOutput { .. } if is_partial(path) => unopenable(path, &e),
        ReadError::NotOutput { .. } => SummaryError::Usage(e.to_string()),
        e => SummaryError::Read(e),
    })?;
    let status = file
        .attr_str("/", "status")?
        .unwrap_or_else(|| "unknown".into());
    let (job, states) = job_of(path, &file)?;
    // Every kind's states have names: a wrong one is the user's to fix.
    if let Some(want) = &options.state {
        if !states.iter().any(|n| n == want) {
            return Err(SummaryError::Usage(format!(
                "{}: no state `{want}` (states: {})",
                path.display(),
                states.join(", ")
            )));
        }
    }
    let tables = job.summary(&file, options)?;
    Ok(Document {
        heading: vec![format!("{} (status: {status})", path.display())],
        fields: vec![
            ("file".into(), Cell::from(path.display().to_string())),
            ("status".into(), Cell::from(status)),
        ],
        tables,
    })
}

/// The job of the file's resolved spec, and the spec's state names.
fn job_of(path: &Path, file: &dyn Reader) -> Result<(Box<dyn Job>, Vec<String>), SummaryError> {
    let spec = spec_of(path, file)?;
    let names = spec.states.iter().map(|s| s.name.clone()).collect();
    Ok((jobs::build(Arc::new(spec)), names))
}

/// The run spec a file records (its `resolved_spec`).
pub fn spec_of(path: &Path, file: &dyn Reader) -> Result<RunSpec, SummaryError> {
    let not_ours = |why: String| SummaryError::Usage(format!("{}: {why}", path.display()));
    let Some(text) = file.attr_str("/", "resolved_spec")? else {
        return Err(not_ours(
            "no `resolved_spec` attribute: not a sampo output".into(),
        ));
    };
    let spec: RunSpec = serde_json::from_str(&text).map_err(|e| {
        not_ours(format!(
            "its `resolved_spec` cannot be read by sampo {} ({e})",
            crate::output::VERSION
        ))
    })?;
    Ok(spec)
}
