//! How a run's output begins: new, resumed from its `.partial`, extended
//! from a complete output a spec asks more steps of, or derived from a
//! complete output to redo its last stage — and the checkpoint the run goes
//! on from. The file operations are the store's (`output::open`); what may
//! be gone on with, and how, is decided here, from the spec and the job.

use std::cell::Cell;
use std::path::Path;

use tracing::{info, warn};

use super::checkpoint::{Checkpoint, FinalSets};
use crate::jobs::{Job, RunSpec};
use crate::output::{self, Attr, CreateError, Layout, Open, RunInfo, Store};

/// How the run begins with its output.
#[derive(Debug, Clone, Copy)]
pub enum Begin<'a> {
    /// A new output (replacing an old one only with `force`).
    New { force: bool },
    /// Go on with the `.partial` of a paused or stopped run; or, when the
    /// output is complete and the spec asks for more steps, extend it.
    Resume,
    /// A new output holding `source`'s earlier stages, the last stage redone
    /// (`--from`), replacing an old one only with `force`.
    Redo { source: &'a Path, force: bool },
}

/// The output opened, and the checkpoint to go on from (`None`: from the
/// beginning).
pub struct Started {
    pub store: Box<dyn Store>,
    pub checkpoint: Option<Checkpoint>,
}

/// The root attributes that describe the run (provenance is added by the
/// store).
pub fn root_attrs(spec: &RunSpec) -> Vec<(String, Attr)> {
    let resolved = spec.resolved_json();
    vec![
        ("name".into(), Attr::Str(spec.name.clone())),
        ("spec".into(), Attr::Str(spec.text.clone())),
        (
            "spec_path".into(),
            Attr::Str(spec.path.display().to_string()),
        ),
        ("resolved_spec".into(), Attr::Str(resolved.to_string())),
        ("seed".into(), Attr::U64(spec.seed)),
        ("overrides".into(), Attr::Strs(spec.overrides.clone())),
        ("replicates".into(), Attr::U64(spec.replicates as u64)),
    ]
}

/// Opens `target`'s output for `spec`'s run as `how` says. Nothing is
/// changed in an existing file that is refused.
pub fn begin(
    how: Begin<'_>,
    spec: &RunSpec,
    job: &dyn Job,
    target: &Path,
    layout: &Layout,
    info: &RunInfo,
) -> Result<Started, CreateError> {
    match how {
        Begin::New { force } => {
            let root = root_attrs(spec);
            let opened = output::open(target, layout, info, Open::Create { force, root: &root })?;
            Ok(Started {
                store: Box::new(opened.store),
                checkpoint: None,
            })
        }
        Begin::Resume => resume(spec, job, target, layout, info),
        Begin::Redo { source, force } => redo(spec, job, source, force, target, layout, info),
    }
}

/// `--resume`: the spec must be the file's but for free settings, or ask
/// for more steps (then the run is extended).
fn resume(
    spec: &RunSpec,
    job: &dyn Job,
    target: &Path,
    layout: &Layout,
    info: &RunInfo,
) -> Result<Started, CreateError> {
    let partial = output::partial_path(target);
    let resolved = spec.resolved_json();
    // Set when the spec asks for more steps than the file's run took.
    let extending = Cell::new(false);
    let accept = |attribute: &str, state: Option<&[u8]>| {
        // The spec the last checkpoint belongs to: an extension interrupted
        // before its end records it there, with the tasks' new places.
        let of_checkpoint = state
            .and_then(|b| Checkpoint::decode(b).ok())
            .map(|cp| cp.spec)
            .filter(|s| !s.is_empty());
        let recorded = of_checkpoint.as_deref().unwrap_or(attribute);
        let changed = crate::spec::resume::changed_keys(recorded, &resolved)?;
        if changed.is_empty() {
            return Ok(());
        }
        let why = if changed.iter().all(|c| c.starts_with("sampler.")) {
            let old: RunSpec = serde_json::from_str(recorded)
                .map_err(|e| format!("the file's resolved spec is unreadable: {e}"))?;
            match job.extends(&old) {
                Ok(()) => {
                    extending.set(true);
                    return Ok(());
                }
                Err(why) => format!(" ({why})"),
            }
        } else {
            String::new()
        };
        Err(format!(
            "cannot resume {}: the spec differs from the run's in what decides the results \
             (only threads, timeouts, checkpoint_every and walltime may change, and steps, or \
             paths, may rise){why}:\n  {}",
            if partial.exists() { &partial } else { target }.display(),
            changed.join("\n  ")
        ))
    };
    let accept_complete = |recorded: &str, state: Option<&[u8]>| {
        accept(recorded, state)?;
        if extending.get() {
            Ok(())
        } else {
            Err(format!(
                "{} is complete: there is nothing to resume (a spec with more steps, or paths, extends it)",
                target.display()
            ))
        }
    };
    let how = Open::Resume {
        accept: &accept,
        accept_complete: &accept_complete,
    };
    let opened = output::open(target, layout, info, how)?;
    let (mut store, from_complete) = (opened.store, opened.from_complete);
    let checkpoint = match opened.state {
        Some(bytes) => Some(
            Checkpoint::decode(&bytes)
                .map_err(|e| CreateError::Refused(format!("{}: {e}", store.partial().display())))?,
        ),
        None => {
            warn!(
                "{} has no checkpoint (the run stopped before its first): starting again from \
                 the beginning",
                store.partial().display()
            );
            None
        }
    };
    let checkpoint = if extending.get() {
        // Every task placed in the longer run (reading the file only), then
        // one checkpoint with the new spec: the extension's only change.
        let sets = FinalSets::of(layout).expect("the executor's layout has its datasets");
        let extended = checkpoint
            .map(|cp| cp.extended(job, &mut store, &sets))
            .transpose();
        match extended {
            Err(e) => {
                let why = format!("cannot extend {}: {e}", target.display());
                if from_complete {
                    store.discard();
                } else {
                    let _ = store.pause(&format!("not resumed: {why}"));
                }
                return Err(CreateError::Refused(why));
            }
            Ok(Some(mut cp)) => {
                cp.spec = resolved.to_string();
                store.flush()?;
                store.checkpoint(&cp.encode())?;
                store.restamp(&root_attrs(spec), layout)?;
                Some(cp)
            }
            Ok(None) => {
                store.restamp(&root_attrs(spec), layout)?;
                None
            }
        }
    } else {
        checkpoint
    };
    if let Some(cp) = &checkpoint {
        info!(
            "resuming from the checkpoint of {}: stage {}, {} task(s) done, {} to go on from \
             their snapshot",
            store.partial().display(),
            cp.stage,
            cp.done.iter().map(|r| r.end - r.start).sum::<u64>(),
            cp.ready.len() + cp.waiting.len()
        );
    }
    Ok(Started {
        store: Box::new(store),
        checkpoint,
    })
}

/// `--from SOURCE`: a new output holding SOURCE's earlier stages, and the
/// checkpoint that starts the last stage (its carry computed from them).
fn redo(
    spec: &RunSpec,
    job: &dyn Job,
    source: &Path,
    force: bool,
    target: &Path,
    layout: &Layout,
    info: &RunInfo,
) -> Result<Started, CreateError> {
    let (last, Some(stage)) = (job.stages() - 1, spec.second_stage.as_ref()) else {
        let tables: Vec<String> = crate::jobs::STAGE_TABLES
            .iter()
            .map(|t| format!("[{t}]"))
            .collect();
        return Err(CreateError::Refused(format!(
            "--from redoes the second stage of a run (a {} table): this spec has none",
            tables.join(" or ")
        )));
    };
    // The second stage's own table, as the resolved spec records it, and
    // its output group: what `--from` replaces.
    let table = stage.name();
    let same = |a: &Path, b: &Path| {
        std::fs::canonicalize(a)
            .ok()
            .is_some_and(|a| Some(a) == std::fs::canonicalize(b).ok())
    };
    if same(source, target) || same(source, &output::partial_path(target)) {
        return Err(CreateError::Refused(format!(
            "--from {} would write over its source: choose another output with -o",
            source.display()
        )));
    }
    let resolved = spec.resolved_json();
    let accept = |recorded: &str, _: Option<&[u8]>| {
        let changed = crate::spec::resume::changed_keys(recorded, &resolved)?;
        let other: Vec<&str> = changed
            .iter()
            .map(String::as_str)
            .filter(|c| !c.starts_with("second_stage"))
            .collect();
        if other.is_empty() {
            return Ok(());
        }
        Err(format!(
            "cannot redo the last stage from {}: the spec differs from its run in more than \
             [{table}]:\n  {}",
            source.display(),
            other.join("\n  ")
        ))
    };
    let how = Open::Derive {
        source,
        force,
        drop: &[table, "checkpoint"],
        accept: &accept,
    };
    let mut store = output::open(target, layout, info, how)?.store;
    store.restamp(&root_attrs(spec), layout)?;
    for (name, value) in [
        ("from", Attr::Str(source.display().to_string())),
        ("status", Attr::Str("running".into())),
        ("ranks", Attr::U64(info.ranks as u64)),
        ("threads_per_rank", Attr::U64(info.threads as u64)),
        ("command_line", Attr::Str(info.command_line.clone())),
        ("mpi_library", Attr::Str(info.mpi_library.clone())),
    ] {
        store.set_attr("/", name, value)?;
    }
    let carry = match job.finish_stage(last - 1, &mut store) {
        Ok(c) => c,
        Err(e) => {
            store.discard();
            return Err(CreateError::Refused(format!(
                "{}: the earlier stages cannot be used: {e}",
                source.display()
            )));
        }
    };
    let timing_rows = layout
        .find("timings/stage")
        .map_or(0, |d| store.rows_written(d));
    info!(
        "redoing stage {last} from the samples of {}",
        source.display()
    );
    let checkpoint = Checkpoint {
        stage: last,
        carry,
        timing_rows,
        ..Checkpoint::default()
    };
    Ok(Started {
        store: Box::new(store),
        checkpoint: Some(checkpoint),
    })
}
