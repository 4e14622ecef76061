//! The HDF5 output file, in one place: its layout, the writer (rank 0 only)
//! and the readers used for summaries.
//!
//! Layout (see README, "Output file"):
//! - root attributes: provenance (version, spec text, seed, status, layout, times);
//! - `/states/<state>` (or `/replicates/<r>/states/<state>` when replicates > 1):
//!   one ensemble, readable by `emcee.backends.HDFBackend(path, name=<group>)`;
//!   `<group>/summary`: mean, sd, autocorrelation time, ESS per parameter
//!   (attribute `tau_stride`: τ from every n-th row of a very long chain);
//! - `/timings`: per task, the rank that ran it, start, end and evaluations.
//!
//! The file is written as `<output>.partial` and renamed when complete.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File, Group, H5Type, Location};
use ndarray::{s, ArrayView1, ArrayView2, ArrayView3, Ix3};

use crate::diag::ChainSummary;
use crate::exec::{Block, BlockSink, SinkError, TaskRecord};
use crate::spec::RunSpec;

/// The version written into the file and into each ensemble group.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(PathBuf),
    #[error(
        "{0} exists (left by an interrupted or failed run); pass --force to discard it, \
         or move it away to keep it"
    )]
    PartialExists(PathBuf),
    #[error("{path}: {cause}")]
    Hdf5 { path: PathBuf, cause: hdf5::Error },
    #[error("cannot rename {from} to {to}: {cause}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        cause: std::io::Error,
    },
    #[error("no ensemble for task {0} in the output")]
    UnknownTask(usize),
}

/// `<output>.partial`: where the file lives until the run completes.
pub fn partial_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Refuses to touch an existing output (or a partial one) without `force`.
/// Called before any sampling, so a refused run costs nothing.
pub fn check_target(target: &Path, force: bool) -> Result<(), OutputError> {
    if force {
        return Ok(());
    }
    if target.exists() {
        return Err(OutputError::Exists(target.to_path_buf()));
    }
    let partial = partial_path(target);
    if partial.exists() {
        return Err(OutputError::PartialExists(partial));
    }
    Ok(())
}

/// Provenance recorded in the root attributes.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub ranks: usize,
    pub threads: usize,
}

/// One ensemble's datasets.
struct EnsembleDatasets {
    group: Group,
    chain: Dataset,
    log_prob: Dataset,
    accepted: Dataset,
    walkers: usize,
    ndim: usize,
    /// Rows per chunk of `chain` and `log_prob`.
    chunk_rows: usize,
    rows: usize,
}

/// Writes the output file. Only rank 0 has one.
pub struct OutputWriter {
    file: File,
    target: PathBuf,
    partial: PathBuf,
    started: Instant,
    ensembles: Vec<Option<EnsembleDatasets>>,
}

impl OutputWriter {
    /// Creates `<target>.partial` (replacing one only when `force`), with the
    /// root attributes and one empty ensemble group per task.
    pub fn create(
        target: &Path,
        force: bool,
        spec: &RunSpec,
        info: &RunInfo,
    ) -> Result<Self, OutputError> {
        check_target(target, force)?;
        let partial = partial_path(target);
        let err = |cause| OutputError::Hdf5 {
            path: partial.clone(),
            cause,
        };
        let file = File::create(&partial).map_err(err)?;
        let mut writer = Self {
            file,
            target: target.to_path_buf(),
            partial: partial.clone(),
            started: Instant::now(),
            ensembles: Vec::new(),
        };
        writer.write_root(spec, info).map_err(err)?;
        for task in crate::exec::plan(spec) {
            writer.add_ensemble(spec, &task).map_err(err)?;
        }
        writer.file.flush().map_err(err)?;
        Ok(writer)
    }

    fn hdf5_err(&self, cause: hdf5::Error) -> OutputError {
        OutputError::Hdf5 {
            path: self.partial.clone(),
            cause,
        }
    }

    fn write_root(&self, spec: &RunSpec, info: &RunInfo) -> hdf5::Result<()> {
        let f = &self.file;
        write_str_attr(f, "sampo_version", VERSION)?;
        write_str_attr(f, "name", &spec.name)?;
        write_str_attr(f, "spec", &spec.text)?;
        write_str_attr(f, "spec_path", &spec.path.display().to_string())?;
        write_attr(f, "seed", &spec.seed)?;
        write_attr(f, "replicates", &(spec.replicates as u64))?;
        write_attr(f, "ranks", &(info.ranks as u64))?;
        write_attr(f, "threads_per_rank", &(info.threads as u64))?;
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        write_str_attr(f, "start_time", &now)?;
        write_str_attr(f, "status", "running")?;
        write_attr(f, "wall_seconds", &0.0f64)
    }

    fn add_ensemble(&mut self, spec: &RunSpec, task: &crate::exec::Task) -> hdf5::Result<()> {
        let st = &spec.states[task.state];
        let (n, d) = (st.ensemble.walkers, st.dim());
        let group = self.file.create_group(&task.group(spec))?;
        // emcee's HDFBackend reads these five attributes.
        write_attr(&group, "nwalkers", &(n as i64))?;
        write_attr(&group, "ndim", &(d as i64))?;
        write_attr(&group, "iteration", &0i64)?;
        write_attr(&group, "has_blobs", &false)?;
        write_str_attr(&group, "version", VERSION)?;
        write_str_attr(&group, "state", &st.name)?;
        write_attr(&group, "replicate", &(task.replicate as u64))?;
        write_attr(&group, "thin", &(st.ensemble.thin as u64))?;
        write_attr(&group, "burn", &(st.ensemble.burn as u64))?;
        let names: Vec<VarLenUnicode> = st.params.iter().map(|p| to_vlu(p)).collect();
        group
            .new_dataset_builder()
            .with_data(&names)
            .create("param_names")?;

        let rows = crate::exec::task::rows_per_block(n, d, st.ensemble.stored_rows());
        let chain = group
            .new_dataset::<f64>()
            .chunk((rows, n, d))
            .shape((0.., n, d))
            .create("chain")?;
        let log_prob = group
            .new_dataset::<f64>()
            .chunk((rows, n))
            .shape((0.., n))
            .create("log_prob")?;
        let accepted = group
            .new_dataset_builder()
            .with_data(&vec![0.0f64; n])
            .create("accepted")?;
        if self.ensembles.len() <= task.id {
            self.ensembles.resize_with(task.id + 1, || None);
        }
        self.ensembles[task.id] = Some(EnsembleDatasets {
            group,
            chain,
            log_prob,
            accepted,
            walkers: n,
            ndim: d,
            chunk_rows: rows,
            rows: 0,
        });
        Ok(())
    }

    fn ensemble(&self, task: usize) -> Result<&EnsembleDatasets, OutputError> {
        self.ensembles
            .get(task)
            .and_then(Option::as_ref)
            .ok_or(OutputError::UnknownTask(task))
    }

    /// Appends a block to its ensemble's datasets and updates `iteration`.
    pub fn append(&mut self, block: &Block) -> Result<(), OutputError> {
        let e = self
            .ensembles
            .get_mut(block.task)
            .and_then(Option::as_mut)
            .ok_or(OutputError::UnknownTask(block.task))?;
        let (n, d, r0, r1) = (
            e.walkers,
            e.ndim,
            block.first_row,
            block.first_row + block.rows,
        );
        let result = (|| -> hdf5::Result<()> {
            e.chain.resize((r1, n, d))?;
            e.log_prob.resize((r1, n))?;
            let chain = ArrayView3::from_shape((block.rows, n, d), &block.chain)
                .map_err(|e| hdf5::Error::from(e.to_string().as_str()))?;
            let lp = ArrayView2::from_shape((block.rows, n), &block.log_prob)
                .map_err(|e| hdf5::Error::from(e.to_string().as_str()))?;
            e.chain.write_slice(chain, s![r0..r1, .., ..])?;
            e.log_prob.write_slice(lp, s![r0..r1, ..])?;
            e.accepted.write(ArrayView1::from(&block.accepted))?;
            e.group.attr("iteration")?.write_scalar(&(r1 as i64))?;
            Ok(())
        })();
        e.rows = r1;
        result.map_err(|source| self.hdf5_err(source))
    }

    /// Rows of a task's chain written so far.
    pub fn chain_rows(&self, task: usize) -> Result<usize, OutputError> {
        Ok(self.ensemble(task)?.rows)
    }

    /// Reads a task's chain from row `from` to the end, handing it to
    /// `visit` block by block (rows × walkers × ndim, row-major). Blocks are
    /// whole chunks of the dataset (the first one ends at a chunk boundary),
    /// so each chunk is read once, whole, and memory stays at one chunk.
    pub fn read_chain_blocks(
        &self,
        task: usize,
        from: usize,
        mut visit: impl FnMut(&[f64]),
    ) -> Result<(), OutputError> {
        let e = self.ensemble(task)?;
        let mut r0 = from.min(e.rows);
        while r0 < e.rows {
            let r1 = ((r0 / e.chunk_rows + 1) * e.chunk_rows).min(e.rows);
            let block = e
                .chain
                .read_slice::<f64, _, Ix3>(s![r0..r1, .., ..])
                .map_err(|source| self.hdf5_err(source))?;
            match block.as_slice() {
                Some(values) => visit(values),
                None => visit(&block.iter().copied().collect::<Vec<f64>>()),
            }
            r0 = r1;
        }
        Ok(())
    }

    /// Writes a task's summary group (`<group>/summary`).
    pub fn write_summary(
        &self,
        task: usize,
        burn_rows: usize,
        acceptance: f64,
        params: &[ChainSummary],
    ) -> Result<(), OutputError> {
        let tau_stride = params.first().map_or(1, |p| p.tau_stride);
        let e = self.ensemble(task)?;
        let result = (|| -> hdf5::Result<()> {
            let g = e.group.create_group("summary")?;
            let col = |f: fn(&ChainSummary) -> f64| params.iter().map(f).collect::<Vec<f64>>();
            for (name, values) in [
                ("mean", col(|p| p.mean)),
                ("sd", col(|p| p.sd)),
                ("autocorr_time", col(|p| p.tau)),
                ("ess", col(ChainSummary::ess)),
                ("mcse", col(ChainSummary::mcse)),
            ] {
                g.new_dataset_builder().with_data(&values).create(name)?;
            }
            write_attr(&g, "acceptance_fraction", &acceptance)?;
            write_attr(&g, "burn_rows", &(burn_rows as u64))?;
            // τ was estimated on every tau_stride-th row (1: all of them).
            write_attr(&g, "tau_stride", &(tau_stride as u64))
        })();
        result.map_err(|source| self.hdf5_err(source))
    }

    /// Writes `/timings`: one row per task.
    pub fn write_timings(&self, spec: &RunSpec, records: &[TaskRecord]) -> Result<(), OutputError> {
        let result = (|| -> hdf5::Result<()> {
            let g = self.file.create_group("timings")?;
            let ints = |f: fn(&TaskRecord) -> u64| records.iter().map(f).collect::<Vec<u64>>();
            let floats = |f: fn(&TaskRecord) -> f64| records.iter().map(f).collect::<Vec<f64>>();
            let states: Vec<VarLenUnicode> = records
                .iter()
                .map(|r| to_vlu(&spec.states[r.task.state].name))
                .collect();
            g.new_dataset_builder().with_data(&states).create("state")?;
            for (name, values) in [
                ("task", ints(|r| r.task.id as u64)),
                ("replicate", ints(|r| r.task.replicate as u64)),
                ("rank", ints(|r| r.rank as u64)),
                ("evaluations", ints(|r| r.stats.evaluations)),
                ("nan_evaluations", ints(|r| r.stats.nan_evaluations)),
            ] {
                g.new_dataset_builder().with_data(&values).create(name)?;
            }
            for (name, values) in [("start", floats(|r| r.start)), ("end", floats(|r| r.end))] {
                g.new_dataset_builder().with_data(&values).create(name)?;
            }
            Ok(())
        })();
        result.map_err(|source| self.hdf5_err(source))
    }

    fn set_status(&self, status: &str) -> hdf5::Result<()> {
        self.file.attr("status")?.write_scalar(&to_vlu(status))?;
        self.file
            .attr("wall_seconds")?
            .write_scalar(&self.started.elapsed().as_secs_f64())?;
        self.file.flush()
    }

    /// Marks the file complete, closes it and renames it into place.
    pub fn finish(self) -> Result<PathBuf, OutputError> {
        self.set_status("complete").map_err(|s| self.hdf5_err(s))?;
        let (partial, target) = (self.partial.clone(), self.target.clone());
        drop(self); // closes the file before the rename
        std::fs::rename(&partial, &target).map_err(|cause| OutputError::Rename {
            from: partial,
            to: target.clone(),
            cause,
        })?;
        Ok(target)
    }

    /// Marks the file failed and leaves it as `.partial`; returns its path.
    pub fn abandon(self, reason: &str) -> PathBuf {
        // Best effort: the run has already failed, and the reason is what counts.
        let _ = self.set_status(&format!("failed: {reason}"));
        self.partial.clone()
    }
}

impl BlockSink for OutputWriter {
    fn write_block(&mut self, block: &Block) -> Result<(), SinkError> {
        self.append(block).map_err(|e| Box::new(e) as SinkError)
    }
}

fn to_vlu(s: &str) -> VarLenUnicode {
    // Only fails on interior NUL bytes, which TOML strings cannot produce
    // unescaped; replace them rather than fail a finished run.
    s.replace('\0', "\u{fffd}").parse().unwrap_or_default()
}

fn write_attr<T: H5Type>(loc: &Location, name: &str, value: &T) -> hdf5::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(value)
}

fn write_str_attr(loc: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    write_attr(loc, name, &to_vlu(value))
}
