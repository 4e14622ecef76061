//! `kind = "batch"` through the binary: the same file on every layout,
//! pause and resume to the same bits, `kill -9` leaving readable rows, the
//! errors that stop a run before any work, failed items stopping the run
//! or recorded, and validation catching a model that is not deterministic.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Two states of the built-in decay: 3000 and 1000 items in chunks of 70.
const DECAY: &str = r#"
[run]
seed = 3
[sampler]
kind = "batch"
items = 3000
chunk = 70
validate = 7
[[states]]
name = "a"
params = ["amplitude", "tau"]
model = { kind = "decay", times = [0.5, 1.0, 2.0, 4.0] }
prior = { kind = "uniform", low = [1.0, 0.5], high = [2.0, 3.0] }
[[states]]
name = "b"
params = ["amplitude", "tau"]
model = { kind = "decay", times = [1.0] }
prior = { kind = "log-uniform", low = [0.1, 0.1], high = [10.0, 10.0] }
"#;

/// Every dataset of every state, for exact comparisons.
fn batch_datasets(path: &std::path::Path) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    let mut out = Vec::new();
    for state in ["a", "b"] {
        for name in ["inputs", "outputs", "status", "statistics"] {
            let p = format!("batch/{state}/{name}");
            let (shape, values) = read_f64(path, &p);
            // Bits, so that NaN compares equal to NaN.
            out.push((p, shape, values.iter().map(|v| v.to_bits()).collect()));
        }
    }
    out
}

#[test]
fn every_layout_writes_the_same_file() {
    let sb = Sandbox::new();
    sb.write("d.toml", DECAY);
    let o = sb.sampo(&["run", "d.toml", "-o", "one.h5", "--threads", "1", "-q"]);
    assert_ok(&o);
    let reference = batch_datasets(&sb.path("one.h5"));
    // The closed form, bit for bit, and every item run.
    let (_, x) = read_f64(&sb.path("one.h5"), "batch/a/inputs");
    let (_, y) = read_f64(&sb.path("one.h5"), "batch/a/outputs");
    let (_, status) = read_f64(&sb.path("one.h5"), "batch/a/status");
    for i in 0..3000 {
        for (k, t) in [0.5f64, 1.0, 2.0, 4.0].iter().enumerate() {
            assert_eq!(y[4 * i + k], x[2 * i] * (-t / x[2 * i + 1]).exp());
        }
    }
    assert!(status.iter().all(|&s| s == 0.0));
    for (ranks, threads) in [(1, 2), (2, 1), (3, 2)] {
        let out = format!("l{ranks}x{threads}.h5");
        let t = threads.to_string();
        let args = ["run", "d.toml", "-o", &out, "--threads", &t, "-q"];
        let o = if ranks == 1 {
            sb.sampo(&args)
        } else {
            run_mpi(&sb, ranks, &args, &[])
        };
        assert_ok(&o);
        assert!(
            batch_datasets(&sb.path(&out)) == reference,
            "{ranks} × {threads} differs"
        );
    }
    // `summary` shows the statistics the run printed.
    let o = sb.sampo(&["summary", "one.h5", "--format", "json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["states"][0]["items"], 3000);
    assert_eq!(v["states"][0]["outputs"][0]["count"], 3000);
    assert_eq!(v["states"][1]["validate_max_rel"], 0.0);
}

#[test]
fn a_paused_run_resumes_to_the_same_bits_and_a_killed_one_keeps_its_rows() {
    let sb = Sandbox::new();
    // 1.5 ms an item of state a: 4.5 s on one thread.
    let slow = DECAY.replace(
        "[[states]]\nname = \"b\"",
        "cost_us = 1500\n[[states]]\nname = \"b\"",
    );
    sb.write("d.toml", &slow);
    assert_ok(&sb.sampo(&["run", "d.toml", "-o", "whole.h5", "-q"]));
    let reference = batch_datasets(&sb.path("whole.h5"));

    // SIGTERM half-way: exit 75, then --resume (on another layout).
    pause_and_resume(
        &sb,
        "d.toml",
        "p.h5",
        &["--threads", "1"],
        Duration::from_millis(300),
        &["--threads", "2"],
    );
    assert!(
        batch_datasets(&sb.path("p.h5")) == reference,
        "resumed run differs"
    );

    // kill -9 half-way: the rows flushed are whole, the rest not run.
    let mut child = Command::new(sampo_bin())
        .current_dir(sb.path(""))
        .args(["run", "d.toml", "-o", "k.h5", "-q", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = sb.path("k.h5.partial");
    let since = Instant::now();
    wait_for_file(&partial);
    // Past the first flush (every 2 s).
    std::thread::sleep(Duration::from_millis(2600));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(since.elapsed() < Duration::from_secs(30));
    let (_, status) = read_f64(&partial, "batch/a/status");
    let (_, x) = read_f64(&partial, "batch/a/inputs");
    let (_, whole_x) = read_f64(&sb.path("whole.h5"), "batch/a/inputs");
    let done = status.iter().filter(|&&s| s == 0.0).count();
    assert!(done > 0, "no row flushed before the kill");
    for (i, &s) in status.iter().enumerate() {
        if s == 0.0 {
            assert_eq!(&x[2 * i..2 * i + 2], &whole_x[2 * i..2 * i + 2], "item {i}");
        } else {
            assert_eq!(s, -1.0, "item {i} neither done nor not run");
        }
    }
}

#[test]
fn bad_batch_specs_stop_before_any_work() {
    let sb = Sandbox::new();
    let no_forward = faulty(&sb, "nofwd.so", &["-DNO_FORWARD"]);
    let only_forward = faulty(&sb, "onlyfwd.so", &["-DNO_LOG_DENSITY"]);
    let state = |model: &str| {
        format!(
            "[sampler]\nkind = \"batch\"\nitems = 10\n[[states]]\nname = \"s\"\n\
             params = [\"x\", \"y\"]\nmodel = {model}\n\
             prior = {{ kind = \"uniform\", low = [0.0, 0.0], high = [1.0, 1.0] }}\n"
        )
    };
    let plugin = |lib: &str, config: &str| {
        format!("{{ kind = \"plugin\", library = \"{lib}\", config = {config} }}")
    };
    refused(
        &sb,
        &state(&plugin(&no_forward, "{ outputs = 3 }")),
        7,
        "missing function `sampo_forward`",
    );
    refused(
        &sb,
        &state(&plugin(&only_forward, "{}")),
        7,
        "n_outputs = 0",
    );
    // A forward-only library is no model to sample.
    refused(
        &sb,
        &format!(
            "[[states]]\nname = \"s\"\nmodel = {}\n\
             prior = {{ kind = \"uniform\", low = [0.0], high = [1.0] }}\n",
            plugin(&only_forward, "{ outputs = 2 }")
        ),
        3,
        "missing function `sampo_log_density`",
    );
    let decay = "{ kind = \"decay\", times = [1.0] }";
    let with = |sampler: &str| {
        format!(
            "[sampler]\nkind = \"batch\"\n{sampler}\n[[states]]\nname = \"s\"\n\
             params = [\"a\", \"t\"]\nmodel = {decay}\n"
        )
    };
    refused(
        &sb,
        &with("design = { kind = \"grid\", a = { linspace = [0, 1, 1000000] }, t = { logspace = [1, 2, 10000000] } }"),
        3,
        "more than",
    );
    refused(
        &sb,
        &with("design = { kind = \"grid\", a = { values = [1] }, tau = { values = [1] } }"),
        3,
        "no axis for parameter `t`",
    );
    sb.write("cols.csv", "a,b\n1,2\n");
    refused(
        &sb,
        &with("design = { kind = \"file\", path = \"cols.csv\" }"),
        3,
        "has no column `t`",
    );
    refused(&sb, &with("items = 5"), 4, "draws from the state's prior");
    // A busy-wait of 30 years per evaluation is bounded, not run.
    refused(
        &sb,
        &format!(
            "{}cost_us = 1000000000000000\n",
            with("design = { kind = \"grid\", a = { values = [1] }, t = { values = [1] } }")
        ),
        8,
        "cost_us must be at most 3600000000",
    );
    refused(
        &sb,
        &with("design = { kind = \"sobel\" }"),
        3,
        "expected one of \"random\"",
    );
    refused(
        &sb,
        &format!(
            "{}prior = {{ kind = \"uniform\", low = [0.0, 1.0], high = [1.0, 2.0] }}\n",
            with("items = 5\nvalidate = 6")
        ),
        4,
        "validate must be at most",
    );
    refused(
        &sb,
        &format!(
            "{}outputs = [\"u\", \"v\"]\n",
            with("design = { kind = \"grid\", a = { values = [1] }, t = { values = [1] } }")
        ),
        8,
        "output names: 2 names for a model with 1 outputs",
    );
    // A key of a sampling kind is named as such.
    refused(
        &sb,
        &with("walkers = 8"),
        3,
        "it is a key of kind = \"ensemble\"",
    );
}

#[test]
fn a_failed_item_stops_the_run_or_is_recorded() {
    let sb = Sandbox::new();
    let lib = faulty(&sb, "f.so", &[]);
    let spec = |on_error: &str| {
        format!(
            "[run]\nseed = 2\n[sampler]\nkind = \"batch\"\nitems = 400\non_error = \"{on_error}\"\n\
             [[states]]\nname = \"s\"\nparams = [\"x\", \"y\"]\n\
             model = {{ kind = \"plugin\", library = \"{lib}\", config = {{ outputs = 2, fail_above = 0.9 }} }}\n\
             prior = {{ kind = \"uniform\", low = [0.0, 0.0], high = [1.0, 1.0] }}\n"
        )
    };
    sb.write("fail.toml", &spec("fail"));
    let o = sb.sampo(&["run", "fail.toml", "-q"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("(an evaluation failed)"), "{err}");
    assert!(err.contains("state `s`, item "), "{err}");
    assert!(err.contains("(status 5)"), "{err}");
    assert!(sb.path("fail.h5.partial").exists());

    sb.write("record.toml", &spec("record"));
    let o = sb.sampo(&["run", "record.toml", "-q"]);
    assert_ok(&o);
    let f = sb.path("record.h5");
    let (_, x) = read_f64(&f, "batch/s/inputs");
    let (_, y) = read_f64(&f, "batch/s/outputs");
    let (_, status) = read_f64(&f, "batch/s/status");
    let mut failed = 0;
    for i in 0..400 {
        if x[2 * i] > 0.9 {
            failed += 1;
            assert_eq!(status[i], 5.0);
            assert!(y[2 * i].is_nan() && y[2 * i + 1].is_nan());
        } else {
            let s = x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1];
            assert_eq!((status[i], y[2 * i], y[2 * i + 1]), (0.0, s, 2.0 * s));
        }
    }
    // About a tenth of the items fail.
    assert!((20..70).contains(&failed), "{failed}");
    assert_eq!(read_u64_attr(&f, "batch/s", "failed"), failed as u64);
    let messages = hdf5::File::open(&f)
        .unwrap()
        .dataset("batch/s/messages")
        .unwrap()
        .read_raw::<hdf5::types::FixedUnicode<64>>()
        .unwrap();
    let i = (0..400).find(|&i| status[i] == 5.0).unwrap();
    assert!(
        messages[i].as_str().starts_with("sampo_forward of library"),
        "{}",
        messages[i]
    );
    // The statistics count only the items that succeeded.
    let (_, stats) = read_f64(&f, "batch/s/statistics");
    assert_eq!(stats[0], (400 - failed) as f64);
}

#[test]
fn validation_catches_a_model_that_is_not_deterministic() {
    let sb = Sandbox::new();
    let lib = faulty(&sb, "f.so", &[]);
    let spec = |jitter: f64| {
        format!(
            "[sampler]\nkind = \"batch\"\nitems = 200\nvalidate = 10\n\
             [[states]]\nname = \"s\"\nparams = [\"x\", \"y\"]\n\
             model = {{ kind = \"plugin\", library = \"{lib}\", config = {{ outputs = 1, jitter = {jitter:e} }} }}\n\
             prior = {{ kind = \"uniform\", low = [1.0, 1.0], high = [2.0, 2.0] }}\n"
        )
    };
    sb.write("ok.toml", &spec(0.0));
    assert_ok(&sb.sampo(&["run", "ok.toml", "-q"]));
    sb.write("bad.toml", &spec(1e-6));
    let o = sb.sampo(&["run", "bad.toml", "-q"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("validation failed: state `s`, item "), "{err}");
    assert!(err.contains("not deterministic"), "{err}");
}

#[test]
fn private_copies_run_a_serialized_library_on_every_thread_with_one_threads_bits() {
    let sb = Sandbox::new();
    // Serialized (SAFETY=0), computing through a global buffer.
    let lib = faulty(&sb, "g.so", &["-DSAFETY=0"]);
    let spec = |copies: bool| {
        format!(
            "[run]\nseed = 4\n[sampler]\nkind = \"batch\"\nitems = 600\nchunk = 10\n\
             [[states]]\nname = \"s\"\nparams = [\"x\", \"y\"]\n\
             model = {{ kind = \"plugin\", library = \"{lib}\", copies = {copies}, \
             config = {{ outputs = 3, scratch = 1, instances = 1 }} }}\n\
             prior = {{ kind = \"uniform\", low = [0.0, 0.0], high = [1.0, 1.0] }}\n"
        )
    };
    sb.write("serial.toml", &spec(false));
    sb.write("copies.toml", &spec(true));
    // Serialized: one thread whatever is asked.
    let o = sb.sampo(&["check", "serial.toml", "--threads", "2"]);
    assert!(stdout(&o).contains("1 thread(s)"), "{}", stdout(&o));
    let o = sb.sampo(&["check", "copies.toml", "--threads", "2"]);
    assert!(stdout(&o).contains("2 thread(s)"), "{}", stdout(&o));
    assert_ok(&sb.sampo(&["run", "serial.toml", "-q", "--threads", "2"]));
    assert_ok(&sb.sampo(&["run", "copies.toml", "-q", "--threads", "2"]));
    let (_, a) = read_f64(&sb.path("serial.h5"), "batch/s/outputs");
    let (_, b) = read_f64(&sb.path("copies.h5"), "batch/s/outputs");
    assert_eq!(
        read_u64_attr(&sb.path("copies.h5"), "/", "threads_per_rank"),
        2
    );
    // The same bits, and every thread's copy made one context of its own
    // (the last output): its globals were its own.
    assert!(a == b, "private copies differ from one thread");
    assert!(b.iter().skip(2).step_by(3).all(|&n| n == 1.0));
    let (_, x) = read_f64(&sb.path("copies.h5"), "batch/s/inputs");
    for i in 0..600 {
        let s = x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1];
        assert_eq!((b[3 * i], b[3 * i + 1]), (s, 2.0 * s), "item {i}");
    }
}
