//! `kind = "smc"`: evidences against closed forms, bit-identical results
//! whatever the layout of ranks and threads, and located spec errors.

mod common;

use common::*;

/// A correlated 2-D Gaussian likelihood in a uniform box of area 400:
/// Z = 1/400 (the Gaussian's mass outside the box is below 1e-20).
const GAUSS2: &str = r#"
[run]
seed = 1
[sampler]
kind = "smc"
particles = 500
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

fn attr_f64(path: &std::path::Path, group: &str, name: &str) -> f64 {
    let f = hdf5::File::open(path).unwrap();
    f.group(group)
        .unwrap()
        .attr(name)
        .unwrap()
        .read_scalar()
        .unwrap()
}

/// The datasets an SMC run's numbers live in, for exact comparison.
fn smc_datasets(path: &std::path::Path, state: &str) -> Vec<(String, Vec<f64>)> {
    [
        "particles",
        "log_likelihood",
        "log_prior",
        "log_weights",
        "posterior",
        "beta",
        "log_z",
        "ess",
        "acceptance",
        "evidence",
    ]
    .iter()
    .map(|n| {
        let p = format!("smc/{state}/{n}");
        (p.clone(), read_f64(path, &p).1)
    })
    .collect()
}

#[test]
fn evidence_and_posterior_mean_of_a_gaussian() {
    let sb = Sandbox::new();
    sb.write("g.toml", GAUSS2);
    let o = sb.sampo(&["run", "g.toml", "-q", "-o", "g.h5"]);
    assert_ok(&o);
    let path = sb.path("g.h5");
    let log_z = attr_f64(&path, "smc/g", "log_evidence");
    let err = attr_f64(&path, "smc/g", "log_evidence_err");
    let exact = -(400f64.ln());
    assert!(err > 0.0 && err < 0.1, "err {err}");
    assert!(
        (log_z - exact).abs() < 5.0 * err,
        "log Z {log_z} ± {err}, exact {exact}"
    );
    let (shape, draw) = read_f64(&path, "smc/g/posterior");
    assert_eq!(shape, vec![500, 2]);
    for (k, (mean, var)) in [(0.0, 1.0), (1.0, 2.0)].into_iter().enumerate() {
        let xs: Vec<f64> = draw.iter().skip(k).step_by(2).copied().collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        // 5 standard errors of 500 draws (correlated: allow a factor 2).
        let tol = 5.0 * 2.0 * (var / xs.len() as f64).sqrt();
        assert!((m - mean).abs() < tol, "mean of x{k}: {m} vs {mean}");
    }
    let (_, beta) = read_f64(&path, "smc/g/beta");
    assert_eq!(beta[0], 0.0);
    assert_eq!(*beta.last().unwrap(), 1.0);
    assert!(beta.windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn smc_is_bit_identical_across_layouts() {
    let sb = Sandbox::new();
    let spec = sb.write("g.toml", GAUSS2);
    let spec = spec.to_str().unwrap();
    assert_ok(&sb.sampo(&["run", spec, "-q", "--threads", "1", "-o", "local.h5"]));
    let reference = smc_datasets(&sb.path("local.h5"), "g");
    assert_ok(&sb.sampo(&["run", spec, "-q", "--threads", "2", "-o", "t2.h5"]));
    let mut files = vec!["t2.h5".to_string()];
    for (ranks, threads) in [(1, 1), (2, 1), (3, 2)] {
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
        files.push(out);
    }
    for file in files {
        let got = smc_datasets(&sb.path(&file), "g");
        for (a, b) in reference.iter().zip(&got) {
            let bits = |v: &Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&a.1) == bits(&b.1), "{} differs in {file}", a.0);
        }
    }
}

#[test]
fn keys_of_other_kinds_are_located_errors() {
    let sb = Sandbox::new();
    sb.write(
        "bad.toml",
        &GAUSS2.replace("particles = 500", "particles = 500\nwalkers = 10"),
    );
    let o = sb.sampo(&["check", "bad.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("walkers") && e.contains("smc") && e.contains(":7:"),
        "{e}"
    );
    sb.write("ok.toml", GAUSS2);
    let o = sb.sampo(&["check", "ok.toml"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("persistent sampling"), "{}", stdout(&o));
}
