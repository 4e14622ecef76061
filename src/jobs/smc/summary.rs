//! `sampo summary` of an SMC run: each state's evidence, its probability
//! among the states, and its parameters' posterior statistics from the
//! weighted particles. The groups are independent runs, so the Monte Carlo
//! error of a posterior mean is the spread of the groups' means, as the
//! error of log Z is the spread of theirs.

use super::SmcJob;
use crate::diag::SUMMARY_COLUMNS;
use crate::jobs::summary::{with_csv_keys, SummaryError, SummaryOptions};
use crate::numeric::{
    mean_and_standard_error, relative_weights, weighted_mean_cov, weighted_quantiles,
};
use crate::output::Reader;
use crate::table::{Cell, Column, Shown, Table};

/// The columns of the weighted statistics, of [`SUMMARY_COLUMNS`].
const WEIGHTED: [&str; 6] = ["mean", "sd", "mcse_mean", "q05", "q50", "q95"];

/// A parameter's posterior statistics from the weighted particles.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedRow {
    pub name: String,
    pub mean: f64,
    pub sd: f64,
    /// Standard error of the mean: sd of the groups' means / √groups (NaN
    /// with one group).
    pub mcse_mean: f64,
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
}

impl WeightedRow {
    /// The values of [`WEIGHTED`], in order.
    fn values(&self) -> [f64; 6] {
        [
            self.mean,
            self.sd,
            self.mcse_mean,
            self.q05,
            self.q50,
            self.q95,
        ]
    }
}

/// One finished state: (log Z, its error, iterations) and its table.
struct Evidence {
    state: String,
    log_z: [f64; 3],
    probability: Option<(f64, f64)>,
}

impl SmcJob {
    pub(super) fn summary_tables(
        &self,
        file: &dyn Reader,
        options: &SummaryOptions,
    ) -> Result<Vec<Table>, SummaryError> {
        let path = |dataset: usize| self.layout.datasets[dataset].path.as_str();
        // (probability, error) per state, once the run has written them.
        let probabilities = match self.probabilities {
            Some(p) if file.exists(path(p.probability)) => {
                let prob = file.read_f64(path(p.probability), None, None)?;
                let err = file.read_f64(path(p.error), None, None)?;
                Some((prob, err))
            }
            _ => None,
        };
        let mut tables = Vec::new();
        let mut evidences = Vec::new();
        for (s, st) in self.spec.states.iter().enumerate() {
            if !options.wants(&st.name) {
                continue;
            }
            let sets = self.sets[s];
            let ev = file.read_f64(path(sets.evidence), None, None)?;
            if ev.len() < 3 || ev[2] == 0.0 || ev[0].is_nan() {
                continue; // not finished
            }
            let probability = probabilities
                .as_ref()
                .map(|(p, e)| (p[s], e[s]))
                .filter(|(p, _)| !p.is_nan());
            let dim = st.dim().max(1);
            let x = file.read_f64(path(sets.particles), None, None)?;
            let log_w = file.read_f64(path(sets.log_weights), None, None)?;
            let group = file.read_i64(path(sets.group))?;
            let groups = group.iter().copied().max().unwrap_or(0) as usize + 1;
            let rows: Vec<WeightedRow> = (0..dim)
                .map(|k| {
                    let label = st.params.get(k).cloned().unwrap_or_else(|| format!("x{k}"));
                    let column: Vec<f64> = x.iter().skip(k).step_by(dim).copied().collect();
                    weighted_row(label, &column, &log_w, &group, groups)
                })
                .collect();
            let w = relative_weights(&log_w);
            let ess = w.iter().sum::<f64>().powi(2) / w.iter().map(|v| v * v).sum::<f64>();
            let (particles, iterations) = (log_w.len(), ev[2] as u64);
            let mut table = state_table(&rows)
                .title(format!(
                    "state {} (smc): {particles} particles kept in {groups} groups, {iterations} \
                     iterations; ESS of the final weights {ess:.0}",
                    st.name
                ))
                .field("state", st.name.as_str())
                .field("log_evidence", ev[0])
                .field("log_evidence_err", ev[1])
                .field("iterations", iterations)
                .field("groups", groups)
                .field("particles", particles)
                .field("ess", ess)
                .field("probability", probability.map(|p| p.0))
                .field("probability_err", probability.map(|p| p.1));
            // In CSV, the evidence and the probability follow as rows with
            // the value as `mean` and its error as `mcse_mean`.
            let mut extra = vec![("log_evidence", ev[0], ev[1])];
            if let Some((p, e)) = probability {
                extra.push(("probability", p, e));
            }
            for (name, value, error) in extra {
                let mut cells = vec![Cell::from(name)];
                cells.extend(SUMMARY_COLUMNS.iter().map(|c| match *c {
                    "mean" => Cell::Float(value),
                    "mcse_mean" => Cell::Float(error),
                    _ => Cell::Empty,
                }));
                cells.push(Cell::List(Vec::new()));
                table.push_shown(cells, Shown::CSV);
            }
            with_csv_keys(&mut table, &st.name, 0, particles, groups, true);
            tables.push(table);
            evidences.push(Evidence {
                state: st.name.clone(),
                log_z: [ev[0], ev[1], ev[2]],
                probability,
            });
        }
        if !evidences.is_empty() {
            tables.push(evidence_table(&evidences));
        }
        Ok(tables)
    }
}

/// A state's parameters: the weighted statistics in every format, and the
/// other columns of [`SUMMARY_COLUMNS`] (empty) and the flags (none) in
/// CSV, which has the same columns for every kind.
fn state_table(rows: &[WeightedRow]) -> Table {
    let mut table = Table::new("evidences", "params").column(Column::new("param"));
    for name in SUMMARY_COLUMNS {
        table = table.column(match WEIGHTED.contains(&name) {
            true => Column::new(name).fixed(6),
            false => Column::new(name).shown(Shown::CSV),
        });
    }
    table = table.column(Column::new("flags").shown(Shown::CSV));
    for r in rows {
        let values = r.values();
        let mut cells = vec![Cell::from(r.name.as_str())];
        cells.extend(SUMMARY_COLUMNS.iter().map(|c| {
            WEIGHTED
                .iter()
                .position(|w| w == c)
                .map_or(Cell::Empty, |k| Cell::Float(values[k]))
        }));
        cells.push(Cell::List(Vec::new()));
        table.push(cells);
    }
    table
}

/// The evidences side by side, for reading (their values are in each
/// state's table for CSV and JSON).
fn evidence_table(evidences: &[Evidence]) -> Table {
    let mut table = Table::new("smc", "states")
        .shown(Shown::TABLE)
        .column(Column::new("state").heading("state (smc)"))
        .column(Column::new("log_evidence").heading("log Z").fixed(6))
        .column(Column::new("log_evidence_err").heading("± err").fixed(6))
        .column(Column::new("iterations"))
        .column(Column::new("probability").fixed(6))
        .column(Column::new("probability_err").heading("± err").fixed(6));
    for e in evidences {
        table.push(vec![
            e.state.as_str().into(),
            e.log_z[0].into(),
            e.log_z[1].into(),
            Cell::Int(e.log_z[2] as i64),
            e.probability.map(|p| p.0).into(),
            e.probability.map(|p| p.1).into(),
        ]);
    }
    table
}

/// Weighted mean, sd and quantiles of one parameter over all particles,
/// and the standard error of the mean from the groups' means.
pub fn weighted_row(
    name: String,
    x: &[f64],
    log_w: &[f64],
    group: &[i64],
    groups: usize,
) -> WeightedRow {
    let w = relative_weights(log_w);
    let (mean, var) = weighted_mean_cov(x, 1, Some(&w));
    let (mut num, mut den) = (vec![0.0; groups], vec![0.0; groups]);
    for ((x, w), g) in x.iter().zip(&w).zip(group) {
        num[*g as usize] += x * w;
        den[*g as usize] += w;
    }
    let means: Vec<f64> = num.iter().zip(&den).map(|(n, d)| n / d).collect();
    let mcse_mean = if groups > 1 {
        mean_and_standard_error(&means).1
    } else {
        f64::NAN
    };
    let [q05, q50, q95] = weighted_quantiles(x, &w, &[0.05, 0.5, 0.95])[..] else {
        unreachable!("three quantiles asked for")
    };
    WeightedRow {
        name,
        mean: mean[0],
        sd: var[0].sqrt(),
        mcse_mean,
        q05,
        q50,
        q95,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_statistics_of_two_groups() {
        // Group 0 holds 1, 2, 3 with weights 1, 2, 1; group 1 holds 4 alone.
        let x = [1.0, 2.0, 3.0, 4.0];
        let log_w = [0.25f64.ln(), 0.5f64.ln(), 0.25f64.ln(), 1.0f64.ln()].map(|l| l + 0.5f64.ln());
        let r = weighted_row("x".into(), &x, &log_w, &[0, 0, 0, 1], 2);
        // Weights 1/8, 1/4, 1/8, 1/2: mean 3, the groups' means 2 and 4.
        assert!((r.mean - 3.0).abs() < 1e-12, "{r:?}");
        let var = (4.0 / 8.0) + (1.0 / 4.0) + 0.0 + (1.0 / 2.0);
        assert!((r.sd - f64::sqrt(var)).abs() < 1e-12, "{r:?}");
        assert!((r.mcse_mean - 1.0).abs() < 1e-12, "{r:?}");
        assert_eq!((r.q05, r.q50, r.q95), (1.0, 3.0, 4.0));
    }
}
