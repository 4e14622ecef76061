//! Starting a run under MPI: telling whether we were launched by an MPI
//! launcher, the ranks of this node, and rank 0's verdict on the spec sent
//! to every rank — for MPI's world or, the same way, for one process alone
//! ([`World`]). The scheduler itself is transport-agnostic (`scheduler`,
//! `transport`).

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

/// The ranks of a run: MPI's world, or this process alone. A run is set up
/// the same way on either (rank 0 reads the spec and tells the others);
/// alone, the collectives are trivial.
pub enum World {
    Alone,
    Mpi(SimpleCommunicator),
}

impl World {
    pub fn rank(&self) -> usize {
        match self {
            World::Alone => 0,
            World::Mpi(w) => w.rank() as usize,
        }
    }

    pub fn size(&self) -> usize {
        match self {
            World::Alone => 1,
            World::Mpi(w) => w.size() as usize,
        }
    }

    /// Ranks on this rank's node, and this rank's place among them
    /// (collective).
    pub fn ranks_on_node(&self) -> (usize, usize) {
        match self {
            World::Alone => (1, 0),
            World::Mpi(w) => ranks_on_node(w),
        }
    }

    /// Rank 0's verdict sent to every rank (see [`broadcast_startup`]).
    pub fn broadcast_startup(&self, verdict: Option<Result<Vec<u8>, u8>>) -> Result<Vec<u8>, u8> {
        match self {
            World::Alone => verdict.expect("a process alone is rank 0"),
            World::Mpi(w) => broadcast_startup(w, verdict),
        }
    }

    /// True on every rank when `ok` is true on every rank (collective).
    pub fn all_ok(&self, ok: bool) -> bool {
        match self {
            World::Alone => ok,
            World::Mpi(w) => all_ok(w, ok),
        }
    }

    /// Every rank's thread count (collective).
    pub fn gather_threads(&self, threads: usize) -> Vec<usize> {
        match self {
            World::Alone => vec![threads],
            World::Mpi(w) => gather_threads(w, threads),
        }
    }

    /// The MPI library's own version string ("" alone).
    pub fn library(&self) -> String {
        match self {
            World::Alone => String::new(),
            // Some MPI libraries count the string's terminating NUL in its length.
            World::Mpi(_) => mpi::environment::library_version()
                .map(|v| v.trim_end_matches(['\0', '\n', ' ']).to_string())
                .unwrap_or_default(),
        }
    }

    /// Ends every rank of the job at once (alone: this process).
    pub fn abort(&self, code: i32) -> ! {
        crate::model::exit_hook::disarm();
        match self {
            World::Alone => std::process::exit(code),
            World::Mpi(w) => w.abort(code),
        }
    }
}
