//! Helpers shared by the integration tests: run the real binary in a
//! temporary directory, and read datasets back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};

pub fn sampo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sampo"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory holding spec files and outputs.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write spec");
        p
    }

    /// Runs `sampo args…` in the sandbox.
    pub fn sampo(&self, args: &[&str]) -> Output {
        self.sampo_env(args, &[])
    }

    pub fn sampo_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(sampo_bin());
        cmd.args(args).current_dir(self.dir.path());
        cmd.env_remove("SLURM_CPUS_PER_TASK")
            .env_remove("SAMPO_INJECT_FAULT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run sampo")
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts success, showing the program's output otherwise.
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "sampo failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// A dataset's values, flattened, with its shape.
pub fn read_f64(path: &Path, dataset: &str) -> (Vec<usize>, Vec<f64>) {
    let f = hdf5::File::open(path).expect("open output");
    let ds = f
        .dataset(dataset)
        .unwrap_or_else(|e| panic!("{dataset}: {e}"));
    let shape = ds.shape();
    (shape, ds.read_raw::<f64>().expect("read"))
}

pub fn read_str_attr(path: &Path, loc: &str, name: &str) -> String {
    let f = hdf5::File::open(path).expect("open output");
    let attr = if loc == "/" {
        f.attr(name)
    } else {
        f.group(loc).and_then(|g| g.attr(name))
    }
    .unwrap_or_else(|e| panic!("{loc} attr {name}: {e}"));
    attr.read_scalar::<hdf5::types::VarLenUnicode>()
        .expect("string attr")
        .to_string()
}

pub fn read_i64_attr(path: &Path, loc: &str, name: &str) -> i64 {
    let f = hdf5::File::open(path).expect("open output");
    f.group(loc)
        .and_then(|g| g.attr(name))
        .and_then(|a| a.read_scalar::<i64>())
        .unwrap_or_else(|e| panic!("{loc} attr {name}: {e}"))
}

/// Every sample dataset of a file (chain, log_prob, accepted of each
/// ensemble), by path, for exact comparisons between runs.
pub fn sample_datasets(path: &Path) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let f = hdf5::File::open(path).expect("open output");
    let mut groups = Vec::new();
    collect_ensembles(&f, "", &mut groups);
    groups.sort();
    let mut out = Vec::new();
    for g in groups {
        for name in ["chain", "log_prob", "accepted"] {
            let p = format!("{g}/{name}");
            let (shape, values) = read_f64(path, &p);
            out.push((p, shape, values));
        }
    }
    out
}

fn collect_ensembles(g: &hdf5::Group, prefix: &str, out: &mut Vec<String>) {
    for name in g.member_names().expect("members") {
        let path = format!("{prefix}/{name}");
        if let Ok(sub) = g.group(&name) {
            if sub.link_exists("chain") {
                out.push(path.clone());
            }
            collect_ensembles(&sub, &path, out);
        }
    }
}

/// `mpiexec -n ranks sampo args…` in the sandbox (oversubscribed, unbound,
/// allowed as root), with `env` passed to every rank.
pub fn mpiexec(sb: &Sandbox, ranks: usize, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("mpiexec");
    cmd.current_dir(sb.dir.path())
        .args([
            "--oversubscribe",
            "--bind-to",
            "none",
            "-n",
            &ranks.to_string(),
        ])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("SLURM_CPUS_PER_TASK");
    for (k, v) in env {
        cmd.args(["-x", k]).env(k, v);
    }
    cmd.arg(sampo_bin()).args(args);
    cmd
}

pub fn run_mpi(sb: &Sandbox, ranks: usize, args: &[&str], env: &[(&str, &str)]) -> Output {
    mpiexec(sb, ranks, args, env)
        .output()
        .expect("mpiexec runs")
}

/// The PID of MPI rank `rank` of a running `sampo run <spec>` (found by its
/// `OMPI_COMM_WORLD_RANK`), if it is running.
pub fn pid_of_rank(spec: &str, rank: usize) -> Option<String> {
    let out = Command::new("pgrep")
        .args(["-f", &format!("sampo run {spec}")])
        .output()
        .ok()?;
    let marker = format!("OMPI_COMM_WORLD_RANK={rank}\0");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|e| e.windows(marker.len()).any(|w| w == marker.as_bytes()))
        })
        .map(str::to_string)
}

/// Stored rows of the first state of `file` (in the sandbox), read with
/// `sampo summary` as a user would while a run writes it; 0 if unreadable.
pub fn rows_in(sb: &Sandbox, file: &str) -> u64 {
    let o = sb.sampo(&["summary", file, "--format", "json"]);
    serde_json::from_str::<serde_json::Value>(&stdout(&o))
        .ok()
        .and_then(|v| v["states"][0]["rows"].as_u64())
        .unwrap_or(0)
}

/// Waits (at most 30 s) until `path` exists: a run's `.partial` appears
/// once the run has begun, which on a loaded machine can take a while
/// after the process starts; a signal sent before then finds no run.
pub fn wait_for_file(path: &Path) {
    let since = std::time::Instant::now();
    while !path.exists() {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(30),
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `sampo run <spec> -o <out> -q` with `args`, sends it SIGTERM once
/// its `.partial` exists and `after` more has passed, expects the pause
/// (exit 75), then resumes it with `resume_args` and expects success.
pub fn pause_and_resume(
    sb: &Sandbox,
    spec: &str,
    out: &str,
    args: &[&str],
    after: std::time::Duration,
    resume_args: &[&str],
) {
    let child = Command::new(sampo_bin())
        .current_dir(sb.path(""))
        .args(["run", spec, "-o", out, "-q"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&sb.path(&format!("{out}.partial")));
    std::thread::sleep(after);
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(75),
        "the run should pause: {}",
        stderr(&o)
    );
    let mut resume = vec!["run", "--resume", spec, "-o", out, "-q"];
    resume.extend_from_slice(resume_args);
    assert_ok(&sb.sampo(&resume));
}

/// A C plugin built from tests/plugins/faulty.c with `flags` (see its
/// header for the variants), in the sandbox.
pub fn faulty(sb: &Sandbox, name: &str, flags: &[&str]) -> String {
    let out = sb.path(name);
    let o = Command::new("cc")
        .args(["-O2", "-fPIC", "-shared", "-std=c11", "-D_DEFAULT_SOURCE"])
        .arg("-I")
        .arg(repo().join("include"))
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(repo().join("tests/plugins/faulty.c"))
        .arg("-lm")
        .output()
        .expect("cc runs");
    assert!(
        o.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.display().to_string()
}

/// `check` and `run` of `text` (as `e.toml`) both exit 2 with `needle` in
/// a message located at `line`, and create no output.
pub fn refused(sb: &Sandbox, text: &str, line: usize, needle: &str) {
    sb.write("e.toml", text);
    for command in ["check", "run"] {
        let o = sb.sampo(&[command, "e.toml"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(needle),
            "{command}: expected `{needle}` in {err}"
        );
        assert!(
            err.contains(&format!("e.toml:{line}:")),
            "{command}: located: {err}"
        );
        assert!(!sb.path("e.h5").exists() && !sb.path("e.h5.partial").exists());
    }
}

/// An unsigned integer attribute of a group (or of the root, "/").
pub fn read_u64_attr(path: &Path, loc: &str, name: &str) -> u64 {
    let f = hdf5::File::open(path).expect("open output");
    f.group(loc)
        .and_then(|g| g.attr(name))
        .and_then(|a| a.read_scalar::<u64>())
        .unwrap_or_else(|e| panic!("{loc} attr {name}: {e}"))
}

/// `child`'s exit status once it ends, polling every `poll`; None if it is
/// still running after `within` (the caller kills it and says why).
pub fn ends_within(
    child: &mut Child,
    within: std::time::Duration,
    poll: std::time::Duration,
) -> Option<ExitStatus> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(poll);
    }
}

/// Builds the example plugins (examples/plugins: C and Fortran with make,
/// Rust with cargo) once per test binary; returns examples/plugins.
pub fn example_plugins() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = repo().join("examples/plugins");
    BUILT.call_once(|| {
        for sub in ["c", "fortran"] {
            let o = Command::new("make")
                .arg("-C")
                .arg(dir.join(sub))
                .output()
                .expect("make runs");
            assert!(
                o.status.success(),
                "make {sub}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let o = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(dir.join("rust/Cargo.toml"))
            .output()
            .expect("cargo runs");
        assert!(
            o.status.success(),
            "cargo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    });
    dir
}
