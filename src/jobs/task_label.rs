//! What every kind's task does first and last: it names itself in its
//! failures (kind, state, its place, seed, so that a failure can be
//! reproduced), builds its state's posterior, and decodes and encodes the
//! snapshot it resumes from and pauses with.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{RunSpec, TaskError};
use crate::model::Posterior;

/// How a task names itself in its failures, e.g. "chains: state `g`,
/// chain 3 (seed 1)".
pub(crate) struct TaskLabel(String);

impl TaskLabel {
    pub fn new(label: String) -> Self {
        Self(label)
    }

    /// The task failed: `message`, after the task's name.
    pub fn fail(&self, message: impl Display) -> TaskError {
        TaskError::Failed(format!("{}: {message}", self.0))
    }

    /// A model evaluation failed: `message`, after the task's name.
    pub fn evaluation(&self, message: impl Display) -> TaskError {
        TaskError::Evaluation(format!("{}: {message}", self.0))
    }

    /// State `state`'s posterior, as the task evaluates it (failing after
    /// the evaluations `SAMPO_INJECT_FAULT` asks for).
    pub fn posterior(&self, spec: &RunSpec, state: usize) -> Result<Posterior, TaskError> {
        let name = &spec.states[state].name;
        let posterior =
            Posterior::from_spec(name, spec.posterior(state)).map_err(|e| self.fail(e))?;
        Ok(match injected_fault(name) {
            Some(after) => posterior.fail_after(after),
            None => posterior,
        })
    }

    /// The snapshot a task resumes from.
    pub fn resume<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, TaskError> {
        postcard::from_bytes(bytes).map_err(|e| self.fail(format!("undecodable snapshot: {e}")))
    }

    /// A task's state as the snapshot it pauses or ends with.
    pub fn snapshot<T: Serialize>(&self, snapshot: &T) -> Result<Vec<u8>, TaskError> {
        postcard::to_stdvec(snapshot).map_err(|e| self.fail(format!("cannot snapshot: {e}")))
    }
}

/// `SAMPO_INJECT_FAULT=<state>:<n>` makes evaluations of that state fail
/// after n of them, in every replicate: a test hook for failure handling,
/// read per task so that it acts on whichever rank runs the state.
fn injected_fault(state: &str) -> Option<u64> {
    let value = std::env::var("SAMPO_INJECT_FAULT").ok()?;
    let (name, after) = value.rsplit_once(':')?;
    (name == state).then(|| after.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_task() {
        let label = TaskLabel::new("chains: state `g`, chain 3 (seed 1)".into());
        let TaskError::Failed(m) = label.fail("no finite start") else {
            panic!("a failure")
        };
        assert_eq!(m, "chains: state `g`, chain 3 (seed 1): no finite start");
        let bytes = label.snapshot(&(7u64, vec![1.5f64])).unwrap();
        let back: (u64, Vec<f64>) = label.resume(&bytes).unwrap();
        assert_eq!(back, (7, vec![1.5]));
        let Err(TaskError::Failed(m)) = label.resume::<(u64, Vec<f64>)>(&bytes[..1]) else {
            panic!("a truncated snapshot fails")
        };
        assert!(
            m.starts_with("chains: state `g`, chain 3 (seed 1): undecodable snapshot: "),
            "{m}"
        );
    }
}
