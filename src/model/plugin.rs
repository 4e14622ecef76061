//! User models from shared libraries: the C ABI of `include/sampo.h`.
//!
//! A library is loaded once per process (rank) and kept until the process
//! ends; a state's contexts are made once per process (or once per pool
//! thread, for `SAMPO_PER_THREAD`) and shared by every task of that state.
//! How contexts may be used across threads is the library's declaration:
//! `shared` contexts are called concurrently, `per-thread` ones only from
//! their thread, and `serialized` libraries one call at a time per process
//! (and sampo runs one thread per rank for them).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{EvalError, LogDensity, PluginSpec};
use crate::seed::Stream;

/// The ABI version of `include/sampo.h` this build speaks.
pub const ABI_VERSION: c_int = 1;

/// Index of the context slot used outside the pool (validation, tests).
const OUTSIDE_POOL: usize = crate::limits::MAX_THREADS;

/// How a library's contexts may be used by the threads of a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadSafety {
    /// One call at a time per process; one thread per rank.
    Serialized,
    /// One context, called by all threads at once.
    Shared,
    /// One context per thread.
    PerThread,
}

impl ThreadSafety {
    fn from_code(code: c_int) -> Option<Self> {
        match code {
            0 => Some(Self::Serialized),
            1 => Some(Self::Shared),
            2 => Some(Self::PerThread),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Serialized => "serialized",
            Self::Shared => "shared",
            Self::PerThread => "per-thread",
        }
    }
}

type AbiVersionFn = unsafe extern "C" fn() -> c_int;
type ThreadSafetyFn = unsafe extern "C" fn() -> c_int;
type InitFn = unsafe extern "C" fn(
    *const c_char,
    usize,
    *const c_char,
    *mut *mut c_void,
    *mut usize,
    *mut c_char,
    usize,
) -> c_int;
type LogDensityFn = unsafe extern "C" fn(*mut c_void, *const f64, usize, *mut f64) -> c_int;
type BatchFn = unsafe extern "C" fn(*mut c_void, *const f64, usize, usize, *mut f64) -> c_int;
type ForwardFn = unsafe extern "C" fn(*mut c_void, *const f64, usize, *mut f64, usize) -> c_int;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type OutputNamesFn = unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int;
type ProcessStartFn = unsafe extern "C" fn(*mut c_void, *const CStream, *mut f64) -> c_int;
type ProcessStepFn = unsafe extern "C" fn(*mut c_void, *const CStream, u64, *mut f64) -> c_int;

/// `sampo_stream` of `include/sampo.h`: a path's random stream, lent to a
/// process plugin for one call. Its functions draw from the stream sampo
/// keyed for the path, so a user's process is as reproducible and as
/// layout-invariant as a built-in one, and draws the same numbers.
#[repr(C)]
pub struct CStream {
    state: *mut c_void,
    uniform: extern "C" fn(*mut c_void) -> f64,
    normal: extern "C" fn(*mut c_void) -> f64,
    bits: extern "C" fn(*mut c_void) -> u64,
}

extern "C" fn stream_uniform(state: *mut c_void) -> f64 {
    use rand::RngExt;
    // SAFETY: `state` is the `Stream` a `CStream` was made from, borrowed
    // mutably for the call that received it.
    unsafe { &mut *(state as *mut Stream) }.random::<f64>()
}

extern "C" fn stream_normal(state: *mut c_void) -> f64 {
    use rand::RngExt;
    // SAFETY: as in `stream_uniform`.
    unsafe { &mut *(state as *mut Stream) }.sample::<f64, _>(rand_distr::StandardNormal)
}

extern "C" fn stream_bits(state: *mut c_void) -> u64 {
    use rand::Rng;
    // SAFETY: as in `stream_uniform`.
    unsafe { &mut *(state as *mut Stream) }.next_u64()
}

/// A loaded library and its functions.
pub struct Library {
    path: PathBuf,
    // Kept loaded while the functions below may be called.
    _lib: libloading::Library,
    safety: ThreadSafety,
    init: InitFn,
    /// Optional in a library used only for forward evaluation; a model a
    /// sampler uses must have it ([`Library::has_log_density`]).
    log_density: Option<LogDensityFn>,
    batch: Option<BatchFn>,
    forward: Option<ForwardFn>,
    output_names: Option<OutputNamesFn>,
    process_start: Option<ProcessStartFn>,
    process_step: Option<ProcessStepFn>,
    free: FreeFn,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("safety", &self.safety)
            .finish()
    }
}

/// Why a plugin could not be used; shown to the user as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PluginError(pub String);

impl Library {
    /// Loads a library (once per process: later calls return the same one)
    /// and checks its ABI version and required functions.
    pub fn load(path: &Path) -> Result<Arc<Library>, PluginError> {
        static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Library>>>> = OnceLock::new();
        let mut loaded = LOADED
            .get_or_init(Default::default)
            .lock()
            .expect("no panics while held");
        if let Some(lib) = loaded.get(path) {
            return Ok(lib.clone());
        }
        let lib = Arc::new(Self::open(path)?);
        loaded.insert(path.to_path_buf(), lib.clone());
        Ok(lib)
    }

    fn open(path: &Path) -> Result<Library, PluginError> {
        let shown = path.display();
        if !path.exists() {
            return Err(PluginError(format!("library {shown}: no such file")));
        }
        // From its initialisers on, an exit() is the plugin's.
        super::exit_hook::arm(path);
        // SAFETY: loading runs the library's initialisers; a plugin is code
        // the user chose to run, as with any shared library.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
            PluginError(format!(
                "library {shown}: cannot load it as a shared library: {e}"
            ))
        })?;
        fn symbol<T: Copy>(
            lib: &libloading::Library,
            path: &Path,
            name: &str,
        ) -> Result<Option<T>, PluginError> {
            // SAFETY: the type is the one sampo.h declares for this name.
            match unsafe { lib.get::<T>(name.as_bytes()) } {
                Ok(f) => Ok(Some(*f)),
                Err(libloading::Error::DlSym { .. }) => Ok(None),
                Err(e) => Err(PluginError(format!(
                    "library {}: {name}: {e}",
                    path.display()
                ))),
            }
        }
        let required = |name: &str| {
            PluginError(format!(
            "library {shown}: missing function `{name}` (every plugin exports sampo_abi_version, \
             sampo_init and sampo_free; see include/sampo.h)"
        ))
        };
        let version: AbiVersionFn = symbol(&lib, path, "sampo_abi_version")?
            .ok_or_else(|| required("sampo_abi_version"))?;
        // SAFETY: a function of no arguments, as declared.
        let v = unsafe { version() };
        if v != ABI_VERSION {
            return Err(PluginError(format!(
                "library {shown}: built for sampo ABI version {v}, but this sampo speaks version \
                 {ABI_VERSION}: rebuild it against this sampo's include/sampo.h"
            )));
        }
        let safety = match symbol::<ThreadSafetyFn>(&lib, path, "sampo_thread_safety")? {
            None => ThreadSafety::Serialized,
            // SAFETY: as above.
            Some(f) => {
                let code = unsafe { f() };
                ThreadSafety::from_code(code).ok_or_else(|| PluginError(format!(
                    "library {shown}: sampo_thread_safety returned {code}; expected SAMPO_SERIALIZED (0), \
                     SAMPO_SHARED (1) or SAMPO_PER_THREAD (2)"
                )))?
            }
        };
        Ok(Library {
            path: path.to_path_buf(),
            safety,
            init: symbol(&lib, path, "sampo_init")?.ok_or_else(|| required("sampo_init"))?,
            log_density: symbol(&lib, path, "sampo_log_density")?,
            batch: symbol(&lib, path, "sampo_log_density_batch")?,
            forward: symbol(&lib, path, "sampo_forward")?,
            output_names: symbol(&lib, path, "sampo_output_names")?,
            process_start: symbol(&lib, path, "sampo_process_start")?,
            process_step: symbol(&lib, path, "sampo_process_step")?,
            free: symbol(&lib, path, "sampo_free")?.ok_or_else(|| required("sampo_free"))?,
            _lib: lib,
        })
    }

    pub fn safety(&self) -> ThreadSafety {
        self.safety
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A private copy of the library at `path` for pool thread `slot`: the
    /// file is copied and loaded under another name, so that the dynamic
    /// loader maps it again, with globals (Fortran COMMON blocks, C
    /// statics) of its own. The copy is unlinked once loaded; messages name
    /// the original.
    pub fn private_copy(path: &Path, slot: usize) -> Result<Library, PluginError> {
        let shown = path.display();
        let dir = std::env::temp_dir().join(format!("sampo-{}-copies", std::process::id()));
        let fail = |what: &str, e: std::io::Error| {
            PluginError(format!(
                "library {shown}: cannot {what} a private copy: {e}"
            ))
        };
        std::fs::create_dir_all(&dir).map_err(|e| fail("make a directory for", e))?;
        let name = path
            .file_name()
            .map_or("plugin.so".into(), |n| n.to_string_lossy());
        let copy = dir.join(format!("{slot}-{name}"));
        std::fs::copy(path, &copy).map_err(|e| fail("write", e))?;
        let opened = Self::open(&copy);
        // Loaded (or not): the mapping outlives the file.
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_dir(&dir);
        let mut lib = opened?;
        lib.path = path.to_path_buf();
        Ok(lib)
    }

    /// Whether it exports `sampo_log_density` (a model to sample).
    pub fn has_log_density(&self) -> bool {
        self.log_density.is_some()
    }

    /// Whether it exports `sampo_forward` (a model to evaluate over a design).
    pub fn has_forward(&self) -> bool {
        self.forward.is_some()
    }

    /// Whether it exports `sampo_process_start` and `sampo_process_step`
    /// (a process whose paths sampo simulates).
    pub fn has_process(&self) -> bool {
        self.process_start.is_some() && self.process_step.is_some()
    }
}

impl PluginSpec {
    /// The plugin at `path` with `config_json`, its library loaded (once
    /// per process) for its declared thread safety; one shared library.
    pub fn load(path: &Path, config_json: &str) -> Result<Self, PluginError> {
        Ok(Self {
            safety: Library::load(path)?.safety(),
            path: path.to_path_buf(),
            config_json: config_json.into(),
            copies: false,
        })
    }
}

type Key = (PathBuf, String, usize, String);

/// How long a `sampo_init` may take, in milliseconds: the run's
/// `[parallel] timeout` once its spec has been read (see
/// [`limit_init`]), the default timeout before.
static INIT_LIMIT_MS: AtomicU64 = AtomicU64::new(crate::limits::RANK_TIMEOUT.as_millis() as u64);

/// Sets how long a plugin's `sampo_init` may take before the process ends
/// (exit 2) saying which library and state it was: an init that never
/// returns (waiting on a licence server, a lock, a sleep) must not hang
/// `check` or a run for ever, and the main thread is the one blocked in it.
pub fn limit_init(limit: Duration) {
    INIT_LIMIT_MS.store(limit.as_millis().max(1) as u64, Ordering::SeqCst);
}

/// Watches one `sampo_init` call until dropped, from a thread of its own:
/// the calling thread is blocked in the library and cannot time itself.
struct InitWatch {
    _done: mpsc::Sender<()>,
}

impl InitWatch {
    fn start(library: &Path, state: &str) -> Self {
        let (done, finished) = mpsc::channel::<()>();
        let limit = Duration::from_millis(INIT_LIMIT_MS.load(Ordering::SeqCst));
        let what = format!(
            "error: library {}: sampo_init for state `{state}` did not return within {} s \
             ([parallel] timeout sets this limit); ending sampo (exit 2): the library is \
             waiting or hung in its initialisation",
            library.display(),
            limit.as_secs_f64()
        );
        let spawned = std::thread::Builder::new()
            .name("sampo-init-watch".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                    // Exit handlers could wait on the library the main
                    // thread is blocked in.
                    super::exit_hook::end_now(2, &what);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot watch sampo_init: {e}");
        }
        InitWatch { _done: done }
    }
}

/// The plugin models made in this process, by (library, state, dim, config).
static MADE: OnceLock<Mutex<HashMap<Key, Arc<Plugin>>>> = OnceLock::new();

/// Frees every context of this process (`sampo_free`), once the run is over;
/// a later use makes them anew.
pub fn release_all() {
    if let Some(made) = MADE.get() {
        made.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A context made by `sampo_init`, freed with `sampo_free`.
struct Context {
    ptr: *mut c_void,
    free: FreeFn,
    n_outputs: usize,
}

// SAFETY: the library declared how its contexts may be shared
// (`ThreadSafety`), and `Plugin` only uses them that way: per-thread
// contexts from their thread, serialized ones under a lock.
unsafe impl Send for Context {}
unsafe impl Sync for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: made by this library's init, freed once, not in use.
        unsafe { (self.free)(self.ptr) }
    }
}

/// A state's model from a plugin: its library, and its contexts.
pub struct Plugin {
    lib: Arc<Library>,
    state: CString,
    config: CString,
    dim: usize,
    /// Shared and serialized libraries: one context.
    single: Option<Context>,
    /// Serialized libraries: held for each call.
    lock: Mutex<()>,
    /// Per-thread libraries, and private copies: slot i for pool thread i,
    /// the last one for any thread outside the pool.
    per_thread: Vec<OnceLock<Result<Slot, String>>>,
    /// Each thread calls a private copy of the library, with globals of
    /// its own (`copies = true`).
    copies: bool,
}

/// A thread's context, and the private copy of the library it belongs to
/// (dropped after the context, which its `sampo_free` releases).
struct Slot {
    ctx: Context,
    copy: Option<Arc<Library>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("lib", &self.lib)
            .field("state", &self.state)
            .finish()
    }
}

impl Plugin {
    /// The plugin model of a state, made once per process and shared by
    /// every task of the state. `init` runs here for shared and serialized
    /// libraries (and for this thread, for per-thread ones), so that a bad
    /// config fails before any work.
    pub fn for_state(
        spec: &PluginSpec,
        state: &str,
        dim: usize,
    ) -> Result<Arc<Plugin>, PluginError> {
        let key = (
            spec.path.clone(),
            state.to_string(),
            dim,
            format!(
                "{}{}",
                spec.config_json,
                if spec.copies { " (copies)" } else { "" }
            ),
        );
        let mut made = MADE
            .get_or_init(Default::default)
            .lock()
            .expect("no panics while held");
        if let Some(p) = made.get(&key) {
            return Ok(p.clone());
        }
        let plugin = Arc::new(Self::fresh(spec, state, dim)?);
        made.insert(key, plugin.clone());
        Ok(plugin)
    }

    /// A plugin model with contexts of its own, not shared with the tasks
    /// (a check that re-runs evaluations from scratch).
    pub fn fresh(spec: &PluginSpec, state: &str, dim: usize) -> Result<Plugin, PluginError> {
        let lib = Library::load(&spec.path)?;
        let c = |s: &str, what: &str| {
            CString::new(s).map_err(|_| PluginError(format!("{what} holds a NUL byte")))
        };
        let mut plugin = Plugin {
            state: c(state, "the state name")?,
            config: c(&spec.config_json, "the config")?,
            dim,
            single: None,
            lock: Mutex::new(()),
            per_thread: Vec::new(),
            copies: spec.copies,
            lib,
        };
        match (plugin.lib.safety, plugin.copies) {
            (ThreadSafety::Shared | ThreadSafety::Serialized, false) => {
                plugin.single = Some(plugin.init(&plugin.lib).map_err(PluginError)?);
            }
            _ => {
                plugin.per_thread = (0..=OUTSIDE_POOL).map(|_| OnceLock::new()).collect();
                plugin.context().map_err(|e| PluginError(e.0))?;
            }
        }
        Ok(plugin)
    }

    fn init(&self, lib: &Library) -> Result<Context, String> {
        let mut ptr = std::ptr::null_mut();
        let mut n_outputs = 0usize;
        let mut err = vec![0 as c_char; 1024];
        let watch = InitWatch::start(&self.lib.path, &self.state.to_string_lossy());
        // SAFETY: pointers to live buffers of the declared sizes; the
        // strings are NUL-terminated.
        let status = unsafe {
            (lib.init)(
                self.state.as_ptr(),
                self.dim,
                self.config.as_ptr(),
                &mut ptr,
                &mut n_outputs,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        drop(watch);
        if status != 0 {
            *err.last_mut().expect("not empty") = 0;
            // SAFETY: NUL-terminated just above at the latest.
            let message = unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            let message = if message.trim().is_empty() {
                "(no message)".to_string()
            } else {
                message
            };
            return Err(format!(
                "library {}: sampo_init failed for state `{}` with status {status}: {message}",
                self.lib.path.display(),
                self.state.to_string_lossy()
            ));
        }
        Ok(Context {
            ptr,
            free: lib.free,
            n_outputs,
        })
    }

    /// The context for the calling thread, and the library (or private
    /// copy) whose functions it is called with.
    fn context(&self) -> Result<(&Library, &Context), EvalError> {
        if let Some(c) = &self.single {
            return Ok((&self.lib, c));
        }
        let slot = rayon::current_thread_index()
            .unwrap_or(OUTSIDE_POOL)
            .min(OUTSIDE_POOL);
        let slot = self.per_thread[slot]
            .get_or_init(|| self.make_slot(slot))
            .as_ref()
            .map_err(|e| EvalError(e.clone()))?;
        Ok((slot.copy.as_deref().unwrap_or(&self.lib), &slot.ctx))
    }

    fn make_slot(&self, slot: usize) -> Result<Slot, String> {
        if !self.copies {
            return Ok(Slot {
                ctx: self.init(&self.lib)?,
                copy: None,
            });
        }
        let copy = Arc::new(Library::private_copy(&self.lib.path, slot).map_err(|e| e.0)?);
        Ok(Slot {
            ctx: self.init(&copy)?,
            copy: Some(copy),
        })
    }

    /// Calls `function` of the library (through `f`) at the point `x`, held
    /// for a serialized library, watched for a call that never returns.
    fn call<T>(
        &self,
        function: &str,
        x: &[f64],
        f: impl FnOnce(&Library, *mut c_void) -> T,
    ) -> Result<T, EvalError> {
        let (lib, ctx) = self.context()?;
        // Private copies have globals of their own: no lock.
        let _held = match (self.lib.safety, self.copies) {
            (ThreadSafety::Serialized, false) => {
                Some(self.lock.lock().unwrap_or_else(|e| e.into_inner()))
            }
            _ => None,
        };
        let _watch = super::eval_watch::begin(
            || {
                format!(
                    "{function} of library {} for state `{}`",
                    self.lib.path.display(),
                    self.state.to_string_lossy()
                )
            },
            x,
        );
        Ok(f(lib, ctx.ptr))
    }

    fn failed(&self, function: &str, status: c_int) -> EvalError {
        EvalError(format!(
            "{function} of library {} returned status {status}",
            self.lib.path.display()
        ))
    }

    /// The library this model comes from.
    pub fn library(&self) -> &Library {
        &self.lib
    }

    pub fn safety(&self) -> ThreadSafety {
        self.lib.safety
    }

    pub fn has_batch(&self) -> bool {
        self.lib.batch.is_some()
    }

    /// n log-densities of points stored one after another: with the
    /// library's batch function if it has one, else point by point.
    pub fn log_density_batch(&self, x: &[f64], out: &mut [f64]) -> Result<(), EvalError> {
        let n = out.len();
        assert_eq!(x.len(), n * self.dim, "n points of dim values");
        match self.lib.batch {
            Some(_) => {
                let first = &x[..self.dim.min(x.len())];
                let status = self.call("sampo_log_density_batch", first, |lib, ctx| {
                    let batch = lib.batch.expect("a copy has the original's functions");
                    // SAFETY: x holds n × dim values and out n.
                    unsafe { batch(ctx, x.as_ptr(), n, self.dim, out.as_mut_ptr()) }
                })?;
                if status != 0 {
                    return Err(self.failed("sampo_log_density_batch", status));
                }
                Ok(())
            }
            None => {
                for (xi, o) in x.chunks_exact(self.dim.max(1)).zip(out.iter_mut()) {
                    *o = self.log_density(xi)?;
                }
                Ok(())
            }
        }
    }

    /// The number of values `sampo_forward` writes (from `sampo_init`).
    pub fn n_outputs(&self) -> Result<usize, EvalError> {
        Ok(self.context()?.1.n_outputs)
    }

    /// The forward model's outputs at x into y (`n_outputs` values): the
    /// library's status (0 when it succeeded), or an error when it could
    /// not be called at all.
    pub fn forward_into(&self, x: &[f64], y: &mut [f64]) -> Result<c_int, EvalError> {
        if self.lib.forward.is_none() {
            return Err(EvalError(format!(
                "library {} has no sampo_forward",
                self.lib.path.display()
            )));
        }
        let n = self.n_outputs()?;
        assert_eq!(y.len(), n, "room for n_outputs values");
        assert_eq!(x.len(), self.dim, "dim parameters");
        self.call("sampo_forward", x, |lib, ctx| {
            let forward = lib.forward.expect("a copy has the original's functions");
            // SAFETY: x holds dim values, y n_outputs.
            unsafe { forward(ctx, x.as_ptr(), self.dim, y.as_mut_ptr(), n) }
        })
    }

    /// The names the library gives its forward model's outputs
    /// (`sampo_output_names`), if it does.
    pub fn output_names(&self) -> Result<Option<Vec<String>>, EvalError> {
        if self.lib.output_names.is_none() {
            return Ok(None);
        }
        let n = self.n_outputs()?;
        let mut buffer = vec![0 as c_char; n * 65 + 1];
        let status = self.call("sampo_output_names", &[], |lib, ctx| {
            let f = lib
                .output_names
                .expect("a copy has the original's functions");
            // SAFETY: a buffer of the length given.
            unsafe { f(ctx, buffer.as_mut_ptr(), buffer.len()) }
        })?;
        if status != 0 {
            return Err(self.failed("sampo_output_names", status));
        }
        *buffer.last_mut().expect("not empty") = 0;
        // SAFETY: NUL-terminated just above at the latest.
        let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy();
        Ok(Some(text.split('\n').map(str::to_string).collect()))
    }

    /// One path of a process plugin, drawing from `rng`: its value at each
    /// step in `recorded` (increasing) into `out`. A serialized library is
    /// held for the whole path.
    pub fn process_path(
        &self,
        rng: &mut Stream,
        recorded: &[u64],
        out: &mut [f64],
    ) -> Result<(), EvalError> {
        let (Some(_), Some(_)) = (self.lib.process_start, self.lib.process_step) else {
            return Err(EvalError(format!(
                "library {} has no sampo_process_start and sampo_process_step",
                self.lib.path.display()
            )));
        };
        let stream = CStream {
            state: rng as *mut Stream as *mut c_void,
            uniform: stream_uniform,
            normal: stream_normal,
            bits: stream_bits,
        };
        let last = recorded.last().copied().unwrap_or(0);
        let failed = self.call("a path of sampo_process_step", &[], |lib, ctx| {
            let start = lib
                .process_start
                .expect("a copy has the original's functions");
            let step = lib
                .process_step
                .expect("a copy has the original's functions");
            let mut x = f64::NAN;
            // SAFETY: `stream` lives across the calls and lends `rng`,
            // which nothing else touches meanwhile; x is one f64.
            let status = unsafe { start(ctx, &stream, &mut x) };
            if status != 0 {
                return Some(("sampo_process_start", 0, status));
            }
            let mut next = 0;
            for t in 0..=last {
                if t > 0 {
                    // SAFETY: as above.
                    let status = unsafe { step(ctx, &stream, t, &mut x) };
                    if status != 0 {
                        return Some(("sampo_process_step", t, status));
                    }
                }
                if recorded[next] == t {
                    out[next] = x;
                    next += 1;
                }
            }
            None
        })?;
        match failed {
            Some((function, t, status)) => Err(EvalError(format!(
                "{function} of library {} returned status {status} at step {t}",
                self.lib.path.display()
            ))),
            None => Ok(()),
        }
    }

    /// The forward model's outputs at x (for batch forward evaluation).
    pub fn forward(&self, x: &[f64]) -> Result<Vec<f64>, EvalError> {
        let mut y = vec![f64::NAN; self.n_outputs()?];
        let status = self.forward_into(x, &mut y)?;
        if status != 0 {
            return Err(self.failed("sampo_forward", status));
        }
        Ok(y)
    }
}

impl LogDensity for Plugin {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
        debug_assert_eq!(x.len(), self.dim);
        let mut out = f64::NAN;
        if self.lib.log_density.is_none() {
            return Err(EvalError(format!(
                "library {} has no sampo_log_density",
                self.lib.path.display()
            )));
        }
        let status = self.call("sampo_log_density", x, |lib, ctx| {
            let f = lib
                .log_density
                .expect("a copy has the original's functions");
            // SAFETY: x holds dim values; out is one f64.
            unsafe { f(ctx, x.as_ptr(), self.dim, &mut out) }
        })?;
        if status != 0 {
            return Err(self.failed("sampo_log_density", status));
        }
        Ok(out)
    }
}

/// A state's plugin as it is shared by the tasks of a rank.
pub struct Shared(pub Arc<Plugin>);

impl LogDensity for Shared {
    fn dim(&self) -> usize {
        self.0.dim
    }
    fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
        self.0.log_density(x)
    }
    fn has_batch(&self) -> bool {
        self.0.has_batch()
    }
    fn log_density_batch(&self, xs: &[f64], out: &mut [f64]) -> Result<(), EvalError> {
        self.0.log_density_batch(xs, out)
    }
}
