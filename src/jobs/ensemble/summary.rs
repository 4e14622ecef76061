//! `sampo summary` of an ensemble run: each state's (and replicate's)
//! diagnostics recomputed from its group in emcee's layout, the walkers
//! taken as chains.

use super::EnsembleJob;
use crate::jobs::summary::{EmceeSummary, SummaryError, SummaryOptions};
use crate::output::Reader;
use crate::table::Table;

impl EnsembleJob {
    pub(super) fn summary_tables(
        &self,
        file: &dyn Reader,
        options: &SummaryOptions,
    ) -> Result<Vec<Table>, SummaryError> {
        let mut tables = Vec::new();
        for st in self.spec.states.iter().filter(|st| options.wants(&st.name)) {
            let group = self.group(st);
            let summary = EmceeSummary {
                group: &group,
                state: &st.name,
                params: &st.params,
                kind: "ensemble",
                independent: false,
            };
            tables.extend(summary.tables(file, options)?);
        }
        Ok(tables)
    }
}
