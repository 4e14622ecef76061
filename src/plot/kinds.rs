//! The data of the figures of one kind of work, each read from the groups
//! that kind writes: diagnostics (`/summary`), SMC schedules (`/smc`), the
//! trans-conceptual stage (`/transc`), batch bands (`/batch`) and path fans
//! (`/paths`); and [`data`], which computes the data of any planned figure.

use serde::Serialize;

use super::counts::{hitting, output_columns, output_hists, Hitting, OutputHist};
use super::draws::{corner, trace, Corner, Trace};
use super::{Figure, Options, Planned, PlotError, State};
use crate::diag::{ESS_MIN, RHAT_MAX};
use crate::jobs::batch::stats::quantile_sorted;
use crate::output::{Attr, Reader, Rows};

/// The data of one figure.
#[derive(Debug, Serialize)]
#[serde(tag = "figure", rename_all = "lowercase")]
pub enum FigureData {
    Trace(Trace),
    Corner(Corner),
    Diagnostics(Diagnostics),
    Smc(Smc),
    Transc(Transc),
    Batch(Batch),
    Paths(Paths),
}

/// Computes the data of a planned figure from the file.
pub fn data(
    file: &dyn Reader,
    planned: &Planned,
    options: &Options,
) -> Result<FigureData, PlotError> {
    let state = || {
        planned
            .state
            .as_ref()
            .ok_or_else(|| PlotError::Usage("this figure needs a state".into()))
    };
    Ok(match planned.figure {
        Figure::Trace => FigureData::Trace(trace(file, state()?, options)?),
        Figure::Corner => FigureData::Corner(corner(file, state()?, options)?),
        Figure::Diagnostics => FigureData::Diagnostics(diagnostics(file, state()?)?),
        Figure::Smc => FigureData::Smc(smc(file, state()?)?),
        Figure::Transc => FigureData::Transc(transc(file)?),
        Figure::Batch => FigureData::Batch(batch(file, state()?, options)?),
        Figure::Paths => FigureData::Paths(paths(file, state()?)?),
    })
}

/// R-hat and ESS per parameter, from the `/summary` a finished run wrote.
#[derive(Debug, Serialize)]
pub struct Diagnostics {
    pub state: String,
    /// `param (replicate r)` when the run had replicates.
    pub labels: Vec<String>,
    pub rhat: Vec<f64>,
    pub ess_bulk: Vec<f64>,
    pub ess_tail: Vec<f64>,
    pub rhat_max: f64,
    pub ess_min: f64,
}

fn trimmed(v: Vec<String>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.trim_end_matches('\0').to_string())
        .collect()
}

pub fn diagnostics(file: &dyn Reader, state: &State) -> Result<Diagnostics, PlotError> {
    let states = trimmed(file.read_strings("summary/state")?);
    let params = trimmed(file.read_strings("summary/param")?);
    let replicate = file.read_f64("summary/replicate", None, None)?;
    let rhat = file.read_f64("summary/rhat", None, None)?;
    let bulk = file.read_f64("summary/ess_bulk", None, None)?;
    let tail = file.read_f64("summary/ess_tail", None, None)?;
    let rows: Vec<usize> = (0..states.len())
        .filter(|&i| states[i] == state.name)
        .collect();
    if rows.is_empty() {
        return Err(PlotError::Usage(format!(
            "state {}: not in /summary (a run writes it as each state ends)",
            state.name
        )));
    }
    let many = rows
        .iter()
        .any(|&i| replicate.get(i).is_some_and(|&r| r > 0.0));
    let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    Ok(Diagnostics {
        state: state.name.clone(),
        labels: rows
            .iter()
            .map(|&i| match many {
                true => format!("{} (replicate {})", params[i], at(&replicate, i)),
                false => params[i].clone(),
            })
            .collect(),
        rhat: rows.iter().map(|&i| at(&rhat, i)).collect(),
        ess_bulk: rows.iter().map(|&i| at(&bulk, i)).collect(),
        ess_tail: rows.iter().map(|&i| at(&tail, i)).collect(),
        rhat_max: RHAT_MAX,
        ess_min: ESS_MIN,
    })
}

/// Rows × columns of a 2-D dataset, NaN (not written yet) kept.
fn matrix(file: &dyn Reader, dataset: &str) -> Result<Vec<Vec<f64>>, PlotError> {
    let shape = file.shape(dataset)?;
    let cols = shape.get(1).copied().unwrap_or(1).max(1);
    let values = file.read_f64(dataset, None, None)?;
    Ok(values.chunks(cols).map(<[f64]>::to_vec).collect())
}

/// SMC's schedule per group and the evidence.
#[derive(Debug, Serialize)]
pub struct Smc {
    pub state: String,
    /// `beta[iteration][group]`, `ess[iteration][group]` (NaN: not reached).
    pub beta: Vec<Vec<f64>>,
    pub ess: Vec<Vec<f64>>,
    /// The log-evidence of each group, and the combined value ± error.
    pub group_log_z: Vec<f64>,
    pub log_evidence: Option<f64>,
    pub log_evidence_err: Option<f64>,
}

fn attr_f64(file: &dyn Reader, path: &str, name: &str) -> Result<Option<f64>, PlotError> {
    Ok(match file.attr(path, name)? {
        Some(Attr::F64(v)) => Some(v),
        Some(Attr::F64s(v)) => v.first().copied(),
        _ => None,
    })
}

pub(super) fn attr_strs(
    file: &dyn Reader,
    path: &str,
    name: &str,
) -> Result<Option<Vec<String>>, PlotError> {
    Ok(match file.attr(path, name)? {
        Some(Attr::Strs(v)) => Some(v),
        Some(Attr::Str(s)) => Some(vec![s]),
        _ => None,
    })
}

pub fn smc(file: &dyn Reader, state: &State) -> Result<Smc, PlotError> {
    let g = state.group();
    let group_log_z = if file.exists(&format!("{g}/group_log_z")) {
        file.read_f64(&format!("{g}/group_log_z"), None, None)?
    } else {
        Vec::new()
    };
    Ok(Smc {
        state: state.name.clone(),
        beta: matrix(file, &format!("{g}/beta"))?,
        ess: matrix(file, &format!("{g}/ess"))?,
        group_log_z,
        log_evidence: attr_f64(file, &g, "log_evidence")?,
        log_evidence_err: attr_f64(file, &g, "log_evidence_err")?,
    })
}

/// Walkers whose state index is drawn over the steps, at most.
pub const TRANSC_WALKERS: usize = 4;

/// The trans-conceptual stage: state probabilities with their errors, and
/// the state visited over the steps by a few walkers.
#[derive(Debug, Serialize)]
pub struct Transc {
    pub states: Vec<String>,
    pub probability: Vec<f64>,
    pub probability_err: Vec<f64>,
    /// `walkers[k]`: the state index of walker `k` at each step.
    pub walkers: Vec<Vec<f64>>,
}

pub fn transc(file: &dyn Reader) -> Result<Transc, PlotError> {
    let spec_states = match file.attr_str("/", "resolved_spec")? {
        Some(text) => serde_json::from_str::<crate::jobs::RunSpec>(&text)
            .map(|s| s.states.into_iter().map(|s| s.name).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let read = |name: &str| -> Result<Vec<f64>, PlotError> {
        let path = format!("transc/{name}");
        Ok(if file.exists(&path) {
            file.read_f64(&path, None, None)?
        } else {
            Vec::new()
        })
    };
    let mut walkers = Vec::new();
    if file.exists("transc/state") {
        let shape = file.shape("transc/state")?;
        let n = shape.first().copied().unwrap_or(0) as u64;
        let rows = Rows::every(0..n.min(TRANSC_WALKERS as u64));
        let steps = shape.get(1).copied().unwrap_or(0).max(1);
        let values = file.read_f64("transc/state", Some(rows), None)?;
        walkers = values.chunks(steps).map(<[f64]>::to_vec).collect();
    }
    Ok(Transc {
        states: spec_states,
        probability: read("probability")?,
        probability_err: read("probability_err")?,
        walkers,
    })
}

/// A batch study's P10/P50/P90 band and median per output column.
#[derive(Debug, Serialize)]
pub struct Batch {
    pub state: String,
    pub labels: Vec<String>,
    /// The labels as numbers (a leading non-numeric prefix dropped), when
    /// every one reads as one: the x axis; else the column's index.
    pub x: Option<Vec<f64>>,
    /// Whether x is drawn on a log axis (positive, spanning ≥ 10×).
    pub log_x: bool,
    pub p10: Vec<f64>,
    pub p50: Vec<f64>,
    pub p90: Vec<f64>,
    /// Where the quantiles come from: "statistics" (as the run stored
    /// them) or "outputs" (computed here from the rows written so far).
    pub from: String,
    /// Histograms of the output columns chosen (`--params`, else up to
    /// four spread over the outputs).
    pub histograms: Vec<OutputHist>,
}

/// `t0.25` → 0.25, `gate_1e-3` → 0.001.
fn label_number(label: &str) -> Option<f64> {
    let start = label.find(|c: char| c.is_ascii_digit() || c == '.' || c == '-')?;
    label[start..].parse().ok()
}

pub fn batch(file: &dyn Reader, state: &State, options: &Options) -> Result<Batch, PlotError> {
    let g = state.group();
    let outputs = format!("{g}/outputs");
    let shape = file.shape(&outputs)?;
    let cols = shape.get(1).copied().unwrap_or(1);
    let labels = attr_strs(file, &g, "outputs")?
        .unwrap_or_else(|| (0..cols).map(|c| format!("output {c}")).collect());
    let names = attr_strs(file, &format!("{g}/statistics"), "statistics")?;
    let stored = file.exists(&format!("{g}/statistics"))
        && file.attr_str("/", "status")?.as_deref() == Some("complete");
    let row_of = |q: &str| names.as_ref().and_then(|n| n.iter().position(|s| s == q));
    let (p10, p50, p90, from) = match (stored, row_of("q0.1"), row_of("q0.5"), row_of("q0.9")) {
        (true, Some(a), Some(b), Some(c)) => {
            let m = matrix(file, &format!("{g}/statistics"))?;
            (m[a].clone(), m[b].clone(), m[c].clone(), "statistics")
        }
        _ => {
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            for col in 0..cols {
                let mut v = file.read_f64(&outputs, None, Some(col as u64))?;
                v.retain(|x| !x.is_nan());
                v.sort_unstable_by(f64::total_cmp);
                let q = |p| {
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        quantile_sorted(&v, p)
                    }
                };
                a.push(q(0.1));
                b.push(q(0.5));
                c.push(q(0.9));
            }
            (a, b, c, "outputs")
        }
    };
    let x: Option<Vec<f64>> = labels.iter().map(|l| label_number(l)).collect();
    let log_x = x.as_ref().is_some_and(|x| {
        let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        lo > 0.0 && hi >= 10.0 * lo
    });
    let histograms = output_hists(
        file,
        &outputs,
        cols,
        &labels,
        &output_columns(&labels, options),
    )?;
    Ok(Batch {
        state: state.name.clone(),
        labels,
        x,
        log_x,
        p10,
        p50,
        p90,
        from: from.into(),
        histograms,
    })
}

/// Sample paths drawn over the fan, at most.
pub const SAMPLE_PATHS: usize = 5;

/// A path ensemble's quantiles over time, a few sample paths, and for a
/// finite state space the occupation over time.
#[derive(Debug, Serialize)]
pub struct Paths {
    pub state: String,
    pub process: String,
    pub times: Vec<f64>,
    /// Quantile levels and `quantiles[time][level]`.
    pub levels: Vec<f64>,
    pub quantiles: Vec<Vec<f64>>,
    /// The mean over paths at each time.
    pub mean: Vec<f64>,
    /// `samples[path][time]` (NaN where the path has not run).
    pub samples: Vec<Vec<f64>>,
    /// State labels and `occupation[time][state]`.
    pub labels: Vec<String>,
    pub occupation: Vec<Vec<f64>>,
    /// The first hitting steps of the target set, where one is watched.
    pub hitting: Option<Hitting>,
}

pub fn paths(file: &dyn Reader, state: &State) -> Result<Paths, PlotError> {
    let g = state.group();
    let has = |d: &str| file.exists(&format!("{g}/{d}"));
    let times = file.read_f64(&format!("{g}/times"), None, None)?;
    let levels = match file.attr(&g, "quantiles")? {
        Some(Attr::F64s(v)) => v,
        Some(Attr::F64(v)) => vec![v],
        // Continuous processes: the levels are the spec's.
        _ => file
            .attr_str("/", "resolved_spec")?
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|spec| {
                let levels = spec.pointer("/sampler/paths/quantiles")?.as_array()?;
                levels.iter().map(serde_json::Value::as_f64).collect()
            })
            .unwrap_or_default(),
    };
    let quantiles = if has("quantiles") {
        matrix(file, &format!("{g}/quantiles"))?
    } else {
        Vec::new()
    };
    let mean = if has("statistics") {
        matrix(file, &format!("{g}/statistics"))?
            .iter()
            .map(|r| r[0])
            .collect()
    } else {
        Vec::new()
    };
    let mut samples = Vec::new();
    if has("states") {
        let shape = file.shape(&format!("{g}/states"))?;
        let n = (shape.first().copied().unwrap_or(0) as u64).min(SAMPLE_PATHS as u64);
        let width = shape.get(1).copied().unwrap_or(1).max(1);
        let values = file.read_f64(&format!("{g}/states"), Some(Rows::every(0..n)), None)?;
        // Integer paths mark steps not run with i64::MIN.
        samples = values
            .chunks(width)
            .map(|r| {
                r.iter()
                    .map(|&v| if v < -9.0e18 { f64::NAN } else { v })
                    .collect()
            })
            .collect();
    }
    let (labels, occupation) = if has("occupation") {
        let occ = matrix(file, &format!("{g}/occupation"))?;
        let k = occ.first().map_or(0, Vec::len);
        let labels = attr_strs(file, &g, "labels")?
            .filter(|l| l.len() == k)
            .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
        (labels, occ)
    } else {
        (Vec::new(), Vec::new())
    };
    let hitting = hitting(file, &g, times.len())?;
    Ok(Paths {
        state: state.name.clone(),
        process: file.attr_str(&g, "process")?.unwrap_or_default(),
        times,
        levels,
        quantiles,
        mean,
        samples,
        labels,
        occupation,
        hitting,
    })
}
