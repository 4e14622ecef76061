//! Stochastic processes written in Python, for `kind = "paths"`: a file's
//! `simulate(rng, steps)` (with `setup`'s object as a third argument)
//! returns one path, its value at steps 0, 1, …, `steps`, as a 1-D array.
//!
//! `rng` is a `numpy.random.Generator` over numpy's PCG64 whose state sampo
//! sets, before each path, from four 64-bit words w0…w3 drawn from the
//! path's own stream: state = w0·2⁶⁴ + w1, increment = w2·2⁶⁴ + w3 (odd: its
//! lowest bit set). A path therefore depends on (seed, state, path) only,
//! and any path can be recomputed alone, in sampo or in numpy.

use super::PythonSpec;
use crate::model::{BuildError, EvalError};

/// The function called when the spec names none.
pub const DEFAULT_SIMULATE: &str = "simulate";

/// The PCG64 state and increment numpy's generator gets from a path's four
/// words.
pub fn pcg64_state(words: [u64; 4]) -> (u128, u128) {
    let wide = |hi: u64, lo: u64| (u128::from(hi) << 64) | u128::from(lo);
    (wide(words[0], words[1]), wide(words[2], words[3]) | 1)
}

/// A state's Python process, imported and set up once per process and
/// state.
#[cfg(feature = "python")]
pub struct PythonProcess(std::sync::Arc<embedded::Process>);

#[cfg(not(feature = "python"))]
pub struct PythonProcess(());

impl PythonProcess {
    /// The process of state `state`; `integer`: its values must be
    /// integers.
    #[cfg(feature = "python")]
    pub fn build(spec: &PythonSpec<'_>, state: &str, integer: bool) -> Result<Self, BuildError> {
        embedded::process(spec, state, integer)
            .map(Self)
            .map_err(|e| BuildError::new("file", e))
    }

    #[cfg(not(feature = "python"))]
    pub fn build(_spec: &PythonSpec<'_>, _state: &str, _integer: bool) -> Result<Self, BuildError> {
        Err(BuildError::new("kind", super::UNAVAILABLE))
    }

    /// One path, its generator set from `words`: its `steps + 1` values.
    pub fn path(&self, words: [u64; 4], steps: u64) -> Result<Vec<f64>, EvalError> {
        #[cfg(feature = "python")]
        return self.0.path(words, steps);
        #[cfg(not(feature = "python"))]
        {
            let _ = (words, steps);
            unreachable!("never built without the python feature")
        }
    }
}

#[cfg(feature = "python")]
mod embedded {
    use std::sync::{Arc, Mutex};

    use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
    use pyo3::prelude::*;
    use pyo3::sync::MutexExt;
    use pyo3::types::PyDict;

    use super::super::embedded::{
        describe, file_name, keep_thread_state, load, short_repr, type_name,
    };
    use super::{pcg64_state, PythonSpec};
    use crate::model::EvalError;

    type Key = (String, String, String, String, bool);
    static PROCESSES: Mutex<Vec<(Key, Arc<Process>)>> = Mutex::new(Vec::new());

    pub struct Process {
        function: Py<PyAny>,
        context: Option<Py<PyAny>>,
        /// The PCG64 bit generator and the Generator over it that every
        /// path of the state reuses, its state set per path.
        bits: Py<PyAny>,
        rng: Py<PyAny>,
        integer: bool,
        /// `simulate` in `proc.py`, for messages.
        label: String,
        /// One path at a time: the generator is shared.
        busy: Mutex<()>,
    }

    /// The process of a state, made once per process.
    pub fn process(
        spec: &PythonSpec<'_>,
        state: &str,
        integer: bool,
    ) -> Result<Arc<Process>, String> {
        let key: Key = (
            state.to_string(),
            spec.file.display().to_string(),
            spec.function.to_string(),
            spec.config_json.to_string(),
            integer,
        );
        Python::attach(|py| {
            let mut made = PROCESSES
                .lock_py_attached(py)
                .unwrap_or_else(|e| e.into_inner());
            if let Some((_, p)) = made.iter().find(|(k, _)| *k == key) {
                return Ok(p.clone());
            }
            let (function, context) = load(py, spec, state)?;
            let random = py
                .import("numpy.random")
                .map_err(|e| format!("importing numpy.random: {}", describe(py, &e)))?;
            let made_rng = random
                .getattr("PCG64")
                .and_then(|pcg| pcg.call1((0u64,)))
                .and_then(|bits| {
                    let rng = random.getattr("Generator")?.call1((&bits,))?;
                    Ok((bits.unbind(), rng.unbind()))
                });
            let (bits, rng) = made_rng
                .map_err(|e| format!("making numpy's PCG64 generator: {}", describe(py, &e)))?;
            let process = Arc::new(Process {
                function,
                context,
                bits,
                rng,
                integer,
                label: format!("`{}` in {}", spec.function, file_name(spec)),
                busy: Mutex::new(()),
            });
            made.push((key, process.clone()));
            Ok(process)
        })
    }

    impl Process {
        pub fn path(&self, words: [u64; 4], steps: u64) -> Result<Vec<f64>, EvalError> {
            keep_thread_state();
            Python::attach(|py| {
                let _one = self
                    .busy
                    .lock_py_attached(py)
                    .unwrap_or_else(|e| e.into_inner());
                let failed = |e: PyErr| {
                    EvalError(format!(
                        "the Python function {} raised:\n{}",
                        self.label,
                        describe(py, &e)
                    ))
                };
                self.seed(py, words)
                    .map_err(|e| EvalError(format!("setting the generator: {e}")))?;
                let f = self.function.bind(py);
                let rng = self.rng.bind(py);
                let values = {
                    // Watched once the interpreter's lock is held: a path
                    // that never ends fails the job.
                    let _watch = crate::model::eval_watch::begin(
                        || format!("the Python function {}", self.label),
                        &[],
                    );
                    match &self.context {
                        Some(c) => f.call1((rng, steps, c.bind(py))),
                        None => f.call1((rng, steps)),
                    }
                    .map_err(failed)?
                };
                self.values(py, &values, steps)
            })
        }

        /// Sets the generator's state from the path's words.
        fn seed(&self, py: Python<'_>, words: [u64; 4]) -> PyResult<()> {
            let (state, inc) = pcg64_state(words);
            let inner = PyDict::new(py);
            inner.set_item("state", state)?;
            inner.set_item("inc", inc)?;
            let outer = PyDict::new(py);
            outer.set_item("bit_generator", "PCG64")?;
            outer.set_item("state", inner)?;
            outer.set_item("has_uint32", 0)?;
            outer.set_item("uinteger", 0)?;
            self.bits.bind(py).setattr("state", outer)
        }

        /// What the function returned, checked: `steps + 1` numbers in a
        /// 1-D array (integers for an integer process), finite.
        fn values(
            &self,
            py: Python<'_>,
            values: &Bound<'_, PyAny>,
            steps: u64,
        ) -> Result<Vec<f64>, EvalError> {
            let n = steps + 1;
            // The usual case first: a 1-D array of the process's own type.
            let direct = if self.integer {
                values
                    .cast::<PyArray1<i64>>()
                    .ok()
                    .filter(|a| a.len() as u64 == n)
                    .and_then(|a| a.to_vec().ok())
                    .map(|v| v.into_iter().map(|x| x as f64).collect())
            } else {
                values
                    .cast::<PyArray1<f64>>()
                    .ok()
                    .filter(|a| a.len() as u64 == n)
                    .and_then(|a| a.to_vec().ok())
            };
            if let Some(out) = direct {
                return self.finite(out);
            }
            let wrong = |what: String| {
                EvalError(format!(
                    "the Python function {} returned {what}; a process returns its path: {n} \
                     {} (steps 0 to {steps}) in a 1-D array",
                    self.label,
                    if self.integer {
                        "integers (integer = true)"
                    } else {
                        "numbers"
                    }
                ))
            };
            let described = || format!("{} (type {})", short_repr(values), type_name(values));
            let np = py.import("numpy").map_err(|e| EvalError(e.to_string()))?;
            let array = np
                .call_method1("asarray", (values,))
                .map_err(|_| wrong(described()))?;
            let dtype_kind: String = array
                .getattr("dtype")
                .and_then(|d| d.getattr("kind"))
                .and_then(|k| k.extract())
                .map_err(|_| wrong(described()))?;
            let numeric = if self.integer {
                matches!(dtype_kind.as_str(), "i" | "u" | "b")
            } else {
                matches!(dtype_kind.as_str(), "i" | "u" | "b" | "f")
            };
            if !numeric {
                let dtype = array
                    .getattr("dtype")
                    .map(|d| d.to_string())
                    .unwrap_or_default();
                return Err(wrong(format!("values of dtype {dtype}")));
            }
            let ndim: usize = array.getattr("ndim").and_then(|d| d.extract()).unwrap_or(0);
            let len = array.len().unwrap_or(0) as u64;
            if ndim != 1 || len != n {
                let shape = array
                    .getattr("shape")
                    .map(|s| short_repr(&s))
                    .unwrap_or_default();
                return Err(wrong(format!("an array of shape {shape}")));
            }
            let as_f64 = np
                .call_method1("ascontiguousarray", (&array, "float64"))
                .map_err(|_| wrong(described()))?;
            let array = as_f64
                .cast::<PyArray1<f64>>()
                .map_err(|_| wrong(described()))?;
            let out = array.to_vec().map_err(|_| wrong(described()))?;
            self.finite(out)
        }

        fn finite(&self, out: Vec<f64>) -> Result<Vec<f64>, EvalError> {
            match out.iter().position(|v| !v.is_finite()) {
                Some(t) => Err(EvalError(format!(
                    "the Python function {} returned {} at step {t}; a path's values are finite",
                    self.label, out[t]
                ))),
                None => Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pcg64_state;

    #[test]
    fn the_generator_state_joins_the_words_and_makes_the_increment_odd() {
        let (state, inc) = pcg64_state([1, 2, 3, 4]);
        assert_eq!(state, (1u128 << 64) + 2);
        assert_eq!(inc, (3u128 << 64) + 5);
    }
}
