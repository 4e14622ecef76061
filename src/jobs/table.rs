//! The `/summary` table every sampling kind writes: one row per state,
//! replicate and parameter, with the columns of [`diag::SUMMARY_COLUMNS`].
//! A kind declares it once with its layout and hands it the diagnostics of a
//! (state, replicate) as they come, from a task or from rank 0.

use std::ops::Range;

use crate::diag::{self, SummaryRow, SUMMARY_COLUMNS};
use crate::model::PosteriorSpec;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Layout, Record, Store, StoreError};
use crate::spec::{StateSpec, NAME_MAX};

/// Dataset indices and row offsets of `/summary`.
#[derive(Debug, Clone)]
pub(crate) struct SummaryTable {
    state: usize,
    replicate: usize,
    param: usize,
    first_value: usize,
    /// Per state: its first row (replicate 0, parameter 0) and dimension.
    base: Vec<(u64, u64)>,
}

impl SummaryTable {
    /// Declares `/summary` with `replicates` × dim rows per state.
    /// `description` says over what the rows are computed; it is stored as
    /// the group's attribute.
    pub fn declare(
        layout: &mut Layout,
        states: &[StateSpec],
        replicates: usize,
        description: &str,
    ) -> Self {
        let mut base = Vec::with_capacity(states.len());
        let mut rows = 0u64;
        for st in states {
            base.push((rows, st.dim() as u64));
            rows += (replicates * st.dim()) as u64;
        }
        layout.group(
            "summary",
            vec![
                ("description".into(), Attr::Str(description.into())),
                (
                    "columns".into(),
                    Attr::Strs(SUMMARY_COLUMNS.iter().map(|c| c.to_string()).collect()),
                ),
            ],
        );
        let column = |layout: &mut Layout, name: &str, dtype: Dtype| {
            layout.add(DatasetDecl::fixed(
                format!("summary/{name}"),
                dtype,
                vec![],
                rows,
            ))
        };
        let state = column(layout, "state", Dtype::Str(NAME_MAX));
        let replicate = column(layout, "replicate", Dtype::I64);
        let param = column(layout, "param", Dtype::Str(NAME_MAX));
        let first_value = layout.datasets.len();
        for name in SUMMARY_COLUMNS {
            column(layout, name, Dtype::F64);
        }
        Self {
            state,
            replicate,
            param,
            first_value,
            base,
        }
    }

    /// The rows of a (state, replicate).
    pub fn rows(&self, state: usize, replicate: usize) -> Range<u64> {
        let (first, d) = self.base[state];
        let first = first + replicate as u64 * d;
        first..first + d
    }

    /// The records that fill the rows of a (state, replicate): `values[k]`
    /// is parameter k's row of [`SUMMARY_COLUMNS`].
    pub fn records(
        &self,
        st: &StateSpec,
        state: usize,
        replicate: usize,
        values: &[Vec<f64>],
    ) -> Vec<Record> {
        let rows = self.rows(state, replicate);
        let d = st.dim();
        let record = |dataset: usize, values: Column| Record {
            dataset,
            first_row: rows.start,
            rows: d as u64,
            lane: None,
            values,
        };
        let mut out = vec![
            record(self.state, Column::Str(vec![st.name.clone(); d])),
            record(self.replicate, Column::I64(vec![replicate as i64; d])),
            record(self.param, Column::Str(st.params.clone())),
        ];
        for c in 0..SUMMARY_COLUMNS.len() {
            let column = values.iter().map(|v| v[c]).collect();
            out.push(record(self.first_value + c, Column::F64(column)));
        }
        out
    }

    /// The stored rows of a (state, replicate), for the report.
    pub fn read(
        &self,
        store: &mut dyn Store,
        st: &StateSpec,
        state: usize,
        replicate: usize,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        let rows = self.rows(state, replicate);
        let columns: Vec<Vec<f64>> = (0..SUMMARY_COLUMNS.len())
            .map(|c| store.read_f64(self.first_value + c, rows.clone(), None))
            .collect::<Result<_, _>>()?;
        Ok(st
            .params
            .iter()
            .enumerate()
            .map(|(k, name)| diag::SummaryRow {
                name: name.clone(),
                values: columns.iter().map(|c| c[k]).collect(),
            })
            .collect())
    }
}

/// One state's row of the table `sampo check` prints (see
/// [`describe_states`]).
pub(crate) struct StateLine {
    /// Walkers or chains.
    pub count: usize,
    pub steps: usize,
    pub burn: usize,
    pub thin: usize,
    /// How the state is sampled, before its init and model (e.g. the
    /// moves); empty for none.
    pub how: String,
    pub init: &'static str,
}

/// `sampo check`'s table of states, one row each: name, dimension, walkers
/// or chains (`count` names the column), steps, burn, thin, cost, then how
/// it is sampled (`how` names that part, if any), its init and its model.
pub(crate) fn describe_states(
    out: &mut dyn std::io::Write,
    states: &[StateSpec],
    posteriors: &[PosteriorSpec],
    count: &str,
    how: Option<&str>,
    lines: &[StateLine],
) -> std::io::Result<()> {
    let width = states
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(5);
    let head = how.map_or(String::new(), |h| format!("{h} / "));
    writeln!(out, "states")?;
    writeln!(
        out,
        "  {:<width$} {:>4} {:>7} {:>7} {:>6} {:>4} {:>8}  {head}init / model",
        "name", "dim", count, "steps", "burn", "thin", "cost_us"
    )?;
    for ((st, l), p) in states.iter().zip(lines).zip(posteriors) {
        let how = if how.is_some() {
            format!("{} / ", l.how)
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:<width$} {:>4} {:>7} {:>7} {:>6} {:>4} {:>8}  {how}{} / {}",
            st.name,
            st.dim(),
            l.count,
            l.steps,
            l.burn,
            l.thin,
            p.cost_us,
            l.init,
            p.model_label(),
        )?;
    }
    Ok(())
}
