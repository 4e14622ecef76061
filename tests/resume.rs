//! Checkpoint and resume: a run paused by a signal or its wall time, or
//! killed with kill -9 after a periodic checkpoint, goes on with
//! `--resume` — with any ranks × threads — to datasets bit-identical to an
//! uninterrupted run's.

mod common;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Two states, so that a run has several tasks, each slow enough to be
/// caught half-way (16 walkers × 200 µs a step).
const SPEC: &str = r#"
[run]
name = "long"
seed = 5
[parallel]
threads = 1
[sampler]
walkers = 16
steps = 1500
burn = 100
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
cost_us = 100
[[states]]
name = "h"
model = { kind = "gaussian", mean = [2.0], cov = [[0.5]] }
prior = { kind = "uniform", low = [-10.0], high = [10.0] }
cost_us = 100
"#;

/// Chains that advance in rounds (a stop rule that is never met before
/// `max_steps`): pauses fall inside rounds and between them.
const CHAINS: &str = r#"
[run]
name = "long"
seed = 11
[parallel]
threads = 1
[sampler]
kind = "chains"
chains = 3
burn = 100
stop = { check_every = 500, rhat = 1.0000001, ess = 1e9, max_steps = 6000 }
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
cost_us = 400
"#;

/// Every dataset that must not depend on interruptions: the samples and
/// the summary table.
fn results(path: &std::path::Path) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    let mut out: Vec<(String, Vec<usize>, Vec<u64>)> = sample_datasets(path)
        .into_iter()
        .map(|(p, s, v)| (p, s, v.iter().map(|x| x.to_bits()).collect()))
        .collect();
    let f = hdf5::File::open(path).unwrap();
    let summary = f.group("summary").unwrap();
    for name in summary.member_names().unwrap() {
        let ds = summary.dataset(&name).unwrap();
        if let Ok(v) = ds.read_raw::<f64>() {
            out.push((
                format!("summary/{name}"),
                ds.shape(),
                v.iter().map(|x| x.to_bits()).collect(),
            ));
        }
    }
    out
}

/// The same datasets, bit for bit (named on failure).
fn assert_same(reference: &std::path::Path, resumed: &std::path::Path) {
    let (a, b) = (results(reference), results(resumed));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert_eq!(x.1, y.1, "{}: shape", x.0);
        assert!(x.2 == y.2, "{}: values differ after the resume", x.0);
    }
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the `.partial` has rows, and at least `checkpoint` when
/// asked (a periodic checkpoint has been written).
fn wait_for_rows(sb: &Sandbox, file: &str, checkpoint: bool) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rows appeared"
        );
        let has_checkpoint = !checkpoint || has_checkpoint(&sb.path(file));
        if has_checkpoint && rows_in(sb, file) > 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn has_checkpoint(path: &std::path::Path) -> bool {
    // The file may be open for writing: read it as `sampo summary` does,
    // without HDF5's lock (HDF5 reads this at every open).
    std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    let Ok(f) = hdf5::File::open(path) else {
        return false;
    };
    f.group("checkpoint").and_then(|g| g.attr("slot")).is_ok()
}

fn kill(pid: &str, sig: &str) {
    Command::new("kill")
        .args([&format!("-{sig}"), pid])
        .status()
        .unwrap();
}

/// The child's exit status and stderr; it must end within a minute.
fn finish(mut child: Child) -> (ExitStatus, String) {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn local(sb: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = Command::new(sampo_bin());
    cmd.current_dir(sb.dir.path())
        .env_remove("SLURM_CPUS_PER_TASK")
        .args(args);
    cmd
}

/// An uninterrupted run of `spec` into `ref.h5`.
fn reference(sb: &Sandbox) {
    assert_ok(&sb.sampo(&["run", "long.toml", "-q", "-o", "ref.h5"]));
}

fn assert_paused(sb: &Sandbox, status: ExitStatus, err: &str, why: &str) {
    assert_eq!(status.code(), Some(75), "{err}");
    assert!(
        err.contains(why) && err.contains("sampo run --resume long.toml"),
        "{err}"
    );
    let partial = sb.path("long.h5.partial");
    assert_eq!(read_str_attr(&partial, "/", "status"), "paused");
    assert!(has_checkpoint(&partial));
    assert!(!sb.path("long.h5").exists() && !sb.path("long.h5.lock").exists());
}

#[test]
fn each_signal_pauses_the_run_and_resume_gives_the_same_samples() {
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    reference(&sb);
    for (sig, threads) in [("TERM", "2"), ("INT", "1"), ("USR1", "2")] {
        let child = spawn(local(&sb, &["run", "long.toml", "-q"]));
        wait_for_rows(&sb, "long.h5.partial", false);
        kill(&child.id().to_string(), sig);
        let (status, err) = finish(child);
        assert_paused(&sb, status, &err, &format!("paused by SIG{sig}"));
        // The rows written up to the pause are whole.
        let partial = sb.path("long.h5.partial");
        let it = read_i64_attr(&partial, "states/g", "iteration") as usize;
        let (_, chain) = read_f64(&partial, "states/g/chain");
        assert!(it > 0 && chain[..it * 16 * 2].iter().all(|v| v.is_finite()));
        // Resumed with another thread count.
        let o = sb.sampo(&["run", "--resume", "long.toml", "-q", "--threads", threads]);
        assert_ok(&o);
        assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
        let f = sb.path("long.h5");
        assert_eq!(read_str_attr(&f, "/", "status"), "complete");
        assert_eq!(read_i64_attr(&f, "/", "resumes"), 1);
        // Only the final checkpoint is kept, beside the tasks' last states.
        let cp = hdf5::File::open(&f).unwrap().group("checkpoint").unwrap();
        let mut names = cp.member_names().unwrap();
        names.retain(|n| n.starts_with("slot"));
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn a_pause_at_start_up_resumes_too() {
    // As soon as the output exists: the tasks are starting, or about to.
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    reference(&sb);
    let child = spawn(local(&sb, &["run", "long.toml", "-q", "--threads", "2"]));
    let start = Instant::now();
    while !sb.path("long.h5.partial").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no output");
        std::thread::sleep(Duration::from_millis(2));
    }
    kill(&child.id().to_string(), "TERM");
    let (status, err) = finish(child);
    assert_paused(&sb, status, &err, "paused by SIGTERM");
    assert_ok(&sb.sampo(&["run", "--resume", "long.toml", "-q"]));
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
}

#[test]
fn chains_paused_inside_and_between_rounds_resume_to_the_same_samples() {
    let sb = Sandbox::new();
    sb.write("long.toml", CHAINS);
    reference(&sb);
    // Two pauses in one run: each resume goes on from the latest.
    let child = spawn(local(&sb, &["run", "long.toml", "-q"]));
    wait_for_rows(&sb, "long.h5.partial", false);
    kill(&child.id().to_string(), "TERM");
    let (status, err) = finish(child);
    assert_paused(&sb, status, &err, "paused by SIGTERM");
    let before = rows_in(&sb, "long.h5.partial");
    let child = spawn(local(&sb, &["run", "--resume", "long.toml", "-q"]));
    let start = Instant::now();
    while rows_in(&sb, "long.h5.partial") <= before + 100 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(&child.id().to_string(), "USR1");
    let (status, err) = finish(child);
    assert_paused(&sb, status, &err, "paused by SIGUSR1");
    let o = sb.sampo(&["run", "--resume", "long.toml", "-q", "--threads", "2"]);
    assert_ok(&o);
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
    assert_eq!(read_i64_attr(&sb.path("long.h5"), "/", "resumes"), 2);
}

#[test]
fn kill_9_resumes_from_the_last_periodic_checkpoint() {
    let sb = Sandbox::new();
    // Long enough for a few periodic checkpoints before the kill.
    sb.write("long.toml", &SPEC.replace("steps = 1500", "steps = 5000"));
    reference(&sb);
    let child = spawn(local(
        &sb,
        &[
            "run",
            "long.toml",
            "-q",
            "--set",
            "run.checkpoint_every=\"1s\"",
        ],
    ));
    wait_for_rows(&sb, "long.h5.partial", true);
    std::thread::sleep(Duration::from_millis(700));
    kill(&child.id().to_string(), "KILL");
    let (status, _) = finish(child);
    assert_eq!(status.code(), None, "killed by the signal");
    let partial = sb.path("long.h5.partial");
    assert_eq!(read_str_attr(&partial, "/", "status"), "running");
    // The lock of the dead run is stale: the resume takes it over. The
    // checkpoint interval is free to change on resume.
    let o = sb.sampo(&[
        "run",
        "--resume",
        "long.toml",
        "-q",
        "--set",
        "run.checkpoint_every=\"off\"",
    ]);
    assert_ok(&o);
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
}

#[test]
fn periodic_checkpoints_leave_the_results_unchanged() {
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    reference(&sb);
    let o = sb.sampo(&[
        "-v",
        "run",
        "long.toml",
        "--set",
        "run.checkpoint_every=\"1s\"",
    ]);
    assert_ok(&o);
    assert!(stderr(&o).contains("checkpoint written"), "{}", stderr(&o));
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
}

#[test]
fn the_wall_time_pauses_the_run_in_time() {
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    let start = Instant::now();
    let o = sb.sampo(&["run", "long.toml", "-q", "--walltime", "2s"]);
    let took = start.elapsed();
    assert_paused(
        &sb,
        o.status,
        &stderr(&o),
        "paused before the wall-time limit",
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    reference(&sb);
    let o = sb.sampo(&["run", "--resume", "long.toml", "-q"]);
    assert_ok(&o);
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
}

#[test]
fn a_second_sigint_stops_at_once_without_a_checkpoint() {
    use std::io::BufRead;
    let sb = Sandbox::new();
    // Steps of 8 s (8 walkers × 1 s), so that the first SIGINT's pause is
    // still waiting for its step when the second comes.
    let slow = SPEC
        .replace("cost_us = 100", "cost_us = 1000000")
        .replace("walkers = 16", "walkers = 8");
    sb.write("long.toml", &slow);
    let mut child = spawn(local(&sb, &["run", "long.toml", "-q"]));
    let start = Instant::now();
    while !sb.path("long.h5.partial").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no output");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    kill(&pid, "INT");
    // The second once the first is being handled (signals of one kind sent
    // together may arrive as one).
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut err = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if line.contains("finishing the current step") {
            break;
        }
    }
    kill(&pid, "INT");
    err.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
    let (status, _) = finish(child);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("paused by SIGINT: finishing the current step"),
        "{err}"
    );
    let status = read_str_attr(&sb.path("long.h5.partial"), "/", "status");
    assert!(
        status.starts_with("failed: interrupted by a second SIGINT"),
        "{status}"
    );
}

#[test]
fn resume_refuses_a_changed_spec_and_nothing_to_resume() {
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    let o = sb.sampo(&["run", "--resume", "long.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nothing to resume: long.h5.partial does not exist"),
        "{}",
        stderr(&o)
    );
    let o = sb.sampo(&["run", "long.toml", "-q", "--walltime", "1s"]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    // A budget that leaves no time for work is said, once.
    assert_eq!(
        stderr(&o)
            .matches("leaves 0.0 s for work before the pause")
            .count(),
        1,
        "{}",
        stderr(&o)
    );
    let o = sb.sampo(&[
        "run",
        "--resume",
        "long.toml",
        "--set",
        "run.seed=6",
        "--set",
        "sampler.walkers=20",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("seed: 5 → 6") && err.contains("walkers: 16 → 20"),
        "{err}"
    );
    // Nothing was touched: the file is still paused and resumable.
    let partial = sb.path("long.h5.partial");
    assert_eq!(read_str_attr(&partial, "/", "status"), "paused");
    assert_ok(&sb.sampo(&["run", "--resume", "long.toml", "-q"]));
    let o = sb.sampo(&["run", "--resume", "long.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("long.h5 is complete"), "{}", stderr(&o));
    let o = sb.sampo(&["run", "--resume", "--force", "long.toml"]);
    assert_eq!(o.status.code(), Some(2), "--resume and --force conflict");
}

/// Under MPI: a signal to one rank (or to mpiexec) pauses every rank; the
/// run resumes with another number of ranks — queue mode and shared
/// ensembles (group mode) both ways — to the same samples.
#[test]
fn mpi_runs_pause_and_resume_with_another_layout() {
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    reference(&sb);
    let run = ["run", "long.toml", "-q", "--threads", "1"];
    let resume = ["run", "--resume", "long.toml", "-q", "--threads", "1"];
    // 2 ranks (queue) → 3 ranks (two tasks shared by groups of 2 and 1).
    let child = spawn(mpiexec(&sb, 2, &run, &[]));
    wait_for_rows(&sb, "long.h5.partial", false);
    kill(&pid_of_rank("long.toml", 1).expect("rank 1 runs"), "TERM");
    let (status, err) = finish(child);
    assert_paused(&sb, status, &err, "paused by SIGTERM (on rank 1)");
    let o = run_mpi(&sb, 3, &resume, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
    std::fs::remove_file(sb.path("long.h5")).unwrap();
    // 3 ranks (groups), SIGUSR1 to mpiexec (as a batch script forwards
    // SLURM's warning) → one process.
    let child = spawn(mpiexec(&sb, 3, &run, &[]));
    wait_for_rows(&sb, "long.h5.partial", false);
    kill(&child.id().to_string(), "USR1");
    let (status, err) = finish(child);
    assert_paused(&sb, status, &err, "paused by SIGUSR1");
    assert_ok(&sb.sampo(&["run", "--resume", "long.toml", "-q", "--threads", "2"]));
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
    std::fs::remove_file(sb.path("long.h5")).unwrap();
    // Periodic checkpoints in group mode go on without changing anything.
    let mut every: Vec<&str> = run.to_vec();
    every.extend(["--set", "run.checkpoint_every=\"1s\""]);
    let o = run_mpi(&sb, 3, &every, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
    std::fs::remove_file(sb.path("long.h5")).unwrap();
    // And in queue mode with more tasks than slots: the tasks a worker holds
    // ahead go back unstarted at each checkpoint.
    let reps = ["--set", "run.replicates=3", "--set", "sampler.steps=800"];
    let mut args = vec!["run", "long.toml", "-q", "-o", "reps.h5", "--threads", "2"];
    args.extend(reps);
    assert_ok(&sb.sampo(&args));
    let mut args = every.clone();
    args.extend(reps);
    let o = run_mpi(&sb, 2, &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&sb.path("reps.h5"), &sb.path("long.h5"));
}

/// Quick runs to extend: replicates (rows in lanes), thinning and the
/// default burn-in (a quarter of steps, so it moves when steps rise).
const SHORT: &str = r#"
[run]
name = "short"
seed = 3
replicates = 2
[sampler]
walkers = 12
steps = 300
thin = 2
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
[[states]]
name = "h"
model = { kind = "gaussian", mean = [2.0], cov = [[0.5]] }
prior = { kind = "uniform", low = [-10.0], high = [10.0] }
"#;

/// `sampo run <spec> -o <out> --set …`, which must succeed.
fn run_to(sb: &Sandbox, spec: &str, out: &str, sets: &[&str]) {
    let mut args = vec!["run", spec, "-q", "-o", out];
    for s in sets {
        args.extend(["--set", s]);
    }
    assert_ok(&sb.sampo(&args));
}

/// `sampo run --resume <spec> -o <out> --set …`.
fn extend(sb: &Sandbox, spec: &str, out: &str, sets: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--resume", spec, "-q", "-o", out];
    for s in sets {
        args.extend(["--set", s]);
    }
    sb.sampo(&args)
}

/// The extended file is the longer run's: samples, summary, and the spec
/// it records.
fn assert_extended(sb: &Sandbox, reference: &str, extended: &str) {
    let (a, b) = (sb.path(reference), sb.path(extended));
    assert_same(&a, &b);
    assert_eq!(
        read_str_attr(&a, "/", "resolved_spec"),
        read_str_attr(&b, "/", "resolved_spec")
    );
    assert_eq!(read_str_attr(&b, "/", "status"), "complete");
    assert!(!sb.path(&format!("{extended}.partial")).exists());
}

/// Raising `steps` (or `stop.max_steps`) and `--resume` extend a complete
/// run — or a paused one, or an extended one, under MPI too — to the
/// datasets of the run that asked for the longer length from the start
/// (emcee's `run_mcmc(None, n)`); the complete file stays untouched until
/// the longer run completes.
#[test]
fn more_steps_extend_a_run_to_the_longer_runs_samples() {
    // Before this process's first HDF5 call: a live file is read below.
    std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    let sb = Sandbox::new();
    sb.write("short.toml", SHORT);
    // Ensembles with replicates: 300 → 700 steps (burn 75 → 175).
    run_to(&sb, "short.toml", "ref700.h5", &["sampler.steps=700"]);
    run_to(&sb, "short.toml", "e.h5", &[]);
    let o = extend(&sb, "short.toml", "e.h5", &["sampler.steps=700"]);
    assert_ok(&o);
    assert_extended(&sb, "ref700.h5", "e.h5");
    assert_eq!(
        read_i64_attr(&sb.path("e.h5"), "/replicates/g", "iteration"),
        350
    );
    assert_eq!(
        read_i64_attr(&sb.path("e.h5"), "/replicates/g", "burn"),
        175
    );
    // Again, with another layout: 700 → 1000 on 3 ranks.
    run_to(&sb, "short.toml", "ref1000.h5", &["sampler.steps=1000"]);
    let resume = [
        "run",
        "--resume",
        "short.toml",
        "-q",
        "-o",
        "e.h5",
        "--threads",
        "1",
        "--set",
        "sampler.steps=1000",
    ];
    let o = run_mpi(&sb, 3, &resume, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_extended(&sb, "ref1000.h5", "e.h5");

    // Refusals leave the file as it is: fewer steps, another change, the
    // same spec.
    let o = extend(&sb, "short.toml", "e.h5", &["sampler.steps=900"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("extended, not shortened"),
        "{}",
        stderr(&o)
    );
    let o = extend(
        &sb,
        "short.toml",
        "e.h5",
        &["sampler.steps=1200", "sampler.walkers=14"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("walkers: 12 → 14"), "{}", stderr(&o));
    let o = extend(&sb, "short.toml", "e.h5", &["sampler.steps=1000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("e.h5 is complete"), "{}", stderr(&o));
    assert!(!sb.path("e.h5.partial").exists());
    assert_extended(&sb, "ref1000.h5", "e.h5");

    // With a stop rule, met at 300, 400 and 500 steps by the longer run's
    // replicates: its checks are replayed (the longer run makes one at 400,
    // which the shorter could not, and compares τ at 500 with it).
    // (Seed 18: its replicates of `h` stop at 500 and 300.)
    let stop = SHORT.replace("seed = 3", "seed = 18").replace(
        "steps = 300",
        "burn = 50\nstop = { check_every = 100, max_steps = 400, tau_lengths = 20, \
         tau_change = 0.2 }",
    );
    sb.write("stop.toml", &stop);
    run_to(&sb, "stop.toml", "sref.h5", &["sampler.stop.max_steps=900"]);
    run_to(&sb, "stop.toml", "s.h5", &[]);
    assert_ok(&extend(
        &sb,
        "stop.toml",
        "s.h5",
        &["sampler.stop.max_steps=900"],
    ));
    assert_extended(&sb, "sref.h5", "s.h5");
    let (_, steps) = read_f64(&sb.path("s.h5"), "replicates/h/steps");
    assert_eq!(steps, [500.0, 300.0]);

    // Shared ensembles (3 ranks, groups) paused by the wall time, then
    // resumed asking for more steps.
    sb.write("long.toml", SPEC);
    run_to(&sb, "long.toml", "ref.h5", &["sampler.steps=2000"]);
    let run = [
        "run",
        "long.toml",
        "-q",
        "--threads",
        "1",
        "--walltime",
        "2s",
    ];
    let o = run_mpi(&sb, 3, &run, &[]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    let o = extend(&sb, "long.toml", "long.h5", &["sampler.steps=2000"]);
    assert_ok(&o);
    assert_extended(&sb, "ref.h5", "long.h5");

    // An extension killed (-9) at once still goes on, from the checkpoint
    // it starts by writing (with the new spec): the old spec is refused.
    std::fs::remove_file(sb.path("long.h5")).unwrap();
    run_to(&sb, "long.toml", "long.h5", &[]);
    let mut cmd = local(
        &sb,
        &["run", "--resume", "long.toml", "-q", "--threads", "1"],
    );
    cmd.args(["--set", "sampler.steps=2000"]);
    let child = spawn(cmd);
    let start = Instant::now();
    // The new spec is recorded right after the extension's checkpoint.
    let extended = || {
        hdf5::File::open(sb.path("long.h5.partial"))
            .and_then(|f| {
                f.attr("resolved_spec")?
                    .read_scalar::<hdf5::types::VarLenUnicode>()
            })
            .is_ok_and(|s| s.as_str().contains("\"steps\":2000"))
    };
    while !extended() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no extension checkpoint"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(&child.id().to_string(), "KILL");
    let _ = finish(child);
    let o = extend(&sb, "long.toml", "long.h5", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not shortened"), "{}", stderr(&o));
    let o = extend(&sb, "long.toml", "long.h5", &["sampler.steps=2000"]);
    assert_ok(&o);
    assert_extended(&sb, "ref.h5", "long.h5");
}

/// Chains: in rounds (a stop rule never met, so max_steps is reached) and
/// without; burn-in, during which they adapt, must stay as it was.
#[test]
fn more_steps_extend_chains_in_rounds_and_without() {
    let sb = Sandbox::new();
    sb.write("c.toml", CHAINS);
    let cheap = "states.0.cost_us=0";
    run_to(
        &sb,
        "c.toml",
        "ref.h5",
        &[cheap, "sampler.stop.max_steps=2000"],
    );
    // 1250 steps: the last round is cut short; the longer run goes on.
    run_to(
        &sb,
        "c.toml",
        "c.h5",
        &[cheap, "sampler.stop.max_steps=1250"],
    );
    assert_ok(&extend(
        &sb,
        "c.toml",
        "c.h5",
        &[cheap, "sampler.stop.max_steps=1500"],
    ));
    // 1500 steps end a round: the longer run decides it again.
    assert_ok(&extend(
        &sb,
        "c.toml",
        "c.h5",
        &[cheap, "sampler.stop.max_steps=2000"],
    ));
    assert_extended(&sb, "ref.h5", "c.h5");

    // Without a stop rule, with burn-in by default (a quarter of steps).
    let no_stop = CHAINS
        .replace("burn = 100\n", "steps = 400\n")
        .replace("stop = {", "# stop = {");
    sb.write("n.toml", &no_stop);
    run_to(&sb, "n.toml", "n.h5", &[cheap]);
    let o = extend(&sb, "n.toml", "n.h5", &[cheap, "sampler.steps=900"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("set burn = 100"), "{}", stderr(&o));
    let burn = "sampler.burn=100";
    run_to(
        &sb,
        "n.toml",
        "nref.h5",
        &[cheap, burn, "sampler.steps=900"],
    );
    assert_ok(&extend(
        &sb,
        "n.toml",
        "n.h5",
        &[cheap, burn, "sampler.steps=900"],
    ));
    assert_extended(&sb, "nref.h5", "n.h5");
}

/// A `.partial` without a checkpoint (killed before its first) keeps the
/// rows it has on disk counted in `iteration` throughout a resume: one
/// that fails at once leaves them counted, as readers saw them before.
#[test]
fn a_resume_never_hides_the_rows_on_disk() {
    let sb = Sandbox::new();
    sb.write("long.toml", SPEC);
    let child = spawn(local(
        &sb,
        &[
            "run",
            "long.toml",
            "-q",
            "--set",
            "run.checkpoint_every=\"off\"",
        ],
    ));
    let partial = sb.path("long.h5.partial");
    let start = Instant::now();
    let iteration = |path: &std::path::Path| {
        std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
        hdf5::File::open(path)
            .and_then(|f| f.group("states/g")?.attr("iteration")?.read_scalar::<i64>())
            .unwrap_or(0)
    };
    while iteration(&partial) < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rows appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(&child.id().to_string(), "KILL");
    let (status, _) = finish(child);
    assert_eq!(status.code(), None, "killed by the signal");
    assert!(!has_checkpoint(&partial));
    let before = iteration(&partial);
    let o = sb.sampo_env(
        &["run", "--resume", "long.toml", "-q"],
        &[("SAMPO_INJECT_FAULT", "g:1")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        iteration(&partial) >= before,
        "iteration {} after the failed resume, {before} before",
        iteration(&partial)
    );
    assert!(rows_in(&sb, "long.h5.partial") >= before as u64);
    // A resume that goes through gives the uninterrupted run's samples.
    reference(&sb);
    assert_ok(&sb.sampo(&["run", "--resume", "long.toml", "-q"]));
    assert_same(&sb.path("ref.h5"), &sb.path("long.h5"));
}
