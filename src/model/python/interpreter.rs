//! `[python] executable`: the interpreter whose environment Python models
//! import from. sampo asks it once, at start-up, for its prefix and import
//! path (a subprocess), checks that it is the Python version sampo embeds,
//! and the embedded interpreter then adds that environment's packages
//! instead of VIRTUAL_ENV's or CONDA_PREFIX's.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an interpreter says of itself.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Interpreter {
    /// As the spec names it (absolute).
    #[serde(skip)]
    pub executable: String,
    pub prefix: String,
    pub base_prefix: String,
    /// "3.11".
    pub version: String,
    /// Its `sys.path`, without the current folder.
    pub path: Vec<String>,
}

/// What the interpreter is asked.
const QUERY: &str = "import json, sys; print(json.dumps({'prefix': sys.prefix, \
     'base_prefix': sys.base_prefix, 'version': '%d.%d' % sys.version_info[:2], \
     'path': [p for p in sys.path if p]}))";

/// How long the interpreter may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

static CHOSEN: Mutex<Option<Interpreter>> = Mutex::new(None);

/// The interpreter `[python] executable` named in this process, if any.
pub fn chosen() -> Option<Interpreter> {
    CHOSEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Asks `exe` for its environment (once per process) and makes it the one
/// Python models import from; `embedded`: the Python version sampo embeds.
pub fn choose(exe: &Path, embedded: &str) -> Result<(), String> {
    let executable = exe.display().to_string();
    if chosen().is_some_and(|i| i.executable == executable) {
        return Ok(());
    }
    let mut child = Command::new(exe)
        .args(["-c", QUERY])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {executable}: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < ANSWER_WITHIN => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{executable} did not say where its packages are within {} s",
                    ANSWER_WITHIN.as_secs()
                ));
            }
            Err(e) => return Err(format!("running {executable}: {e}")),
        }
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        let said = err.trim().lines().last().unwrap_or("").to_string();
        return Err(format!(
            "{executable} -c '…' failed ({status}){}: is it a Python interpreter?",
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        ));
    }
    let mut found: Interpreter = serde_json::from_str(out.trim()).map_err(|_| {
        format!(
            "{executable} did not answer as a Python interpreter does (it printed {:?})",
            out.chars().take(120).collect::<String>()
        )
    })?;
    if found.version != embedded {
        return Err(format!(
            "{executable} is Python {}, and sampo embeds Python {embedded}: name an \
             environment made with Python {embedded}, or build sampo against this one \
             (PYO3_PYTHON={executable} cargo build --release)",
            found.version
        ));
    }
    found.executable = executable;
    *CHOSEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
    Ok(())
}
