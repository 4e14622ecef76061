//! A plugin that ends the process behind sampo's back. Fortran's `STOP`
//! and C's `exit` run the process's exit handlers and end it, with status
//! 0 unless told otherwise: a run that looks successful, with no output
//! and a `.partial` still marked running. Once a plugin library is loaded,
//! an exit handler turns any exit sampo did not make itself into a failure
//! (status 1, which also makes an MPI launcher end the job) that names the
//! libraries loaded. Only a program that asks for it ([`enable`]: the
//! `sampo` binary) gets the handler; a program using sampo as a library
//! keeps its own exits.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

static ENABLED: AtomicBool = AtomicBool::new(false);
static ARMED: AtomicBool = AtomicBool::new(false);
static LIBRARIES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Says `message` on stderr and ends the process at once with `code`:
/// no exit handlers and no destructors, which could wait on a thread that
/// is stuck (in a plugin, in an MPI call). For the watchers that find such
/// a thread; an exit handler's own end.
pub fn end_now(code: i32, message: &str) -> ! {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
    // SAFETY: `_exit` ends the process without running anything else.
    unsafe { libc::_exit(code) }
}

/// This program's exits are sampo's: a plugin's exit() is a failure.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// From now on an exit is the plugin's: `library` was loaded.
pub fn arm(library: &Path) {
    if !ENABLED.load(Ordering::SeqCst) {
        return;
    }
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function, as atexit expects.
        if unsafe { libc::atexit(on_exit) } != 0 {
            tracing::warn!("cannot register the exit handler that reports a plugin's exit()");
        }
    });
    if let Ok(mut libs) = LIBRARIES.lock() {
        let name = library.display().to_string();
        if !libs.contains(&name) {
            libs.push(name);
        }
    }
    ARMED.store(true, Ordering::SeqCst);
}

/// sampo itself is ending the process: its exit is no plugin's.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
}

extern "C" fn on_exit() {
    if !ARMED.swap(false, Ordering::SeqCst) {
        return;
    }
    // try_lock: the exiting thread may be the one that holds it.
    let libs = LIBRARIES
        .try_lock()
        .map(|l| l.join(", "))
        .unwrap_or_else(|_| "(unknown)".into());
    // The rest of the exit handlers (and the libraries' destructors) could
    // wait on threads still running.
    end_now(
        1,
        &format!(
            "error: a plugin ended the process (pid {}) by calling exit() while sampo was \
             running it (a Fortran STOP or C's exit does this); plugins loaded: {libs}. A \
             plugin must report a failure through its return status instead. Exiting with \
             status 1; the output keeps every row flushed so far, and `sampo run --resume` \
             goes on from its last checkpoint",
            std::process::id()
        ),
    )
}
