//! The closing table of a run with a trans-conceptual stage.

use std::io::Write;

use super::results::error_method;
use super::{settings, Results};
use crate::jobs::RunSpec;

/// The closing table: state, dimension, probability ± error, log evidence
/// relative to the first state, between-state acceptance, and τ.
pub fn write_table(out: &mut dyn Write, spec: &RunSpec, r: &Results) -> std::io::Result<()> {
    let t = settings(spec);
    writeln!(
        out,
        "trans-conceptual ({}, {} walkers × {} steps, burn {}): state probabilities, τ of the \
         state indicator {:.1} steps",
        t.method.label(),
        t.walkers,
        t.steps,
        t.burn,
        r.tau
    )?;
    writeln!(
        out,
        "  {:<16} {:>4} {:>22} {:>24} {:>10}  flags",
        "state", "dim", "probability ± error", "log Z − log Z[0] ± err", "acc. jump"
    )?;
    for (s, st) in spec.states.iter().enumerate() {
        writeln!(
            out,
            "  {:<16} {:>4} {:>12.4} ± {:<7.4} {:>12.4} ± {:<9.4} {:>10.3}  {}",
            st.name,
            st.dim(),
            r.probability[s],
            r.probability_err[s],
            r.log_evidence[s],
            r.log_evidence_err[s],
            r.between[s],
            r.flags(s).join(", ")
        )?;
    }
    writeln!(out, "  error: {}", error_method(t.method))?;
    if let Some(note) = r.flags_note() {
        writeln!(out, "  {note}")?;
    }
    Ok(())
}
