//! How many rayon threads a rank uses, and why.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadSource {
    CommandLine,
    Spec,
    Slurm,
    Cores {
        cores: usize,
        ranks_on_node: usize,
    },
    /// A state's plugin declares itself serialized: one thread per rank.
    SerializedPlugin,
}

impl fmt::Display for ThreadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadSource::CommandLine => write!(f, "--threads"),
            ThreadSource::Spec => write!(f, "[parallel] threads"),
            ThreadSource::Slurm => write!(f, "SLURM_CPUS_PER_TASK"),
            ThreadSource::SerializedPlugin => write!(
                f,
                "a serialized plugin: one thread per rank; scale with ranks (mpiexec -n N)"
            ),
            ThreadSource::Cores {
                cores,
                ranks_on_node,
            } => {
                write!(f, "{cores} cores / {ranks_on_node} rank(s) on this node")
            }
        }
    }
}

/// The most threads a rank may run: more than the largest nodes' hardware
/// threads, and a rank starts that many in well under a second. More is an
/// error (`--threads`, `[parallel] threads`) or capped (SLURM).
pub use crate::limits::MAX_THREADS;

/// Threads per rank: `--threads`, else `[parallel] threads` when non-zero,
/// else `SLURM_CPUS_PER_TASK`, else this node's cores shared among its ranks.
pub fn resolve_threads(
    cli: Option<usize>,
    spec: usize,
    slurm_cpus_per_task: Option<&str>,
    cores: usize,
    ranks_on_node: usize,
) -> (usize, ThreadSource) {
    if let Some(n) = cli.filter(|&n| n > 0) {
        return (n, ThreadSource::CommandLine);
    }
    if spec > 0 {
        return (spec, ThreadSource::Spec);
    }
    if let Some(n) = slurm_cpus_per_task
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return (n.min(MAX_THREADS), ThreadSource::Slurm);
    }
    let ranks_on_node = ranks_on_node.max(1);
    (
        (cores / ranks_on_node).max(1),
        ThreadSource::Cores {
            cores,
            ranks_on_node,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_cli_spec_slurm_cores() {
        assert_eq!(resolve_threads(Some(3), 2, Some("4"), 8, 1).0, 3);
        assert_eq!(
            resolve_threads(None, 2, Some("4"), 8, 1),
            (2, ThreadSource::Spec)
        );
        assert_eq!(
            resolve_threads(None, 0, Some("4"), 8, 1),
            (4, ThreadSource::Slurm)
        );
        assert_eq!(resolve_threads(None, 0, Some("x"), 8, 2).0, 4);
        assert_eq!(resolve_threads(None, 0, None, 2, 3).0, 1);
    }
}
