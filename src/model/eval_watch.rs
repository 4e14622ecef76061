//! Evaluations that never return. A plugin evaluation stuck for ever (a
//! deadlock, a wait on a licence server, an infinite loop) would hold its
//! task, and with it every checkpoint and the end of the job, for ever;
//! the thread that made the call cannot time itself. Each call records
//! when it began, what it evaluates and where, in a slot of its thread;
//! the scheduler's main thread asks [`overdue`] as it polls, and fails the
//! job with that context once a call has run longer than `[parallel]
//! evaluation_timeout`. A thread of this module's own is the backstop:
//! while the spec is checked (start points are evaluated on the main
//! thread) an overdue call ends the process at once with exit 2, and at
//! any other time one still overdue `STUCK_GRACE` later ends it with exit
//! 1 (a rank inside a shared task, whose main thread waits for it). Tested
//! end to end in tests/plugins.rs and tests/python: the limit is
//! process-wide, so a unit test would race the others.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Once;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::limits::now_ms;

/// The limit in milliseconds (0: not watching, and calls record nothing).
static LIMIT_MS: AtomicU64 = AtomicU64::new(0);
/// The spec is being checked: nothing else polls, and a stuck model is
/// the spec's problem (exit 2).
static VALIDATING: AtomicBool = AtomicBool::new(false);
/// How long a call stays overdue before the backstop ends the process:
/// longer than rank 0 takes to end a job cleanly after the failure.
const STUCK_GRACE: Duration = Duration::from_secs(20);
static SLOTS: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

/// One thread's call in progress.
#[derive(Default)]
struct Slot {
    /// `now_ms()` when the call began; 0 between calls.
    since: AtomicU64,
    /// What is called (function, library, state) and the point.
    call: Mutex<(String, Vec<f64>)>,
}

thread_local! {
    static MINE: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// Watches every call from now on, with `limit`.
pub fn limit(limit: Duration) {
    LIMIT_MS.store(limit.as_millis().max(1) as u64, Ordering::SeqCst);
    static BACKSTOP: Once = Once::new();
    BACKSTOP.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("sampo-eval-watch".into())
            .spawn(backstop);
        if let Err(e) = spawned {
            tracing::warn!("cannot watch for evaluations that never return: {e}");
        }
    });
}

/// The spec is being checked until the guard is dropped.
#[must_use]
pub struct Validating;

impl Drop for Validating {
    fn drop(&mut self) {
        VALIDATING.store(false, Ordering::SeqCst);
    }
}

pub fn validating() -> Validating {
    VALIDATING.store(true, Ordering::SeqCst);
    Validating
}

fn backstop() {
    let mut stuck_since: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Some(what) = overdue() else {
            stuck_since = None;
            continue;
        };
        let (code, then) = if VALIDATING.load(Ordering::SeqCst) {
            (
                2,
                "while the spec was checked (its start points are evaluated)",
            )
        } else if stuck_since.get_or_insert_with(Instant::now).elapsed() > STUCK_GRACE {
            (1, "and the run could not end it")
        } else {
            continue;
        };
        super::exit_hook::end_now(
            code,
            &format!(
                "error: {what}, {then}; ending this process (exit {code}). Any output keeps \
                 every row flushed so far; `sampo run --resume` goes on from its last checkpoint"
            ),
        );
    }
}

/// A call in progress until dropped.
#[must_use]
pub struct Watch(Option<Arc<Slot>>);

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(slot) = &self.0 {
            slot.since.store(0, Ordering::Release);
        }
    }
}

/// A call of `what` (function, library and state, built only when
/// watching) at the point `x` begins.
pub fn begin(what: impl FnOnce() -> String, x: &[f64]) -> Watch {
    if LIMIT_MS.load(Ordering::Relaxed) == 0 {
        return Watch(None);
    }
    let slot = MINE.with(|mine| {
        mine.borrow_mut()
            .get_or_insert_with(|| {
                let slot = Arc::new(Slot::default());
                if let Ok(mut all) = SLOTS.lock() {
                    all.push(slot.clone());
                }
                slot
            })
            .clone()
    });
    if let Ok(mut call) = slot.call.lock() {
        call.0 = what();
        call.1.clear();
        call.1.extend_from_slice(x);
    }
    slot.since.store(now_ms(), Ordering::Release);
    Watch(Some(slot))
}

/// The oldest call that has run longer than the limit, said with its
/// context, if any.
pub fn overdue() -> Option<String> {
    let limit = LIMIT_MS.load(Ordering::Relaxed);
    if limit == 0 {
        return None;
    }
    let now = now_ms();
    let all = SLOTS.lock().ok()?;
    let (since, slot) = all
        .iter()
        .map(|s| (s.since.load(Ordering::Acquire), s))
        .filter(|(since, _)| *since != 0 && now.saturating_sub(*since) > limit)
        .min_by_key(|(since, _)| *since)?;
    let (what, x) = slot.call.lock().map(|c| c.clone()).unwrap_or_default();
    Some(format!(
        "{what} has not returned for {:.0} s at parameters {x:?} (stuck or far slower than \
         expected; [parallel] evaluation_timeout sets this limit, {} s)",
        now.saturating_sub(since) as f64 / 1000.0,
        limit as f64 / 1000.0
    ))
}
