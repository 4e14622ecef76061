//! User models from shared libraries (include/sampo.h): the C, Fortran and
//! Rust examples are built here and sampled locally and under mpiexec, and
//! every way a plugin can be wrong is tried.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn lib(rel: &str) -> String {
    example_plugins().join(rel).display().to_string()
}

fn spec(model: &str, prior: &str, extra: &str) -> String {
    format!(
        "[run]\nseed = 12\n[sampler]\nwalkers = 16\nsteps = 1500\n{extra}\n[[states]]\nname = \"s\"\nmodel = {model}\nprior = {prior}\n"
    )
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

const FUNNEL_PRIOR: &str = "{ kind = \"normal\", mean = [0.0, 0.0, 0.0], sd = [5.0, 5.0, 5.0] }";

#[test]
fn a_rust_plugin_gives_the_builtin_models_samples_bit_for_bit() {
    let sb = Sandbox::new();
    let plugin = format!(
        "{{ kind = \"plugin\", library = \"{}\", config = {{ sigma = 1.5 }} }}",
        lib("rust/target/release/libfunnel_plugin.so")
    );
    let builtin = "{ kind = \"funnel\", dim = 3, sigma = 1.5 }";
    let p = sb.write("p.toml", &spec(&plugin, FUNNEL_PRIOR, ""));
    let b = sb.write("b.toml", &spec(builtin, FUNNEL_PRIOR, ""));
    // Per-thread contexts, two threads.
    assert_ok(&sb.sampo(&["run", p.to_str().unwrap(), "-q", "--threads", "2"]));
    assert_ok(&sb.sampo(&["run", b.to_str().unwrap(), "-q", "--threads", "1"]));
    let (_, ours) = read_f64(&sb.path("p.h5"), "states/s/chain");
    let (_, theirs) = read_f64(&sb.path("b.h5"), "states/s/chain");
    assert_eq!(ours.len(), 1500 * 16 * 3);
    assert!(bits(&ours) == bits(&theirs), "plugin and built-in differ");
    // And across ranks.
    let o = run_mpi(
        &sb,
        2,
        &["run", "p.toml", "-q", "-o", "mpi.h5", "--threads", "1"],
        &[],
    );
    assert_ok(&o);
    let (_, mpi) = read_f64(&sb.path("mpi.h5"), "states/s/chain");
    assert!(bits(&mpi) == bits(&theirs), "under mpiexec -n 2");
}

#[test]
fn c_plugins_recover_their_posteriors() {
    let sb = Sandbox::new();
    let text = format!(
        "[run]\nseed = 5\n[sampler]\nkind = \"chains\"\nchains = 4\nsteps = 12000\nburn = 2000\n\
         [[states]]\nname = \"g\"\nparams = [\"x\", \"y\"]\n\
         model = {{ kind = \"plugin\", library = \"{}\", config = {{ mean = [1.0, -1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }} }}\n\
         prior = {{ kind = \"uniform\", low = [-20.0, -20.0], high = [20.0, 20.0] }}\n\
         [[states]]\nname = \"line\"\nparams = [\"a\", \"b\"]\n\
         model = {{ kind = \"plugin\", library = \"{}\", config = {{ data = \"{}\", noise_sd = 0.2 }} }}\n\
         prior = {{ kind = \"uniform\", low = [-10.0, -10.0], high = [10.0, 10.0] }}\n",
        lib("c/libgaussian.so"),
        lib("c/libregression.so"),
        lib("c/line.csv"),
    );
    let spec = sb.write("c.toml", &text);
    assert_ok(&sb.sampo(&["run", spec.to_str().unwrap(), "-q"]));
    let out = sb.path("c.h5");
    let (_, mean) = read_f64(&out, "summary/mean");
    let (_, mcse) = read_f64(&out, "summary/mcse_mean");
    // The line's exact posterior mean under a flat prior: least squares.
    let data = std::fs::read_to_string(lib("c/line.csv")).unwrap();
    let pts: Vec<(f64, f64)> = data
        .lines()
        .skip(1)
        .map(|l| {
            let (x, y) = l.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    let n = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let sxx: f64 = pts.iter().map(|(x, _)| (x - sx / n).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|(x, y)| (x - sx / n) * (y - sy / n)).sum();
    let slope = sxy / sxx;
    let intercept = sy / n - slope * sx / n;
    for (row, truth) in [1.0, -1.0, intercept, slope].iter().enumerate() {
        assert!(
            (mean[row] - truth).abs() < 5.0 * mcse[row],
            "row {row}: {} ± {}, expected {truth}",
            mean[row],
            mcse[row]
        );
    }
}

/// The decays example's log-likelihood, as decays.f90 computes it.
fn decays_log_likelihood(amplitude: f64, lifetime: f64, sigma: f64) -> f64 {
    let mut ss = 0.0;
    for i in 1..=50 {
        let t = 0.1 * i as f64;
        let y = 2.0 * (-t / 1.5f64).exp() + sigma * (12.9898 * i as f64).sin();
        let r = (y - amplitude * (-t / lifetime).exp()) / sigma;
        ss += r * r;
    }
    -0.5 * ss
}

#[test]
fn a_serialized_fortran_plugin_runs_one_thread_per_rank_and_is_right() {
    let sb = Sandbox::new();
    let text = spec(
        &format!(
            "{{ kind = \"plugin\", library = \"{}\", config = {{ noise_sd = 0.05 }} }}",
            lib("fortran/libdecays.so")
        ),
        "{ kind = \"uniform\", low = [0.0, 0.01], high = [10.0, 10.0] }",
        "init = { kind = \"ball\", center = [2.0, 1.5], radius = 0.01 }",
    )
    .replace("steps = 1500", "steps = 6000");
    let spec = sb.write("d.toml", &text);
    let o = sb.sampo(&["check", spec.to_str().unwrap(), "--threads", "2"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("1 thread(s) (a serialized plugin"),
        "{}",
        stdout(&o)
    );
    let two = sb.sampo(&[
        "run",
        spec.to_str().unwrap(),
        "-q",
        "--threads",
        "2",
        "-o",
        "t2.h5",
    ]);
    assert_ok(&two);
    assert!(
        stderr(&two).contains("state(s) `s`: a serialized plugin"),
        "{}",
        stderr(&two)
    );
    assert_ok(&sb.sampo(&[
        "run",
        spec.to_str().unwrap(),
        "-q",
        "--threads",
        "1",
        "-o",
        "t1.h5",
    ]));
    // Said once for the job, naming every serialized state, not by each rank.
    let o = run_mpi(
        &sb,
        2,
        &["run", "d.toml", "-q", "-o", "mpi.h5", "--threads", "2"],
        &[],
    );
    assert_ok(&o);
    assert_eq!(
        stderr(&o).matches("a serialized plugin").count(),
        1,
        "{}",
        stderr(&o)
    );
    let (_, t1) = read_f64(&sb.path("t1.h5"), "states/s/chain");
    for other in ["t2.h5", "mpi.h5"] {
        let (_, v) = read_f64(&sb.path(other), "states/s/chain");
        assert!(bits(&v) == bits(&t1), "{other} differs from one thread");
    }
    // The posterior means by quadrature on a grid (flat prior), against the
    // samples within 5 MCSE.
    let (mut z, mut ma, mut ml) = (0.0, 0.0, 0.0);
    let n = 600;
    let peak = decays_log_likelihood(2.0, 1.5, 0.05);
    for i in 0..n {
        let a = 1.8 + 0.4 * (i as f64 + 0.5) / n as f64;
        for j in 0..n {
            let l = 1.3 + 0.4 * (j as f64 + 0.5) / n as f64;
            let w = (decays_log_likelihood(a, l, 0.05) - peak).exp();
            z += w;
            ma += w * a;
            ml += w * l;
        }
    }
    let out = sb.path("t1.h5");
    let (_, mean) = read_f64(&out, "summary/mean");
    let (_, mcse) = read_f64(&out, "summary/mcse_mean");
    for (k, truth) in [ma / z, ml / z].iter().enumerate() {
        assert!(
            (mean[k] - truth).abs() < 5.0 * mcse[k],
            "param {k}: {} ± {}, expected {truth}",
            mean[k],
            mcse[k]
        );
    }
}

fn run_fails(sb: &Sandbox, library: &str, config: &str, command: &str) -> (Option<i32>, String) {
    let model = format!("{{ kind = \"plugin\", library = \"{library}\", config = {config} }}");
    let p = sb.write(
        "e.toml",
        &spec(
            &model,
            "{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }",
            "init = { kind = \"ball\", center = [0.0, 0.0], radius = 0.1 }",
        ),
    );
    let args: &[&str] = if command == "run" { &["-q"] } else { &[] };
    let o = sb.sampo(&[&[command, p.to_str().unwrap()], args].concat());
    (o.status.code(), stderr(&o))
}

/// A `sampo_init` that never returns (here: sleeps 1000 s) ends `check`
/// and `run` with exit 2 once the spec's `[parallel] timeout` has passed,
/// naming the library and state, before any output exists.
#[test]
fn an_init_that_never_returns_ends_check_and_run_with_exit_2() {
    let sb = Sandbox::new();
    let library = faulty(&sb, "sleepy.so", &[]);
    let model = format!(
        "{{ kind = \"plugin\", library = \"{library}\", config = {{ sleep_init = 1000 }} }}"
    );
    let text = format!(
        "[parallel]\ntimeout = 2\n{}",
        spec(
            &model,
            "{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }",
            "init = { kind = \"ball\", center = [0.0, 0.0], radius = 0.1 }",
        )
    );
    sb.write("e.toml", &text);
    for command in ["check", "run"] {
        let mut child = std::process::Command::new(sampo_bin())
            .args([command, "e.toml"])
            .current_dir(sb.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Generous on a loaded machine; a hang fails the test instead of
        // holding the suite.
        let ms = std::time::Duration::from_millis;
        if ends_within(&mut child, ms(60_000), ms(100)).is_none() {
            child.kill().unwrap();
            panic!("{command}: still running after 60 s");
        }
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("sampo_init for state `s` did not return within 2 s")
                && err.contains("sleepy.so"),
            "{command}: {err}"
        );
        assert!(!sb.path("e.h5.partial").exists() && !sb.path("e.h5").exists());
    }
}

/// A plugin that calls exit(0) (what a Fortran STOP does), in its init or
/// in an evaluation, alone or under MPI: a failure (exit 1) that names the
/// library, never a silent success; the run's output stays unfinished.
#[test]
fn a_plugin_calling_exit_is_a_failure_that_names_it() {
    let sb = Sandbox::new();
    let library = faulty(&sb, "stops.so", &[]);
    let write = |name: &str, config: &str| {
        let model =
            format!("{{ kind = \"plugin\", library = \"{library}\", config = {{ {config} }} }}");
        sb.write(
            name,
            &spec(
                &model,
                "{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }",
                "init = { kind = \"ball\", center = [0.0, 0.0], radius = 0.1 }",
            ),
        );
    };
    write("init.toml", "exit_init = 1");
    write("eval.toml", "exit_after = 2000");
    let says = |o: &std::process::Output, what: &str| {
        let err = stderr(o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains("by calling exit()") && err.contains("stops.so"),
            "{what}: {err}"
        );
    };
    says(&sb.sampo(&["check", "init.toml"]), "check, exit in init");
    says(&sb.sampo(&["run", "init.toml", "-q"]), "run, exit in init");
    says(
        &sb.sampo(&["run", "eval.toml", "-q"]),
        "run, exit in an evaluation",
    );
    assert!(!sb.path("eval.h5").exists() && sb.path("eval.h5.partial").exists());
    let o = run_mpi(&sb, 2, &["run", "eval.toml", "-q", "--force"], &[]);
    assert!(!o.status.success(), "under MPI: {}", stderr(&o));
    assert!(stderr(&o).contains("by calling exit()"), "{}", stderr(&o));
    assert!(!sb.path("eval.h5").exists());
}

/// A plugin evaluation that never returns, on the only rank or on a
/// worker: the job fails once `[parallel] evaluation_timeout` has passed,
/// naming the state and the parameters, and never hangs; the rows
/// received stay in the `.partial`, which says why it failed.
#[test]
fn an_evaluation_that_never_returns_fails_the_job_with_its_context() {
    let sb = Sandbox::new();
    let library = faulty(&sb, "hangs.so", &[]);
    let write = |name: &str, config: &str| {
        let model =
            format!("{{ kind = \"plugin\", library = \"{library}\", config = {{ {config} }} }}");
        let text = format!(
            "[parallel]\nevaluation_timeout = 2\ntimeout = 5\n{}",
            spec(
                &model,
                "{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }",
                "init = { kind = \"ball\", center = [0.0, 0.0], radius = 0.1 }",
            )
            .replace("steps = 1500", "steps = 20000")
        );
        sb.write(name, &text);
    };
    write("alone.toml", "hang_after = 3000");
    write("worker.toml", "hang_after = 3000, hang_on_rank = 1");
    // Three tasks on three ranks: a queue, one task a rank.
    let worker = std::fs::read_to_string(sb.path("worker.toml")).unwrap();
    sb.write(
        "worker.toml",
        &worker.replace("[run]\n", "[run]\nreplicates = 3\n"),
    );
    // One task shared by the three ranks (group mode).
    sb.write("group.toml", &worker);
    let ends = |mut command: Command, what: &str| {
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let ms = std::time::Duration::from_millis;
        if ends_within(&mut child, ms(90_000), ms(100)).is_none() {
            child.kill().unwrap();
            panic!("{what}: still running after 90 s");
        }
        child.wait_with_output().unwrap()
    };
    let mut alone = Command::new(sampo_bin());
    alone
        .args(["run", "alone.toml", "-q", "--threads", "2"])
        .current_dir(sb.dir.path());
    let o = ends(alone, "one process");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let context = "sampo_log_density of library";
    assert!(
        err.contains(context) && err.contains("state `s`") && err.contains("has not returned for"),
        "{err}"
    );
    let status = read_str_attr(&sb.path("alone.h5.partial"), "/", "status");
    assert!(
        status.starts_with("failed: ") && status.contains("parameters ["),
        "{status}"
    );
    let worker = mpiexec(&sb, 3, &["run", "worker.toml", "-q"], &[]);
    let o = ends(worker, "three ranks");
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&format!("rank 1: {context}")) && err.contains("has not returned for"),
        "{err}"
    );
    let group = mpiexec(&sb, 3, &["run", "group.toml", "-q"], &[]);
    let o = ends(group, "three ranks sharing a task");
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
}

#[test]
fn broken_libraries_stop_before_any_work_with_exit_2() {
    let sb = Sandbox::new();
    let not_a_library = sb.write("text.so", "not a shared library\n");
    let cases = [
        (sb.path("missing.so").display().to_string(), "{}", "no such file"),
        (not_a_library.display().to_string(), "{}", "cannot load it as a shared library"),
        (faulty(&sb, "abi.so", &["-DABI=99"]), "{}", "built for sampo ABI version 99"),
        (faulty(&sb, "nofree.so", &["-DNO_FREE"]), "{}", "missing function `sampo_free`"),
        (faulty(&sb, "safety.so", &["-DSAFETY=7"]), "{}", "sampo_thread_safety returned 7"),
        (
            faulty(&sb, "init.so", &[]),
            "{ fail_init = true }",
            "sampo_init failed for state `s` with status 7: cannot prepare state s: fail_init was asked for",
        ),
        // What JSON cannot carry is refused, not passed as null or a wrapper.
        (
            faulty(&sb, "nan.so", &[]),
            "{ scale = [1.0, nan] }",
            "model.config.scale[1]: nan and inf cannot reach a plugin",
        ),
        (
            faulty(&sb, "inf.so", &[]),
            "{ deep = { limit = -inf } }",
            "model.config.deep.limit: nan and inf cannot reach a plugin",
        ),
        (
            faulty(&sb, "date.so", &[]),
            "{ when = 1979-05-27T07:32:00Z }",
            "model.config.when: a TOML date or time cannot reach a plugin",
        ),
    ];
    for (library, config, message) in &cases {
        for command in ["check", "run"] {
            let (code, err) = run_fails(&sb, library, config, command);
            assert_eq!(code, Some(2), "{library} {command}: {err}");
            assert!(err.contains(message), "{library} {command}: {err}");
            assert!(err.contains("e.toml:9:"), "located: {err}");
        }
        assert!(!sb.path("e.h5.partial").exists() && !sb.path("e.h5").exists());
    }
}

#[test]
fn failing_and_nan_evaluations_are_reported_with_their_context() {
    let sb = Sandbox::new();
    let lib = faulty(&sb, "f.so", &[]);
    let (code, err) = run_fails(&sb, &lib, "{ fail_after = 500 }", "run");
    assert_eq!(code, Some(1), "{err}");
    for part in [
        "state `s`",
        "seed 12",
        "walker",
        "sampo_log_density of library",
        "returned status 3",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(sb.path("e.h5.partial").exists());
    std::fs::remove_file(sb.path("e.h5.partial")).unwrap();
    // NaN: counted, warned, treated as −∞: from a start inside, no walker
    // ever goes beyond the NaN edge.
    let (code, err) = run_fails(&sb, &lib, "{ nan_above = 1.0 }", "run");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("returned NaN"), "{err}");
    let (_, chain) = read_f64(&sb.path("e.h5"), "states/s/chain");
    assert!(chain.chunks(2).all(|x| x[0] <= 1.0));
    // +∞: a failure of the model, named with its context, never a sample.
    std::fs::remove_file(sb.path("e.h5")).unwrap();
    let (code, err) = run_fails(&sb, &lib, "{ inf_above = 0.3 }", "run");
    assert_eq!(code, Some(1), "{err}");
    for part in ["state `s`", "walker", "+∞"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let status = read_str_attr(&sb.path("e.h5.partial"), "/", "status");
    assert!(
        status.starts_with("failed") && status.contains("+∞"),
        "{status}"
    );
}

#[test]
fn an_init_failing_on_one_rank_stops_the_mpi_job_with_exit_2() {
    let sb = Sandbox::new();
    let lib = faulty(&sb, "r.so", &[]);
    let model =
        format!("{{ kind = \"plugin\", library = \"{lib}\", config = {{ fail_on_rank = 1 }} }}");
    sb.write(
        "r.toml",
        &spec(
            &model,
            "{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }",
            "",
        ),
    );
    let o = run_mpi(&sb, 2, &["run", "r.toml", "-q"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("rank 1: state `s`") && err.contains("no data on this rank"),
        "{err}"
    );
    assert!(!sb.path("r.h5.partial").exists() && !sb.path("r.h5").exists());
}

#[test]
fn the_plugin_abi_is_reachable_directly() {
    // The forward model and the batch call, through the library API.
    use sampo::model::plugin::Plugin;
    use sampo::model::{LogDensity, PluginSpec};
    let path = PathBuf::from(lib("c/libregression.so"));
    let config = format!("{{\"data\": \"{}\", \"noise_sd\": 0.2}}", lib("c/line.csv"));
    let p = Plugin::for_state(
        &PluginSpec::load(Path::new(&path), &config).unwrap(),
        "line",
        2,
    )
    .unwrap();
    let y = p.forward(&[1.0, 2.0]).unwrap();
    assert_eq!(y.len(), 11);
    assert_eq!(y[2], 1.0 + 2.0 * 1.0);
    let gaussian = PluginSpec::load(
        Path::new(&lib("c/libgaussian.so")),
        "{\"mean\": [1.0, -1.0], \"cov\": [[1.0, 0.5], [0.5, 2.0]]}",
    )
    .unwrap();
    let g = Plugin::for_state(&gaussian, "g", 2).unwrap();
    assert!(g.has_batch());
    let xs = [0.0, 0.0, 1.0, -1.0, 3.0, 2.0];
    let mut out = [0.0; 3];
    g.log_density_batch(&xs, &mut out).unwrap();
    let builtin =
        sampo::model::Gaussian::new(&[1.0, -1.0], &[vec![1.0, 0.5], vec![0.5, 2.0]]).unwrap();
    for (x, o) in xs.chunks(2).zip(out) {
        assert_eq!(o, g.log_density(x).unwrap());
        assert!((o - builtin.log_density(x).unwrap()).abs() < 1e-12, "{o}");
    }
}

#[test]
fn the_example_configs_run_as_the_readme_says() {
    example_plugins();
    let sb = Sandbox::new();
    for name in ["plugin-c", "plugin-fortran", "plugin-rust"] {
        let out = sb.path(&format!("{name}.h5"));
        // From the repository's root, as docs/plugins.md runs them.
        let o = Command::new(sampo_bin())
            .current_dir(repo())
            .args(["run", &format!("configs/{name}.toml"), "-q", "-o"])
            .arg(&out)
            .output()
            .expect("sampo runs");
        assert_ok(&o);
        let (_, mean) = read_f64(&out, "summary/mean");
        assert!(mean.iter().all(|m| m.is_finite()), "{name}: {mean:?}");
        // The same under mpiexec -n 2, bit for bit.
        let mpi_out = sb.path(&format!("{name}-mpi.h5"));
        let o = Command::new("mpiexec")
            .current_dir(repo())
            .args(["--oversubscribe", "--bind-to", "none", "-n", "2"])
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .arg(sampo_bin())
            .args([
                "run",
                &format!("configs/{name}.toml"),
                "-q",
                "--threads",
                "1",
                "-o",
            ])
            .arg(&mpi_out)
            .output()
            .expect("mpiexec runs");
        assert_ok(&o);
        let local = sample_datasets(&out);
        let mpi = sample_datasets(&mpi_out);
        assert!(!local.is_empty());
        assert_eq!(local.len(), mpi.len());
        for (a, b) in local.iter().zip(&mpi) {
            assert!(
                bits(&a.2) == bits(&b.2),
                "{name}: {} differs under mpiexec",
                a.0
            );
        }
    }
}

#[test]
fn a_plugin_crashing_one_rank_ends_the_mpi_job() {
    let sb = Sandbox::new();
    let lib = faulty(&sb, "crash.so", &[]);
    let model =
        format!("{{ kind = \"plugin\", library = \"{lib}\", config = {{ crash_on_rank = 1 }} }}");
    // Two states, so that each rank runs one; rank 1's crashes.
    let text = spec(&model, "{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }", "")
        .replace("steps = 1500", "steps = 200000")
        + &format!(
            "[[states]]\nname = \"t\"\nmodel = {model}\nprior = {{ kind = \"uniform\", low = [-5.0, -5.0], high = [5.0, 5.0] }}\n"
        );
    sb.write("x.toml", &text);
    let mut child = mpiexec(&sb, 2, &["run", "x.toml", "-q", "--threads", "1"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ms = std::time::Duration::from_millis;
    let Some(status) = ends_within(&mut child, ms(60_000), ms(100)) else {
        child.kill().unwrap();
        panic!("the job did not end within 60 s of a rank's crash");
    };
    assert!(!status.success());
    assert!(!sb.path("x.h5").exists(), "never marked complete");
    // A pause rank 0 says it began (the launcher's SIGTERM) is in the file
    // too: its status and its log agree.
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    if err.contains("paused by SIGTERM") {
        // mpiexec may return while rank 0 still holds the file: wait for it.
        let partial = sb.path("x.h5.partial");
        let waited = std::time::Instant::now();
        while hdf5::File::open(&partial).is_err() {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(30),
                "the output stayed locked 30 s after the job ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let status = read_str_attr(&partial, "/", "status");
        assert!(status.starts_with("paus"), "status {status} after: {err}");
    }
}

#[test]
fn a_batch_plugin_gives_the_samples_of_single_calls() {
    let sb = Sandbox::new();
    example_plugins();
    // The C Gaussian with and without sampo_log_density_batch.
    let single = sb.path("single.so");
    let o = Command::new("cc")
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-DNO_BATCH",
            "-I",
        ])
        .arg(repo().join("include"))
        .arg("-o")
        .arg(&single)
        .arg(repo().join("examples/plugins/c/gaussian.c"))
        .arg("-lm")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = "config = { mean = [1.0, -1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }";
    let prior = "{ kind = \"uniform\", low = [-3.0, -4.0], high = [3.0, 3.0] }";
    let mut chains = Vec::new();
    for (name, library) in [
        ("batch", lib("c/libgaussian.so")),
        ("single", single.display().to_string()),
    ] {
        let model = format!("{{ kind = \"plugin\", library = \"{library}\", {config} }}");
        let p = sb.write(&format!("{name}.toml"), &spec(&model, prior, ""));
        for threads in ["1", "2"] {
            let out = format!("{name}{threads}.h5");
            assert_ok(&sb.sampo(&[
                "run",
                p.to_str().unwrap(),
                "-q",
                "--threads",
                threads,
                "-o",
                &out,
            ]));
            let (_, chain) = read_f64(&sb.path(&out), "states/s/chain");
            let (_, evals) = read_f64(&sb.path(&out), "timings/evaluations");
            chains.push((format!("{name} × {threads}"), bits(&chain), evals));
        }
    }
    for (name, chain, evals) in &chains[1..] {
        assert!(*chain == chains[0].1, "{name} differs from {}", chains[0].0);
        assert_eq!(*evals, chains[0].2, "{name}");
    }
}
