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
    // Chains as the first stage.
    let text = std::fs::read_to_string(sb.path("a.toml")).unwrap().replace(
        "kind = \"ensemble\"\nwalkers = 32\nsteps = 3000",
        "kind = \"chains\"\nchains = 8\nsteps = 20000",
    );
    assert!(text.contains("chains = 8"));
    sb.write("c.toml", &text);
    assert_ok(&sb.sampo(&["run", "c.toml", "-q", "-o", "c.h5"]));
    let p = read_f64(&sb.path("c.h5"), "transc/probability").1;
    let e = read_f64(&sb.path("c.h5"), "transc/probability_err").1;
    for k in 0..3 {
        assert!(
            (p[k] - EXACT[k]).abs() < 3.0 * e[k],
            "chains: {p:?} ± {e:?}"
        );
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
            stderr(&o).contains(expected) && stderr(&o).contains(&format!("--set {set}: ")),
            "{set}: {}",
            stderr(&o)
        );
    }
}

/// Equal state priors, however large, are the problem of [1, 1, 1]: the
/// same probabilities bit for bit and finite evidences (their sum must not
/// overflow); priors whose ratio underflows are refused.
#[test]
fn huge_equal_state_priors_are_the_problem_of_equal_ones() {
    let sb = Sandbox::new();
    let short = ["sampler.steps=600", "transc.steps=2000", "transc.walkers=8"];
    let run = |out: &str, priors: &str| {
        let set = format!("transc.state_priors={priors}");
        let mut sets = short.to_vec();
        sets.push(&set);
        probabilities(&sb, out, &sets);
        let p = sb.path(out);
        (
            read_dataset_bits(&p, "transc/probability"),
            read_f64(&p, "transc/log_evidence").1,
        )
    };
    let (ones, z1) = run("ones.h5", "[1.0, 1.0, 1.0]");
    let (huge, z2) = run("huge.h5", "[1e308, 1e308, 1e308]");
    assert_eq!(ones, huge);
    assert_eq!(z1, z2);
    assert!(z2.iter().all(|z| z.is_finite()), "{z2:?}");
    let o = sb.sampo(&[
        "check",
        spec(&sb),
        "--set",
        "transc.state_priors=[1e-308, 1.0, 1e308]",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("too small beside the largest"),
        "{}",
        stderr(&o)
    );
}

/// A second problem with a closed-form evidence of another kind: which
/// polynomial order explains `configs/data/line.csv` (a straight line with
/// Gaussian noise of known sd). With a uniform prior box of volume V on the
/// p coefficients that holds the whole posterior (checked: 6 posterior sd
/// from every face), Z = (1/V) (2πσ²)^(−(n−p)/2)
/// exp(−RSS/2σ²) |XᵀX|^(−1/2): computed here, and compared with what the
/// resampler and the state-jump sampler find.
#[test]
fn polynomial_orders_get_their_exact_probabilities() {
    let sb = Sandbox::new();
    let data = repo().join("configs/data/line.csv");
    let sigma: f64 = 0.5;
    // The prior box of each coefficient c_0 … c_3.
    let boxes: [(f64, f64); 4] = [(0.5, 2.5), (-1.6, 0.2), (-0.2, 0.2), (-0.1, 0.14)];
    let orders = [1usize, 2, 3];
    let mut text = String::from(
        "[run]\nseed = 4\n[sampler]\nwalkers = 32\nsteps = 4000\n[transc]\nwalkers = 32\nsteps = 20000\n",
    );
    for o in orders {
        let p = o + 1;
        let low = boxes[..p]
            .iter()
            .map(|b| format!("{:?}", b.0))
            .collect::<Vec<_>>()
            .join(", ");
        let high = boxes[..p]
            .iter()
            .map(|b| format!("{:?}", b.1))
            .collect::<Vec<_>>()
            .join(", ");
        text += &format!(
            "[[states]]\nname = \"order{o}\"\nmodel = {{ kind = \"polynomial-regression\", data = \
             \"{}\", order = {o}, noise_sd = {sigma} }}\nprior = {{ kind = \"uniform\", low = \
             [{low}], high = [{high}] }}\n",
            data.display()
        );
    }
    sb.write("poly.toml", &text);
    // The exact evidences.
    let (x, y) = read_xy(&data);
    let n = x.len();
    let log_z: Vec<f64> = orders
        .iter()
        .map(|&o| {
            let p = o + 1;
            let xm = nalgebra::DMatrix::from_fn(n, p, |i, j| x[i].powi(j as i32));
            let yv = nalgebra::DVector::from_vec(y.clone());
            let xtx = xm.transpose() * &xm;
            let beta = xtx
                .clone()
                .cholesky()
                .unwrap()
                .solve(&(xm.transpose() * &yv));
            let rss = (&yv - &xm * &beta).norm_squared();
            let inv = xtx.clone().try_inverse().unwrap();
            for j in 0..p {
                let sd = sigma * inv[(j, j)].sqrt();
                let (lo, hi) = boxes[j];
                assert!(
                    beta[j] - 6.0 * sd > lo && beta[j] + 6.0 * sd < hi,
                    "order {o}, c{j}"
                );
            }
            let log_v: f64 = boxes[..p].iter().map(|(lo, hi)| (hi - lo).ln()).sum();
            let s2 = sigma * sigma;
            -log_v
                - 0.5 * (n - p) as f64 * (2.0 * std::f64::consts::PI * s2).ln()
                - rss / (2.0 * s2)
                - 0.5 * xtx.determinant().ln()
        })
        .collect();
    let max = log_z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = log_z.iter().map(|z| (z - max).exp()).sum();
    let exact: Vec<f64> = log_z.iter().map(|z| (z - max).exp() / total).collect();
    assert!(
        exact[1] > 0.02 && exact[2] > 0.002,
        "{exact:?}: a test worth having"
    );
    for method in ["resample", "state-jump", "product-space"] {
        let m = format!("transc.method=\"{method}\"");
        let mut args = vec![
            "run",
            "poly.toml",
            "-q",
            "-o",
            "p.h5",
            "--force",
            "--set",
            &m,
        ];
        if method == "product-space" {
            // An ensemble on 10 dimensions: more walkers and steps.
            args.extend(["--set", "transc.walkers=40", "--set", "transc.steps=40000"]);
        }
        assert_ok(&sb.sampo(&args));
        let p = read_f64(&sb.path("p.h5"), "transc/probability").1;
        let e = read_f64(&sb.path("p.h5"), "transc/probability_err").1;
        eprintln!("{method}: {p:?} ± {e:?}, exact {exact:?}");
        for k in 0..3 {
            assert!(
                (p[k] - exact[k]).abs() < 3.0 * e[k],
                "{method}: order {}: {} ± {} vs {}",
                orders[k],
                p[k],
                e[k],
                exact[k]
            );
        }
    }
}

fn read_xy(path: &std::path::Path) -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
    let ix = header.iter().position(|h| *h == "x").unwrap();
    let iy = header.iter().position(|h| *h == "y").unwrap();
    lines
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.trim().parse().unwrap()).collect();
            (f[ix], f[iy])
        })
        .unzip()
}

/// `--from` redoes only the trans-conceptual stage on the samples of a
/// complete file, into a new output: the same `/transc` as a whole run,
/// the source untouched; a spec that differs in more than `[transc]`, or
/// an output over the source, is refused.
#[test]
fn from_redoes_the_last_stage_on_a_files_samples() {
    let sb = Sandbox::new();
    let spec = spec(&sb);
    let text = std::fs::read_to_string(sb.path(spec)).unwrap();
    // The table headers, at the start of a line (the comments name them too).
    let (a, b) = (
        text.find("\n[transc]").unwrap() + 1,
        text.find("\n[[states]]").unwrap() + 1,
    );
    sb.write("plain.toml", &format!("{}{}", &text[..a], &text[b..]));
    assert_ok(&sb.sampo(&["run", "plain.toml", "-q", "-o", "src.h5"]));
    assert_ok(&sb.sampo(&["run", spec, "-q", "-o", "full.h5"]));
    let before = std::fs::read(sb.path("src.h5")).unwrap();
    assert_ok(&sb.sampo(&["run", spec, "-q", "--from", "src.h5", "-o", "from.h5"]));
    assert_eq!(
        std::fs::read(sb.path("src.h5")).unwrap(),
        before,
        "the source changed"
    );
    for name in [
        "state",
        "member",
        "visits",
        "moves",
        "probability",
        "probability_err",
    ] {
        let path = format!("transc/{name}");
        assert!(
            read_dataset_bits(&sb.path("full.h5"), &path)
                == read_dataset_bits(&sb.path("from.h5"), &path),
            "{path}"
        );
    }
    assert_eq!(
        read_str_attr(&sb.path("from.h5"), "/", "status"),
        "complete"
    );
    assert_eq!(read_str_attr(&sb.path("from.h5"), "/", "from"), "src.h5");
    // `sampo summary` shows the table of the run's end, from the file.
    let o = sb.sampo(&["summary", "from.h5"]);
    assert_ok(&o);
    let p = read_f64(&sb.path("from.h5"), "transc/probability").1;
    let table = stdout(&o);
    assert!(
        table.contains("trans-conceptual (resample") && table.contains(&format!("{:.4}", p[2])),
        "{table}"
    );
    // A one-component mixture is the Gaussian pseudo-prior, bit for bit.
    let one = "transc.pseudo_prior={ kind = \"gaussian-mixture\", components = 1 }";
    assert_ok(&sb.sampo(&[
        "run", spec, "-q", "--from", "src.h5", "-o", "k1.h5", "--set", one,
    ]));
    for name in ["pseudo_prior/s3/covs", "probability"] {
        let path = format!("transc/{name}");
        assert!(
            read_dataset_bits(&sb.path("full.h5"), &path)
                == read_dataset_bits(&sb.path("k1.h5"), &path),
            "{path}"
        );
    }
    // Burn-in and thinning of the samples from τ.
    let auto = "transc.samples=\"auto\"";
    assert_ok(&sb.sampo(&[
        "run", spec, "-q", "--from", "src.h5", "-o", "auto.h5", "--set", auto,
    ]));
    let a = sb.path("auto.h5");
    let thin = read_i64_attr(&a, "transc/pseudo_prior/s3", "thin");
    let burn = read_i64_attr(&a, "transc/pseudo_prior/s3", "burn_rows");
    assert!(
        thin > 1 && burn > 100,
        "τ of the 10-D state is tens of steps: {burn}, {thin}"
    );
    let p = read_f64(&a, "transc/probability").1;
    let e = read_f64(&a, "transc/probability_err").1;
    for k in 0..3 {
        assert!((p[k] - EXACT[k]).abs() < 3.0 * e[k], "auto: {p:?} ± {e:?}");
    }
    // Another method on the same samples.
    let m = "transc.method=\"state-jump\"";
    assert_ok(&sb.sampo(&[
        "run", spec, "-q", "--from", "full.h5", "-o", "jump.h5", "--set", m,
    ]));
    let p = read_f64(&sb.path("jump.h5"), "transc/probability").1;
    assert!((p[0] - EXACT[0]).abs() < 0.02, "{p:?}");
    // Refusals.
    let o = sb.sampo(&[
        "run",
        spec,
        "--from",
        "src.h5",
        "-o",
        "x.h5",
        "--set",
        "sampler.steps=100",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("more than [transc]") && stderr(&o).contains("steps"),
        "{}",
        stderr(&o)
    );
    let o = sb.sampo(&["run", spec, "--from", "src.h5", "-o", "src.h5", "--force"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("would write over its source"),
        "{}",
        stderr(&o)
    );
    let o = sb.sampo(&["run", "plain.toml", "--from", "src.h5", "-o", "y.h5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!sb.path("x.h5.partial").exists() && !sb.path("y.h5.partial").exists());
}

/// A run paused (SIGTERM) during the trans-conceptual stage — walkers
/// yield at their next step, the product-space ensemble too — resumes, the
/// carry rebuilt from the checkpoint, to the same `/transc`.
#[test]
fn a_pause_in_the_second_stage_resumes_to_the_same_results() {
    std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    let sb = Sandbox::new();
    let spec = spec(&sb);
    // Slow evaluations (100 µs), so that the signal falls inside the second
    // stage: the first takes about 2 s, the second 5–8 s.
    for (method, walkers, steps) in [
        ("state-jump", "8", "10000"),
        ("product-space", "40", "1250"),
    ] {
        let m = format!("transc.method=\"{method}\"");
        let w = format!("transc.walkers={walkers}");
        let st = format!("transc.steps={steps}");
        let mut sets = vec![
            "--set",
            &m,
            "--set",
            &w,
            "--set",
            &st,
            "--set",
            "sampler.steps=200",
        ];
        for cost in [
            "states.s1.cost_us=100",
            "states.s2.cost_us=100",
            "states.s3.cost_us=100",
        ] {
            sets.extend(["--set", cost]);
        }
        let run = |out: &'static str| {
            let mut args = vec!["run", spec, "-q", "--threads", "1", "-o", out, "--force"];
            args.extend(&sets);
            args
        };
        assert_ok(&sb.sampo(&run("ref.h5")));
        // Not quiet: the log says when the second stage starts.
        let mut args = run("p.h5");
        args.retain(|a| *a != "-q");
        let mut child = std::process::Command::new(sampo_bin())
            .current_dir(sb.dir.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stderr).lines();
            let mut seen = Vec::new();
            for line in lines.by_ref() {
                let line = line.unwrap();
                let started = line.contains("stage 1:");
                seen.push(line);
                if started {
                    // Drain the rest, so that the child never blocks on it.
                    std::thread::spawn(move || lines.for_each(drop));
                    return Ok(());
                }
            }
            Err(seen.join("\n"))
        });
        log.join().unwrap().expect("the second stage started");
        std::thread::sleep(std::time::Duration::from_millis(700));
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(75), "{method}");
        // Paused in the second stage: the pseudo-priors were fitted, and
        // not every walker is done (rows not written read as NaN).
        let partial = sb.path("p.h5.partial");
        let (_, w) = read_f64(&partial, "transc/pseudo_prior/s1/weights");
        assert_eq!(w, [1.0], "{method}");
        let (_, visits) = read_f64(&partial, "transc/visits");
        assert!(
            visits.iter().any(|v| v.is_nan()),
            "{method}: finished before the signal"
        );
        let mut args = vec![
            "run",
            "--resume",
            spec,
            "-q",
            "--threads",
            "2",
            "-o",
            "p.h5",
        ];
        args.extend(&sets);
        assert_ok(&sb.sampo(&args));
        for name in ["state", "visits", "moves", "probability", "probability_err"] {
            let path = format!("transc/{name}");
            assert!(
                read_dataset_bits(&sb.path("ref.h5"), &path)
                    == read_dataset_bits(&sb.path("p.h5"), &path),
                "{method}: {path}"
            );
        }
        std::fs::remove_file(sb.path("p.h5")).unwrap();
    }
}
