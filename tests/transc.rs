//! The trans-conceptual stage on reference problem A (DESIGN.md): three
//! Gaussian states of dimension 3, 5 and 10 whose evidences are exactly
//! 0.56, 0.30 and 0.14.

mod common;

use common::*;

const EXACT: [f64; 3] = [0.56, 0.30, 0.14];

fn spec(sb: &Sandbox) -> &'static str {
    let text = std::fs::read_to_string(repo().join("configs/transc.toml")).unwrap();
    sb.write("a.toml", &text);
    "a.toml"
}

/// Runs problem A with `sets`, returns (probability, error) per state.
fn probabilities(sb: &Sandbox, out: &str, sets: &[&str]) -> (Vec<f64>, Vec<f64>) {
    let mut args = vec!["run", spec(sb), "-q", "-o", out, "--force"];
    for s in sets {
        args.extend(["--set", s]);
    }
    assert_ok(&sb.sampo(&args));
    let p = sb.path(out);
    (
        read_f64(&p, "transc/probability").1,
        read_f64(&p, "transc/probability_err").1,
    )
}

/// Each method finds (0.56, 0.30, 0.14) within 3 of its reported errors.
#[test]
fn each_method_finds_the_exact_state_probabilities() {
    let sb = Sandbox::new();
    for (method, extra) in [
        ("resample", vec![]),
        ("state-jump", vec![]),
        // An ensemble on 19 dimensions mixes slowly between the states.
        (
            "product-space",
            vec!["transc.walkers=64", "transc.steps=40000"],
        ),
    ] {
        let m = format!("transc.method=\"{method}\"");
        let mut sets = vec![m.as_str()];
        sets.extend(extra);
        let (p, e) = probabilities(&sb, "a.h5", &sets);
        for k in 0..3 {
            assert!(
                (p[k] - EXACT[k]).abs() < 3.0 * e[k] && e[k] < 0.02,
                "{method}: state {k}: {} ± {} vs {}",
                p[k],
                e[k],
                EXACT[k]
            );
        }
        let sum: f64 = p.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);
    }
}

/// Over 20 seeds, about 95% of the ±2σ intervals hold the exact answer
/// (and about 68% of the ±1σ ones: the errors are not inflated either).
/// 60 intervals per method: at least 52 within 2σ, at most 52 within 1σ
/// (binomial limits about 3 standard deviations out).
#[test]
fn the_errors_are_calibrated_over_20_seeds() {
    let sb = Sandbox::new();
    for method in ["resample", "state-jump"] {
        let m = format!("transc.method=\"{method}\"");
        let (mut two, mut one) = (0, 0);
        for seed in 1..=20 {
            let s = format!("run.seed={seed}");
            let (p, e) = probabilities(&sb, "c.h5", &[&m, &s, "sampler.steps=2000"]);
            for k in 0..3 {
                let z = (p[k] - EXACT[k]).abs() / e[k];
                two += usize::from(z <= 2.0);
                one += usize::from(z <= 1.0);
            }
        }
        assert!(two >= 52, "{method}: {two} of 60 within 2σ");
        assert!(one <= 52, "{method}: {one} of 60 within 1σ");
    }
}

/// `/transc` is the same, bit for bit, in one process and on 3 ranks.
#[test]
fn transc_results_do_not_depend_on_the_layout() {
    let sb = Sandbox::new();
    let spec = spec(&sb);
    for method in ["resample", "state-jump", "product-space"] {
        let m = format!("transc.method=\"{method}\"");
        let base = [
            "run",
            spec,
            "-q",
            "--force",
            "--set",
            &m,
            "--set",
            "transc.walkers=40",
            "--set",
            "transc.steps=3000",
            "--set",
            "sampler.steps=1000",
        ];
        let mut local = base.to_vec();
        local.extend(["-o", "one.h5", "--threads", "2"]);
        assert_ok(&sb.sampo(&local));
        let mut mpi = base.to_vec();
        mpi.extend(["-o", "three.h5", "--threads", "1"]);
        let o = run_mpi(&sb, 3, &mpi, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut names = vec!["state", "visits", "moves", "probability", "probability_err"];
        if method == "resample" {
            names.push("member");
        }
        for name in names {
            let path = format!("transc/{name}");
            let a = read_dataset_bits(&sb.path("one.h5"), &path);
            let b = read_dataset_bits(&sb.path("three.h5"), &path);
            assert!(a == b, "{method}: {path} differs between layouts");
        }
    }
}

/// Every element of a dataset (f64 or i64) as bits.
fn read_dataset_bits(path: &std::path::Path, name: &str) -> Vec<u64> {
    let f = hdf5::File::open(path).unwrap();
    let ds = f.dataset(name).unwrap();
    match ds.read_raw::<f64>() {
        Ok(v) => v.iter().map(|x| x.to_bits()).collect(),
        Err(_) => ds
            .read_raw::<i64>()
            .unwrap()
            .iter()
            .map(|&x| x as u64)
            .collect(),
    }
}

/// A bad `[transc]` is a located error (exit 2) before any work.
#[test]
fn bad_transc_tables_are_located_errors() {
    let sb = Sandbox::new();
    let spec = spec(&sb);
    for (set, expected) in [
        ("transc.method=\"jump\"", "unknown transc.method `jump`"),
        (
            "transc.state_weights=[[0.0, 1.0], [1.0, 0.0]]",
            "must be 3 × 3",
        ),
        ("transc.state_priors=[1.0, -1.0, 1.0]", "positive numbers"),
        (
            "transc.prob_state=0.2",
            "belongs to method = \"state-jump\"",
        ),
        (
            "transc.pseudo_prior={ kind = \"gaussian-mixture\" }",
            "needs `components`",
        ),
        ("transc.burn=30000", "must be at most steps"),
    ] {
        let o = sb.sampo(&["check", spec, "--set", set]);
        assert_eq!(o.status.code(), Some(2), "{set}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(expected) && stderr(&o).contains("a.toml:"),
            "{set}: {}",
            stderr(&o)
        );
    }
}
