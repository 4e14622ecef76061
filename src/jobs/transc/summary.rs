//! `sampo summary` of a run with a trans-conceptual stage: the first
//! stage's tables, then the state probabilities and evidence ratios from
//! the walkers' counts, once every walker has written them.

use super::results::error_method;
use super::{settings, Results, TranscJob};
use crate::jobs::summary::{SummaryError, SummaryOptions};
use crate::jobs::RunSpec;
use crate::output::Reader;
use crate::table::{Column, Shown, Table};

impl TranscJob {
    pub(super) fn summary_tables(
        &self,
        file: &dyn Reader,
        options: &SummaryOptions,
    ) -> Result<Vec<Table>, SummaryError> {
        let mut tables = self.inner.summary(file, options)?;
        let path = |dataset: usize| self.layout.datasets[dataset].path.as_str();
        let visits = file.read_f64(path(self.sets.visits), None, None)?;
        // Until every walker has its counts (rows not written read as NaN),
        // there is nothing to show.
        if visits.is_empty() || visits.iter().any(|v| v.is_nan()) {
            return Ok(tables);
        }
        let moves = file.read_f64(path(self.sets.moves), None, None)?;
        let taus = file.read_f64(path(self.sets.tau), None, None)?;
        let t = settings(&self.spec);
        let results = Results::from_counts(t, self.spec.states.len(), &visits, &moves, &taus);
        tables.push(results_table(&self.spec, &results));
        Ok(tables)
    }
}

/// The state probabilities, the evidence ratios and the between-state
/// acceptance, per state; τ of the state indicator. Not in CSV, whose one
/// table is the parameters'.
fn results_table(spec: &RunSpec, r: &Results) -> Table {
    let t = settings(spec);
    let mut table = Table::new("transc", "states")
        .single()
        .shown(Shown::NOT_CSV)
        .title(format!(
            "trans-conceptual ({}, {} walkers × {} steps, burn {}): state probabilities, τ of \
             the state indicator {:.1} steps",
            t.method.label(),
            t.walkers,
            t.steps,
            t.burn,
            r.tau
        ))
        .field("tau", r.tau)
        .column(Column::new("state"))
        .column(Column::new("dim"))
        .column(Column::new("probability").fixed(4))
        .column(Column::new("probability_err").heading("± err").fixed(4))
        .column(
            Column::new("log_evidence")
                .heading("log Z − log Z[0]")
                .fixed(4),
        )
        .column(Column::new("log_evidence_err").heading("± err").fixed(4))
        .column(
            Column::new("acceptance_between")
                .heading("acc. jump")
                .fixed(3),
        )
        .column(Column::new("flags"))
        .note(format!("error: {}", error_method(t.method)));
    if let Some(note) = r.flags_note() {
        table = table.note(note);
    }
    for (s, st) in spec.states.iter().enumerate() {
        table.push(vec![
            st.name.as_str().into(),
            st.dim().into(),
            r.probability[s].into(),
            r.probability_err[s].into(),
            r.log_evidence[s].into(),
            r.log_evidence_err[s].into(),
            r.between[s].into(),
            r.flags(s).into(),
        ]);
    }
    table
}
