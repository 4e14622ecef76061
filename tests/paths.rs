//! `kind = "paths"` through the binary: the same file on every layout,
//! SIGTERM then `--resume` to the same bits, and bad processes stopped by
//! `check` and `run` with exit 2 at their line.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// A chain with a hitting set and an absorbing state, and an OU process,
/// every path stored and statistics.
const TWO: &str = r#"
[run]
seed = 4
[sampler]
kind = "paths"
paths = 30000
steps = 200
chunk = 700
record = "both"
statistics = { every = 10 }
[[states]]
name = "w"
process = { kind = "markov-chain", labels = ["a", "b", "z"], transition = [[0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.0, 0.0, 1.0]], x0 = { distribution = [0.5, 0.5, 0.0] } }
hitting = ["b"]
[[states]]
name = "o"
process = { kind = "ou", theta = 0.5, mu = 1.0, sigma = 0.3, x0 = 0.0, dt = 0.05 }
[[states]]
name = "q"
process = { kind = "mm1-queue", arrival_rate = 1.0, service_rate = 1.2, capacity = 8 }
hitting = [5]
"#;

/// Every dataset of both states, as bits.
fn datasets(path: &std::path::Path, names: &[(&str, &[&str])]) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    for (state, sets) in names {
        for name in *sets {
            let p = format!("paths/{state}/{name}");
            let (_, values) = read_f64(path, &p);
            out.push((p, values.iter().map(|v| v.to_bits()).collect()));
        }
    }
    out
}

const TWO_SETS: &[(&str, &[&str])] = &[
    (
        "w",
        &[
            "times",
            "partials",
            "statistics",
            "occupation",
            "occupation_se",
            "quantiles",
            "hitting",
            "absorption",
            "states",
        ],
    ),
    ("o", &["times", "partials", "statistics", "states"]),
    (
        "q",
        &[
            "partials",
            "statistics",
            "occupation",
            "time_statistics",
            "hitting",
            "states",
            "path_times",
        ],
    ),
];

#[test]
fn every_layout_writes_the_same_file() {
    let sb = Sandbox::new();
    sb.write("p.toml", TWO);
    assert_ok(&sb.sampo(&["run", "p.toml", "-o", "one.h5", "--threads", "1", "-q"]));
    let reference = datasets(&sb.path("one.h5"), TWO_SETS);
    // Every path stored, none left not run.
    let (shape, states) = read_f64(&sb.path("one.h5"), "paths/w/states");
    assert_eq!(shape, vec![30000, 21]);
    assert!(states.iter().all(|v| (0.0..=2.0).contains(v)));
    for (ranks, threads) in [(1, 2), (2, 1), (3, 2)] {
        let out = format!("l{ranks}x{threads}.h5");
        let t = threads.to_string();
        let args = ["run", "p.toml", "-o", &out, "--threads", &t, "-q"];
        let o = if ranks == 1 {
            sb.sampo(&args)
        } else {
            run_mpi(&sb, ranks, &args, &[])
        };
        assert_ok(&o);
        assert!(
            datasets(&sb.path(&out), TWO_SETS) == reference,
            "{ranks} × {threads} differs"
        );
    }
    // `summary` shows the tables from the file.
    let o = sb.sampo(&["summary", "one.h5", "--format", "json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["states"][0]["paths"], 30000);
    assert_eq!(v["states"][0]["times"].as_array().unwrap().len(), 21);
    assert_eq!(v["absorption"][0]["absorbing"][0]["label"], "z");
}

#[test]
fn a_signalled_run_resumes_to_the_same_bits() {
    let sb = Sandbox::new();
    // 3·10⁸ transitions: two seconds or more on one thread.
    let spec = r#"
[run]
seed = 8
[sampler]
kind = "paths"
paths = 300000
steps = 1000
chunk = 2000
statistics = { every = 100 }
[[states]]
name = "w"
process = { kind = "markov-chain", transition = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.4, 0.4, 0.2]], x0 = 0 }
hitting = [2]
"#;
    sb.write("s.toml", spec);
    assert_ok(&sb.sampo(&["run", "s.toml", "-o", "whole.h5", "-q", "--threads", "2"]));
    let sets: &[(&str, &[&str])] = &[(
        "w",
        &[
            "partials",
            "statistics",
            "occupation",
            "quantiles",
            "hitting",
        ],
    )];
    let reference = datasets(&sb.path("whole.h5"), sets);
    pause_and_resume(
        &sb,
        "s.toml",
        "p.h5",
        &["--threads", "1"],
        Duration::from_millis(400),
        &["--threads", "2"],
    );
    assert!(
        datasets(&sb.path("p.h5"), sets) == reference,
        "resumed run differs"
    );
}

#[test]
fn bad_processes_stop_before_any_work() {
    let sb = Sandbox::new();
    let spec = |process: &str| {
        format!("[sampler]\nkind = \"paths\"\npaths = 10\n[[states]]\nname = \"s\"\nprocess = {process}\n")
    };
    refused(
        &sb,
        &spec("{ kind = \"markov-chain\", transition = [[0.5, 0.5], [0.6, 0.3]], x0 = 0 }"),
        6,
        "transition row 1 (`1`) sums to 0.899",
    );
    refused(
        &sb,
        &spec("{ kind = \"markov-chain\", labels = [\"a\", \"b\"], transition = [[1.0, 0.0], [0.5, 0.5]], x0 = \"c\" }"),
        6,
        "x0 = \"c\" is not one of the labels [a, b]",
    );
    refused(
        &sb,
        &spec("{ kind = \"ou\", theta = -1.0, mu = 0.0, sigma = 1.0, x0 = 0.0, dt = 0.1 }"),
        6,
        "theta = -1: the mean-reversion rate is > 0",
    );
    refused(
        &sb,
        &spec("{ kind = \"gbm\", mu = 0.1, sigma = -0.2, s0 = 1.0, dt = 0.1 }"),
        6,
        "sigma = -0.2: a volatility is ≥ 0",
    );
    refused(
        &sb,
        &spec("{ kind = \"gbm\", mu = 0.1, sigma = 0.2, s0 = 1.0, dt = 0.0 }"),
        6,
        "dt = 0: the time step is > 0",
    );
    refused(
        &sb,
        &spec("{ kind = \"random-walk\", p = 0.5, x0 = 7, lower = 0, upper = 5 }"),
        6,
        "x0 = 7 is outside [lower, upper] = [0, 5]",
    );
    refused(
        &sb,
        &format!(
            "{}hitting = [\"q\"]\n",
            spec("{ kind = \"markov-chain\", transition = [[1.0]], x0 = 0 }")
        ),
        7,
        "hitting: \"q\" is not one of the labels [0]",
    );
    refused(
        &sb,
        &spec("{ kind = \"mm1-queue\", arrival_rate = -1.0, service_rate = 1.0, capacity = 5 }"),
        6,
        "arrival_rate = -1: a rate is > 0",
    );
    refused(
        &sb,
        &spec("{ kind = \"mm1-queue\", arrival_rate = 1.0, service_rate = 1.0, capacity = 5, x0 = 6 }"),
        6,
        "x0 = 6 is outside [0, capacity] = [0, 5]",
    );
    refused(
        &sb,
        &spec("{ kind = \"poisson\", rate = 2.0, dt = -0.5 }"),
        6,
        "dt = -0.5: the time step is > 0",
    );
    refused(
        &sb,
        &spec("{ kind = \"plugin\", library = \"./nowhere.so\" }"),
        6,
        "no such file",
    );
    // A library without the process functions.
    let gaussian = c_example("libgaussian.so");
    refused(
        &sb,
        &spec(&format!(
            "{{ kind = \"plugin\", library = \"{gaussian}\" }}"
        )),
        6,
        "does not export sampo_process_start and sampo_process_step",
    );
    // A process plugin whose init refuses its config.
    let ou = c_example("libou_process.so");
    refused(
        &sb,
        &spec(&format!(
            "{{ kind = \"plugin\", library = \"{ou}\", config = {{ theta = 1.0 }} }}"
        )),
        6,
        "config.mu: expected a number",
    );
}

/// A process plugin failing mid-path stops the run with the state, the
/// path, the step, the function and its status.
#[test]
fn a_failing_process_plugin_is_reported_with_its_path_and_step() {
    let sb = Sandbox::new();
    let lib = faulty(&sb, "libfaulty.so", &["-DSAFETY=0"]);
    sb.write(
        "f.toml",
        &format!(
            "[sampler]\nkind = \"paths\"\npaths = 100\nsteps = 10\n[[states]]\nname = \"w\"\n\
             process = {{ kind = \"plugin\", library = \"{lib}\", config = {{ fail_after = 205 }} }}\n"
        ),
    );
    assert_ok(&sb.sampo(&["check", "f.toml"]));
    let o = sb.sampo(&["run", "f.toml", "--threads", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    // 205 steps succeed: paths 0..=19 whole, path 20 to step 5.
    for needle in [
        "state `w`",
        "path 20",
        "sampo_process_step",
        "status 3 at step 6",
    ] {
        assert!(e.contains(needle), "{needle:?} not in {e}");
    }
}

/// A library of examples/plugins/c, built once per test binary.
fn c_example(name: &str) -> String {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = repo().join("examples/plugins/c");
    BUILT.call_once(|| {
        let o = Command::new("make")
            .arg("-C")
            .arg(&dir)
            .output()
            .expect("make runs");
        assert!(
            o.status.success(),
            "make: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    });
    dir.join(name).display().to_string()
}

/// A user's process from a C library, drawing from each path's stream,
/// gives the paths of the built-in process it reimplements bit for bit,
/// on one thread, two threads and two ranks.
#[test]
fn a_process_plugin_draws_from_the_paths_streams() {
    let sb = Sandbox::new();
    let ou = c_example("libou_process.so");
    let spec = |process: &str| {
        format!(
            "[run]\nseed = 9\n[sampler]\nkind = \"paths\"\npaths = 3000\nsteps = 60\nchunk = 250\n\
             record = \"both\"\nstatistics = {{ every = 5 }}\n[[states]]\nname = \"r\"\nprocess = {process}\n"
        )
    };
    let sets: &[(&str, &[&str])] = &[("r", &["times", "partials", "statistics", "states"])];
    sb.write(
        "builtin.toml",
        &spec("{ kind = \"ou\", theta = 2.0, mu = 0.5, sigma = 0.3, x0 = 1.0, dt = 0.05 }"),
    );
    sb.write(
        "plugin.toml",
        &spec(&format!(
            "{{ kind = \"plugin\", library = \"{ou}\", dt = 0.05, config = {{ theta = 2.0, \
             mu = 0.5, sigma = 0.3, x0 = 1.0, dt = 0.05 }} }}"
        )),
    );
    assert_ok(&sb.sampo(&["run", "builtin.toml", "-o", "b.h5", "-q"]));
    let reference = datasets(&sb.path("b.h5"), sets);
    for (ranks, threads) in [(1, 1), (1, 2), (2, 1)] {
        let out = format!("p{ranks}x{threads}.h5");
        let t = threads.to_string();
        let args = ["run", "plugin.toml", "-o", &out, "--threads", &t, "-q"];
        let o = if ranks == 1 {
            sb.sampo(&args)
        } else {
            run_mpi(&sb, ranks, &args, &[])
        };
        assert_ok(&o);
        assert!(
            datasets(&sb.path(&out), sets) == reference,
            "the plugin's paths differ from the built-in's on {ranks} × {threads}"
        );
    }
    assert_eq!(
        read_str_attr(&sb.path("p1x1.h5"), "paths/r", "process"),
        "plugin"
    );
}

/// Every dataset under `/paths`, by path, with its shape and bits.
fn every_dataset(path: &std::path::Path) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    let f = hdf5::File::open(path).expect("open output");
    let mut out = Vec::new();
    for state in f.group("paths").unwrap().member_names().unwrap() {
        let g = f.group(&format!("paths/{state}")).unwrap();
        for name in g.member_names().unwrap() {
            let p = format!("paths/{state}/{name}");
            let (shape, values) = read_f64(path, &p);
            out.push((p, shape, values.iter().map(|v| v.to_bits()).collect()));
        }
    }
    out.sort();
    out
}

/// `sampo run --resume <spec> -o <out> --set sampler.paths=<paths> …`.
fn more_paths(sb: &Sandbox, spec: &str, out: &str, paths: u64, more: &[&str]) -> Output {
    let set = format!("sampler.paths={paths}");
    let mut args = vec!["run", "--resume", spec, "-o", out, "-q", "--set", &set];
    args.extend(more);
    sb.sampo(&args)
}

/// The extended file holds the datasets of the run that asked for its
/// paths from the start, and records its spec.
fn assert_same_run(sb: &Sandbox, reference: &str, extended: &str) {
    let (a, b) = (sb.path(reference), sb.path(extended));
    let (x, y) = (every_dataset(&a), every_dataset(&b));
    assert_eq!(
        x.iter().map(|d| &d.0).collect::<Vec<_>>(),
        y.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    for (d, e) in x.iter().zip(&y) {
        assert!(d == e, "{} differs from {reference}'s", e.0);
    }
    for attr in ["resolved_spec", "status"] {
        assert_eq!(read_str_attr(&a, "/", attr), read_str_attr(&b, "/", attr));
    }
    assert!(!sb.path(&format!("{extended}.partial")).exists());
}

/// Raising `paths` and `--resume` extend a complete run to the datasets of
/// the run that asked for as many paths from the start — every path and
/// every statistic, bit for bit, on one thread and on two ranks, whether
/// the last chunk of each state was whole or grows — and anything else
/// changed is refused before any work, leaving the file as it was.
#[test]
fn more_paths_extend_a_run_bit_for_bit() {
    let sb = Sandbox::new();
    let spec = TWO
        .replace("paths = 30000", "paths = 1500")
        .replace("chunk = 700", "chunk = 400");
    sb.write("e.toml", &spec);
    let one = ["--threads", "1"];
    // 1500 paths (chunks of 400: the last holds 300) → 4100, on 1 × 1.
    assert_ok(&sb.sampo(&["run", "e.toml", "-o", "e.h5", "-q", "--threads", "1"]));
    let o = sb.sampo(&[
        "run",
        "e.toml",
        "-o",
        "r4100.h5",
        "-q",
        "--threads",
        "2",
        "--set",
        "sampler.paths=4100",
    ]);
    assert_ok(&o);
    let o = more_paths(&sb, "e.toml", "e.h5", 4100, &one);
    assert_ok(&o);
    assert_same_run(&sb, "r4100.h5", "e.h5");
    let (shape, _) = read_f64(&sb.path("e.h5"), "paths/w/states");
    assert_eq!(shape, vec![4100, 21]);
    assert_eq!(read_u64_attr(&sb.path("e.h5"), "paths/w", "paths"), 4100);
    // 4100 → 6000 on two ranks.
    let o = sb.sampo(&[
        "run",
        "e.toml",
        "-o",
        "r6000.h5",
        "-q",
        "--threads",
        "1",
        "--set",
        "sampler.paths=6000",
    ]);
    assert_ok(&o);
    let resume = [
        "run",
        "--resume",
        "e.toml",
        "-o",
        "e.h5",
        "-q",
        "--threads",
        "1",
        "--set",
        "sampler.paths=6000",
    ];
    assert_ok(&run_mpi(&sb, 2, &resume, &[]));
    assert_same_run(&sb, "r6000.h5", "e.h5");

    // Refusals, before any work: the file stays byte for byte.
    let before = std::fs::read(sb.path("e.h5")).unwrap();
    for (sets, needle) in [
        (
            vec!["sampler.paths=5000"],
            "paths 6000 → 5000: a run can be extended, not shortened",
        ),
        (vec!["sampler.paths=7000", "run.seed=5"], "seed: 4 → 5"),
        (
            vec!["sampler.paths=7000", "sampler.steps=300"],
            "only paths may change",
        ),
        (vec!["sampler.paths=6000"], "e.h5 is complete"),
    ] {
        let mut args = vec!["run", "--resume", "e.toml", "-o", "e.h5", "-q"];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let o = sb.sampo(&args);
        assert_eq!(o.status.code(), Some(2), "{sets:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{sets:?}: {}", stderr(&o));
        assert!(
            std::fs::read(sb.path("e.h5")).unwrap() == before,
            "{sets:?} changed the file"
        );
        assert!(!sb.path("e.h5.partial").exists());
    }

    // Statistics only, and paths only, with the automatic chunk (the same
    // for any paths: here one chunk a state, which grows).
    let auto = TWO
        .replace("paths = 30000", "paths = 1100")
        .replace("chunk = 700\n", "");
    for record in ["statistics", "paths"] {
        let spec = auto.replace("record = \"both\"", &format!("record = \"{record}\""));
        sb.write("s.toml", &spec);
        let (out, reference) = (format!("{record}.h5"), format!("r-{record}.h5"));
        assert_ok(&sb.sampo(&["run", "s.toml", "-o", &out, "-q", "--threads", "2"]));
        let set = ["--threads", "1", "--set", "sampler.paths=2500"];
        let mut args = vec!["run", "s.toml", "-o", &reference, "-q"];
        args.extend(set);
        assert_ok(&sb.sampo(&args));
        assert_ok(&more_paths(&sb, "s.toml", &out, 2500, &[]));
        assert_same_run(&sb, &reference, &out);
    }
    let stats = auto.replace("record = \"both\"", "record = \"statistics\"");

    // Fewer first paths than set a histogram's bins: refused, and said why.
    sb.write("h.toml", &stats.replace("paths = 1100", "paths = 500"));
    assert_ok(&sb.sampo(&["run", "h.toml", "-o", "h.h5", "-q"]));
    let before = std::fs::read(sb.path("h.h5")).unwrap();
    let o = more_paths(&sb, "h.toml", "h.h5", 2000, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("state `o`"), "{}", stderr(&o));
    assert!(stderr(&o).contains("first 1024 paths"), "{}", stderr(&o));
    assert!(std::fs::read(sb.path("h.h5")).unwrap() == before);
}
