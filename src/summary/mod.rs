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
    if !path.exists() {
        return Err(SummaryError::Usage(format!(
            "{}: no such file",
            path.display()
        )));
    }
    if options.thin == Some(0) {
        return Err(SummaryError::Usage("--thin must be at least 1".into()));
    }
    const TRIES: u32 = 5;
    let mut attempt = 0;
    loop {
        match read(path, options) {
            Err(SummaryError::Read(e)) if attempt + 1 < TRIES => {
                tracing::debug!("reading {} failed ({e}); retrying", path.display());
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            other => return other,
        }
    }
}

fn read(path: &Path, options: &Options) -> Result<Document, SummaryError> {
    let file = Hdf5Reader::open(path).map_err(|e| match e {
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
    let names = spec.states.iter().map(|s| s.name.clone()).collect();
    Ok((jobs::build(Arc::new(spec)), names))
}
