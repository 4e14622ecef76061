//! `sampo summary`: the diagnostics of every state of a sampo output,
//! recomputed from the stored draws — of a finished file, of one left by a
//! failed run, or of a `.partial` still being written.
//!
//! Every group with emcee's layout (`/states/<name>`, and `/replicates/<name>`
//! with a replicate axis) is read block by block into a
//! [`ChainAccumulator`], so memory stays bounded whatever the file's size.
//! Only rows that every chain has written (the group's `iteration`) are used.
//! A file still being written is opened without HDF5's file lock, which its
//! writer holds; its metadata may be caught mid-update, so a failed read is
//! retried a few times.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdf5::types::{FixedUnicode, VarLenUnicode};
use hdf5::{File, Group};
use serde_json::{json, Value};

use crate::diag::{self, ChainAccumulator, SummaryRow, SUMMARY_COLUMNS};
use crate::spec::NAME_MAX;

mod smc;

pub use smc::{EvidenceSummary, WeightedRow};

/// What to summarise and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this state (all by default).
    pub state: Option<String>,
    /// Stored rows to drop first (default: the file's `burn_rows`).
    pub burn: Option<u64>,
    /// Keep every `thin`-th stored row after the burn-in (emcee's
    /// `get_chain(discard=burn, thin=thin)`).
    pub thin: Option<u64>,
}

/// Table (fixed-width, as the run prints it), CSV or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// What the user must fix (exit 2): no such file, no such state, not a
    /// sampo output, a bad option.
    #[error("{0}")]
    Usage(String),
    /// The file could not be read (exit 1).
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// One (state, replicate) of the file and its rows.
#[derive(Debug, Clone)]
pub struct StateSummary {
    pub state: String,
    /// The group it was read from.
    pub group: String,
    pub kind: String,
    pub replicate: Option<u64>,
    /// Walkers or chains (axis 1 of `chain`).
    pub chains: usize,
    /// The chains behind the diagnostics: all of them, unless the file is
    /// unfinished and some have fewer rows (see [`chains_to_use`]).
    pub used: Vec<usize>,
    /// Whether the chains are independent (false: an ensemble's walkers).
    pub independent: bool,
    /// Stored rows every chain has written.
    pub rows: u64,
    pub burn_rows: u64,
    pub thin: u64,
    /// Draws per chain behind the diagnostics.
    pub draws: usize,
    /// Stored rows per chain those draws span (draws × thin): what the
    /// "chain < 50 τ" flag compares with τ, which is in stored rows.
    pub span: usize,
    /// Stored rows between the draws kept for τ and the rank diagnostics.
    pub tau_stride: usize,
    /// emcee's acceptance fraction: `accepted` (acceptances at the stored
    /// iterations) over the stored rows. The run's own table counts every
    /// iteration; with thin > 1 the two differ by sampling noise.
    pub acceptance: f64,
    pub params: Vec<SummaryRow>,
}

/// Everything `sampo summary` shows of a file.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub path: PathBuf,
    pub status: String,
    pub states: Vec<StateSummary>,
    /// The trans-conceptual results, when the file has them (with the spec
    /// that made them).
    pub transc: Option<(crate::jobs::RunSpec, crate::jobs::transc::Results)>,
    /// Per state of an SMC run (`/smc/<state>`): its evidence.
    pub evidences: Vec<EvidenceSummary>,
}

/// Reads and summarises a file (retrying reads of a file being written).
pub fn summarise(path: &Path, options: &Options) -> Result<FileSummary, SummaryError> {
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
        match read_file(path, options) {
            Err(SummaryError::Read { message, .. }) if attempt + 1 < TRIES => {
                tracing::debug!("reading {} failed ({message}); retrying", path.display());
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            other => return other,
        }
    }
}

fn read_file(path: &Path, options: &Options) -> Result<FileSummary, SummaryError> {
    let read_err = |e: hdf5::Error| SummaryError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = open(path).map_err(|e| {
        // An empty file may be a run's output before its first flush.
        let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
        if empty || looks_like_hdf5(path) {
            read_err(e)
        } else {
            SummaryError::Usage(format!("{}: not an HDF5 file", path.display()))
        }
    })?;
    let status = file
        .attr("status")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let mut groups = Vec::new();
    for top in ["states", "replicates"] {
        if let Ok(g) = file.group(top) {
            for name in g.member_names().map_err(read_err)? {
                groups.push((format!("{top}/{name}"), g.group(&name).map_err(read_err)?));
            }
        }
    }
    // In the order of the run spec, as `/summary` lists the states.
    if let Ok(names) = file
        .dataset("summary/state")
        .and_then(|d| d.read_raw::<FixedUnicode<NAME_MAX>>())
    {
        let order: Vec<String> = names.iter().map(|s| s.as_str().to_owned()).collect();
        let rank = |p: &str| {
            let name = p.rsplit('/').next().unwrap_or_default();
            order.iter().position(|n| n == name).unwrap_or(usize::MAX)
        };
        groups.sort_by_key(|(p, _)| rank(p));
    }
    let mut evidences = smc::read_evidences(&file).map_err(read_err)?;
    if groups.is_empty() && file.group("smc").is_err() {
        return Err(SummaryError::Usage(format!(
            "{}: no /states or /replicates groups: not a sampo output",
            path.display()
        )));
    }
    if let Some(want) = &options.state {
        let names: Vec<String> = groups
            .iter()
            .map(|(p, _)| p.rsplit('/').next().unwrap_or_default().to_owned())
            .chain(evidences.iter().map(|e| e.state.clone()))
            .collect();
        if !names.iter().any(|n| n == want) {
            return Err(SummaryError::Usage(format!(
                "{}: no state `{want}` (states: {})",
                path.display(),
                names.join(", ")
            )));
        }
    }
    let mut states = Vec::new();
    for (path_in_file, group) in &groups {
        let name = path_in_file.rsplit('/').next().unwrap_or_default();
        if options.state.as_deref().is_some_and(|s| s != name) {
            continue;
        }
        states.extend(
            summarise_group(path_in_file, name, group, &status, options).map_err(read_err)?,
        );
    }
    if let Some(want) = &options.state {
        evidences.retain(|e| &e.state == want);
    }
    let transc = read_transc(&file).map_err(read_err)?;
    Ok(FileSummary {
        path: path.to_path_buf(),
        status,
        states,
        transc,
        evidences,
    })
}

/// The trans-conceptual results of a file whose last stage wrote them.
fn read_transc(
    file: &File,
) -> hdf5::Result<Option<(crate::jobs::RunSpec, crate::jobs::transc::Results)>> {
    let Ok(group) = file.group("transc") else {
        return Ok(None);
    };
    let spec = file
        .attr("resolved_spec")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .ok()
        .and_then(|s| serde_json::from_str::<crate::jobs::RunSpec>(s.as_str()).ok());
    let Some(spec) = spec.filter(|s| crate::jobs::transc::settings_of(s).is_some()) else {
        return Ok(None);
    };
    // Until every walker has its counts (rows not written read as NaN),
    // there is nothing to show.
    let visits = group.dataset("visits")?.read_raw::<f64>()?;
    if visits.iter().any(|v| v.is_nan()) {
        return Ok(None);
    }
    let taus = group.dataset("tau")?.read_raw::<f64>()?;
    let moves = group.dataset("moves")?.read_raw::<f64>()?;
    let t = crate::jobs::transc::settings_of(&spec).expect("filtered");
    let results =
        crate::jobs::transc::Results::from_counts(t, spec.states.len(), &visits, &moves, &taus);
    Ok(Some((spec, results)))
}

/// Opens a file for reading without HDF5's file lock, which the writer of a
/// run in progress holds. Reading never changes the file, so the lock
/// protects nothing here.
fn open(path: &Path) -> hdf5::Result<File> {
    // HDF5 reads this when the library starts, at this command's first
    // HDF5 call (and nothing else in this process reads the environment
    // concurrently). Works with every HDF5 ≥ 1.10.0, unlike the
    // file-access property, which needs 1.10.7.
    if std::env::var_os("HDF5_USE_FILE_LOCKING").is_none() {
        std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    }
    File::open(path)
}

/// HDF5's signature at the start of the file (where sampo's files have it).
fn looks_like_hdf5(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == *b"\x89HDF\r\n\x1a\n")
}

fn int_attr(g: &Group, name: &str) -> hdf5::Result<u64> {
    let a = g.attr(name)?;
    a.read_scalar::<u64>()
        .or_else(|_| a.read_scalar::<i64>().map(|v| v.max(0) as u64))
}

fn summarise_group(
    path: &str,
    name: &str,
    g: &Group,
    status: &str,
    options: &Options,
) -> hdf5::Result<Vec<StateSummary>> {
    let chain = g.dataset("chain")?;
    let shape = chain.shape();
    let kind = g
        .attr("kind")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| "ensemble".into());
    let independent = g
        .attr("independent_chains")
        .and_then(|a| a.read_scalar::<bool>())
        .unwrap_or(false);
    let params: Vec<String> = g
        .dataset("param_names")?
        .read_raw::<FixedUnicode<NAME_MAX>>()?
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let iteration = int_attr(g, "iteration")?;
    let burn_rows = options
        .burn
        .unwrap_or(int_attr(g, "burn_rows").unwrap_or(0));
    let thin = options.thin.unwrap_or(1);
    let (replicates, w, d) = match shape.as_slice() {
        [_, w, d] => (None, *w, *d),
        [_, r, w, d] => (Some(*r), *w, *d),
        _ => {
            return Err(hdf5::Error::from(format!(
                "{path}/chain: unexpected shape {shape:?}"
            )))
        }
    };
    let extent = shape[0] as u64;
    let complete = status == "complete";
    let accepted = g.dataset("accepted")?.read_raw::<f64>()?;
    let log_prob = g.dataset("log_prob")?;
    let mut out = Vec::new();
    for r in 0..replicates.unwrap_or(1) {
        let acc = match replicates {
            Some(_) => &accepted[r * w..(r + 1) * w],
            None => &accepted[..w.min(accepted.len())],
        };
        // Rows written per chain: all of them in a finished file; in an
        // unfinished one, the NaN fill marks rows not written yet.
        let counts = if complete {
            vec![iteration.min(extent); w]
        } else {
            written_rows(
                &log_prob,
                replicates.map(|_| r),
                w,
                iteration.min(extent),
                extent,
            )?
        };
        let (chosen, rows) = chains_to_use(&counts);
        let acceptance = chosen.iter().map(|&c| acc[c]).sum::<f64>()
            / chosen
                .iter()
                .map(|&c| counts[c] as f64)
                .sum::<f64>()
                .max(1.0);
        // Rows burn + thin − 1, burn + 2 thin − 1, … < rows (emcee's get_chain).
        let first = burn_rows + thin - 1;
        let draws = if first < rows {
            ((rows - first - 1) / thin + 1) as usize
        } else {
            0
        };
        let n = chosen.len();
        let mut summary = ChainAccumulator::new(n, d, draws);
        let block = ((1u64 << 17) / (w * d).max(1) as u64).max(1) * thin;
        let mut start = first.min(rows);
        while start < rows {
            let end = (start + block).min(rows);
            let (a, b) = (start as usize, end as usize);
            let t = thin as usize;
            let values = match replicates {
                Some(_) => {
                    chain.read_slice::<f64, _, ndarray::Ix3>(ndarray::s![a..b;t, r, .., ..])?
                }
                None => chain.read_slice::<f64, _, ndarray::Ix3>(ndarray::s![a..b;t, .., ..])?,
            };
            if n == w {
                summary.push(&values.iter().copied().collect::<Vec<f64>>());
            } else {
                let mut picked = Vec::with_capacity(values.len() / w * n);
                for row in values.outer_iter() {
                    for &c in &chosen {
                        picked.extend(row.row(c).iter().copied());
                    }
                }
                summary.push(&picked);
            }
            start = a as u64 + ((b - a).div_ceil(t) as u64) * thin;
        }
        let stride = summary.tau_stride();
        let rows_out = summary
            .finish()
            .into_iter()
            .zip(&params)
            .map(|(s, p)| SummaryRow {
                name: p.clone(),
                // τ in stored rows of the file: the draws are every thin-th.
                values: {
                    let mut v = s.values(acceptance);
                    v[12] *= thin as f64;
                    v
                },
            })
            .collect();
        out.push(StateSummary {
            state: name.to_owned(),
            group: path.to_owned(),
            kind: kind.clone(),
            replicate: replicates.map(|_| r as u64),
            chains: w,
            used: chosen,
            independent,
            rows,
            burn_rows,
            thin,
            draws,
            span: draws * thin as usize,
            tau_stride: stride,
            acceptance,
            params: rows_out,
        });
    }
    Ok(out)
}

/// Leading rows of each chain with a log-probability (not the NaN fill) in
/// an unfinished file, scanning from `known` (rows every chain has written)
/// to the extent.
fn written_rows(
    log_prob: &hdf5::Dataset,
    replicate: Option<usize>,
    w: usize,
    known: u64,
    extent: u64,
) -> hdf5::Result<Vec<u64>> {
    let mut counts = vec![known; w];
    let mut open = vec![true; w];
    let block = ((1u64 << 17) / w.max(1) as u64).max(1);
    let mut start = known;
    while start < extent && open.iter().any(|&o| o) {
        let end = (start + block).min(extent);
        let (a, b) = (start as usize, end as usize);
        let values = match replicate {
            Some(r) => log_prob.read_slice::<f64, _, ndarray::Ix2>(ndarray::s![a..b, r, ..])?,
            None => log_prob.read_slice::<f64, _, ndarray::Ix2>(ndarray::s![a..b, ..])?,
        };
        for row in values.outer_iter() {
            for (c, v) in row.iter().enumerate() {
                if open[c] {
                    if v.is_nan() {
                        open[c] = false;
                    } else {
                        counts[c] += 1;
                    }
                }
            }
        }
        start = end;
    }
    Ok(counts)
}

/// Which chains to diagnose, and over how many rows, when chains have
/// written different numbers of rows (an unfinished file): the set that
/// keeps the most draws in all, k chains × the k-th largest count, the
/// longest ones, each cut to that count; ties go to more chains.
pub fn chains_to_use(counts: &[u64]) -> (Vec<usize>, u64) {
    let mut sorted: Vec<u64> = counts.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut best = (0u64, 0usize);
    for (k, &c) in sorted.iter().enumerate() {
        let total = (k as u64 + 1) * c;
        if total >= best.0 && c > 0 {
            best = (total, k);
        }
    }
    let rows = sorted.get(best.1).copied().unwrap_or(0);
    if rows == 0 {
        return ((0..counts.len()).collect(), 0);
    }
    let chosen = (0..counts.len()).filter(|&c| counts[c] >= rows).collect();
    (chosen, rows)
}

/// Writes the summary in the chosen format.
pub fn write(out: &mut dyn Write, summary: &FileSummary, format: Format) -> io::Result<()> {
    match format {
        Format::Table => write_table(out, summary),
        Format::Csv => write_csv(out, summary),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &to_json(summary))?;
            writeln!(out)
        }
    }
}

fn write_table(out: &mut dyn Write, s: &FileSummary) -> io::Result<()> {
    writeln!(out, "{} (status: {})", s.path.display(), s.status)?;
    for st in &s.states {
        let title = match st.replicate {
            Some(r) => format!("{} (replicate {r})", st.state),
            None => st.state.clone(),
        };
        let what = if st.independent { "chains" } else { "walkers" };
        let thin = if st.thin > 1 {
            format!(", thinned by {}", st.thin)
        } else {
            String::new()
        };
        writeln!(
            out,
            "state {title} ({}): {} {what} × {} stored rows; {} draws each after {} rows of burn-in{thin}; acceptance {:.3}",
            st.kind, st.chains, st.rows, st.draws, st.burn_rows, st.acceptance
        )?;
        if st.used.len() < st.chains {
            writeln!(
                out,
                "  (unfinished: {} of {} {what} have {} rows or more and are used, cut to that; the others have fewer)",
                st.used.len(),
                st.chains,
                st.rows
            )?;
        }
        if st.tau_stride > 1 {
            writeln!(
                out,
                "  (τ, R-hat, ESS and quantiles from one draw in {}, to bound memory; mean and sd from every draw)",
                st.tau_stride
            )?;
        }
        diag::write_table(out, &st.params, st.span, !st.independent)?;
    }
    if let Some((spec, results)) = &s.transc {
        crate::jobs::transc::write_table(out, spec, results)?;
    }
    smc::write_table(out, &s.evidences)
}

fn write_csv(out: &mut dyn Write, s: &FileSummary) -> io::Result<()> {
    write!(out, "state,replicate,param")?;
    for c in SUMMARY_COLUMNS {
        write!(out, ",{c}")?;
    }
    writeln!(out, ",draws,chains,independent_chains,flags")?;
    for st in &s.states {
        for row in &st.params {
            write!(
                out,
                "{},{},{}",
                csv_field(&st.state),
                st.replicate.unwrap_or(0),
                csv_field(&row.name)
            )?;
            for v in &row.values {
                write!(out, ",{v}")?;
            }
            writeln!(
                out,
                ",{},{},{},{}",
                st.draws,
                st.chains,
                st.independent,
                row.flags(st.span).join(";")
            )?;
        }
    }
    smc::write_csv(out, &s.evidences)
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A number for JSON: NaN and infinities become null.
fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn to_json(s: &FileSummary) -> Value {
    let states: Vec<Value> = s
        .states
        .iter()
        .map(|st| {
            let params: Vec<Value> = st
                .params
                .iter()
                .map(|row| {
                    let mut m = serde_json::Map::new();
                    m.insert("param".into(), json!(row.name));
                    for (c, v) in SUMMARY_COLUMNS.iter().zip(&row.values) {
                        m.insert((*c).into(), number(*v));
                    }
                    m.insert("flags".into(), json!(row.flags(st.span)));
                    Value::Object(m)
                })
                .collect();
            json!({
                "state": st.state,
                "group": st.group,
                "kind": st.kind,
                "replicate": st.replicate,
                "chains": st.chains,
                "chains_used": st.used,
                "independent_chains": st.independent,
                "rows": st.rows,
                "burn_rows": st.burn_rows,
                "thin": st.thin,
                "draws": st.draws,
                "tau_stride": st.tau_stride,
                "acceptance": number(st.acceptance),
                "params": params,
            })
        })
        .collect();
    let transc = s.transc.as_ref().map(|(spec, r)| {
        let rows: Vec<Value> = spec
            .states
            .iter()
            .enumerate()
            .map(|(k, st)| {
                json!({
                    "state": st.name,
                    "dim": st.dim(),
                    "probability": number(r.probability[k]),
                    "probability_err": number(r.probability_err[k]),
                    "log_evidence": number(r.log_evidence[k]),
                    "log_evidence_err": number(r.log_evidence_err[k]),
                    "acceptance_between": number(r.between[k]),
                })
            })
            .collect();
        json!({ "tau": number(r.tau), "states": rows })
    });
    let evidences: Vec<Value> = s.evidences.iter().map(smc::to_json).collect();
    json!({
        "file": s.path.display().to_string(),
        "status": s.status,
        "states": states,
        "transc": transc,
        "evidences": evidences,
    })
}
