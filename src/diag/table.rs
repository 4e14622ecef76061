//! The summary table every kind prints and `sampo summary` shows: one row
//! per parameter with the diagnostics of Vehtari et al. (2021), and flags
//! for what should not be trusted.

use std::io::{self, Write};

use super::ParamDiagnostics;
use crate::table::{Cell, Column, Shown, Table};

/// The float columns of every `/summary` table, in order.
pub const SUMMARY_COLUMNS: [&str; 14] = [
    "mean",
    "sd",
    "mcse_mean",
    "q05",
    "q50",
    "q95",
    "mcse_q05",
    "mcse_q50",
    "mcse_q95",
    "ess_bulk",
    "ess_tail",
    "rhat",
    "autocorr_time",
    "acceptance",
];

/// A row of [`SUMMARY_COLUMNS`] from a parameter's diagnostics, its τ (in
/// stored rows) and the acceptance fraction.
pub fn summary_values(p: &ParamDiagnostics, tau: f64, acceptance: f64) -> Vec<f64> {
    let mut values = vec![
        p.mean,
        p.sd,
        p.mcse_mean,
        p.q05,
        p.q50,
        p.q95,
        p.mcse_q05,
        p.mcse_q50,
        p.mcse_q95,
        p.ess_bulk,
        p.ess_tail,
        p.rhat,
        tau,
        acceptance,
    ];
    blank_if_never_moved(&mut values);
    values
}

/// A parameter that never moved (sd 0) has no effective sample size, R-hat
/// or τ: NaN in a row of [`SUMMARY_COLUMNS`], not the count of its draws.
pub fn blank_if_never_moved(values: &mut [f64]) {
    if values[1] > 0.0 {
        return;
    }
    for column in ["ess_bulk", "ess_tail", "rhat", "autocorr_time"] {
        if let Some(i) = SUMMARY_COLUMNS.iter().position(|c| *c == column) {
            values[i] = f64::NAN;
        }
    }
}

/// Thresholds of the flags (Vehtari et al. 2021; emcee's 50 τ).
pub const RHAT_MAX: f64 = 1.01;
pub const ESS_MIN: f64 = 400.0;
pub const TAU_LENGTHS: f64 = 50.0;

/// One parameter's row: `values` in [`SUMMARY_COLUMNS`] order.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub name: String,
    pub values: Vec<f64>,
}

impl SummaryRow {
    /// The value of a column of [`SUMMARY_COLUMNS`] (NaN if there is none).
    pub fn get(&self, column: &str) -> f64 {
        SUMMARY_COLUMNS
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.values.get(i).copied())
            .unwrap_or(f64::NAN)
    }

    /// What should not be trusted in this row: R-hat above 1.01, bulk-ESS
    /// below 400, a chain shorter than 50 τ (`draws` stored rows per chain),
    /// a parameter that never moved.
    pub fn flags(&self, draws: usize) -> Vec<&'static str> {
        let mut flags = Vec::new();
        let (sd, rhat, ess, tau) = (
            self.get("sd"),
            self.get("rhat"),
            self.get("ess_bulk"),
            self.get("autocorr_time"),
        );
        // NaN fails every test below, and is flagged.
        let holds = |ok: bool| ok;
        if !holds(sd > 0.0) {
            flags.push("never moved");
            return flags;
        }
        if !holds(rhat <= RHAT_MAX) {
            flags.push("R-hat>1.01");
        }
        if !holds(ess >= ESS_MIN) {
            flags.push("ESS<400");
        }
        if !holds(draws as f64 >= TAU_LENGTHS * tau) {
            flags.push("chain<50τ");
        }
        flags
    }
}

/// The table of a set of rows: parameter, mean, sd, MCSE, 5/50/95%,
/// bulk/tail ESS, R-hat, τ and flags in a fixed-width table (every column of
/// [`SUMMARY_COLUMNS`] in CSV and JSON), then a note naming what the flags
/// mean if any was raised. `draws`: stored rows per chain behind the rows,
/// for the "chain < 50 τ" flag. `walkers_as_chains`: the "chains" are an
/// ensemble's walkers, which are not independent, so R-hat and ESS are only
/// indicative. In JSON the table goes under `states`, its rows under
/// `params`.
pub fn summary_table(rows: &[SummaryRow], draws: usize, walkers_as_chains: bool) -> Table {
    let mut table = Table::new("states", "params").column(Column::new("param"));
    for name in SUMMARY_COLUMNS {
        let column = Column::new(name);
        table = table.column(match name {
            "mean" | "sd" | "q05" | "q50" | "q95" => {
                let heading = match name {
                    "q05" => "5%",
                    "q50" => "50%",
                    "q95" => "95%",
                    other => other,
                };
                column.heading(heading).fixed(5)
            }
            "mcse_mean" => column.heading("mcse").sci(2),
            "ess_bulk" | "ess_tail" => column.fixed(0),
            "rhat" => column.fixed(3),
            "autocorr_time" => column.heading("tau").fixed(1),
            _ => column.shown(Shown::DATA),
        });
    }
    table = table.column(Column::new("flags"));
    let mut any = false;
    for r in rows {
        let flags = r.flags(draws);
        any |= !flags.is_empty();
        let mut cells: Vec<Cell> = vec![r.name.clone().into()];
        cells.extend(r.values.iter().map(|&v| Cell::Float(v)));
        cells.push(flags.into());
        table.push(cells);
    }
    if walkers_as_chains {
        table = table.note(
            "(R-hat and ESS treat the walkers as chains; walkers of one ensemble are not \
             independent, so these are indicative)",
        );
    }
    if any {
        table = table.note(format!(
            "flagged: R-hat > {RHAT_MAX}, bulk-ESS < {ESS_MIN}, fewer than {TAU_LENGTHS} τ \
             of draws per chain, or a parameter that never moved: do not trust these estimates \
             yet (run longer, or check the sampler)"
        ));
    }
    table
}

/// Writes [`summary_table`] as a fixed-width table (the run's report).
pub fn write_table(
    out: &mut dyn Write,
    rows: &[SummaryRow],
    draws: usize,
    walkers_as_chains: bool,
) -> io::Result<()> {
    crate::table::write_fixed(out, &[summary_table(rows, draws, walkers_as_chains)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sd: f64, ess: f64, rhat: f64, tau: f64) -> SummaryRow {
        let mut values = vec![0.0; SUMMARY_COLUMNS.len()];
        values[1] = sd;
        values[9] = ess;
        values[11] = rhat;
        values[12] = tau;
        SummaryRow {
            name: "x".into(),
            values,
        }
    }

    #[test]
    fn flags_name_what_cannot_be_trusted() {
        assert!(row(1.0, 1000.0, 1.001, 10.0).flags(1000).is_empty());
        assert_eq!(row(1.0, 1000.0, 1.02, 10.0).flags(1000), vec!["R-hat>1.01"]);
        assert_eq!(row(1.0, 100.0, 1.0, 10.0).flags(1000), vec!["ESS<400"]);
        assert_eq!(row(1.0, 1000.0, 1.0, 30.0).flags(1000), vec!["chain<50τ"]);
        assert_eq!(row(0.0, 1000.0, 1.0, 1.0).flags(1000), vec!["never moved"]);
        assert_eq!(row(1.0, f64::NAN, f64::NAN, f64::NAN).flags(10).len(), 3);
    }

    #[test]
    fn a_parameter_that_never_moved_has_no_ess_rhat_or_tau() {
        let chain = [2.0; 300];
        let constant = crate::diag::diagnose(&[&chain, &chain]);
        let values = summary_values(&constant, 1.0, 0.5);
        let get = |c: &str| values[SUMMARY_COLUMNS.iter().position(|n| *n == c).unwrap()];
        assert_eq!((get("mean"), get("sd"), get("acceptance")), (2.0, 0.0, 0.5));
        for c in ["ess_bulk", "ess_tail", "rhat", "autocorr_time"] {
            assert!(get(c).is_nan(), "{c}: {}", get(c));
        }
    }
}
