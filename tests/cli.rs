//! End-to-end tests of the `sampo` binary, run locally (one process).

mod common;

use common::*;

/// A correlated 4-D Gaussian with a box prior wide enough not to matter.
const GAUSS4: &str = r#"
[run]
name = "g4"
seed = 2024

[sampler]
walkers = 32
steps = 6000
burn = 1000

[[states]]
name = "g4"
params = ["a", "b", "c", "d"]
model = { kind = "gaussian", mean = [1.0, -2.0, 0.5, 3.0], cov = [
    [1.0, 0.6, 0.2, 0.0],
    [0.6, 2.0, 0.3, -0.4],
    [0.2, 0.3, 0.5, 0.1],
    [0.0, -0.4, 0.1, 1.5],
] }
prior = { kind = "uniform", low = [-30.0, -30.0, -30.0, -30.0], high = [30.0, 30.0, 30.0, 30.0] }
"#;

/// Two small states for the quick tests.
const SMALL: &str = r#"
[run]
seed = 7
[sampler]
walkers = 16
steps = 300
burn = 50
moves = [{ kind = "stretch", weight = 0.6 }, { kind = "de", weight = 0.2 }, { kind = "walk", weight = 0.2 }]
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
[[states]]
name = "f"
model = { kind = "funnel", dim = 3, sigma = 1.0 }
prior = { kind = "normal", mean = [0.0, 0.0, 0.0], sd = [5.0, 5.0, 5.0] }
init = { kind = "ball", center = [0.0, 0.0, 0.0], radius = 0.1 }
walkers = 12
steps = 200
"#;

#[test]
fn quickstart_runs_end_to_end() {
    let sb = Sandbox::new();
    let spec = repo().join("configs/quickstart.toml");
    let out = sb.path("qs.h5");
    let o = sb.sampo(&["run", spec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_ok(&o);
    assert!(out.exists() && !sb.path("qs.h5.partial").exists());
    let table = stdout(&o);
    assert!(
        table.contains("state gauss") && table.contains("state rosenbrock"),
        "{table}"
    );
    assert_eq!(read_str_attr(&out, "/", "status"), "complete");
    assert_eq!(
        read_str_attr(&out, "/", "spec"),
        std::fs::read_to_string(&spec).unwrap()
    );
    let (shape, _) = read_f64(&out, "states/gauss/chain");
    assert_eq!(shape, vec![10000, 32, 2]);
    assert_eq!(read_i64_attr(&out, "states/gauss", "iteration"), 10000);
    let (shape, _) = read_f64(&out, "states/rosenbrock/chain");
    assert_eq!(shape, vec![20000, 32, 5]);
    // The quickstart's result is one to trust: nothing flagged.
    assert!(!table.contains("flagged"), "{table}");
    // Timings: one row per task, evaluations = walkers × (steps + 1).
    let (_, evals) = read_f64(&out, "timings/evaluations");
    let mut evals = evals;
    evals.sort_by(f64::total_cmp);
    assert_eq!(evals, vec![32.0 * 10001.0, 32.0 * 20001.0]);
}

#[test]
fn correlated_gaussian_is_recovered_within_monte_carlo_error() {
    let sb = Sandbox::new();
    let spec = sb.write("g4.toml", GAUSS4);
    let out = sb.path("g4.h5");
    assert_ok(&sb.sampo(&["run", spec.to_str().unwrap(), "-q"]));
    let mean = [1.0, -2.0, 0.5, 3.0];
    let cov = [
        [1.0, 0.6, 0.2, 0.0],
        [0.6, 2.0, 0.3, -0.4],
        [0.2, 0.3, 0.5, 0.1],
        [0.0, -0.4, 0.1, 1.5],
    ];
    let (shape, chain) = read_f64(&out, "states/g4/chain");
    let (rows, walkers, d) = (shape[0], shape[1], shape[2]);
    let kept = &chain[1000 * walkers * d..];
    let n = (rows - 1000) * walkers;
    let summaries: Vec<_> = (0..d)
        .map(|k| sampo::diag::ChainSummary::of_param(kept, walkers, d, k))
        .collect();
    for k in 0..d {
        let s = &summaries[k];
        assert!(
            (s.mean - mean[k]).abs() < 5.0 * s.mcse(),
            "mean[{k}] = {} ± {}, expected {}",
            s.mean,
            s.mcse(),
            mean[k]
        );
    }
    // Covariances: the sample covariance of x_i x_j has variance
    // (Σ_ii Σ_jj + Σ_ij²) / ESS for a Gaussian; allow 5 standard errors,
    // with the smaller ESS of the two parameters.
    for i in 0..d {
        for j in 0..=i {
            let m = (0..n).map(|t| kept[t * d + i]).sum::<f64>() / n as f64;
            let mj = (0..n).map(|t| kept[t * d + j]).sum::<f64>() / n as f64;
            let c = (0..n)
                .map(|t| (kept[t * d + i] - m) * (kept[t * d + j] - mj))
                .sum::<f64>()
                / (n - 1) as f64;
            let ess: f64 = summaries[i]
                .diagnostics
                .ess_bulk
                .min(summaries[j].diagnostics.ess_bulk);
            let se = ((cov[i][i] * cov[j][j] + cov[i][j] * cov[i][j]) / ess).sqrt();
            assert!(
                (c - cov[i][j]).abs() < 5.0 * se,
                "cov[{i}][{j}] = {c} ± {se}, expected {}",
                cov[i][j]
            );
        }
    }
}

#[test]
fn same_seed_gives_identical_samples_for_one_and_two_threads() {
    let sb = Sandbox::new();
    let spec = sb.write("s.toml", SMALL);
    let spec = spec.to_str().unwrap();
    assert_ok(&sb.sampo(&["run", spec, "-q", "--threads", "1", "-o", "t1.h5"]));
    assert_ok(&sb.sampo(&["run", spec, "-q", "--threads", "2", "-o", "t2.h5"]));
    let a = sample_datasets(&sb.path("t1.h5"));
    let b = sample_datasets(&sb.path("t2.h5"));
    assert_eq!(a.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert_eq!(x.1, y.1, "{} shape", x.0);
        // Bit-identical, not merely close.
        let bits = |v: &Vec<f64>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&x.2) == bits(&y.2),
            "{} differs between 1 and 2 threads",
            x.0
        );
    }
    // A different seed gives different samples.
    let other = SMALL.replace("seed = 7", "seed = 8");
    let spec2 = sb.write("s2.toml", &other);
    assert_ok(&sb.sampo(&["run", spec2.to_str().unwrap(), "-q", "-o", "t3.h5"]));
    let c = sample_datasets(&sb.path("t3.h5"));
    assert_ne!(a[0].2, c[0].2);
}

#[test]
fn existing_output_is_never_overwritten_without_force() {
    let sb = Sandbox::new();
    let spec = sb.write("s.toml", SMALL);
    let spec = spec.to_str().unwrap();
    let out = sb.path("s.h5");
    std::fs::write(&out, b"precious").unwrap();
    let o = sb.sampo(&["run", spec, "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --force"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    assert!(!sb.path("s.h5.partial").exists());

    // --force replaces only a sampo output: not these bytes.
    let o = sb.sampo(&["run", spec, "-q", "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    std::fs::remove_file(&out).unwrap();
    assert_ok(&sb.sampo(&["run", spec, "-q"]));
    let o = sb.sampo(&["run", spec, "-q", "--force"]);
    assert_ok(&o);
    assert_eq!(read_str_attr(&out, "/", "status"), "complete");
}

#[test]
fn a_failed_run_leaves_a_partial_file_and_names_the_failure() {
    let sb = Sandbox::new();
    let spec = sb.write("s.toml", SMALL);
    let spec = spec.to_str().unwrap();
    let o = sb.sampo_env(&["run", spec, "-q"], &[("SAMPO_INJECT_FAULT", "f:500")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for needle in [
        "state `f`",
        "replicate 0",
        "seed 7",
        "walker",
        "at parameters",
        "injected fault",
        "s.h5.partial",
    ] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    let partial = sb.path("s.h5.partial");
    assert!(partial.exists() && !sb.path("s.h5").exists());
    assert!(read_str_attr(&partial, "/", "status").starts_with("failed: "));
    // The partial file is not silently replaced either.
    let o = sb.sampo(&["run", spec, "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("s.h5.partial exists"), "{}", stderr(&o));
    assert_ok(&sb.sampo(&["run", spec, "-q", "--force"]));
    assert!(sb.path("s.h5").exists() && !partial.exists());
}

#[test]
fn bad_spec_exits_2_with_a_located_message_before_sampling() {
    let sb = Sandbox::new();
    let bad = SMALL.replace(
        "cov = [[1.0, 0.5], [0.5, 2.0]]",
        "cov = [[1.0, 3.0], [3.0, 2.0]]",
    );
    let spec = sb.write("bad.toml", &bad);
    for cmd in ["run", "check"] {
        let o = sb.sampo(&[cmd, spec.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = stderr(&o);
        assert!(
            err.contains("bad.toml:11:") && err.contains("not positive definite"),
            "{err}"
        );
    }
    assert!(!sb.path("bad.h5").exists() && !sb.path("bad.h5.partial").exists());
    let o = sb.sampo(&["run", "missing.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing.toml:1:1: cannot read the spec"),
        "{}",
        stderr(&o)
    );
    let o = sb.sampo(&["run"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

#[test]
fn check_prints_the_plan_without_sampling() {
    let sb = Sandbox::new();
    let spec = sb.write(
        "s.toml",
        &SMALL.replace("seed = 7", "seed = 7\nreplicates = 3\nwalltime = \"2h\""),
    );
    let o = sb.sampo(&["check", spec.to_str().unwrap(), "--threads", "2"]);
    assert_ok(&o);
    let text = stdout(&o);
    for needle in [
        "seed 7",
        "3 replicate(s)",
        "pauses    checkpoint every 10m; wall time 2h (pause with a checkpoint before it",
        "2 thread(s) (--threads)",
        "tasks     6",
        "size      at most about",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("f ") && l.contains(" 3 ") && l.contains(" 12 ")),
        "{text}"
    );
    assert!(!sb.path("s.h5").exists());
}

#[test]
fn replicates_share_datasets_along_a_replicate_axis_and_differ() {
    let sb = Sandbox::new();
    let spec = sb.write(
        "s.toml",
        &SMALL.replace("seed = 7", "seed = 7\nreplicates = 2"),
    );
    assert_ok(&sb.sampo(&["run", spec.to_str().unwrap(), "-q"]));
    let out = sb.path("s.h5");
    let (shape, chain) = read_f64(&out, "replicates/g/chain");
    assert_eq!(shape, vec![300, 2, 16, 2]);
    let (a, b): (Vec<_>, Vec<_>) = chain
        .chunks(16 * 2)
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    assert_ne!(
        a.iter().map(|x| x.1).collect::<Vec<_>>(),
        b.iter().map(|x| x.1).collect::<Vec<_>>()
    );
    assert!(chain.iter().all(|x| x.is_finite()));
    assert_eq!(read_i64_attr(&out, "replicates/f", "iteration"), 200);
    // Each replicate has its own streams; replicate 0's are a one-replicate run's.
    let single = sb.write("one.toml", SMALL);
    assert_ok(&sb.sampo(&["run", single.to_str().unwrap(), "-q", "-o", "one.h5"]));
    let (_, one) = read_f64(&sb.path("one.h5"), "states/g/chain");
    let first: Vec<f64> = a.iter().flat_map(|x| x.1.iter().copied()).collect();
    assert_eq!(first, one, "replicate 0 is the run with one replicate");
    let (_, summary_rep) = read_f64(&out, "summary/replicate");
    assert_eq!(
        summary_rep,
        vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    );
}

#[test]
fn version_and_help() {
    let sb = Sandbox::new();
    let o = sb.sampo(&["--version"]);
    assert_ok(&o);
    assert!(stdout(&o).starts_with("sampo "));
    let o = sb.sampo(&["--help"]);
    assert!(stdout(&o).contains("sampo run configs/quickstart.toml"));
}

/// Chains on a correlated Gaussian and on Neal's funnel (whose x are
/// symmetric about 0 whatever v does).
const CHAINS: &str = r#"
[run]
seed = 17
[sampler]
kind = "chains"
chains = 6
steps = 20000
burn = 3000
[[states]]
name = "g"
params = ["a", "b", "c"]
model = { kind = "gaussian", mean = [1.0, -2.0, 0.5], cov = [[1.0, 0.6, 0.2], [0.6, 2.0, 0.3], [0.2, 0.3, 0.5]] }
prior = { kind = "uniform", low = [-30.0, -30.0, -30.0], high = [30.0, 30.0, 30.0] }
[[states]]
name = "funnel"
params = ["v", "x1", "x2"]
model = { kind = "funnel", dim = 3, sigma = 1.5 }
prior = { kind = "normal", mean = [0.0, 0.0, 0.0], sd = [5.0, 5.0, 5.0] }
"#;

#[test]
fn chains_recover_known_means_within_five_mcse() {
    let sb = Sandbox::new();
    let spec = sb.write("c.toml", CHAINS);
    let o = sb.sampo(&["run", spec.to_str().unwrap()]);
    assert_ok(&o);
    let out = sb.path("c.h5");
    let (shape, _) = read_f64(&out, "states/g/chain");
    assert_eq!(shape, vec![20000, 6, 3]);
    assert_eq!(read_i64_attr(&out, "states/g", "iteration"), 20000);
    let (_, mean) = read_f64(&out, "summary/mean");
    let (_, mcse) = read_f64(&out, "summary/mcse_mean");
    let (_, rhat) = read_f64(&out, "summary/rhat");
    let (_, sd) = read_f64(&out, "summary/sd");
    // Rows: g's a, b, c, then funnel's v, x1, x2.
    for (row, truth) in [(0, 1.0), (1, -2.0), (2, 0.5), (4, 0.0), (5, 0.0)] {
        assert!(
            (mean[row] - truth).abs() < 5.0 * mcse[row],
            "row {row}: {} ± {}, expected {truth}",
            mean[row],
            mcse[row]
        );
    }
    for (row, var) in [(0, 1.0), (1, 2.0), (2, 0.5)] {
        assert!(
            (sd[row] * sd[row] - var).abs() < 0.1 * var,
            "sd {}",
            sd[row]
        );
    }
    // Quantiles within 5 of their MCSE: the Gaussian's exactly known ones
    // (μ + z σ, z = Φ⁻¹(0.05) = −1.6448536), and the funnel's x medians (0).
    let z = 1.6448536269514722;
    for (q, mcse_q, z) in [
        ("q05", "mcse_q05", -z),
        ("q50", "mcse_q50", 0.0),
        ("q95", "mcse_q95", z),
    ] {
        let (_, value) = read_f64(&out, &format!("summary/{q}"));
        let (_, se) = read_f64(&out, &format!("summary/{mcse_q}"));
        let exact = [1.0 + z, -2.0 + z * 2f64.sqrt(), 0.5 + z * 0.5f64.sqrt()];
        for (row, truth) in exact.iter().enumerate() {
            assert!(
                (value[row] - truth).abs() < 5.0 * se[row],
                "{q} of row {row}: {} ± {}, expected {truth}",
                value[row],
                se[row]
            );
        }
        if q == "q50" {
            for row in [4, 5] {
                assert!(
                    value[row].abs() < 5.0 * se[row],
                    "median of row {row}: {} ± {}",
                    value[row],
                    se[row]
                );
            }
        }
    }
    assert!(rhat.iter().all(|&r| r < 1.01), "{rhat:?}");
    // The table is printed with its diagnostics.
    let table = stdout(&o);
    assert!(
        table.contains("ess_bulk") && table.contains("state funnel"),
        "{table}"
    );
    // The best point of every chain, and of the state.
    let (shape, best) = read_f64(&out, "states/g/best_log_prob");
    assert_eq!(shape, vec![6]);
    assert!(best.iter().all(|b| b.is_finite()));
}

#[test]
fn chains_spec_errors_are_located() {
    let sb = Sandbox::new();
    for (bad, needle) in [
        (
            CHAINS.replace("chains = 6", "chains = 6\nwalkers = 8"),
            "`walkers` is not a key of [sampler] kind = \"chains\"",
        ),
        (
            CHAINS.replace("chains = 6", "chains = 0"),
            "chains must be between 1",
        ),
        (
            CHAINS.replace(
                "burn = 3000",
                "burn = 3000\n[sampler.stop]\ncheck_every = 0",
            ),
            "stop.check_every must be between 1 and max_steps",
        ),
        (
            CHAINS.replace("burn = 3000", "burn = 3000\n[sampler.stop]\nrhat = 1.02"),
            "with [sampler.stop], the length is stop.max_steps: leave `steps` out",
        ),
        (
            CHAINS.replace("seed = 17", "seed = 17\nreplicates = 3"),
            "run.replicates is not supported by kind = \"chains\"",
        ),
    ] {
        let spec = sb.write("bad.toml", &bad);
        let o = sb.sampo(&["check", spec.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&o).contains("bad.toml:") && stderr(&o).contains(needle),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn an_ensemble_stops_once_tau_settles() {
    let sb = Sandbox::new();
    let spec = sb.write(
        "e.toml",
        r#"
[run]
seed = 5
[sampler]
walkers = 16
burn = 300
[sampler.stop]
check_every = 250
max_steps = 40000
[[states]]
name = "g"
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.8], [0.8, 2.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0], high = [20.0, 20.0] }
"#,
    );
    let o = sb.sampo(&["run", spec.to_str().unwrap()]);
    assert_ok(&o);
    let out = sb.path("e.h5");
    let steps = read_i64_attr(&out, "states/g", "steps") as usize;
    assert!(
        steps < 40000 && steps.is_multiple_of(250),
        "stopped at {steps}"
    );
    let (shape, chain) = read_f64(&out, "states/g/chain");
    assert_eq!(shape, vec![steps, 16, 2]);
    assert!(
        stdout(&o).contains("(converged: stopped)"),
        "{}",
        stdout(&o)
    );
    // emcee's rule held at the stop: the chain after burn-in is longer than
    // 50 τ, with τ as the summary estimates it.
    let (_, tau) = read_f64(&out, "summary/autocorr_time");
    assert!(
        tau.iter().all(|&t| 50.0 * t < (steps - 300) as f64),
        "{tau:?}"
    );
    // The chain is the same as a fixed-length run's up to the stop.
    let fixed = sb.write(
        "f.toml",
        &std::fs::read_to_string(&spec)
            .unwrap()
            .replace("[sampler.stop]\ncheck_every = 250\nmax_steps = 40000\n", "")
            .replace("burn = 300", &format!("burn = 300\nsteps = {steps}")),
    );
    assert_ok(&sb.sampo(&["run", fixed.to_str().unwrap(), "-q"]));
    let (_, same) = read_f64(&sb.path("f.h5"), "states/g/chain");
    assert!(chain == same, "stopping changes nothing before the stop");
}

#[test]
fn stop_keys_belong_to_their_kind() {
    let sb = Sandbox::new();
    let base = "[run]\nseed = 1\n[[states]]\nname = \"g\"\nmodel = { kind = \"gaussian\", mean = [0.0], cov = [[1.0]] }\nprior = { kind = \"uniform\", low = [-5.0], high = [5.0] }\n";
    let cases = [
        (
            "[sampler]\nwalkers = 4\n[sampler.stop]\nrhat = 1.01\n",
            "`stop.rhat` is not a key of [sampler] kind = \"ensemble\"",
            4,
        ),
        (
            "[sampler]\nkind = \"chains\"\n[sampler.stop]\ntau_lengths = 40.0\n",
            "`stop.tau_lengths` is not a key of [sampler] kind = \"chains\"",
            4,
        ),
        (
            "[sampler]\nwalkers = 4\nsteps = 100\n[sampler.stop]\n",
            "leave `steps` out",
            3,
        ),
        (
            "[sampler]\nwalkers = 4\n[sampler.stop]\ntau_change = -1.0\n",
            "stop.tau_change must be a positive finite number",
            4,
        ),
    ];
    for (sampler, message, line) in cases {
        let spec = sb.write("s.toml", &format!("{sampler}{base}"));
        let o = sb.sampo(&["check", spec.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{sampler}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(message), "{sampler}: {err}");
        assert!(err.contains(&format!("s.toml:{line}:")), "{sampler}: {err}");
    }
}

#[test]
fn absurd_thread_counts_are_refused_and_huge_plans_cost_nothing() {
    let sb = Sandbox::new();
    let spec = sb.write("q.toml", SMALL);
    let o = sb.sampo(&["run", spec.to_str().unwrap(), "--threads", "100000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("from 0 (decide) to 1024"),
        "{}",
        stderr(&o)
    );
    assert!(!sb.path("q.h5.partial").exists() && !sb.path("q.h5").exists());
    let spec = sb.write("t.toml", &format!("[parallel]\nthreads = 5000\n{SMALL}"));
    let o = sb.sampo(&["check", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("t.toml:2:11: parallel.threads"),
        "{}",
        stderr(&o)
    );
    // 10⁸ replicates: the plan is runs of tasks, not a list of them.
    let spec = sb.write(
        "r.toml",
        &SMALL.replacen("[run]", "[run]\nreplicates = 100000000", 1),
    );
    let o = sb.sampo(&["check", spec.to_str().unwrap()]);
    assert_ok(&o);
    assert!(stdout(&o).contains("tasks     200000000"), "{}", stdout(&o));
}

/// An error in a `--set` is shown in the override, an error in the file at
/// its own line whatever the overrides inserted; a seed takes any u64.
#[test]
fn override_errors_are_located_in_the_override() {
    let sb = Sandbox::new();
    let spec = sb.write("q.toml", SMALL);
    let lines = SMALL.lines().count();
    for (set, caret) in [
        ("parallel.threads=100000", "parallel.threads=".len()),
        ("foo.bar=1", 0),
        ("sampler.burn=300", "sampler.burn=".len()),
        ("states.f.walkers=3", "states.f.walkers=".len()),
    ] {
        let o = sb.sampo(&["check", "q.toml", "--set", set]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(
            err.contains(&format!("error: --set {set}: ")),
            "{set}: {err}"
        );
        let frame = format!("  | --set {set}\n  | {}^", " ".repeat(6 + caret));
        assert!(err.contains(&frame), "{set}: {err}");
        assert!(!err.contains("q.toml:"), "{set}: not in the file: {err}");
    }
    // An error in the file after a key an override inserted: its own line.
    let bad = SMALL.replace("radius = 0.1", "radius = -0.1");
    let line = bad.lines().position(|l| l.contains("radius")).unwrap() + 1;
    assert!(line <= lines);
    sb.write("q.toml", &bad);
    let o = sb.sampo(&["check", spec.to_str().unwrap(), "--set", "sampler.thin=2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("q.toml:{line}:")),
        "{}",
        stderr(&o)
    );
    sb.write("q.toml", SMALL);
    // The largest seed, from --set and from the file (as digits too).
    let o = sb.sampo(&["check", "q.toml", "--set", "run.seed=18446744073709551615"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("seed 18446744073709551615"),
        "{}",
        stdout(&o)
    );
    for seed in ["18446744073709551615", "\"18446744073709551615\""] {
        sb.write(
            "s.toml",
            &SMALL.replace("seed = 7", &format!("seed = {seed}")),
        );
        let o = sb.sampo(&["check", "s.toml"]);
        assert_ok(&o);
        assert!(
            stdout(&o).contains("seed 18446744073709551615"),
            "{}",
            stdout(&o)
        );
    }
    let o = sb.sampo(&["check", "q.toml", "--set", "run.seed=18446744073709551616"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a seed from 0 to 18446744073709551615"),
        "{}",
        stderr(&o)
    );
}

/// Sizes whose work a rank cannot hold in memory are refused by `check`
/// and `run` alike, located at their table, before any file exists.
#[test]
fn sizes_beyond_the_machines_memory_are_refused_before_any_work() {
    let sb = Sandbox::new();
    let state = "[[states]]\nname = \"g\"\nmodel = { kind = \"gaussian\", mean = [0.0, 1.0], \
                 cov = [[1.0, 0.5], [0.5, 2.0]] }\nprior = { kind = \"uniform\", low = [-10.0, \
                 -10.0], high = [10.0, 10.0] }\n";
    for effective in ["1e10", "1e12", "1e15"] {
        refused(
            &sb,
            &format!("[sampler]\nkind = \"smc\"\neffective = {effective}\n{state}"),
            1,
            "of memory per rank, more than this machine's",
        );
    }
    let two = format!("{state}{}", state.replace("\"g\"", "\"h\""));
    refused(
        &sb,
        &format!("[sampler]\nwalkers = 8\nsteps = 100\n{two}[transc]\nwalkers = 1000000000000\n"),
        12,
        "lower transc.walkers",
    );
}

#[test]
fn set_overrides_stdin_specs_completions_and_version() {
    let sb = Sandbox::new();
    let spec = sb.write("q.toml", SMALL);
    let o = sb.sampo(&[
        "run",
        spec.to_str().unwrap(),
        "-q",
        "--set",
        "run.seed=99",
        "--set",
        "states.f.steps=120",
    ]);
    assert_ok(&o);
    let out = sb.path("q.h5");
    let (shape, _) = read_f64(&out, "states/f/chain");
    assert_eq!(shape[0], 120);
    let resolved = read_str_attr(&out, "/", "resolved_spec");
    assert!(resolved.contains("\"seed\":99"), "{resolved}");
    let f = hdf5::File::open(&out).unwrap();
    let overrides: Vec<String> = f
        .attr("overrides")
        .unwrap()
        .read_raw::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(overrides, ["run.seed=99", "states.f.steps=120"]);
    // A bad override is a usage error.
    let o = sb.sampo(&["check", spec.to_str().unwrap(), "--set", "states.x.steps=1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--set states.x.steps=1: no element `x`"),
        "{}",
        stderr(&o)
    );
    // The spec from standard input; errors are located in it.
    let mut child = std::process::Command::new(sampo_bin())
        .current_dir(sb.dir.path())
        .args(["check", "-", "--set", "sampler.steps=10"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SMALL.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("error: -:"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("must be less than steps (10)"),
        "{}",
        stderr(&o)
    );
    // Completions and the long version.
    let o = sb.sampo(&["completions", "bash"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("_sampo()"));
    let o = sb.sampo(&["--version"]);
    assert!(
        stdout(&o).contains("HDF5 1.") && stdout(&o).contains("git "),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_finds_what_run_would_fail_on() {
    let sb = Sandbox::new();
    let spec = |walkers: &str, cov: &str, prior: &str| {
        format!(
            "[run]\nseed = 1\n[sampler]\nwalkers = {walkers}\nsteps = 10\n[[states]]\nname = \"g\"\n\
             model = {{ kind = \"gaussian\", mean = [0.0], cov = [[{cov}]] }}\nprior = {prior}\n"
        )
    };
    let unit = "{ kind = \"uniform\", low = [-1.0], high = [1.0] }";
    let cases = [
        (
            spec("1000000000", "1.0", unit),
            "t.toml:4:11: state `g`: walkers must be at most",
        ),
        (
            spec(
                "4",
                "1.0",
                "{ kind = \"uniform\", low = [-1e308], high = [1e308] }",
            ),
            "t.toml:9:9: state `g`: prior.high[0]: the width high − low",
        ),
        (
            spec(
                "4",
                "1.0",
                "{ kind = \"log-uniform\", low = [1e-300], high = [1e300] }",
            ),
            "prior.high[0]: the ratio high / low",
        ),
        (
            spec("4", "1e-320", unit),
            "t.toml:8:9: state `g`: none of 64 prior draws",
        ),
        (
            spec(
                "4",
                "1.0",
                "{ kind = \"uniform\", low = [40.0], high = [41.0] }",
            )
            .replace(
                "[[states]]",
                "init = { kind = \"ball\", center = [40.5], radius = 1e6 }\n[[states]]",
            ),
            "none of 64 points of the init ball",
        ),
    ];
    for (text, message) in cases {
        sb.write("t.toml", &text);
        for command in ["check", "run"] {
            let o = sb.sampo(&[command, "t.toml"]);
            assert_eq!(o.status.code(), Some(2), "{command} {text}: {}", stderr(&o));
            assert!(stderr(&o).contains(message), "{command}: {}", stderr(&o));
        }
        for left in ["t.h5", "t.h5.partial", "t.h5.lock"] {
            assert!(!sb.path(left).exists(), "{left} left behind");
        }
    }
}

#[test]
fn separate_copies_under_srun_are_refused() {
    let sb = Sandbox::new();
    let spec = sb.write("q.toml", SMALL);
    let srun = [
        ("SLURM_STEP_NUM_TASKS", "3"),
        ("SLURM_STEP_ID", "0"),
        ("SLURM_PROCID", "1"),
    ];
    let o = sb.sampo_env(&["run", spec.to_str().unwrap(), "-q"], &srun);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("srun started 3 tasks") && stderr(&o).contains("--mpi=pmix"),
        "{}",
        stderr(&o)
    );
    assert!(!sb.path("q.h5").exists() && !sb.path("q.h5.partial").exists());
    // A plain run in a multi-task allocation (the batch step) is one process.
    let o = sb.sampo_env(
        &["run", spec.to_str().unwrap(), "-q"],
        &[("SLURM_NTASKS", "4")],
    );
    assert_ok(&o);
}

#[test]
fn a_layout_hdf5_cannot_chunk_is_refused_by_check_and_run() {
    let sb = Sandbox::new();
    let zeros = vec!["0.0"; 1000].join(", ");
    let ones = vec!["1.0"; 1000].join(", ");
    sb.write(
        "big.toml",
        &format!(
            "[run]\nseed = 1\n[sampler]\nwalkers = 1000000\nsteps = 10\n[[states]]\nname = \"f\"\n\
             model = {{ kind = \"funnel\", dim = 1000 }}\n\
             prior = {{ kind = \"normal\", mean = [{zeros}], sd = [{ones}] }}\n"
        ),
    );
    // The ensemble's state alone takes 8 GB: a machine with less refuses it
    // for its memory first, one with more for its chunk.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let small = kib < 12 << 20;
    for command in ["check", "run"] {
        let o = sb.sampo(&[command, "big.toml"]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
        let e = stderr(&o);
        if small {
            assert!(
                e.contains("of memory per rank, more than this machine's"),
                "{e}"
            );
        } else {
            assert!(
                e.contains("dataset /states/f/chain") && e.contains("4 GiB"),
                "{e}"
            );
        }
        assert!(!sb.path("big.h5.partial").exists());
    }
}

/// Durations beyond any allocation are refused before anything is created
/// (they overflowed `Duration` and `Instant` once), from the command line and
/// the spec; an end time from SLURM far in the future is no deadline.
#[test]
fn absurd_durations_are_refused_not_a_panic() {
    let sb = Sandbox::new();
    let spec = sb.write("q.toml", SMALL);
    let q = spec.to_str().unwrap();
    for walltime in [
        "18446744073709551615s",
        "5124095576030431h",
        "9223372036854775807",
    ] {
        let o = sb.sampo(&["run", q, "--walltime", walltime]);
        assert_eq!(o.status.code(), Some(2), "{walltime}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("from 1 s to 100 years"),
            "{}",
            stderr(&o)
        );
    }
    for key in ["walltime", "checkpoint_every"] {
        let text = SMALL.replacen(
            "[run]",
            &format!("[run]\n{key} = \"307445734561825860m\""),
            1,
        );
        let spec = sb.write("d.toml", &text);
        for command in ["run", "check"] {
            let o = sb.sampo(&[command, spec.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(2), "{key}: {}", stderr(&o));
            assert!(stderr(&o).contains("d.toml:3:"), "{}", stderr(&o));
            assert!(
                stderr(&o).contains("from 1 s to 100 years"),
                "{}",
                stderr(&o)
            );
        }
    }
    assert!(!sb.path("q.h5.partial").exists() && !sb.path("d.h5.partial").exists());
    let o = sb.sampo_env(
        &["run", q, "-q"],
        &[("SLURM_JOB_END_TIME", "18446744073709551615")],
    );
    assert_ok(&o);
}

/// An unwritable stderr (a full disk under a batch system's log file) does
/// not turn an exit code into a panic: a bad spec still exits 2, a good run
/// 0; an unwritable stdout after a complete run says it was stdout.
#[test]
fn an_unwritable_stderr_or_stdout_is_no_panic() {
    let sb = Sandbox::new();
    let spec = sb.write("q.toml", SMALL);
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let run = |args: &[&str], stdout_full: bool| {
        let mut cmd = std::process::Command::new(sampo_bin());
        cmd.current_dir(sb.path("")).args(args).stderr(full());
        if stdout_full {
            cmd.stdout(full());
        }
        cmd.output().unwrap()
    };
    for command in ["run", "check"] {
        assert_eq!(
            run(&[command, "nope.toml"], false).status.code(),
            Some(2),
            "{command}"
        );
    }
    let o = run(&["run", spec.to_str().unwrap()], false);
    assert_eq!(o.status.code(), Some(0));
    let o = std::process::Command::new(sampo_bin())
        .current_dir(sb.path(""))
        .args(["run", spec.to_str().unwrap(), "-o", "again.h5"])
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("its summary could not be written to standard output"),
        "{}",
        stderr(&o)
    );
    assert!(sb.path("again.h5").exists());
}

/// A `cost_us` of 10^15 µs (30 years per evaluation) is refused, located,
/// by `check` and `run` alike, for every kind that has the key.
#[test]
fn an_absurd_cost_us_is_refused() {
    let sb = Sandbox::new();
    let absurd = "cost_us = 1000000000000000\n";
    refused(
        &sb,
        &format!("{SMALL}{absurd}"),
        20,
        "cost_us must be at most 3600000000",
    );
    refused(
        &sb,
        &format!("{CHAINS}{absurd}"),
        19,
        "cost_us must be at most",
    );
}

/// What is not a spec file ends at once with a message (exit 2): a device
/// or a directory (a read of /dev/zero never ends), a file over 64 MiB; a
/// megabyte-long line in an error is framed by a window, not echoed whole.
#[test]
fn odd_spec_files_are_refused_and_long_lines_clipped() {
    let sb = Sandbox::new();
    for path in ["/dev/zero", "/dev/null", "/tmp"] {
        for command in ["check", "run"] {
            let o = sb.sampo(&[command, path]);
            assert_eq!(o.status.code(), Some(2), "{command} {path}: {}", stderr(&o));
            assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
        }
    }
    let big = sb.path("big.toml");
    std::fs::write(&big, vec![b'#'; (64 << 20) + 1]).unwrap();
    let o = sb.sampo(&["check", big.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("larger than 64 MiB"), "{}", stderr(&o));
    // A key misspelt after a line of 10⁶ numbers: the frame is a window.
    let numbers = vec!["1.0"; 1_000_000].join(", ");
    let spec = sb.write(
        "long.toml",
        &SMALL.replacen("[run]", &format!("[run]\nnote = [{numbers}]"), 1),
    );
    let o = sb.sampo(&["check", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.len() < 2000, "{} bytes of error", err.len());
    assert!(err.contains("long.toml:3:1") && err.contains('…'), "{err}");
}
