//! `sampo summary` on finished and failed outputs: the same numbers as the
//! run's own `/summary`, the three formats, burn-in and thinning, a closed
//! pipe, and the errors a user can make. (A file still being written, and
//! one left by `kill -9`: tests/python/test_running_file.py.)

mod common;

use std::process::Command;

use common::*;

const SPEC: &str = r#"
[run]
seed = 8
[sampler]
kind = "KIND"
steps = 1200
burn = 200
thin = 2
[[states]]
name = "g"
params = ["a", "b"]
model = { kind = "gaussian", mean = [1.0, -2.0], cov = [[1.0, 0.3], [0.3, 0.5]] }
prior = { kind = "uniform", low = [-30.0, -30.0], high = [30.0, 30.0] }
[[states]]
name = "f"
params = ["v", "x"]
model = { kind = "funnel", dim = 2, sigma = 1.0 }
prior = { kind = "normal", mean = [0.0, 0.0], sd = [5.0, 5.0] }
init = { kind = "ball", center = [0.0, 0.0], radius = 0.1 }
"#;

fn run(sb: &Sandbox, kind: &str) -> std::path::PathBuf {
    let spec = sb.write(&format!("{kind}.toml"), &SPEC.replace("KIND", kind));
    assert_ok(&sb.sampo(&["run", spec.to_str().unwrap(), "-q"]));
    sb.path(&format!("{kind}.h5"))
}

fn json(sb: &Sandbox, args: &[&str]) -> serde_json::Value {
    let o = sb.sampo(args);
    assert_ok(&o);
    serde_json::from_str(&stdout(&o)).expect("valid JSON")
}

#[test]
fn summary_gives_the_runs_own_table_for_both_kinds() {
    let sb = Sandbox::new();
    for kind in ["ensemble", "chains"] {
        let out = run(&sb, kind);
        let s = json(&sb, &["summary", out.to_str().unwrap(), "--format", "json"]);
        assert_eq!(s["status"], "complete");
        let states = s["states"].as_array().unwrap();
        let names: Vec<&str> = states
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["g", "f"], "spec order");
        assert_eq!(states[0]["independent_chains"], kind == "chains");
        assert_eq!(states[0]["burn_rows"], 100);
        assert_eq!(states[0]["draws"], 500);
        // Rows of /summary: g's a, b, then f's v, x.
        let params: Vec<&serde_json::Value> = states
            .iter()
            .flat_map(|s| s["params"].as_array().unwrap())
            .collect();
        for column in sampo::diag::SUMMARY_COLUMNS {
            let (_, stored) = read_f64(&out, &format!("summary/{column}"));
            if column == "acceptance" {
                // The run counts every iteration; the file keeps emcee's
                // `accepted` (acceptances at stored rows, here every 2nd
                // iteration): an estimate of the same fraction.
                for (row, p) in params.iter().enumerate() {
                    let ours = p[column].as_f64().unwrap();
                    assert!(
                        (ours - stored[row]).abs() < 0.03,
                        "{kind} row {row}: {ours} vs {}",
                        stored[row]
                    );
                }
                continue;
            }
            assert_eq!(stored.len(), 4);
            for (row, p) in params.iter().enumerate() {
                let ours = p[column].as_f64().unwrap();
                // Mean and sd are accumulated block by block, in other
                // blocks than the run's: equal to rounding.
                assert!(
                    (ours - stored[row]).abs() <= 1e-12 * stored[row].abs().max(1.0),
                    "{kind} {column} row {row}: {ours} vs {}",
                    stored[row]
                );
            }
        }
        // The table says the same, with the ensemble's caveat.
        let o = sb.sampo(&["summary", out.to_str().unwrap()]);
        assert_ok(&o);
        let table = stdout(&o);
        assert!(
            table.contains("state g (") && table.contains("ess_bulk"),
            "{table}"
        );
        assert_eq!(
            table.contains("walkers as chains"),
            kind == "ensemble",
            "{table}"
        );
    }
}

#[test]
fn burn_thin_state_and_csv() {
    let sb = Sandbox::new();
    let out = run(&sb, "chains");
    let path = out.to_str().unwrap();
    let s = json(
        &sb,
        &[
            "summary", path, "--format", "json", "--state", "g", "--burn", "50", "--thin", "3",
        ],
    );
    let states = s["states"].as_array().unwrap();
    assert_eq!(states.len(), 1);
    // Rows 52, 55, …, 599 of each chain (emcee's get_chain(discard=50, thin=3)).
    assert_eq!(states[0]["draws"], 183);
    let (shape, chain) = read_f64(&out, "states/g/chain");
    let (c, d) = (shape[1], shape[2]);
    let values: Vec<f64> = (52..600)
        .step_by(3)
        .flat_map(|row| (0..c).map(move |k| (row, k)))
        .map(|(row, k)| chain[(row * c + k) * d])
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let ours = states[0]["params"][0]["mean"].as_f64().unwrap();
    assert!((ours - mean).abs() < 1e-12, "{ours} vs {mean}");

    let o = sb.sampo(&["summary", path, "--format", "csv"]);
    assert_ok(&o);
    let csv = stdout(&o);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("state,replicate,param,mean,sd,mcse_mean"));
    assert!(lines[1].starts_with("g,0,a,"));
    assert_eq!(
        lines[1].split(',').count(),
        lines[0].split(',').count(),
        "{csv}"
    );
}

#[test]
fn a_closed_pipe_ends_summary_quietly() {
    let sb = Sandbox::new();
    let out = run(&sb, "ensemble");
    let script = format!(
        "set -o pipefail; '{}' summary '{}' --format csv | head -n 1",
        sampo_bin().display(),
        out.display()
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?} {}", o.status, stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(stdout(&o).starts_with("state,"));
}

#[test]
fn summary_of_a_failed_run_uses_the_rows_it_left() {
    let sb = Sandbox::new();
    let spec = sb.write("fail.toml", &SPEC.replace("KIND", "ensemble"));
    let o = sb.sampo_env(
        &["run", spec.to_str().unwrap(), "-q", "--threads", "1"],
        &[("SAMPO_INJECT_FAULT", "f:5000")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let partial = sb.path("fail.h5.partial");
    let s = json(
        &sb,
        &["summary", partial.to_str().unwrap(), "--format", "json"],
    );
    assert!(s["status"].as_str().unwrap().starts_with("failed"), "{s}");
    let g = &s["states"][0];
    assert_eq!(
        (g["state"].as_str(), g["rows"].as_u64()),
        (Some("g"), Some(600))
    );
    assert!(g["params"][0]["mean"].as_f64().is_some());
}

#[test]
fn summary_errors_exit_2_with_a_message() {
    let sb = Sandbox::new();
    let out = run(&sb, "chains");
    let path = out.to_str().unwrap();
    let not_hdf5 = sb.write("notes.txt", "not a sampo file\n");
    let cases: [(&[&str], &str); 4] = [
        (&["summary", "missing.h5"], "no such file"),
        (
            &["summary", path, "--state", "nope"],
            "no state `nope` (states: g, f)",
        ),
        (&["summary", not_hdf5.to_str().unwrap()], "not an HDF5 file"),
        (&["summary", path, "--thin", "0"], "--thin"),
    ];
    for (args, message) in cases {
        let o = sb.sampo(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

/// The smc kind and a second stage summarise through their jobs too: each
/// kind's tables under its JSON section, NaN as null in JSON and as an
/// empty field in CSV, and the trans-conceptual table in text and JSON.
#[test]
fn every_kind_summarises_through_its_job() {
    let sb = Sandbox::new();
    let one_state = SPEC.split("[[states]]").take(2).collect::<Vec<_>>();
    let one_state = format!("{}[[states]]{}", one_state[0], one_state[1]);
    // One group: the error of a posterior mean is NaN.
    let smc = one_state.replace("KIND", "smc").replace(
        "steps = 1200\nburn = 200\nthin = 2\n",
        "particles = 100\ngroups = 1\n",
    );
    sb.write("smc.toml", &smc);
    assert_ok(&sb.sampo(&["run", "smc.toml", "-q"]));
    let s = json(&sb, &["summary", "smc.h5", "--format", "json"]);
    assert!(s.get("states").is_none(), "{s}");
    let e = &s["evidences"][0];
    assert_eq!(
        (e["state"].as_str(), e["groups"].as_u64()),
        (Some("g"), Some(1))
    );
    assert!(e["log_evidence"].as_f64().is_some(), "{s}");
    assert!(e["params"][0]["mcse_mean"].is_null(), "{s}");
    assert!(e["params"][0]["mean"].as_f64().is_some(), "{s}");
    let o = sb.sampo(&["summary", "smc.h5", "--format", "csv"]);
    assert_ok(&o);
    let csv = stdout(&o);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let mcse = header.iter().position(|c| *c == "mcse_mean").unwrap();
    let a: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((a[0], a[2], a[mcse]), ("g", "a", ""), "{csv}");
    assert!(!csv.contains("NaN"), "{csv}");

    let transc = format!(
        "{}\n[transc]\nmethod = \"resample\"\nwalkers = 8\nsteps = 400\nburn = 100\n",
        SPEC.replace("KIND", "ensemble")
            .replace("steps = 1200", "steps = 400")
            .replace("burn = 200", "burn = 100")
    );
    sb.write("t.toml", &transc);
    assert_ok(&sb.sampo(&["run", "t.toml", "-q"]));
    let s = json(&sb, &["summary", "t.h5", "--format", "json"]);
    assert_eq!(s["states"].as_array().map(Vec::len), Some(2), "{s}");
    let rows = s["transc"]["states"].as_array().unwrap();
    let total: f64 = rows
        .iter()
        .map(|r| r["probability"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{s}");
    assert!(s["transc"]["tau"].as_f64().is_some(), "{s}");
    let (_, p) = read_f64(&sb.path("t.h5"), "transc/probability");
    let o = sb.sampo(&["summary", "t.h5"]);
    assert_ok(&o);
    let table = stdout(&o);
    assert!(
        table.contains("trans-conceptual (resample") && table.contains(&format!("{:.4}", p[1])),
        "{table}"
    );
    // CSV keeps to the parameters' rows.
    let o = sb.sampo(&["summary", "t.h5", "--format", "csv"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).lines().count(), 5, "{}", stdout(&o));
}

#[test]
fn a_file_without_a_resolved_spec_is_not_a_sampo_output() {
    let sb = Sandbox::new();
    let path = sb.path("other.h5");
    let f = hdf5::File::create(&path).unwrap();
    f.create_group("states").unwrap();
    drop(f);
    let o = sb.sampo(&["summary", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a sampo output"), "{}", stderr(&o));
}

/// A chains `.partial` whose datasets have different rows (a full disk
/// stopped the run between them) is summarised over the rows all have.
#[test]
fn summary_uses_the_rows_every_dataset_has() {
    let sb = Sandbox::new();
    let out = run(&sb, "chains");
    let partial = sb.path("cut.h5.partial");
    std::fs::copy(&out, &partial).unwrap();
    {
        let f = hdf5::File::open_rw(&partial).unwrap();
        let status: hdf5::types::VarLenUnicode = "failed: no space left on device".parse().unwrap();
        f.attr("status").unwrap().write_scalar(&status).unwrap();
        let lp = f.dataset("states/g/log_prob").unwrap();
        let shape = lp.shape();
        lp.resize([200, shape[1]]).unwrap();
        let g = f.group("states/g").unwrap();
        g.attr("iteration").unwrap().write_scalar(&150i64).unwrap();
    }
    let s = json(
        &sb,
        &["summary", partial.to_str().unwrap(), "--format", "json"],
    );
    let g = &s["states"][0];
    assert_eq!(g["state"], "g");
    let rows = g["rows"].as_u64().unwrap();
    assert!((150..=200).contains(&rows), "{rows} rows: {s}");
    assert!(g["params"][0]["mean"].as_f64().is_some(), "{s}");
}

/// A FIFO or a device is refused at once (it would be read forever), and a
/// burn-in that leaves nothing is an error.
#[test]
fn summary_refuses_pipes_devices_and_a_burn_in_past_the_end() {
    let sb = Sandbox::new();
    let out = run(&sb, "ensemble");
    let fifo = sb.path("pipe.h5");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for path in [fifo.to_str().unwrap(), "/dev/zero"] {
        // Ended after 10 s if it hangs, so that a hang fails the test.
        let mut child = Command::new(sampo_bin())
            .args(["summary", path])
            .current_dir(sb.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let ms = std::time::Duration::from_millis;
        if ends_within(&mut child, ms(10_000), ms(20)).is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("summary {path} hangs");
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{path}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not an output file"),
            "{path}: {}",
            stderr(&o)
        );
    }
    // 600 stored rows (1200 steps, thin 2).
    let path = out.to_str().unwrap();
    assert_ok(&sb.sampo(&["summary", path, "--burn", "599"]));
    for burn in ["600", "10000"] {
        let o = sb.sampo(&["summary", path, "--burn", burn]);
        assert_eq!(o.status.code(), Some(2), "--burn {burn}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--burn") && stderr(&o).contains("600 stored rows"),
            "{}",
            stderr(&o)
        );
    }
}
