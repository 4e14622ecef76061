//! User models written in Python: `model = { kind = "python", file =
//! "model.py", function = "log_likelihood", vectorized = false, config =
//! {…} }`.
//!
//! Each process embeds one interpreter (started on first use, after the
//! spec is known), adds the user's environment (the one of `[python]
//! executable`, else `VIRTUAL_ENV`, else `CONDA_PREFIX`) to its import
//! path, imports each model file once, and
//! calls its `setup(config)` once per state. A scalar function gets one
//! point as a 1-D numpy array and returns a number; a vectorised one gets
//! the points of a call as an (n, dim) array and returns n numbers. Calls
//! hold the interpreter's lock (the GIL), so a rank evaluates one call at a
//! time: like a serialized plugin, a Python model runs one thread per rank
//! and scales with ranks.
//!
//! A Python process for `kind = "paths"` is in `process`; the environment
//! `[python] executable` names, in `interpreter`.
//!
//! Without the cargo feature `python` the spec is still read, and a Python
//! model or process is refused with a message saying how to build with it.

use std::path::Path;

use super::{BuildError, LogDensity};

mod interpreter;
mod process;
pub use process::{pcg64_state, PythonProcess, DEFAULT_SIMULATE};

/// A state's Python model, resolved: the file (absolute), the function, and
/// the `config` table as JSON for `setup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSpec<'a> {
    pub file: &'a Path,
    pub function: &'a str,
    pub vectorized: bool,
    pub config_json: &'a str,
}

/// The model's log-likelihood, made once per process and state (the module
/// imported and `setup` called on first use).
#[cfg(feature = "python")]
pub fn likelihood(
    spec: &PythonSpec<'_>,
    state: &str,
    dim: usize,
) -> Result<Box<dyn LogDensity>, BuildError> {
    embedded::model(spec, state, dim)
        .map(|m| Box::new(embedded::Shared(m)) as Box<dyn LogDensity>)
        .map_err(|e| BuildError::new("file", e))
}

#[cfg(not(feature = "python"))]
pub fn likelihood(
    _spec: &PythonSpec<'_>,
    _state: &str,
    _dim: usize,
) -> Result<Box<dyn LogDensity>, BuildError> {
    Err(BuildError::new("kind", UNAVAILABLE))
}

/// Why a build without Python refuses a Python model.
#[cfg(not(feature = "python"))]
pub const UNAVAILABLE: &str =
    "this sampo was built without Python models and processes (the cargo feature \
     `python`, on by default, was turned off): build it with `cargo build --release --features \
     python`, which needs Python's headers (Debian: python3-dev)";

/// The function called when the spec names none.
pub const DEFAULT_FUNCTION: &str = "log_likelihood";

/// A forward model's function when the spec names none.
pub const DEFAULT_FORWARD: &str = "forward";

/// A state's Python forward model (`kind = "batch"`): `function(theta)` (with
/// `setup`'s object as a second argument) returns the outputs at one point.
#[cfg(feature = "python")]
pub struct PythonForward(std::sync::Arc<embedded::PyModel>);

#[cfg(not(feature = "python"))]
pub struct PythonForward(());

impl PythonForward {
    /// The model of state `state` with `dim` parameters, imported and set
    /// up once per process and state (or, `fresh`, set up again for this
    /// model alone).
    #[cfg(feature = "python")]
    pub fn build(
        spec: &PythonSpec<'_>,
        state: &str,
        dim: usize,
        fresh: bool,
    ) -> Result<Self, BuildError> {
        embedded::model_made(spec, state, dim, fresh)
            .map(Self)
            .map_err(|e| BuildError::new("file", e))
    }

    #[cfg(not(feature = "python"))]
    pub fn build(
        _spec: &PythonSpec<'_>,
        _state: &str,
        _dim: usize,
        _fresh: bool,
    ) -> Result<Self, BuildError> {
        Err(BuildError::new("kind", UNAVAILABLE))
    }

    /// The names its module's `output_names` gives, if it has one.
    pub fn output_names(&self) -> Result<Option<Vec<String>>, String> {
        #[cfg(feature = "python")]
        return self.0.output_names();
        #[cfg(not(feature = "python"))]
        unreachable!("never built without the python feature")
    }

    /// The outputs at `x` into `y`: exactly `y.len()` numbers.
    pub fn forward(&self, x: &[f64], y: &mut [f64]) -> Result<(), super::EvalError> {
        #[cfg(feature = "python")]
        return self.0.forward(x, y);
        #[cfg(not(feature = "python"))]
        {
            let _ = (x, y);
            unreachable!("never built without the python feature")
        }
    }
}

/// Makes `exe` (`[python] executable`) the interpreter whose environment
/// Python models import from: asked once per process for its import path,
/// and checked to be the Python version sampo embeds. A build without
/// Python imports nothing, and only checks that it runs.
pub fn use_interpreter(exe: &Path) -> Result<(), String> {
    #[cfg(feature = "python")]
    let embedded = embedded::version();
    #[cfg(not(feature = "python"))]
    let embedded = String::new();
    match interpreter::choose(exe, &embedded) {
        #[cfg(not(feature = "python"))]
        Err(e) if e.contains("sampo embeds Python") => Ok(()),
        other => other,
    }
}

/// The variables that set how many threads numpy's BLAS (OpenBLAS, MKL,
/// BLIS, Accelerate) starts. sampo's ranks and threads are the parallelism
/// of a run; a BLAS pool per rank on top of them only oversubscribes the
/// cores (and OpenBLAS's idle threads spin).
pub const BLAS_THREAD_VARIABLES: [&str; 4] = [
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
];

/// Sets each of [`BLAS_THREAD_VARIABLES`] that is not set to 1, so that a
/// library loaded later (numpy in a Python model) starts one BLAS thread;
/// a value the user set is kept. Call it first thing in `main`: changing
/// the environment is only sound while the process has one thread.
pub fn single_threaded_blas() {
    for name in BLAS_THREAD_VARIABLES {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, "1");
        }
    }
}

/// Whether this build runs Python models.
pub const AVAILABLE: bool = cfg!(feature = "python");

#[cfg(feature = "python")]
mod embedded {
    use std::ffi::CString;
    use std::sync::{Arc, Mutex};

    use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods, ToPyArray};
    use pyo3::prelude::*;
    use pyo3::sync::{MutexExt, PyOnceLock};
    use pyo3::types::PyModule;

    use super::PythonSpec;
    use crate::model::{EvalError, LogDensity};

    /// sampo's Python side: environment, import, setup, tracebacks.
    const GLUE: &str = include_str!("glue.py");

    static GLUE_MODULE: PyOnceLock<Result<Py<PyModule>, String>> = PyOnceLock::new();
    type Key = (String, String, String, String, bool, usize);
    static MODELS: Mutex<Vec<(Key, Arc<PyModel>)>> = Mutex::new(Vec::new());

    pub struct PyModel {
        dim: usize,
        vectorized: bool,
        /// The module's file, as glue.py keys it.
        file: String,
        function: Py<PyAny>,
        context: Option<Py<PyAny>>,
        /// `log_likelihood` in `model.py`, for messages.
        label: String,
    }

    /// Shares a state's model between its tasks.
    pub struct Shared(pub Arc<PyModel>);

    /// The glue module, made once per process; the first call also starts
    /// the interpreter and adds the user's environment.
    fn glue(py: Python<'_>) -> Result<&Bound<'_, PyModule>, String> {
        let made = GLUE_MODULE.get_or_init(py, || {
            let code = CString::new(GLUE).expect("no NUL in glue.py");
            let module = PyModule::from_code(py, &code, c"sampo_glue.py", c"sampo_glue")
                .map_err(|e| format!("starting sampo's Python side: {}", plain(py, &e)))?;
            let prepared = match super::interpreter::chosen() {
                Some(i) => module.call_method1(
                    "interpreter",
                    (i.executable, i.prefix, i.base_prefix, i.path),
                ),
                None => module.call_method1("environment", (environment_prefix(),)),
            };
            prepared.map_err(|e| plain(py, &e))?;
            Ok(module.unbind())
        });
        match made {
            Ok(m) => Ok(m.bind(py)),
            Err(e) => Err(e.clone()),
        }
    }

    /// The active environment: VIRTUAL_ENV, else CONDA_PREFIX, else none.
    fn environment_prefix() -> String {
        std::env::var("VIRTUAL_ENV")
            .or_else(|_| std::env::var("CONDA_PREFIX"))
            .unwrap_or_default()
    }

    /// The embedded interpreter's version, "3.11".
    pub fn version() -> String {
        Python::attach(|py| {
            let v = py.version_info();
            format!("{}.{}", v.major, v.minor)
        })
    }

    /// An exception with its traceback, as Python prints it.
    pub(super) fn describe(py: Python<'_>, e: &PyErr) -> String {
        let described = GLUE_MODULE
            .get(py)
            .and_then(|m| m.as_ref().ok())
            .and_then(|m| {
                m.bind(py)
                    .call_method1("describe", (e.value(py), e.traceback(py)))
                    .ok()
            })
            .and_then(|s| s.extract::<String>().ok());
        described.unwrap_or_else(|| plain(py, e))
    }

    pub(super) fn plain(py: Python<'_>, e: &PyErr) -> String {
        let kind = e
            .get_type(py)
            .name()
            .map_or_else(|_| "exception".to_string(), |n| n.to_string());
        format!("{kind}: {}", e.value(py))
    }

    /// The interpreter and environment in use, for an import error.
    pub(super) fn environment_line(py: Python<'_>) -> String {
        let sys = py.import("sys").ok();
        let version = sys
            .as_ref()
            .and_then(|s| s.getattr("version").ok())
            .and_then(|v| v.extract::<String>().ok())
            .unwrap_or_default();
        let path = sys
            .as_ref()
            .and_then(|s| s.getattr("path").ok())
            .and_then(|v| v.extract::<Vec<String>>().ok())
            .unwrap_or_default();
        let environment = match super::interpreter::chosen() {
            Some(i) => format!("{}, of [python] executable = {}", i.prefix, i.executable),
            None => match environment_prefix() {
                p if p.is_empty() => {
                    "none: set [python] executable, or VIRTUAL_ENV (activate one)".into()
                }
                p => p,
            },
        };
        format!(
            "Python {} (environment: {environment}; import path: {})",
            version.split_whitespace().next().unwrap_or("?"),
            path.join(":")
        )
    }

    /// A file's `function` and what its `setup(config)` returned (None
    /// without a setup, or when it returned None), the file imported once
    /// per process; numpy must import too.
    pub(super) fn load(
        py: Python<'_>,
        spec: &PythonSpec<'_>,
        state: &str,
    ) -> Result<(Py<PyAny>, Option<Py<PyAny>>), String> {
        let glue = glue(py)?;
        let file = spec.file.display().to_string();
        let loaded = glue.call_method1(
            "load",
            (file.as_str(), spec.function, spec.config_json, state),
        );
        let (function, context): (Py<PyAny>, Py<PyAny>) = match loaded {
            Ok(pair) => pair.extract().map_err(|e| plain(py, &e))?,
            Err(e) => {
                let import = e.is_instance_of::<pyo3::exceptions::PyImportError>(py);
                let mut msg = format!("{file}: {}", describe(py, &e));
                if import {
                    msg.push_str(&format!("\n(using {})", environment_line(py)));
                }
                return Err(msg);
            }
        };
        // numpy is how points and random numbers reach the function.
        if let Err(e) = py.import("numpy") {
            return Err(format!(
                "numpy cannot be imported ({}); a Python model receives its points (and a \
                 process its random generator) from numpy: install numpy in the environment \
                 (using {})",
                plain(py, &e),
                environment_line(py)
            ));
        }
        Ok((function, (!context.is_none(py)).then_some(context)))
    }

    /// The file's name, for messages.
    pub(super) fn file_name(spec: &PythonSpec<'_>) -> String {
        spec.file.file_name().map_or_else(
            || spec.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    pub fn model(spec: &PythonSpec<'_>, state: &str, dim: usize) -> Result<Arc<PyModel>, String> {
        model_made(spec, state, dim, false)
    }

    /// The model of a state, made once per process (`fresh`: made again,
    /// its `setup` called again, and not kept).
    pub fn model_made(
        spec: &PythonSpec<'_>,
        state: &str,
        dim: usize,
        fresh: bool,
    ) -> Result<Arc<PyModel>, String> {
        let key: Key = (
            state.to_string(),
            spec.file.display().to_string(),
            spec.function.to_string(),
            spec.config_json.to_string(),
            spec.vectorized,
            dim,
        );
        Python::attach(|py| {
            let mut made = MODELS
                .lock_py_attached(py)
                .unwrap_or_else(|e| e.into_inner());
            if let Some((_, m)) = made.iter().find(|(k, _)| *k == key).filter(|_| !fresh) {
                return Ok(m.clone());
            }
            let (function, context) = load(py, spec, state)?;
            let file = spec.file.display().to_string();
            let name = file_name(spec);
            let model = Arc::new(PyModel {
                dim,
                vectorized: spec.vectorized,
                file,
                function,
                context,
                label: format!("`{}` in {name}", spec.function),
            });
            if !fresh {
                made.push((key, model.clone()));
            }
            Ok(model)
        })
    }

    thread_local! {
        /// This thread keeps a Python thread state for good (see
        /// [`keep_thread_state`]).
        static KEPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Makes this thread's Python thread state permanent. Attaching a
    /// thread that has none creates one and detaching destroys it again,
    /// which costs more than a small model's whole call; with one kept,
    /// each call only takes and gives back the interpreter's lock. Called
    /// outside any attachment, before a call.
    pub(super) fn keep_thread_state() {
        KEPT.with(|kept| {
            if !kept.get() {
                Python::initialize();
                // SAFETY: the interpreter is initialised and this thread is
                // not attached (callers are outside `Python::attach`), so
                // Ensure creates this thread's state and takes the lock, and
                // SaveThread gives the lock back while the state stays
                // registered: later Ensure/Release pairs (pyo3's attach) then
                // only restore and save it. It is never released, by design.
                unsafe {
                    let _ = pyo3::ffi::PyGILState_Ensure();
                    pyo3::ffi::PyEval_SaveThread();
                }
                kept.set(true);
            }
        });
    }

    impl PyModel {
        fn call<'py>(
            &self,
            py: Python<'py>,
            arg: Bound<'py, PyAny>,
            x: &[f64],
        ) -> Result<Bound<'py, PyAny>, EvalError> {
            let f = self.function.bind(py);
            // Watched once the interpreter's lock is held: a call that
            // never returns fails the job with its point.
            let _watch = crate::model::eval_watch::begin(
                || format!("the Python function {}", self.label),
                x,
            );
            let out = match &self.context {
                Some(c) => f.call1((arg, c.bind(py))),
                None => f.call1((arg,)),
            };
            out.map_err(|e| {
                EvalError(format!(
                    "the Python function {} raised:\n{}",
                    self.label,
                    describe(py, &e)
                ))
            })
        }

        pub fn output_names(&self) -> Result<Option<Vec<String>>, String> {
            keep_thread_state();
            Python::attach(|py| {
                let glue = glue(py)?;
                let context = self
                    .context
                    .as_ref()
                    .map_or_else(|| py.None(), |c| c.clone_ref(py));
                glue.call_method1("output_names", (self.file.as_str(), context))
                    .and_then(|names| names.extract::<Option<Vec<String>>>())
                    .map_err(|e| format!("output_names in {}: {}", self.file, describe(py, &e)))
            })
        }

        /// A forward model's outputs at one point: exactly `y.len()`
        /// numbers.
        pub fn forward(&self, x: &[f64], y: &mut [f64]) -> Result<(), EvalError> {
            keep_thread_state();
            Python::attach(|py| {
                let theta = PyArray1::from_slice(py, x).into_any();
                let values = self.call(py, theta, x)?;
                let got = vector(py, &values).ok_or_else(|| {
                    EvalError(format!(
                        "the Python function {} returned {} (type {}); a forward model returns                          {} number(s)",
                        self.label,
                        short_repr(&values),
                        type_name(&values),
                        y.len()
                    ))
                })?;
                if got.len() != y.len() {
                    return Err(EvalError(format!(
                        "the Python function {} returned {} value(s); the state has {} output(s)",
                        self.label,
                        got.len(),
                        y.len()
                    )));
                }
                y.copy_from_slice(&got);
                Ok(())
            })
        }

        fn scalar(&self, x: &[f64]) -> Result<f64, EvalError> {
            keep_thread_state();
            Python::attach(|py| {
                let theta = PyArray1::from_slice(py, x).into_any();
                let out = self.call(py, theta, x)?;
                out.extract::<f64>().map_err(|_| {
                    EvalError(format!(
                        "the Python function {} returned {} (type {}); it must return one \
                         number{}",
                        self.label,
                        short_repr(&out),
                        type_name(&out),
                        if self.vectorized {
                            ""
                        } else {
                            " (a function of many points at once needs vectorized = true)"
                        }
                    ))
                })
            })
        }

        fn batch(&self, xs: &[f64], out: &mut [f64]) -> Result<(), EvalError> {
            let n = out.len();
            keep_thread_state();
            Python::attach(|py| {
                let view = ndarray::ArrayView2::from_shape((n, self.dim), xs)
                    .map_err(|e| EvalError(format!("making the points' array: {e}")))?;
                let points = view.to_pyarray(py);
                let values = self.call(py, points.into_any(), &xs[..self.dim.min(xs.len())])?;
                let wrong = |what: String| {
                    EvalError(format!(
                        "the Python function {} returned {what} for {n} point(s) of {} \
                         parameter(s); a vectorised model returns one number per point (shape \
                         ({n},))",
                        self.label, self.dim
                    ))
                };
                // A float64 vector as numpy returns it, else what numpy
                // makes of the value (a list, another dtype, a column).
                let array = match values.cast::<PyArray1<f64>>() {
                    Ok(a) => a.clone(),
                    Err(_) => {
                        let np = py.import("numpy").map_err(|e| EvalError(e.to_string()))?;
                        let converted = np
                            .call_method1("ascontiguousarray", (&values, "float64"))
                            .map_err(|_| {
                                wrong(format!(
                                    "{} (type {})",
                                    short_repr(&values),
                                    type_name(&values)
                                ))
                            })?;
                        match converted.cast::<PyArray1<f64>>() {
                            Ok(a) => a.clone(),
                            Err(_) => {
                                let shape = converted
                                    .getattr("shape")
                                    .map(|s| short_repr(&s))
                                    .unwrap_or_default();
                                return Err(wrong(format!("an array of shape {shape}")));
                            }
                        }
                    }
                };
                if array.len() != n {
                    return Err(wrong(format!("an array of shape ({},)", array.len())));
                }
                // SAFETY: the GIL is held and no Python code runs while the
                // values are copied, so nothing can write to the array.
                match unsafe { array.as_slice() } {
                    Ok(v) => out.copy_from_slice(v),
                    // Strided (a column of a matrix): element by element.
                    Err(_) => {
                        for (o, v) in out.iter_mut().zip(array.readonly().as_array().iter()) {
                            *o = *v;
                        }
                    }
                }
                Ok(())
            })
        }
    }

    /// A value as a vector of floats, as numpy sees it (an array, a list, a
    /// number), or None when numpy cannot make one.
    fn vector(py: Python<'_>, v: &Bound<'_, PyAny>) -> Option<Vec<f64>> {
        if let Ok(a) = v.cast::<PyArray1<f64>>() {
            return a.to_vec().ok();
        }
        let np = py.import("numpy").ok()?;
        let a = np.call_method1("ravel", (v,)).ok()?;
        let a = np.call_method1("ascontiguousarray", (a, "float64")).ok()?;
        a.cast::<PyArray1<f64>>().ok()?.to_vec().ok()
    }

    pub(super) fn short_repr(v: &Bound<'_, PyAny>) -> String {
        let r = v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
        if r.chars().count() > 80 {
            format!("{}…", r.chars().take(80).collect::<String>())
        } else {
            r
        }
    }

    pub(super) fn type_name(v: &Bound<'_, PyAny>) -> String {
        v.get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string())
    }

    impl LogDensity for Shared {
        fn dim(&self) -> usize {
            self.0.dim
        }
        fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
            if self.0.vectorized {
                let mut out = [0.0];
                self.0.batch(x, &mut out)?;
                Ok(out[0])
            } else {
                self.0.scalar(x)
            }
        }
        fn has_batch(&self) -> bool {
            self.0.vectorized
        }
        fn log_density_batch(&self, xs: &[f64], out: &mut [f64]) -> Result<(), EvalError> {
            if self.0.vectorized {
                self.0.batch(xs, out)
            } else {
                for (x, o) in xs.chunks_exact(self.0.dim.max(1)).zip(out.iter_mut()) {
                    *o = self.0.scalar(x)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(all(test, feature = "python"))]
mod tests {
    use super::*;

    /// The cost of sampo's side of a vectorised call (the function returns
    /// a ready array), unwatched and watched as in a run: `cargo test
    /// --release --lib -- --ignored --nocapture vectorised_call_cost`, with
    /// numpy in VIRTUAL_ENV.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn vectorised_call_cost() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.py");
        std::fs::write(
            &file,
            "import numpy as np\nZ = np.zeros(32)\ndef f(thetas):\n    return Z\n",
        )
        .unwrap();
        let spec = PythonSpec {
            file: &file,
            function: "f",
            vectorized: true,
            config_json: "{}",
        };
        let model = likelihood(&spec, "s", 10).unwrap();
        let xs = vec![0.5; 32 * 10];
        let mut out = vec![0.0; 32];
        let calls = 20_000;
        let mut time = |what: &str| {
            let mut best = f64::INFINITY;
            for _ in 0..20 {
                let start = std::time::Instant::now();
                for _ in 0..calls {
                    model.log_density_batch(&xs, &mut out).unwrap();
                }
                best = best.min(start.elapsed().as_secs_f64());
            }
            println!(
                "{what}: {:.0} ns per call, {:.1} ns per point (32 points a call)",
                best / calls as f64 * 1e9,
                best / (calls * 32) as f64 * 1e9
            );
        };
        time("unwatched");
        crate::model::eval_watch::limit(std::time::Duration::from_secs(3000));
        time("watched");
        // The watch alone, and the clock it reads.
        let n = 1_000_000;
        let mut best = [f64::INFINITY; 2];
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(std::time::Instant::now());
            }
            best[0] = best[0].min(start.elapsed().as_secs_f64());
            let start = std::time::Instant::now();
            for _ in 0..n {
                let _w = crate::model::eval_watch::begin(
                    || format!("the Python function {}", "`f` in m.py"),
                    &xs[..10],
                );
            }
            best[1] = best[1].min(start.elapsed().as_secs_f64());
        }
        println!(
            "of which the watch {:.0} ns a call (Instant::now {:.0} ns)",
            best[1] / n as f64 * 1e9,
            best[0] / n as f64 * 1e9,
        );
    }
}
