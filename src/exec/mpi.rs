//! Starting a run under MPI: telling whether we were launched by an MPI
//! launcher, the ranks of this node, and rank 0's verdict on the spec sent
//! to every rank. The scheduler itself is transport-agnostic
//! (`scheduler`, `transport`).

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// True when this process was started by an MPI launcher (mpiexec, mpirun,
/// srun with PMI/PMIx), or when `SAMPO_MPI=1` asks for MPI explicitly.
pub fn launched_under_mpi() -> bool {
    const VARS: [&str; 6] = [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMI_RANK",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
        "MV2_COMM_WORLD_SIZE",
    ];
    std::env::var("SAMPO_MPI").is_ok_and(|v| v == "1")
        || VARS.iter().any(|v| std::env::var_os(v).is_some())
}

/// `srun` started several tasks for this job step (`SLURM_STEP_NUM_TASKS`)
/// but MPI sees one rank: without a working PMI each task would run the
/// whole job alone. Returns the number of tasks srun started. (A plain
/// `sampo run` in a multi-task allocation is one process, and fine.)
pub fn separate_copies() -> Option<usize> {
    let var = |name: &str| std::env::var(name).ok();
    // A task of an srun step: it has a numeric step id and a task rank.
    var("SLURM_STEP_ID")?.trim().parse::<u32>().ok()?;
    var("SLURM_PROCID")?;
    var("SLURM_STEP_NUM_TASKS")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 1)
}

/// The error for [`separate_copies`]: what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[error(
    "srun started {0} tasks, but MPI sees a single rank in each: they would be {0} separate \
     copies of the whole run. Launch with `srun --mpi=pmix` (`srun --mpi=list` shows what this \
     Slurm supports; Debian's OpenMPI needs pmix, not pmi2), or with `mpiexec` inside the \
     allocation"
)]
pub struct SeparateCopies(pub usize);

/// Ranks sharing this rank's node (an MPI shared-memory split); collective.
pub fn ranks_on_node(world: &SimpleCommunicator) -> (usize, usize) {
    let node = world.split_shared(world.rank());
    (node.size() as usize, node.rank() as usize)
}

/// Sends rank 0's verdict on the spec to every rank: `Ok(payload)` or the
/// exit code every rank should leave with. Collective.
pub fn broadcast_startup(
    world: &SimpleCommunicator,
    verdict: Option<Result<Vec<u8>, u8>>,
) -> Result<Vec<u8>, u8> {
    let root = world.process_at_rank(0);
    let mut header = [0u64; 2];
    if let Some(v) = &verdict {
        header = match v {
            Ok(bytes) => [0, bytes.len() as u64],
            Err(code) => [*code as u64, 0],
        };
    }
    root.broadcast_into(&mut header[..]);
    if header[0] != 0 {
        return Err(header[0] as u8);
    }
    let mut payload = match verdict {
        Some(Ok(bytes)) => bytes,
        _ => vec![0u8; header[1] as usize],
    };
    root.broadcast_into(&mut payload[..]);
    Ok(payload)
}

/// A rank other than 0 leaving with the exit code rank 0 decided; rank 0
/// has printed the reason.
#[derive(Debug, thiserror::Error)]
#[error("leaving with exit code {0}, as rank 0 decided")]
pub struct PeerExit(pub u8);

/// The thread count of every rank, gathered on every rank (collective).
pub fn gather_threads(world: &SimpleCommunicator, threads: usize) -> Vec<usize> {
    let mut all = vec![0u64; world.size() as usize];
    world.all_gather_into(&(threads as u64), &mut all[..]);
    all.into_iter().map(|t| t as usize).collect()
}

/// True on every rank when `ok` is true on every rank (collective).
pub fn all_ok(world: &SimpleCommunicator, ok: bool) -> bool {
    let mut all = 0u64;
    world.all_reduce_into(
        &u64::from(!ok),
        &mut all,
        mpi::collective::SystemOperation::sum(),
    );
    all == 0
}
