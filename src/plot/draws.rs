//! The data of the figures over draws: traces (walkers or chains over the
//! stored rows, decimated for display, with the running mean) and corner
//! plots (1-D and 2-D histograms, highest-density levels, quantiles).
//!
//! Draws are read in blocks of rows and never held whole, so memory stays
//! bounded whatever the file's size. In an unfinished file the chains used
//! are those `sampo summary` uses ([`rows_per_chain`], [`chains_to_use`]).

use serde::Serialize;

use super::hist::{hdr_levels, hdr_levels_f64, smooth, Axis, Hist1, Hist2};
use super::{Options, PlotError, Source, State};
use crate::jobs::summary::{chains_to_use, rows_per_chain};
use crate::output::{ReadError, Reader, Rows};

/// Values read per block (about 1 MiB of floats).
const BLOCK_VALUES: u64 = 1 << 17;
/// Points per line of a trace at most (the rows are decimated to this).
pub const TRACE_POINTS: usize = 1000;
/// Walkers or chains drawn in a trace at most (evenly spread).
pub const TRACE_LINES: usize = 32;
/// Bins of a corner plot's 1-D histograms, its 2-D ones, and the fine
/// histograms its quantiles are read from.
pub const BINS_1D: usize = 40;
/// At most: fewer for few draws (√(draws / 20)), so regions are not noise.
pub const BINS_2D: usize = 40;
pub const BINS_QUANTILE: usize = 2048;
/// The masses of the highest-density regions drawn.
pub const MASSES: [f64; 2] = [0.68, 0.95];
/// The width, in bins, of the Gaussian kernel that smooths a pair's 2-D
/// histogram before its regions are drawn.
pub const SMOOTHING_BINS: f64 = 1.0;

/// The draws of one state: rows of a group in emcee's layout (chains along
/// axis 1) or of a table of draws (SMC's posterior).
pub struct Draws<'a> {
    file: &'a dyn Reader,
    dataset: String,
    log_prob: Option<String>,
    lane: Option<u64>,
    /// The chains used and how many the file has (a table has one).
    chosen: Vec<usize>,
    width: usize,
    pub d: usize,
    /// Stored rows usable (of every chain used), burn-in, thinning.
    pub rows: u64,
    pub burn: u64,
    pub thin: u64,
    pub replicates: usize,
}

impl<'a> Draws<'a> {
    pub fn of(file: &'a dyn Reader, state: &State, options: &Options) -> Result<Self, PlotError> {
        let g = state.group();
        let thin = options.thin.unwrap_or(1).max(1);
        if state.source == Source::Smc {
            let dataset = format!("{g}/posterior");
            let shape = file.shape(&dataset)?;
            return Ok(Self {
                file,
                dataset,
                log_prob: None,
                lane: None,
                chosen: vec![0],
                width: 1,
                d: shape.get(1).copied().unwrap_or(0),
                rows: shape.first().copied().unwrap_or(0) as u64,
                burn: 0,
                thin,
                replicates: 1,
            });
        }
        let dataset = format!("{g}/chain");
        let shape = file.shape(&dataset)?;
        let (replicates, width, d) = match shape.as_slice() {
            [_, w, d] => (1, *w, *d),
            [_, r, w, d] => (*r, *w, *d),
            _ => {
                return Err(PlotError::Usage(format!(
                    "/{dataset}: unexpected shape {shape:?}"
                )))
            }
        };
        let lane = (shape.len() == 4).then_some(0);
        let counts = rows_per_chain(file, &g, lane)?;
        let (chosen, rows) = chains_to_use(&counts);
        let burn = match options.burn {
            Some(b) if b >= rows.max(1) => {
                return Err(PlotError::Usage(format!(
                    "--burn {b} leaves nothing of state {}: it has {rows} stored rows",
                    state.name
                )))
            }
            Some(b) => b,
            None => file.attr_u64(&g, "burn_rows")?.unwrap_or(0),
        };
        Ok(Self {
            file,
            dataset,
            log_prob: Some(format!("{g}/log_prob")),
            lane,
            chosen,
            width,
            d,
            rows,
            burn,
            thin,
            replicates,
        })
    }

    /// Chains (walkers) used.
    pub fn chains(&self) -> usize {
        self.chosen.len()
    }

    /// Calls `f(row, chain_values, log_probs)` for the stored rows `start`,
    /// `start + thin`, … before `rows`: each chain used's `d` values in
    /// order, and its log-probability (if the group has one and
    /// `with_log_prob`; else none is read).
    fn rows_from(
        &self,
        start: u64,
        with_log_prob: bool,
        mut f: impl FnMut(u64, &[f64], &[f64]),
    ) -> Result<(), ReadError> {
        let (w, d, thin) = (self.width, self.d, self.thin);
        let block = (BLOCK_VALUES / (w * d).max(1) as u64).max(1) * thin;
        let mut picked = Vec::with_capacity(self.chosen.len() * d);
        let mut lp = Vec::with_capacity(self.chosen.len());
        let mut start = start;
        while start < self.rows {
            let end = (start + block).min(self.rows);
            let sel = Rows {
                range: start..end,
                step: thin,
            };
            let values = self
                .file
                .read_f64(&self.dataset, Some(sel.clone()), self.lane)?;
            let log_probs = match &self.log_prob {
                Some(ds) if with_log_prob => self.file.read_f64(ds, Some(sel), self.lane)?,
                _ => Vec::new(),
            };
            for (k, row) in values.chunks(w * d).enumerate() {
                picked.clear();
                lp.clear();
                for &c in &self.chosen {
                    picked.extend_from_slice(&row[c * d..(c + 1) * d]);
                    if let Some(v) = log_probs.get(k * w + c) {
                        lp.push(*v);
                    }
                }
                f(start + k as u64 * thin, &picked, &lp);
            }
            start += (end - start).div_ceil(thin) * thin;
        }
        Ok(())
    }

    /// The draws after the burn-in (rows burn + thin − 1, burn + 2 thin − 1,
    /// …: emcee's `get_chain(discard, thin)`), each `d` values.
    fn after_burn(&self, mut f: impl FnMut(&[f64])) -> Result<(), ReadError> {
        let d = self.d;
        self.rows_from(self.burn + self.thin - 1, false, |_, values, _| {
            for draw in values.chunks(d.max(1)) {
                f(draw)
            }
        })
    }
}

/// The parameters drawn: those of `--params` that the state has, in that
/// order, else all of them.
pub fn chosen_params(state: &State, options: &Options) -> Vec<usize> {
    let picked: Vec<usize> = options
        .params
        .iter()
        .flatten()
        .filter_map(|n| state.params.iter().position(|p| p == n))
        .collect();
    if picked.is_empty() {
        (0..state.params.len()).collect()
    } else {
        picked
    }
}

/// A trace figure: one panel per parameter and one of the log-probability.
#[derive(Debug, Serialize)]
pub struct Trace {
    pub state: String,
    pub kind: String,
    pub panels: Vec<String>,
    pub rows: u64,
    pub burn: u64,
    pub thin: u64,
    pub chains: usize,
    pub replicates: usize,
    /// Indices (among the chains used) of the lines drawn.
    pub shown: Vec<usize>,
    /// Stored row of each point (decimated).
    pub x: Vec<u64>,
    /// `lines[panel][line][point]`.
    pub lines: Vec<Vec<Vec<f64>>>,
    /// `running_mean[panel][point]`: the mean over every chain used of the
    /// draws from the burn-in's end to the point's row (NaN before it).
    pub running_mean: Vec<Vec<f64>>,
}

pub fn trace(file: &dyn Reader, state: &State, options: &Options) -> Result<Trace, PlotError> {
    let draws = Draws::of(file, state, options)?;
    if draws.rows == 0 {
        return Err(PlotError::Usage(format!(
            "state {}: no stored rows yet",
            state.name
        )));
    }
    let params = chosen_params(state, options);
    let n = draws.chains();
    let shown: Vec<usize> = if n <= TRACE_LINES {
        (0..n).collect()
    } else {
        (0..TRACE_LINES).map(|k| k * n / TRACE_LINES).collect()
    };
    let start = draws.thin - 1;
    let count = if start < draws.rows {
        ((draws.rows - start - 1) / draws.thin + 1) as usize
    } else {
        0
    };
    let stride = count.div_ceil(TRACE_POINTS).max(1);
    let panels = params.len() + 1;
    let mut x = Vec::new();
    let mut lines = vec![vec![Vec::new(); shown.len()]; panels];
    let mut running_mean = vec![Vec::new(); panels];
    let mut sums = vec![0.0f64; panels];
    let mut seen = 0u64;
    let mut k = 0usize;
    let d = draws.d;
    draws.rows_from(start, true, |row, values, lp| {
        let value = |panel: usize, c: usize| {
            if panel < params.len() {
                values[c * d + params[panel]]
            } else {
                lp.get(c).copied().unwrap_or(f64::NAN)
            }
        };
        if row >= draws.burn {
            seen += n as u64;
            for (p, sum) in sums.iter_mut().enumerate() {
                *sum += (0..n).map(|c| value(p, c)).sum::<f64>();
            }
        }
        if k.is_multiple_of(stride) {
            x.push(row);
            for p in 0..panels {
                for (line, &c) in shown.iter().enumerate() {
                    lines[p][line].push(value(p, c));
                }
                running_mean[p].push(if seen > 0 {
                    sums[p] / seen as f64
                } else {
                    f64::NAN
                });
            }
        }
        k += 1;
    })?;
    let mut names: Vec<String> = params.iter().map(|&i| state.params[i].clone()).collect();
    names.push("log_prob".into());
    Ok(Trace {
        state: state.name.clone(),
        kind: state.source.describe().into(),
        panels: names,
        rows: draws.rows,
        burn: draws.burn,
        thin: draws.thin,
        chains: n,
        replicates: draws.replicates,
        shown,
        x,
        lines,
        running_mean,
    })
}

/// One parameter's marginal: histogram, mean, 5/50/95% quantiles.
#[derive(Debug, Serialize)]
pub struct Marginal {
    pub hist: Hist1,
    pub mean: f64,
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
    /// The quantiles are within this of the draws' own (a fine bin's width).
    pub quantile_resolution: f64,
}

/// One pair's 2-D histogram and its highest-density levels (one per mass
/// of [`MASSES`]): the bins with at least that many draws form the region.
/// The regions drawn are those of the histogram smoothed by a Gaussian
/// kernel of [`SMOOTHING_BINS`] bins (`smoothed`, row-major as the counts):
/// the bins at or above `smoothed_levels` hold each mass of its total.
#[derive(Debug, Serialize)]
pub struct Pair {
    pub i: usize,
    pub j: usize,
    pub hist: Hist2,
    pub levels: Vec<u64>,
    pub smoothing_bins: f64,
    pub smoothed: Vec<f64>,
    pub smoothed_levels: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Corner {
    pub state: String,
    pub kind: String,
    pub params: Vec<String>,
    pub draws: u64,
    pub rows: u64,
    pub burn: u64,
    pub thin: u64,
    pub masses: Vec<f64>,
    pub truths: Vec<Option<f64>>,
    pub marginals: Vec<Marginal>,
    pub pairs: Vec<Pair>,
}

pub fn corner(file: &dyn Reader, state: &State, options: &Options) -> Result<Corner, PlotError> {
    let draws = Draws::of(file, state, options)?;
    let params = chosen_params(state, options);
    let m = params.len();
    // Pass 1: ranges and means.
    let mut lo = vec![f64::INFINITY; m];
    let mut hi = vec![f64::NEG_INFINITY; m];
    let mut sum = vec![0.0; m];
    let mut count = 0u64;
    draws.after_burn(|draw| {
        count += 1;
        for (k, &p) in params.iter().enumerate() {
            let v = draw[p];
            lo[k] = lo[k].min(v);
            hi[k] = hi[k].max(v);
            sum[k] += v;
        }
    })?;
    if count == 0 {
        return Err(PlotError::Usage(format!(
            "state {}: no draws after the burn-in yet ({} stored rows, {} of burn-in; \
             --burn 0 draws them all)",
            state.name, draws.rows, draws.burn
        )));
    }
    // Pass 2: histograms.
    let bins_2d = ((count as f64 / 20.0).sqrt() as usize).clamp(10, BINS_2D);
    let axes: Vec<(Axis, Axis)> = (0..m)
        .map(|k| {
            (
                Axis::new(lo[k], hi[k], BINS_1D),
                Axis::new(lo[k], hi[k], bins_2d),
            )
        })
        .collect();
    let mut hists: Vec<Hist1> = axes.iter().map(|(a, _)| Hist1::new(a.clone())).collect();
    let mut fine: Vec<Hist1> = (0..m)
        .map(|k| Hist1::new(Axis::new(lo[k], hi[k], BINS_QUANTILE)))
        .collect();
    let mut pairs: Vec<Pair> = Vec::new();
    for i in 0..m {
        for j in 0..i {
            pairs.push(Pair {
                i,
                j,
                hist: Hist2::new(axes[j].1.clone(), axes[i].1.clone()),
                levels: Vec::new(),
                smoothing_bins: SMOOTHING_BINS,
                smoothed: Vec::new(),
                smoothed_levels: Vec::new(),
            });
        }
    }
    draws.after_burn(|draw| {
        for (k, &p) in params.iter().enumerate() {
            hists[k].push(draw[p]);
            fine[k].push(draw[p]);
        }
        for pair in &mut pairs {
            pair.hist.push(draw[params[pair.j]], draw[params[pair.i]]);
        }
    })?;
    for pair in &mut pairs {
        pair.levels = hdr_levels(&pair.hist.counts, &MASSES);
        let (nx, ny) = (pair.hist.x.bins, pair.hist.y.bins);
        pair.smoothed = smooth(&pair.hist.counts, nx, ny, SMOOTHING_BINS);
        pair.smoothed_levels = hdr_levels_f64(&pair.smoothed, &MASSES);
    }
    let names: Vec<String> = params.iter().map(|&i| state.params[i].clone()).collect();
    let truths = names
        .iter()
        .map(|n| options.truths.iter().find(|(t, _)| t == n).map(|(_, v)| *v))
        .collect();
    let marginals = hists
        .into_iter()
        .zip(fine)
        .zip(sum)
        .map(|((hist, fine), s)| Marginal {
            hist,
            mean: s / count as f64,
            q05: fine.quantile(0.05),
            q50: fine.quantile(0.5),
            q95: fine.quantile(0.95),
            quantile_resolution: fine.axis.width(),
        })
        .collect();
    Ok(Corner {
        state: state.name.clone(),
        kind: state.source.describe().into(),
        params: names,
        draws: count,
        rows: draws.rows,
        burn: draws.burn,
        thin: draws.thin,
        masses: MASSES.to_vec(),
        truths,
        marginals,
        pairs,
    })
}
