//! SIGTERM (what SLURM sends at a time limit, and `kill`), SIGINT (Ctrl-C)
//! and SIGUSR1 (`#SBATCH --signal=B:USR1@300`): the handler only records the
//! signal; the scheduler polls it and stops the job cleanly — every task
//! cancelled, every row written so far flushed, the status `failed:
//! interrupted by …` — within seconds, on one rank or all. A second SIGINT
//! stops the process at once. (Checkpointing, so that such a run can be
//! resumed, is not there yet.)

use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers (once per process, before the run starts).
pub fn install() -> std::io::Result<()> {
    for sig in [SIGINT, SIGTERM, SIGUSR1] {
        // SAFETY: the action only touches an atomic, or, for a second
        // SIGINT, restores and raises the default action; both are
        // async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                let first = RECEIVED
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if !first && sig == SIGINT {
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

pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

/// The message of a run stopped by `sig`.
pub fn stopped_by(sig: i32) -> String {
    format!(
        "interrupted by {}; every row written up to now is kept (no checkpoint: a resume is not \
         possible yet)",
        name(sig)
    )
}
