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
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::{EvalError, LogDensity};

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

    /// Whether it exports `sampo_log_density` (a model to sample).
    pub fn has_log_density(&self) -> bool {
        self.log_density.is_some()
    }

    /// Whether it exports `sampo_forward` (a model to evaluate over a design).
    pub fn has_forward(&self) -> bool {
        self.forward.is_some()
    }
}

type Key = (PathBuf, String, usize, String);

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
    /// Per-thread libraries: slot i for pool thread i, the last one for
    /// any thread outside the pool.
    per_thread: Vec<OnceLock<Result<Context, String>>>,
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
        path: &Path,
        state: &str,
        dim: usize,
        config_json: &str,
    ) -> Result<Arc<Plugin>, PluginError> {
        let key = (
            path.to_path_buf(),
            state.to_string(),
            dim,
            config_json.to_string(),
        );
        let mut made = MADE
            .get_or_init(Default::default)
            .lock()
            .expect("no panics while held");
        if let Some(p) = made.get(&key) {
            return Ok(p.clone());
        }
        let plugin = Arc::new(Self::fresh(path, state, dim, config_json)?);
        made.insert(key, plugin.clone());
        Ok(plugin)
    }

    /// A plugin model with contexts of its own, not shared with the tasks
    /// (a check that re-runs evaluations from scratch).
    pub fn fresh(
        path: &Path,
        state: &str,
        dim: usize,
        config_json: &str,
    ) -> Result<Plugin, PluginError> {
        let lib = Library::load(path)?;
        let c = |s: &str, what: &str| {
            CString::new(s).map_err(|_| PluginError(format!("{what} holds a NUL byte")))
        };
        let mut plugin = Plugin {
            state: c(state, "the state name")?,
            config: c(config_json, "the config")?,
            dim,
            single: None,
            lock: Mutex::new(()),
            per_thread: Vec::new(),
            lib,
        };
        match plugin.lib.safety {
            ThreadSafety::Shared | ThreadSafety::Serialized => {
                plugin.single = Some(plugin.init().map_err(PluginError)?);
            }
            ThreadSafety::PerThread => {
                plugin.per_thread = (0..=OUTSIDE_POOL).map(|_| OnceLock::new()).collect();
                plugin.context().map_err(|e| PluginError(e.0))?;
            }
        }
        Ok(plugin)
    }

    fn init(&self) -> Result<Context, String> {
        let mut ptr = std::ptr::null_mut();
        let mut n_outputs = 0usize;
        let mut err = vec![0 as c_char; 1024];
        // SAFETY: pointers to live buffers of the declared sizes; the
        // strings are NUL-terminated.
        let status = unsafe {
            (self.lib.init)(
                self.state.as_ptr(),
                self.dim,
                self.config.as_ptr(),
                &mut ptr,
                &mut n_outputs,
                err.as_mut_ptr(),
                err.len(),
            )
        };
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
            free: self.lib.free,
            n_outputs,
        })
    }

    /// The context for the calling thread.
    fn context(&self) -> Result<&Context, EvalError> {
        if let Some(c) = &self.single {
            return Ok(c);
        }
        let slot = rayon::current_thread_index()
            .unwrap_or(OUTSIDE_POOL)
            .min(OUTSIDE_POOL);
        self.per_thread[slot]
            .get_or_init(|| self.init())
            .as_ref()
            .map_err(|e| EvalError(e.clone()))
    }

    fn call<T>(&self, f: impl FnOnce(*mut c_void) -> T) -> Result<T, EvalError> {
        let ctx = self.context()?;
        let _held = match self.lib.safety {
            ThreadSafety::Serialized => Some(self.lock.lock().unwrap_or_else(|e| e.into_inner())),
            _ => None,
        };
        Ok(f(ctx.ptr))
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
            Some(batch) => {
                // SAFETY: x holds n × dim values and out n.
                let status = self
                    .call(|ctx| unsafe { batch(ctx, x.as_ptr(), n, self.dim, out.as_mut_ptr()) })?;
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
        Ok(self.context()?.n_outputs)
    }

    /// The forward model's outputs at x into y (`n_outputs` values): the
    /// library's status (0 when it succeeded), or an error when it could
    /// not be called at all.
    pub fn forward_into(&self, x: &[f64], y: &mut [f64]) -> Result<c_int, EvalError> {
        let Some(forward) = self.lib.forward else {
            return Err(EvalError(format!(
                "library {} has no sampo_forward",
                self.lib.path.display()
            )));
        };
        let n = self.context()?.n_outputs;
        assert_eq!(y.len(), n, "room for n_outputs values");
        assert_eq!(x.len(), self.dim, "dim parameters");
        // SAFETY: x holds dim values, y n_outputs.
        self.call(|ctx| unsafe { forward(ctx, x.as_ptr(), self.dim, y.as_mut_ptr(), n) })
    }

    /// The forward model's outputs at x (for batch forward evaluation).
    pub fn forward(&self, x: &[f64]) -> Result<Vec<f64>, EvalError> {
        let Some(forward) = self.lib.forward else {
            return Err(EvalError(format!(
                "library {} has no sampo_forward",
                self.lib.path.display()
            )));
        };
        let n = self.context()?.n_outputs;
        let mut y = vec![f64::NAN; n];
        // SAFETY: x holds dim values, y n_outputs.
        let status =
            self.call(|ctx| unsafe { forward(ctx, x.as_ptr(), self.dim, y.as_mut_ptr(), n) })?;
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
        let Some(f) = self.lib.log_density else {
            return Err(EvalError(format!(
                "library {} has no sampo_log_density",
                self.lib.path.display()
            )));
        };
        // SAFETY: x holds dim values; out is one f64.
        let status = self.call(|ctx| unsafe { f(ctx, x.as_ptr(), self.dim, &mut out) })?;
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
