//! `kind = "paths"` through the binary: the same file on every layout,
//! SIGTERM then `--resume` to the same bits, and bad processes stopped by
//! `check` and `run` with exit 2 at their line.

mod common;

use std::process::{Command, Stdio};
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
    // About 2·10⁸ transitions: a second or more on one thread.
    let spec = r#"
[run]
seed = 8
[sampler]
kind = "paths"
paths = 200000
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
    let mut child = Command::new(sampo_bin())
        .current_dir(sb.path(""))
        .args(["run", "s.toml", "-o", "p.h5", "-q", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(75), "the run should pause");
    let o = sb.sampo(&[
        "run",
        "--resume",
        "s.toml",
        "-o",
        "p.h5",
        "-q",
        "--threads",
        "2",
    ]);
    assert_ok(&o);
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
}
