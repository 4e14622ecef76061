//! What `sampo summary` asks of a job ([`super::Job::summary`]): the
//! options, the errors, and the summary of a group in emcee's layout that
//! the kinds writing one (ensemble, chains) share.
//!
//! The diagnostics are recomputed from the stored draws, block by block
//! into a [`ChainAccumulator`], so memory stays bounded whatever the file's
//! size. Only rows that every chain used has written are read, so that a
//! file still being written, or one left by a failed run, gives a table of
//! what it holds.

use crate::diag::{self, ChainAccumulator, SummaryRow};
use crate::output::{ReadError, Reader, Rows};
use crate::spec::StateSpec;
use crate::table::{Cell, Column, Shown, Table};

/// What to summarise and how.
#[derive(Debug, Clone, Default)]
pub struct SummaryOptions {
    /// Only this state (all by default).
    pub state: Option<String>,
    /// Stored rows to drop first (default: the file's `burn_rows`).
    pub burn: Option<u64>,
    /// Keep every `thin`-th stored row after the burn-in (emcee's
    /// `get_chain(discard=burn, thin=thin)`).
    pub thin: Option<u64>,
}

impl SummaryOptions {
    /// Whether the state named `name` is wanted.
    pub fn wants(&self, name: &str) -> bool {
        self.state.as_deref().is_none_or(|s| s == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// What the user must fix (exit 2): no such file, no such state, not a
    /// sampo output, a bad option.
    #[error("{0}")]
    Usage(String),
    /// The file could not be read (exit 1); in a file being written, a
    /// later try may succeed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// One group in emcee's layout (`chain`: rows × [replicates ×] chains ×
/// parameters; `log_prob`, `accepted`; attributes `iteration`, `burn_rows`).
pub(crate) struct EmceeSummary<'a> {
    /// The group's path ("states/g").
    pub group: &'a str,
    pub state: &'a str,
    pub params: &'a [String],
    /// The kind that wrote it, as the title names it.
    pub kind: &'a str,
    /// Whether axis 1 holds independent chains (false: an ensemble's walkers).
    pub independent: bool,
}

/// The tables of the states `options` wants, each read from its group in
/// emcee's layout (`group` names it): the summary of the kinds that write
/// such groups.
pub(crate) fn emcee_states(
    file: &dyn Reader,
    options: &SummaryOptions,
    states: &[StateSpec],
    group: impl Fn(&StateSpec) -> String,
    kind: &str,
    independent: bool,
) -> Result<Vec<Table>, SummaryError> {
    let mut tables = Vec::new();
    for st in states.iter().filter(|st| options.wants(&st.name)) {
        let group = group(st);
        let summary = EmceeSummary {
            group: &group,
            state: &st.name,
            params: &st.params,
            kind,
            independent,
        };
        tables.extend(summary.tables(file, options)?);
    }
    Ok(tables)
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

impl EmceeSummary<'_> {
    /// One table per replicate (one without a replicate axis).
    pub fn tables(
        &self,
        file: &dyn Reader,
        options: &SummaryOptions,
    ) -> Result<Vec<Table>, SummaryError> {
        let g = self.group;
        let chain = format!("{g}/chain");
        let shape = file.shape(&chain)?;
        let (replicates, w, d) = match shape.as_slice() {
            [_, w, d] => (None, *w, *d),
            [_, r, w, d] => (Some(*r), *w, *d),
            _ => {
                return Err(SummaryError::Usage(format!(
                    "/{chain}: unexpected shape {shape:?}"
                )))
            }
        };
        let burn_rows = match options.burn {
            Some(b) => b,
            None => file.attr_u64(g, "burn_rows")?.unwrap_or(0),
        };
        let thin = options.thin.unwrap_or(1).max(1);
        let accepted = file.read_f64(&format!("{g}/accepted"), None, None)?;
        let mut out = Vec::new();
        for r in 0..replicates.unwrap_or(1) {
            let lane = replicates.map(|_| r as u64);
            let acc = match replicates {
                Some(_) => &accepted[r * w..(r + 1) * w],
                None => &accepted[..w.min(accepted.len())],
            };
            let counts = rows_per_chain(file, g, lane)?;
            let (chosen, rows) = chains_to_use(&counts);
            if let Some(burn) = options.burn.filter(|&b| b >= rows.max(1)) {
                return Err(SummaryError::Usage(format!(
                    "--burn {burn} leaves nothing of state {}: it has {rows} stored rows{}",
                    self.state,
                    lane.map_or(String::new(), |r| format!(" in replicate {r}"))
                )));
            }
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
            let mut acc_chain = ChainAccumulator::new(n, d, draws);
            let block = ((1u64 << 17) / (w * d).max(1) as u64).max(1) * thin;
            let mut start = first.min(rows);
            while start < rows {
                let end = (start + block).min(rows);
                let values = file.read_f64(
                    &chain,
                    Some(Rows {
                        range: start..end,
                        step: thin,
                    }),
                    lane,
                )?;
                if n == w {
                    acc_chain.push(&values);
                } else {
                    let picked: Vec<f64> = values
                        .chunks(w * d)
                        .flat_map(|row| chosen.iter().flat_map(move |&c| &row[c * d..(c + 1) * d]))
                        .copied()
                        .collect();
                    acc_chain.push(&picked);
                }
                start += (end - start).div_ceil(thin) * thin;
            }
            let stride = acc_chain.tau_stride();
            let rows_out: Vec<SummaryRow> = acc_chain
                .finish()
                .into_iter()
                .zip(self.params)
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
            let span = draws * thin as usize;
            let mut table = diag::summary_table(&rows_out, span, !self.independent);
            let what = if self.independent {
                "chains"
            } else {
                "walkers"
            };
            let title = match lane {
                Some(r) => format!("{} (replicate {r})", self.state),
                None => self.state.to_owned(),
            };
            let thinned = if thin > 1 {
                format!(", thinned by {thin}")
            } else {
                String::new()
            };
            table = table.title(format!(
                "state {title} ({}): {w} {what} × {rows} stored rows; {draws} draws each after \
                 {burn_rows} rows of burn-in{thinned}; acceptance {acceptance:.3}",
                self.kind
            ));
            if n < w {
                table = table.title(format!(
                    "  (unfinished: {n} of {w} {what} have {rows} rows or more and are used, cut \
                     to that; the others have fewer)"
                ));
            }
            if stride > 1 {
                table = table.title(format!(
                    "  (τ, R-hat, ESS and quantiles from one draw in {stride}, to bound memory; \
                     mean and sd from every draw)"
                ));
            }
            table = table
                .field("state", self.state)
                .field("group", self.group)
                .field("kind", self.kind)
                .field("replicate", lane)
                .field("chains", w)
                .field("chains_used", chosen)
                .field("independent_chains", self.independent)
                .field("rows", rows)
                .field("burn_rows", burn_rows)
                .field("thin", thin)
                .field("draws", draws)
                .field("tau_stride", stride)
                .field("acceptance", acceptance);
            with_csv_keys(
                &mut table,
                self.state,
                lane.unwrap_or(0),
                draws,
                w,
                self.independent,
            );
            out.push(table);
        }
        Ok(out)
    }
}

/// The columns every kind's parameter rows carry in CSV, whose rows have
/// no place for the table's fields: `state` and `replicate` first, `draws`,
/// `chains` and `independent_chains` before the flags (the last column).
pub(crate) fn with_csv_keys(
    table: &mut Table,
    state: &str,
    replicate: u64,
    draws: usize,
    chains: usize,
    independent: bool,
) {
    let csv = |name: &str| Column::new(name).shown(Shown::CSV);
    table.insert_constant(0, csv("state"), state.into());
    table.insert_constant(1, csv("replicate"), replicate.into());
    let flags = table.columns.len() - 1;
    table.insert_constant(flags, csv("draws"), draws.into());
    table.insert_constant(flags + 1, csv("chains"), chains.into());
    table.insert_constant(
        flags + 2,
        csv("independent_chains"),
        Cell::Bool(independent),
    );
}

/// Rows written per chain (walker) of a group in emcee's layout, in
/// replicate `lane` if it has replicates: all of them in a finished file; in
/// an unfinished one, the NaN fill marks rows not written yet.
pub fn rows_per_chain(
    file: &dyn Reader,
    g: &str,
    lane: Option<u64>,
) -> Result<Vec<u64>, ReadError> {
    let chain = format!("{g}/chain");
    let log_prob = format!("{g}/log_prob");
    let shape = file.shape(&chain)?;
    let w = shape
        .get(shape.len().saturating_sub(2))
        .copied()
        .unwrap_or(0);
    // The rows every dataset has: a run stopped by a full disk may have
    // grown `chain` and not yet `log_prob`.
    let extent = (shape.first().copied().unwrap_or(0) as u64)
        .min(file.shape(&log_prob)?.first().copied().unwrap_or(0) as u64);
    let iteration = file.attr_u64(g, "iteration")?.unwrap_or(0).min(extent);
    if file.attr_str("/", "status")?.as_deref() == Some("complete") {
        return Ok(vec![iteration; w]);
    }
    written_rows(file, &log_prob, lane, w, iteration, extent)
}

/// Leading rows of each chain with a log-probability (not the NaN fill) in
/// an unfinished file, scanning from `known` (rows every chain has written)
/// to the extent.
fn written_rows(
    file: &dyn Reader,
    log_prob: &str,
    lane: Option<u64>,
    w: usize,
    known: u64,
    extent: u64,
) -> Result<Vec<u64>, ReadError> {
    let mut counts = vec![known; w];
    let mut open = vec![true; w];
    let block = ((1u64 << 17) / w.max(1) as u64).max(1);
    let mut start = known;
    while start < extent && open.iter().any(|&o| o) {
        let end = (start + block).min(extent);
        let values = file.read_f64(log_prob, Some(Rows::every(start..end)), lane)?;
        for row in values.chunks(w.max(1)) {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::output::Attr;

    /// An unfinished group of 3 chains × 1 parameter: chain 2 stopped
    /// after 4 of 10 rows (NaN after), the others after 8.
    struct Unfinished {
        attrs: BTreeMap<(&'static str, &'static str), Attr>,
    }

    const ROWS: usize = 10;
    const CHAINS: usize = 3;

    fn written(row: usize, chain: usize) -> bool {
        row < if chain == 2 { 4 } else { 8 }
    }

    impl Reader for Unfinished {
        fn exists(&self, _: &str) -> bool {
            true
        }
        fn attr(&self, path: &str, name: &str) -> Result<Option<Attr>, ReadError> {
            let key = self.attrs.keys().find(|(p, n)| *p == path && *n == name);
            Ok(key.map(|k| self.attrs[k].clone()))
        }
        fn shape(&self, _: &str) -> Result<Vec<usize>, ReadError> {
            Ok(vec![ROWS, CHAINS, 1])
        }
        fn read_f64(
            &self,
            dataset: &str,
            rows: Option<Rows>,
            lane: Option<u64>,
        ) -> Result<Vec<f64>, ReadError> {
            assert_eq!(lane, None);
            if dataset.ends_with("accepted") {
                return Ok(vec![4.0, 4.0, 2.0]);
            }
            let rows = rows.unwrap_or(Rows::every(0..ROWS as u64));
            let mut out = Vec::new();
            for row in rows.range.step_by(rows.step as usize) {
                for c in 0..CHAINS {
                    let row = row as usize;
                    // chain: the row's number plus 100 per chain.
                    out.push(if written(row, c) {
                        (row + 100 * c) as f64
                    } else {
                        f64::NAN
                    });
                }
            }
            Ok(out)
        }
        fn read_i64(&self, _: &str) -> Result<Vec<i64>, ReadError> {
            unreachable!()
        }
        fn read_strings(&self, _: &str) -> Result<Vec<String>, ReadError> {
            unreachable!()
        }
    }

    #[test]
    fn an_unfinished_group_uses_the_chains_that_give_the_most_draws() {
        let file = Unfinished {
            attrs: [
                (("/", "status"), Attr::Str("running".into())),
                (("states/g", "iteration"), Attr::I64(4)),
                (("states/g", "burn_rows"), Attr::U64(2)),
            ]
            .into_iter()
            .collect(),
        };
        let params = vec!["x".to_string()];
        let summary = EmceeSummary {
            group: "states/g",
            state: "g",
            params: &params,
            kind: "chains",
            independent: true,
        };
        let tables = summary.tables(&file, &SummaryOptions::default()).unwrap();
        let [t] = &tables[..] else {
            panic!("{tables:?}")
        };
        // Chains 0 and 1, 8 rows each (16 draws), beat all three at 4 (12).
        assert_eq!(t.get("chains_used"), Some(&Cell::from(vec![0usize, 1])));
        assert_eq!(t.get("rows"), Some(&Cell::Int(8)));
        assert_eq!(t.get("draws"), Some(&Cell::Int(6)));
        assert_eq!(t.get("acceptance"), Some(&Cell::Float(0.5)));
        assert!(t
            .title
            .iter()
            .any(|l| l.contains("unfinished: 2 of 3 chains")));
        // Rows 2..8 of chains 0 and 1: mean (2 + … + 7 + 102 + … + 107) / 12.
        let mean = t.columns.iter().position(|c| c.name == "mean").unwrap();
        assert_eq!(t.rows[0].cells[mean], Cell::Float(54.5));
        // CSV's keys around the parameter's columns, the flags last.
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[..3], ["state", "replicate", "param"]);
        assert_eq!(
            names[names.len() - 4..],
            ["draws", "chains", "independent_chains", "flags"]
        );
    }

    #[test]
    fn the_chains_used_keep_the_most_draws() {
        assert_eq!(chains_to_use(&[10, 10, 10]), (vec![0, 1, 2], 10));
        // 3 × 8 = 24 beats 1 × 20 and 2 × 9.
        assert_eq!(chains_to_use(&[20, 9, 8]), (vec![0, 1, 2], 8));
        assert_eq!(chains_to_use(&[20, 2, 1]), (vec![0], 20));
        assert_eq!(chains_to_use(&[0, 0]), (vec![0, 1], 0));
    }
}
