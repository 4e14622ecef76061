//! Why a run failed, typed: the cause decides what the user is told to do
//! (free disk space, look at a rank, fix the model), and the message says
//! where it happened.

use std::path::Path;

use crate::jobs::{JobError, TaskError};
use crate::output::StoreError;

/// What made a run fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The output's filesystem is full.
    NoSpace,
    /// A rank stopped answering within the rank timeout.
    Unresponsive,
    /// A model (or its prior) failed to evaluate at some parameters.
    Evaluation,
    /// Anything else: a write that failed, a stage that could not start, a
    /// signal that stopped the run at once, a task that panicked.
    Other,
}

impl Cause {
    /// The cause behind a store's error.
    pub fn of_store(e: &StoreError) -> Self {
        match e {
            StoreError::NoSpace { .. } => Cause::NoSpace,
            _ => Cause::Other,
        }
    }

    /// The cause behind a job's error on rank 0.
    pub fn of_job(e: &JobError) -> Self {
        match e {
            JobError::Store(e) => Cause::of_store(e),
            _ => Cause::Other,
        }
    }

    /// The cause behind a task's error.
    pub fn of_task(e: &TaskError) -> Self {
        match e {
            TaskError::Evaluation(_) => Cause::Evaluation,
            TaskError::Failed(_) | TaskError::Cancelled => Cause::Other,
        }
    }

    /// In a few words, and what to do about it.
    fn advice(self) -> (&'static str, &'static str) {
        match self {
            Cause::NoSpace => ("no space left on device", "free space on its filesystem"),
            Cause::Unresponsive => (
                "a rank stopped answering",
                "find out why (or raise [parallel] timeout)",
            ),
            Cause::Evaluation => (
                "an evaluation failed",
                "fix the model (or its prior) at the parameters below",
            ),
            Cause::Other => ("see the cause below", "fix it"),
        }
    }
}

/// Why rank 0's run ended badly.
#[derive(Debug)]
pub struct Failure {
    pub cause: Cause,
    pub message: String,
    /// Ranks that had not stopped within [`super::STOP_GRACE`]: the caller
    /// aborts the job.
    pub unresponsive: Vec<usize>,
}

impl Failure {
    /// What a user reads: one line that says what happened, where the rows
    /// written are and what to do, then the details.
    pub fn explain(&self, partial: &Path) -> String {
        let (what, advice) = self.cause.advice();
        format!(
            "the run failed ({what}); every row written so far is kept in {} (status `failed`): \
             {advice}, then start again with `--force`, or go on from its last checkpoint with \
             `--resume`\n  cause: {}",
            partial.display(),
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_follows_the_cause_not_the_words() {
        let failure = |cause| Failure {
            cause,
            // Words that a substring match would have taken for a full disk.
            message: "state `no space left`: evaluation failed".into(),
            unresponsive: Vec::new(),
        };
        let text = failure(Cause::Evaluation).explain(Path::new("out.h5.partial"));
        assert!(
            text.starts_with("the run failed (an evaluation failed)"),
            "{text}"
        );
        assert!(text.contains("fix the model"), "{text}");
        assert!(text.contains("out.h5.partial"), "{text}");
        let text = failure(Cause::Other).explain(Path::new("out.h5.partial"));
        assert!(
            text.starts_with("the run failed (see the cause below)"),
            "{text}"
        );
        let full = StoreError::NoSpace {
            path: "out.h5.partial".into(),
            message: "no space left on device".into(),
        };
        assert_eq!(Cause::of_store(&full), Cause::NoSpace);
        assert_eq!(
            Cause::of_task(&TaskError::Evaluation("x".into())),
            Cause::Evaluation
        );
        assert_eq!(Cause::of_task(&TaskError::Failed("x".into())), Cause::Other);
    }
}
