//! SIGTERM (what SLURM sends at a time limit, and `kill`), SIGINT (Ctrl-C)
//! and SIGUSR1 (`#SBATCH --signal=B:USR1@300`): the handler only records the
//! signal; the scheduler polls it and pauses the job — every task stops at
//! its next step, every row is flushed, a checkpoint is written, the status
//! becomes `paused`, and the run exits 75 so that `sampo run --resume`
//! continues it. A second SIGINT stops without writing the checkpoint (the
//! tasks end at their current step; status `failed: interrupted…`, the rows
//! kept); a third ends the process at once.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static SIGINTS: AtomicU32 = AtomicU32::new(0);

/// Installs the handlers (once per process, before the run starts).
pub fn install() -> std::io::Result<()> {
    for sig in [SIGINT, SIGTERM, SIGUSR1] {
        // SAFETY: the action only touches atomics, or, for a third SIGINT,
        // restores and raises the default action; all are async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                let _ = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
                if sig == SIGINT && SIGINTS.fetch_add(1, Ordering::SeqCst) >= 2 {
                    let _ = signal_hook::low_level::emulate_default_handler(SIGINT);
                }
            })?;
        }
    }
    Ok(())
}

/// The first signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// True after a second SIGINT: stop now, without a checkpoint.
pub fn hurried() -> bool {
    SIGINTS.load(Ordering::SeqCst) >= 2
}

pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

/// Why a run paused on `sig`.
pub fn paused_by(sig: i32) -> String {
    format!("paused by {}", name(sig))
}

/// The message of a run stopped at once by a second SIGINT.
pub fn stopped_at_once() -> String {
    "interrupted by a second SIGINT: stopped without writing a checkpoint (every row flushed \
     before is kept; `--resume` goes on from the last periodic checkpoint)"
        .to_string()
}
