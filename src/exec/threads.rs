//! How many rayon threads a rank uses, and why: the one place that reads
//! `--threads`, `[parallel] threads`, SLURM, the CPUs a rank is bound to and
//! the node's cores, and that warns when they disagree.

use std::fmt;

use crate::jobs::RunSpec;
use crate::model::plugin::ThreadSafety;

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
                "a serialized plugin or Python model: one thread per rank; scale with ranks \
                 (mpiexec -n N)"
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

/// Threads per rank for `spec`: `--threads`, `[parallel] threads`, SLURM,
/// or the CPUs this process may run on (shared among the ranks of the node
/// when every rank may run anywhere on it). A state whose plugin is
/// serialized makes it one.
pub fn threads_for(
    cli: Option<usize>,
    spec: &RunSpec,
    ranks_on_node: usize,
) -> (usize, ThreadSource) {
    let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok();
    let (bound, node) = (bound_cores(), node_cores());
    // A rank bound to part of the node (mpiexec --map-by slot:PE=n, srun
    // --cpus-per-task) owns those CPUs; one free to roam shares the node.
    let ranks_sharing = if bound < node { 1 } else { ranks_on_node };
    let chosen = resolve_threads(cli, spec.threads, slurm.as_deref(), bound, ranks_sharing);
    // A library with global state (Fortran COMMON blocks) runs one call at a
    // time per process: more threads would only wait for each other.
    if chosen.0 > 1 && !serialized_states(spec).is_empty() {
        return (1, ThreadSource::SerializedPlugin);
    }
    chosen
}

/// The states whose model runs one call at a time per process: a
/// serialized plugin (not copied per thread) or a Python model.
fn serialized_states(spec: &RunSpec) -> Vec<String> {
    spec.plugins()
        .into_iter()
        .filter(|(_, p)| p.safety == ThreadSafety::Serialized && !p.copies)
        .map(|(state, _)| format!("`{state}`"))
        .chain(
            spec.python_states()
                .into_iter()
                .map(|s| format!("`{s}` (Python)")),
        )
        .collect()
}

/// What to tell a user who asked for more threads (`--threads`, `[parallel]
/// threads`) than serialized plugins allow, naming every such state: said
/// once for the job (by rank 0), not by every rank.
pub fn serialized_warning(cli: Option<usize>, spec: &RunSpec) -> Option<String> {
    let asked = cli.filter(|&n| n > 0).unwrap_or(spec.threads);
    let states = serialized_states(spec);
    (asked > 1 && !states.is_empty()).then(|| {
        format!(
            "state(s) {}: a serialized plugin or a Python model (one call at a time per \
             process), so each rank runs 1 thread, not {asked}; use more ranks (mpiexec -n N) \
             to go faster",
            states.join(", ")
        )
    })
}

/// Cores online on this node, whatever this process is bound to.
pub fn node_cores() -> usize {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        bound_cores()
    }
}

/// CPUs this process may run on: its affinity mask and its cgroup quota
/// (both are what `available_parallelism` reads on Linux).
pub fn bound_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What is wrong with running `threads` threads in each of `ranks_on_node`
/// ranks here: more than the node's cores, or more threads than the CPUs a
/// rank may use. `run` logs these; `check` prints them.
pub fn layout_warnings(ranks_on_node: usize, threads: usize) -> Vec<String> {
    let mut warnings = Vec::new();
    let (node, bound) = (node_cores(), bound_cores());
    if ranks_on_node * threads > node {
        warnings.push(format!(
            "{ranks_on_node} rank(s) × {threads} thread(s) per node oversubscribe its {node} core(s)"
        ));
    }
    if threads > bound {
        warnings.push(format!(
            "{threads} thread(s) per rank, but a rank may use only {bound} CPU(s) (affinity mask \
             or cgroup quota); under mpiexec launch with `--bind-to none` or \
             `--map-by slot:PE={threads}`, under SLURM with `--cpus-per-task={threads}` \
             (see docs/parallelism.md, \"Binding\")"
        ));
    }
    warnings
}

/// Starts this process's rayon pool.
pub fn build_pool(threads: usize) -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sampo-worker-{i}"))
        .build_global()
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
