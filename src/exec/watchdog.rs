//! Liveness inside MPI collectives. A rank's main thread blocked in a
//! collective (a shared ensemble's all-gather, a group's split) cannot
//! answer rank 0, and MPI collectives have no timeout: one stopped or hung
//! member would hang its whole group, and the job, for ever. A watchdog
//! thread per rank notices a collective that has not returned within the
//! rank timeout, says which group it was in, and ends this process (no MPI
//! call: only the main thread may make them), so that the launcher ends the
//! job. The output keeps every row up to its last flush, and `--resume`
//! goes on from its last checkpoint.
//!
//! The same thread watches rank 0 for the workers of a queue stage: rank 0
//! tells them it is alive at least every `HEARTBEAT`, so a stopped or hung
//! rank 0 is found within the timeout, as rank 0 finds a silent worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::limits::now_ms;
use crate::model::exit_hook::end_now;

/// `now_ms()` when the current collective began; 0 when the main thread is not in one.
static SINCE_MS: AtomicU64 = AtomicU64::new(0);
/// The timeout, in milliseconds (0: not watching).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
static WHAT: Mutex<String> = Mutex::new(String::new());
/// `now_ms()` when a worker of a queue stage last
/// heard rank 0; 0 when not watching rank 0 (rank 0 itself, group mode).
static ROOT_MS: AtomicU64 = AtomicU64::new(0);

/// Marks the main thread inside a collective until dropped.
#[must_use]
pub struct InCollective {
    outer: bool,
}

impl Drop for InCollective {
    fn drop(&mut self) {
        if self.outer {
            SINCE_MS.store(0, Ordering::SeqCst);
        }
    }
}

/// Names the collectives entered from now on, for the watchdog's message
/// (set when a group forms, not at each step: `enter` is on the hot path).
pub fn label(what: impl Into<String>) {
    if let Ok(mut w) = WHAT.lock() {
        *w = what.into();
    }
}

/// Enters a collective (nested calls keep the outer one's start).
pub fn enter() -> InCollective {
    let outer = SINCE_MS
        .compare_exchange(0, now_ms(), Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    InCollective { outer }
}

/// A worker of a queue stage watches rank 0 (`on`), which tells it at
/// least every `HEARTBEAT` that it is alive; rank 0 silent for longer than
/// the timeout (stopped, hung, its node gone) ends this rank, and so the
/// job, even while this rank's main thread is blocked sending to it.
pub fn watch_root(on: bool) {
    ROOT_MS.store(if on { now_ms() } else { 0 }, Ordering::SeqCst);
}

/// A worker heard rank 0 (a cheap store; called for every message).
pub fn heard_root() {
    if ROOT_MS.load(Ordering::Relaxed) != 0 {
        ROOT_MS.store(now_ms(), Ordering::SeqCst);
    }
}

/// Starts watching (once per process; later calls change the timeout).
pub fn watch(rank: usize, timeout: Duration) {
    let first = TIMEOUT_MS.swap(timeout.as_millis().max(1) as u64, Ordering::SeqCst) == 0;
    if !first {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("sampo-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let limit = TIMEOUT_MS.load(Ordering::SeqCst);
            let seconds = limit as f64 / 1000.0;
            let root = ROOT_MS.load(Ordering::SeqCst);
            if root != 0 && now_ms().saturating_sub(root) > limit {
                end_now(
                    1,
                    &format!(
                        "error: rank {rank}: rank 0 has not answered for {seconds} s (stopped, \
                     hung, or its node is gone); ending this rank so that the launcher ends \
                     the job ([parallel] timeout sets this limit). The output keeps every row \
                     flushed so far; `sampo run --resume` goes on from its last checkpoint"
                    ),
                );
            }
            let since = SINCE_MS.load(Ordering::SeqCst);
            if since == 0 || now_ms().saturating_sub(since) <= limit {
                continue;
            }
            let what = WHAT.lock().map(|w| w.clone()).unwrap_or_default();
            end_now(
                1,
                &format!(
                    "error: rank {rank}: {what} has not completed for {seconds} s: a rank sharing \
                 it has stopped answering (stopped, hung, or its node is gone); ending this \
                 rank so that the launcher ends the job ([parallel] timeout sets this limit). \
                 The output keeps every row flushed so far; `sampo run --resume` goes on from \
                 its last checkpoint"
                ),
            );
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the collective watchdog: {e}");
    }
}
