//! Histograms for the batch and paths figures: of chosen output columns of
//! a batch study (two passes over the rows in blocks, so memory stays
//! bounded whatever the number of items) and of a path ensemble's first
//! hitting steps (the counts its chunks stored, merged).

use serde::Serialize;

use super::draws::BINS_1D;
use super::hist::{Axis, Hist1};
use super::{Options, PlotError};
use crate::jobs::paths::process::recorded_steps;
use crate::output::{Reader, Rows};

/// Output columns histogrammed at most when `--params` names none.
pub const OUTPUT_HISTS: usize = 4;
/// Values read per block of rows.
const BLOCK_VALUES: u64 = 1 << 17;

/// The histogram of one output column over the items.
#[derive(Debug, Serialize)]
pub struct OutputHist {
    pub name: String,
    pub column: usize,
    /// Equal bins over the column's finite range (numpy's
    /// `histogram(y, bins, (lo, hi))`).
    pub hist: Hist1,
    /// Items whose value is not finite (failed, or not written yet): left out.
    pub missing: u64,
}

/// The output columns histogrammed: those `--params` names, in that order,
/// else up to [`OUTPUT_HISTS`] evenly spread from the first to the last.
pub fn output_columns(labels: &[String], options: &Options) -> Vec<usize> {
    let picked: Vec<usize> = options
        .params
        .iter()
        .flatten()
        .filter_map(|n| labels.iter().position(|l| l == n))
        .collect();
    let n = labels.len();
    if !picked.is_empty() {
        picked
    } else if n <= OUTPUT_HISTS {
        (0..n).collect()
    } else {
        (0..OUTPUT_HISTS)
            .map(|k| k * (n - 1) / (OUTPUT_HISTS - 1))
            .collect()
    }
}

/// Calls `f` on each row of the 2-D `dataset` (`cols` values), reading
/// blocks of rows.
fn each_row(
    file: &dyn Reader,
    dataset: &str,
    cols: usize,
    mut f: impl FnMut(&[f64]),
) -> Result<(), PlotError> {
    let cols = cols.max(1);
    let rows = file.shape(dataset)?.first().copied().unwrap_or(0) as u64;
    let block = (BLOCK_VALUES / cols as u64).max(1);
    let mut start = 0;
    while start < rows {
        let end = (start + block).min(rows);
        let values = file.read_f64(dataset, Some(Rows::every(start..end)), None)?;
        values.chunks(cols).for_each(&mut f);
        start = end;
    }
    Ok(())
}

/// Histograms of `columns` of the items × outputs `dataset`.
pub fn output_hists(
    file: &dyn Reader,
    dataset: &str,
    cols: usize,
    labels: &[String],
    columns: &[usize],
) -> Result<Vec<OutputHist>, PlotError> {
    let m = columns.len();
    let (mut lo, mut hi) = (vec![f64::INFINITY; m], vec![f64::NEG_INFINITY; m]);
    let mut missing = vec![0u64; m];
    each_row(file, dataset, cols, |row| {
        for (k, &c) in columns.iter().enumerate() {
            match row.get(c) {
                Some(&v) if v.is_finite() => {
                    lo[k] = lo[k].min(v);
                    hi[k] = hi[k].max(v);
                }
                _ => missing[k] += 1,
            }
        }
    })?;
    let mut hists: Vec<Hist1> = (0..m)
        .map(|k| Hist1::new(Axis::new(lo[k], hi[k], BINS_1D)))
        .collect();
    each_row(file, dataset, cols, |row| {
        for (h, &c) in hists.iter_mut().zip(columns) {
            if let Some(&v) = row.get(c).filter(|v| v.is_finite()) {
                h.push(v);
            }
        }
    })?;
    Ok(hists
        .into_iter()
        .zip(columns)
        .zip(missing)
        .map(|((hist, &column), missing)| OutputHist {
            name: labels
                .get(column)
                .cloned()
                .unwrap_or_else(|| format!("output {column}")),
            column,
            hist,
            missing,
        })
        .collect())
}

/// The first hitting steps of a path ensemble's target set.
#[derive(Debug, Serialize)]
pub struct Hitting {
    /// The target set's labels.
    pub target: Vec<String>,
    /// The recorded steps: bin k holds the paths whose first hit falls
    /// after recorded step k − 1 and by recorded step k (bin 0: at step 0).
    pub steps: Vec<u64>,
    /// The bins' edges half a step out (−0.5, steps[0] + 0.5, …), so that
    /// numpy's `histogram` of the integer hitting steps over them gives
    /// `counts`.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    /// Paths counted, and those that never hit by the last step.
    pub paths: u64,
    pub never: u64,
}

/// The hitting-step histogram of the paths group `g` with `times` recorded
/// times, summed over the rows of its `partials` written so far; `None`
/// when the state watches no target set or stored no statistics.
///
/// A row of `partials` ends with the counts of first hits per recorded step,
/// followed (where the times of steps are random) by the mean and squared
/// deviations of each recorded step's time; its first value is the number
/// of paths it holds (0 or NaN: not written yet).
pub fn hitting(file: &dyn Reader, g: &str, times: usize) -> Result<Option<Hitting>, PlotError> {
    let partials = format!("{g}/partials");
    let target = match super::kinds::attr_strs(file, g, "hitting")? {
        Some(t) if file.exists(&partials) && times > 0 => t,
        _ => return Ok(None),
    };
    let steps = file.attr_u64(g, "steps")?.unwrap_or(0);
    let every = file.attr_u64(g, "every")?.unwrap_or(1);
    let recorded = recorded_steps(steps, every);
    let shape = file.shape(&partials)?;
    let (rows, width) = (
        shape.first().copied().unwrap_or(0) as u64,
        shape.get(1).copied().unwrap_or(0),
    );
    let timed = file.exists(&format!("{g}/time_statistics"));
    let tail = times * if timed { 3 } else { 1 };
    if recorded.len() != times || width < tail + 4 {
        return Err(PlotError::Draw(format!(
            "/{partials}: {width} values a row do not hold the hitting counts of {times} times"
        )));
    }
    let start = width - tail;
    let mut counts = vec![0.0f64; times];
    let mut paths = 0.0;
    for r in 0..rows {
        let row = file.read_f64(&partials, Some(Rows::every(r..r + 1)), None)?;
        let n = row.first().copied().unwrap_or(0.0);
        if n.is_nan() || n <= 0.0 {
            continue;
        }
        paths += row[0];
        for (c, v) in counts.iter_mut().zip(&row[start..start + times]) {
            *c += v;
        }
    }
    let counts: Vec<u64> = counts.iter().map(|c| c.round() as u64).collect();
    let paths = paths.round() as u64;
    let hit: u64 = counts.iter().sum();
    let mut edges = vec![-0.5];
    edges.extend(recorded.iter().map(|&s| s as f64 + 0.5));
    Ok(Some(Hitting {
        target,
        steps: recorded,
        edges,
        counts,
        paths,
        never: paths.saturating_sub(hit),
    }))
}
