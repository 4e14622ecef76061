//! The same specs under `mpiexec -n 1, 2, 3`: bit-identical samples whatever
//! the layout, failures that end the job promptly, more ranks than tasks, and
//! spec errors under MPI.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Six tasks (three states of different dimension, two replicates).
const SIX_TASKS: &str = r#"
[run]
seed = 11
replicates = 2
[sampler]
walkers = 16
steps = 400
burn = 100
moves = [{ kind = "stretch", weight = 0.7 }, { kind = "de", weight = 0.3 }]
[[states]]
name = "g2"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
[[states]]
name = "r3"
model = { kind = "rosenbrock", dim = 3, a = 2.0, b = 5.0, mu = 0.5 }
prior = { kind = "normal", mean = [0.0, 0.0, 0.0], sd = [5.0, 5.0, 5.0] }
init = { kind = "ball", center = [0.5, 0.5, 0.5], radius = 0.05 }
[[states]]
name = "f5"
model = { kind = "funnel", dim = 5, sigma = 1.0 }
prior = { kind = "normal", mean = [0.0, 0.0, 0.0, 0.0, 0.0], sd = [5.0, 5.0, 5.0, 5.0, 5.0] }
walkers = 20
"#;

/// One state: fewer tasks than ranks, so its walkers are shared.
const ONE_TASK: &str = r#"
[run]
seed = 3
[sampler]
walkers = 14
steps = 300
moves = [{ kind = "stretch", weight = 0.5 }, { kind = "walk", s = 4, weight = 0.5 }]
[[states]]
name = "g3"
model = { kind = "gaussian", mean = [1.0, 2.0, 3.0], cov = [[1.0, 0.2, 0.0], [0.2, 1.0, 0.3], [0.0, 0.3, 1.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0, -20.0], high = [20.0, 20.0, 20.0] }
"#;

/// Runs `spec` locally at 1 thread and under each (ranks, threads) layout,
/// and checks every sample dataset is bit-identical to the local run.
fn assert_layout_invariant(text: &str, layouts: &[(usize, usize)]) {
    let sb = Sandbox::new();
    let spec = sb.write("s.toml", text);
    let spec = spec.to_str().unwrap();
    assert_ok(&sb.sampo(&["run", spec, "-q", "--threads", "1", "-o", "local.h5"]));
    let reference = sample_datasets(&sb.path("local.h5"));
    assert!(!reference.is_empty());
    for &(ranks, threads) in layouts {
        let out = format!("r{ranks}t{threads}.h5");
        let o = run_mpi(
            &sb,
            ranks,
            &[
                "run",
                spec,
                "-q",
                "--threads",
                &threads.to_string(),
                "-o",
                &out,
            ],
            &[],
        );
        assert_ok(&o);
        let path = sb.path(&out);
        let f = hdf5::File::open(&path).unwrap();
        let recorded: u64 = f.attr("ranks").unwrap().read_scalar().unwrap();
        assert_eq!(recorded, ranks as u64, "the run really used {ranks} ranks");
        let got = sample_datasets(&path);
        assert_eq!(got.len(), reference.len());
        for (a, b) in reference.iter().zip(&got) {
            assert_eq!((&a.0, &a.1), (&b.0, &b.1));
            let bits = |v: &Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&a.2) == bits(&b.2),
                "{} differs at {ranks} ranks × {threads} threads",
                a.0
            );
        }
    }
}

#[test]
fn samples_are_bit_identical_across_layouts_with_a_task_queue() {
    assert_layout_invariant(SIX_TASKS, &[(1, 1), (2, 1), (3, 2)]);
}

#[test]
fn samples_are_bit_identical_when_walkers_are_shared_across_ranks() {
    // 1 task on 2 and 3 ranks: one group sharing the 14 walkers.
    assert_layout_invariant(ONE_TASK, &[(2, 1), (3, 2)]);
    // Two states on three ranks: groups of two and one.
    let two_states = SIX_TASKS.replace("replicates = 2", "replicates = 1");
    let two_states = &two_states[..two_states.find("[[states]]\nname = \"f5\"").unwrap()];
    assert_layout_invariant(two_states, &[(3, 1)]);
}

#[test]
fn more_ranks_than_work_is_reported_not_an_error() {
    let sb = Sandbox::new();
    let text = ONE_TASK.replace("walkers = 14", "walkers = 6").replace(
        "moves = [{ kind = \"stretch\", weight = 0.5 }, { kind = \"walk\", s = 4, weight = 0.5 }]",
        "",
    );
    let spec = sb.write("s.toml", &text);
    let o = run_mpi(
        &sb,
        4,
        &["run", spec.to_str().unwrap(), "--threads", "1"],
        &[],
    );
    assert_ok(&o);
    // 3 walkers per half on 4 ranks: rank 3 owns none.
    assert!(
        stderr(&o).contains("ranks without work: [3]"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        read_i64_attr(&sb.path("s.h5"), "states/g3", "iteration"),
        300
    );
}

#[test]
fn a_failing_task_ends_the_job_promptly_with_its_context() {
    for (text, ranks, state) in [(SIX_TASKS, 3, "f5"), (ONE_TASK, 3, "g3")] {
        let sb = Sandbox::new();
        let spec = sb.write("s.toml", text);
        let start = Instant::now();
        let o = run_mpi(
            &sb,
            ranks,
            &["run", spec.to_str().unwrap(), "-q"],
            &[("SAMPO_INJECT_FAULT", &format!("{state}:300"))],
        );
        let took = start.elapsed();
        assert_ne!(o.status.code(), Some(0));
        assert!(took < Duration::from_secs(30), "took {took:?}");
        let err = stderr(&o);
        for needle in [
            "rank ",
            "task ",
            &format!("state `{state}`"),
            "seed ",
            "walker",
            "injected fault",
            "s.h5.partial",
        ] {
            assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
        }
        assert!(sb.path("s.h5.partial").exists() && !sb.path("s.h5").exists());
        assert!(read_str_attr(&sb.path("s.h5.partial"), "/", "status").starts_with("failed: "));
    }
}

#[test]
fn a_killed_worker_ends_the_job_within_seconds() {
    let sb = Sandbox::new();
    // Slow enough to be killed mid-run: 6 tasks × 16 walkers × 400 steps × 200 µs.
    let text = SIX_TASKS.replace("[[states]]\nname", "[[states]]\ncost_us = 200\nname");
    let spec = sb.write("slow.toml", &text);
    let child = mpiexec(&sb, 3, &["run", spec.to_str().unwrap(), "-q"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpiexec starts");
    // Wait until all three ranks are up and the run has begun (its output
    // exists; a run stopped before that leaves nothing behind), then kill
    // the newest rank (a worker) mid-run.
    let pids = wait_for_ranks(child.id(), 3, Duration::from_secs(20));
    wait_for_file(&sb.path("slow.h5.partial"));
    std::thread::sleep(Duration::from_millis(1000));
    let victim = *pids.iter().max().unwrap();
    Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    let killed = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "job took {:?} to end",
        killed.elapsed()
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        !sb.path("slow.h5").exists(),
        "an incomplete run must not be renamed into place"
    );
    assert!(sb.path("slow.h5.partial").exists());
}

/// The sampo processes that are descendants of `parent`.
fn wait_for_ranks(parent: u32, n: usize, limit: Duration) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let out = Command::new("pgrep")
            .args(["-f", &sampo_bin().display().to_string()])
            .output()
            .unwrap();
        let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| descends_from(p, parent))
            .collect();
        if pids.len() >= n {
            return pids;
        }
        assert!(start.elapsed() < limit, "ranks did not start: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    while pid > 1 {
        if pid == ancestor {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // The parent pid is the second field after the parenthesised name.
        let Some(rest) = stat.rsplit(')').next() else {
            return false;
        };
        pid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
    }
    false
}

#[test]
fn a_bad_spec_under_mpi_fails_on_rank_0_and_every_rank_exits_2() {
    let sb = Sandbox::new();
    let spec = sb.write("bad.toml", &ONE_TASK.replace("walkers = 14", "walkers = 5"));
    let o = run_mpi(&sb, 3, &["run", spec.to_str().unwrap()], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("bad.toml:5:").count(),
        1,
        "printed once, by rank 0:\n{err}"
    );
    assert!(
        err.contains("must be even") || err.contains("too few"),
        "{err}"
    );
    assert!(!sb.path("bad.h5.partial").exists());
    // An existing output is refused on every rank too.
    let good = sb.write("good.toml", ONE_TASK);
    std::fs::write(sb.path("good.h5"), b"keep").unwrap();
    let o = run_mpi(&sb, 2, &["run", good.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(sb.path("good.h5")).unwrap(), b"keep");
}

#[test]
fn timings_name_the_rank_of_every_task() {
    let sb = Sandbox::new();
    let spec = sb.write("s.toml", SIX_TASKS);
    let o = run_mpi(
        &sb,
        3,
        &["run", spec.to_str().unwrap(), "--threads", "1"],
        &[],
    );
    assert_ok(&o);
    assert!(
        stderr(&o).contains("load balance: busiest rank"),
        "{}",
        stderr(&o)
    );
    let ranks = hdf5::File::open(sb.path("s.h5"))
        .and_then(|f| f.dataset("timings/rank"))
        .and_then(|ds| ds.read_raw::<u64>())
        .unwrap();
    assert_eq!(ranks.len(), 6);
    assert!(ranks.iter().all(|&r| r < 3));
    let (_, evals) = read_f64(&sb.path("s.h5"), "timings/evaluations");
    assert!(evals.iter().all(|&e| e >= 16.0 * 401.0), "{evals:?}");
}

/// Independent chains with automatic stopping: rounds decided on rank 0
/// from the rows written, so the stopping point is the same everywhere.
const CHAINS_STOP: &str = r#"
[run]
seed = 21
[sampler]
kind = "chains"
chains = 5
burn = 500
thin = 2
[sampler.stop]
rhat = 1.05
ess = 300
check_every = 500
max_steps = 6000
[[states]]
name = "g"
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.8], [0.8, 2.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0], high = [20.0, 20.0] }
[[states]]
name = "f"
model = { kind = "funnel", dim = 3, sigma = 1.0 }
prior = { kind = "normal", mean = [0.0, 0.0, 0.0], sd = [5.0, 5.0, 5.0] }
"#;

#[test]
fn chains_with_automatic_stopping_are_bit_identical_across_layouts() {
    assert_layout_invariant(CHAINS_STOP, &[(1, 1), (2, 1), (3, 2)]);
}

/// An ensemble with emcee's stopping rule, each ensemble deciding from its
/// own chain: one state, so that at 2 and 3 ranks its walkers are shared
/// by a group of ranks (the lead decides, the members follow), and two
/// replicates of a second state run as separate tasks.
const ENSEMBLE_STOP: &str = r#"
[run]
seed = 33
[sampler]
walkers = 16
burn = 300
thin = 2
[sampler.stop]
check_every = 250
max_steps = 20000
[[states]]
name = "g"
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.8], [0.8, 2.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0], high = [20.0, 20.0] }
"#;

#[test]
fn ensembles_with_automatic_stopping_are_bit_identical_across_layouts() {
    assert_layout_invariant(ENSEMBLE_STOP, &[(1, 1), (2, 1), (3, 2)]);
    let replicated = ENSEMBLE_STOP.replace("seed = 33", "seed = 33\nreplicates = 2");
    assert_layout_invariant(&replicated, &[(2, 1), (3, 1)]);
}

fn states(n: usize, cost_us: u64) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[states]]\nname = \"s{i}\"\nmodel = {{ kind = \"gaussian\", mean = [0.0], cov = [[1.0]] }}\n\
                 prior = {{ kind = \"uniform\", low = [-5.0], high = [5.0] }}\ncost_us = {cost_us}\n"
            )
        })
        .collect()
}

/// Sends SIGSTOP to rank `rank` of `sampo run <name>.toml` once rows are on
/// disk (every rank is past start-up, in the scheduler); returns its PID.
fn stop_rank_once_sampling(sb: &Sandbox, name: &str, rank: usize, start: Instant) -> String {
    let pid = loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rank {rank} never started sampling"
        );
        let found = pid_of_rank(&format!("{name}.toml"), rank);
        if let Some(p) = found.filter(|_| rows_in(sb, &format!("{name}.h5.partial")) > 0) {
            break p;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    pid
}

/// Three one-thread states of 8 walkers × 20 000 steps at 250 µs an
/// evaluation, with a 3 s rank timeout: one task a rank of three, long
/// enough to stop a rank mid-run.
fn queue_of_three() -> String {
    format!(
        "[run]\nseed = 1\n[parallel]\nthreads = 1\ntimeout = 3\n[sampler]\nwalkers = 8\nsteps = 20000\n{}",
        states(3, 250)
    )
}

/// `sampo run <name>.toml` on 3 ranks, its stderr in `<name>.err`.
fn spawn_logged(sb: &Sandbox, name: &str) -> std::process::Child {
    let log = std::fs::File::create(sb.path(&format!("{name}.err"))).unwrap();
    mpiexec(sb, 3, &["run", &format!("{name}.toml"), "-q"], &[])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits for a job whose rank `stopped` was sent SIGSTOP to end (within a
/// minute of `since`), then makes sure that rank is gone too.
fn ended_after_stop(
    child: &mut std::process::Child,
    stopped: &str,
    since: Instant,
    log: &std::path::Path,
) -> std::process::ExitStatus {
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if since.elapsed() > Duration::from_secs(60) {
            // What every process of the job was doing, for the report.
            let ps = Command::new("ps")
                .args(["-eo", "pid,ppid,stat,etime,wchan:32,args"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let job: Vec<&str> = ps.lines().filter(|l| l.contains("sampo")).collect();
            let _ = Command::new("kill").args(["-KILL", stopped]).status();
            child.kill().unwrap();
            panic!(
                "the job did not end within 60 s of rank {stopped} stopping; its processes:\n{}\n\
                 its stderr:\n{}",
                job.join("\n"),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill").args(["-KILL", stopped]).status();
    status
}

#[test]
fn a_silent_rank_ends_the_job_and_a_busy_one_does_not() {
    let sb = Sandbox::new();
    // Evaluations of 2.2 s against a 2 s timeout: busy, not silent.
    sb.write(
        "busy.toml",
        &format!(
            "[run]\nseed = 1\n[parallel]\nthreads = 1\ntimeout = 2\n[sampler]\nwalkers = 2\nsteps = 1\n{}",
            states(3, 2_200_000)
        ),
    );
    assert_ok(&run_mpi(&sb, 3, &["run", "busy.toml", "-q"], &[]));
    // A rank stopped with SIGSTOP: found within the timeout, the job ends.
    sb.write("live.toml", &queue_of_three());
    let start = Instant::now();
    let mut child = spawn_logged(&sb, "live");
    let rank2 = stop_rank_once_sampling(&sb, "live", 2, start);
    let status = ended_after_stop(&mut child, &rank2, Instant::now(), &sb.path("live.err"));
    let err = std::fs::read_to_string(sb.path("live.err")).unwrap_or_default();
    assert!(!status.success(), "{err}");
    let message = read_str_attr(&sb.path("live.h5.partial"), "/", "status");
    assert!(
        message.contains("rank 2 has not answered for 3 s"),
        "status: {message}\nstderr: {err}"
    );
}

/// Rank 0 stopped (SIGSTOP) in queue mode: the workers, which hear from it
/// at least every second, find it silent within the timeout and end the
/// job, naming it; the rows flushed before stay readable.
#[test]
fn a_stopped_rank_0_ends_the_job() {
    let sb = Sandbox::new();
    sb.write("root.toml", &queue_of_three());
    let start = Instant::now();
    let mut child = spawn_logged(&sb, "root");
    let rank0 = stop_rank_once_sampling(&sb, "root", 0, start);
    let stopped = Instant::now();
    let status = ended_after_stop(&mut child, &rank0, stopped, &sb.path("root.err"));
    let err = std::fs::read_to_string(sb.path("root.err")).unwrap_or_default();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("rank 0 has not answered for 3 s"),
        "after {:?}: {err}",
        stopped.elapsed()
    );
    assert!(rows_in(&sb, "root.h5.partial") > 0);
}

/// Ranks sharing one task wait for each other inside MPI collectives, where
/// rank 0 cannot listen: a stopped member must still end the job (the
/// watchdog of each rank), not hang it.
#[test]
fn a_stopped_rank_sharing_a_task_ends_the_job() {
    let sb = Sandbox::new();
    sb.write(
        "shared.toml",
        &format!(
            "[run]\nseed = 1\n[parallel]\nthreads = 1\ntimeout = 3\n[sampler]\nwalkers = 12\nsteps = 40000\n{}",
            states(1, 100)
        ),
    );
    let start = Instant::now();
    let mut child = spawn_logged(&sb, "shared");
    let rank2 = stop_rank_once_sampling(&sb, "shared", 2, start);
    let status = ended_after_stop(&mut child, &rank2, Instant::now(), &sb.path("shared.err"));
    let err = std::fs::read_to_string(sb.path("shared.err")).unwrap_or_default();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("sharing task group 0 has not completed for 3 s"),
        "{err}"
    );
    // What was flushed stays readable.
    assert!(rows_in(&sb, "shared.h5.partial") > 0);
}
