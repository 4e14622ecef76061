//! `sampo summary` of a chains run: each state's diagnostics recomputed
//! from its group in emcee's layout (axis 1: independent chains).

use super::ChainsJob;
use crate::jobs::summary::{EmceeSummary, SummaryError, SummaryOptions};
use crate::output::Reader;
use crate::table::Table;

impl ChainsJob {
    pub(super) fn summary_tables(
        &self,
        file: &dyn Reader,
        options: &SummaryOptions,
    ) -> Result<Vec<Table>, SummaryError> {
        let mut tables = Vec::new();
        for st in self.spec.states.iter().filter(|st| options.wants(&st.name)) {
            let group = format!("states/{}", st.name);
            let summary = EmceeSummary {
                group: &group,
                state: &st.name,
                params: &st.params,
                kind: "chains",
                independent: true,
            };
            tables.extend(summary.tables(file, options)?);
        }
        Ok(tables)
    }
}
