//! `sampo plot` on small outputs of the example configs: every figure that
//! applies to each kind renders in PNG and SVG (non-empty, of the size its
//! inches × --dpi give, the parameter names in the SVG's text), a failed
//! run's `.partial` plots from the rows it left, and the errors a user can
//! make exit 2 with a message. (The numbers behind the figures against
//! numpy: tests/python/test_plot_data.py.)

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The example config `name`, made small with `sets`, run into `<name>.h5`.
fn run_config(sb: &Sandbox, name: &str, sets: &[&str]) -> PathBuf {
    let spec = repo().join("configs").join(format!("{name}.toml"));
    let out = sb.path(&format!("{name}.h5"));
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--threads",
        "1",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    assert_ok(&sb.sampo(&args));
    out
}

/// Width and height from a PNG's IHDR, after checking its signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 1000, "{} is nearly empty", path.display());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// Plots `file` with `args`, returning the paths printed (one a line).
fn plot(sb: &Sandbox, file: &Path, args: &[&str]) -> Vec<PathBuf> {
    let mut all = vec!["plot", file.to_str().unwrap()];
    all.extend(args);
    let o = sb.sampo(&all);
    assert_ok(&o);
    stdout(&o).lines().map(PathBuf::from).collect()
}

fn stems(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The text of every `<text>` element of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

const DPI: u32 = 30;

/// Every figure of `file` in PNG and SVG: the figures expected (file stems
/// in order), PNG sizes (`sizes`: stem → inches), and the parameter names
/// some SVGs must show (`names`: stem → names).
fn renders(
    sb: &Sandbox,
    file: &Path,
    figures: &[&str],
    sizes: &[(&str, f64, f64)],
    names: &[(&str, &[&str])],
) {
    let dpi = DPI.to_string();
    let dir = sb.path(&format!(
        "{}-png",
        file.file_stem().unwrap().to_string_lossy()
    ));
    let pngs = plot(sb, file, &["--dpi", &dpi, "-o", dir.to_str().unwrap()]);
    assert_eq!(stems(&pngs), figures, "{}", file.display());
    for png in &pngs {
        assert_eq!(png.parent(), Some(dir.as_path()));
        let (w, h) = png_size(png);
        let stem = png.file_stem().unwrap().to_string_lossy();
        if let Some((_, wi, hi)) = sizes.iter().find(|(s, _, _)| *s == stem) {
            let px = |inches: f64| (inches * DPI as f64).round() as u32;
            assert_eq!((w, h), (px(*wi), px(*hi)), "{stem}");
        }
        assert!(w >= 100 && h >= 100, "{stem}: {w}×{h}");
    }
    let dir = sb.path(&format!(
        "{}-svg",
        file.file_stem().unwrap().to_string_lossy()
    ));
    let svgs = plot(
        sb,
        file,
        &[
            "--format",
            "svg",
            "--dpi",
            &dpi,
            "-o",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(stems(&svgs), figures);
    for svg in &svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        let texts = svg_texts(&text);
        assert!(texts.len() > 5, "{}: {texts:?}", svg.display());
        let stem = svg.file_stem().unwrap().to_string_lossy();
        for (_, want) in names.iter().filter(|(s, _)| *s == stem) {
            for name in *want {
                assert!(
                    texts.iter().any(|t| t == name),
                    "{stem}: no `{name}` in {texts:?}"
                );
            }
        }
    }
}

#[test]
fn ensemble_figures_render() {
    let sb = Sandbox::new();
    let out = run_config(
        &sb,
        "quickstart",
        &[
            "sampler.steps=300",
            "sampler.burn=50",
            "states.rosenbrock.steps=300",
            "states.rosenbrock.burn=50",
        ],
    );
    renders(
        &sb,
        &out,
        &[
            "gauss-trace",
            "gauss-corner",
            "gauss-diagnostics",
            "rosenbrock-trace",
            "rosenbrock-corner",
            "rosenbrock-diagnostics",
        ],
        // Trace: 10 in × (0.6 + 1.7 per panel: x, y, log_prob); corner of
        // 2 parameters 5 × 5.4 in, of 5: 9 × 9.4 in.
        &[
            ("gauss-trace", 10.0, 0.6 + 1.7 * 3.0),
            ("gauss-corner", 5.0, 5.4),
            ("rosenbrock-corner", 9.0, 9.4),
        ],
        &[
            ("gauss-trace", &["x", "y", "log_prob"]),
            ("gauss-corner", &["x", "y"]),
            ("rosenbrock-corner", &["a", "b", "c", "d", "e"]),
            ("rosenbrock-diagnostics", &["a", "e"]),
        ],
    );
    // Without -o: beside the file in <stem>-plots/; --dpi sets the size.
    let paths = plot(
        &sb,
        &out,
        &["--state", "gauss", "--kind", "trace", "--dpi", "50"],
    );
    assert_eq!(paths, [sb.path("quickstart-plots").join("gauss-trace.png")]);
    assert_eq!(png_size(&paths[0]), (500, 285));
    // -o a file for one figure; --params and --truth.
    let one = sb.path("corner.svg");
    let paths = plot(
        &sb,
        &out,
        &[
            "--state",
            "rosenbrock",
            "--kind",
            "corner",
            "--params",
            "b,a",
            "--truth",
            "a=2",
            "--format",
            "svg",
            "-o",
            one.to_str().unwrap(),
        ],
    );
    assert_eq!(paths, std::slice::from_ref(&one));
    let texts = svg_texts(&std::fs::read_to_string(&one).unwrap());
    let has = |n: &str| texts.iter().any(|t| t == n);
    assert!(has("a") && has("b") && !has("c"), "{texts:?}");
}

#[test]
fn chains_smc_and_transc_figures_render() {
    let sb = Sandbox::new();
    let out = run_config(
        &sb,
        "chains",
        &[
            "sampler.stop.max_steps=1000",
            "sampler.burn=200",
            "sampler.stop.check_every=500",
        ],
    );
    renders(
        &sb,
        &out,
        &[
            "gauss-trace",
            "gauss-corner",
            "gauss-diagnostics",
            "funnel-trace",
            "funnel-corner",
            "funnel-diagnostics",
        ],
        &[],
        &[
            ("gauss-trace", &["x", "y", "log_prob"]),
            ("funnel-corner", &["v", "x1", "x2"]),
        ],
    );
    let out = run_config(
        &sb,
        "smc",
        &[
            "sampler.particles=200",
            "sampler.effective=400",
            "sampler.total=200",
            "sampler.groups=4",
        ],
    );
    renders(
        &sb,
        &out,
        &["gauss-smc", "gauss-corner"],
        &[("gauss-smc", 13.0, 4.0)],
        &[("gauss-corner", &["x", "y"])],
    );
    let out = run_config(
        &sb,
        "transc",
        &["sampler.steps=200", "transc.steps=300", "transc.walkers=8"],
    );
    let mut figures = Vec::new();
    for s in ["s1", "s2", "s3"] {
        for f in ["trace", "corner", "diagnostics"] {
            figures.push(format!("{s}-{f}"));
        }
    }
    figures.push("transc".into());
    let figures: Vec<&str> = figures.iter().map(String::as_str).collect();
    renders(
        &sb,
        &out,
        &figures,
        &[("transc", 11.0, 4.5)],
        &[
            ("transc", &["s1", "s2", "s3"]),
            ("s2-corner", &["x0", "x4"]),
        ],
    );
}

#[test]
fn batch_and_paths_figures_render() {
    let sb = Sandbox::new();
    let out = run_config(&sb, "batch", &["sampler.items=500", "sampler.validate=5"]);
    renders(
        &sb,
        &out,
        &["decay-batch"],
        &[("decay-batch", 13.0, 5.0)],
        &[(
            "decay-batch",
            &["value", "t0.25", "t0.5", "t1", "t4", "items"],
        )],
    );
    // --params chooses the outputs histogrammed; --size sets the inches.
    let svg = sb.path("two.svg");
    plot(
        &sb,
        &out,
        &[
            "--params",
            "t2,t0.5",
            "--format",
            "svg",
            "--size",
            "8x5",
            "--dpi",
            "50",
            "-o",
            svg.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains(r#"width="400""#) && text.contains(r#"height="250""#));
    let texts = svg_texts(&text);
    for name in ["t2", "t0.5"] {
        assert!(texts.iter().any(|t| t == name), "no `{name}` in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "t4"), "{texts:?}");
    let out = run_config(
        &sb,
        "paths",
        &["sampler.paths=300", "sampler.record=\"both\""],
    );
    let figures: Vec<String> = ["weather", "ruin", "walk", "stock", "rate", "queue"]
        .iter()
        .map(|s| format!("{s}-paths"))
        .collect();
    let got = plot(
        &sb,
        &out,
        &[
            "--format",
            "json",
            "-o",
            sb.path("paths-json").to_str().unwrap(),
        ],
    );
    let got = stems(&got);
    for f in &figures {
        assert!(got.contains(f), "{f} not in {got:?}");
    }
    let got: Vec<&str> = got.iter().map(String::as_str).collect();
    renders(
        &sb,
        &out,
        &got,
        &[
            ("weather-paths", 12.0, 8.0),
            ("walk-paths", 12.0, 4.5),
            ("stock-paths", 8.0, 5.0),
        ],
        &[
            (
                "weather-paths",
                &["sun", "cloud", "rain", "first hitting step"],
            ),
            ("queue-paths", &["first hitting step", "share of paths"]),
        ],
    );
}

#[test]
fn a_failed_runs_partial_plots_from_the_rows_it_left() {
    let sb = Sandbox::new();
    let spec = repo().join("configs/quickstart.toml");
    let o = sb.sampo_env(
        &[
            "run",
            spec.to_str().unwrap(),
            "-o",
            "q.h5",
            "-q",
            "--threads",
            "1",
            "--set",
            "sampler.steps=4000",
            "--set",
            "states.rosenbrock.steps=600",
            "--set",
            "states.rosenbrock.burn=100",
        ],
        &[("SAMPO_INJECT_FAULT", "rosenbrock:3000")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let partial = sb.path("q.h5.partial");
    // Every figure by default; the state that failed before writing a row
    // (rosenbrock) is left out, the finished one (gauss) drawn.
    let paths = plot(&sb, &partial, &["--format", "json", "--burn", "0"]);
    assert_eq!(
        stems(&paths),
        ["gauss-trace", "gauss-corner", "gauss-diagnostics"]
    );
    assert!(paths
        .iter()
        .all(|p| p.parent() == Some(sb.path("q-plots").as_path())));
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&paths[0]).unwrap()).unwrap();
    assert_eq!(trace["figure"], "trace");
    assert_eq!(trace["rows"], 4000);
    // Asked for: a clear error, exit 2.
    let o = sb.sampo(&[
        "plot",
        partial.to_str().unwrap(),
        "--state",
        "rosenbrock",
        "--kind",
        "trace",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("state rosenbrock: no stored rows yet"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plot_errors_exit_2_with_a_message() {
    let sb = Sandbox::new();
    let out = run_config(&sb, "batch", &["sampler.items=200", "sampler.validate=5"]);
    let path = out.to_str().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (
            &["plot", path, "-o", "x.jpg"],
            "a .jpg file for --format png",
        ),
        (&["plot", "missing.h5"], "no such file"),
        (
            &["plot", path, "--state", "nope"],
            "no state `nope` (states: decay)",
        ),
        (&["plot", path, "--kind", "nope"], "invalid value 'nope'"),
        (
            &["plot", path, "--kind", "corner"],
            "figure `corner` does not apply to this file: its states are decay (batch)",
        ),
        (
            &["plot", path, "--state", "decay", "--kind", "trace"],
            "figure `trace` does not apply to state `decay` (batch); its figures: batch",
        ),
        (&["plot", path, "--kind", "transc"], "no /transc group"),
        (&["plot", path, "--truth", "tau=x"], "is not a number"),
        (
            &["plot", path, "--params", "t1,tau"],
            "no parameter `tau` in the states drawn (parameters or batch outputs: \
             t0.25, t0.5, t1, t2, t4)",
        ),
        (&["plot", path, "--size", "8"], "is not WIDTHxHEIGHT"),
    ];
    for (args, message) in cases {
        let o = sb.sampo(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    let sb2 = Sandbox::new();
    let out = run_config(
        &sb2,
        "quickstart",
        &[
            "sampler.steps=60",
            "sampler.burn=10",
            "states.rosenbrock.steps=60",
            "states.rosenbrock.burn=10",
        ],
    );
    let path = out.to_str().unwrap();
    for (args, message) in [
        (vec!["plot", path, "--params", "x,zz"], "no parameter `zz`"),
        (
            vec!["plot", path, "--kind", "corner", "--burn", "60"],
            "--burn 60 leaves nothing",
        ),
    ] {
        let o = sb2.sampo(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_running_batchs_partial_plots_the_rows_written_so_far() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    let spec = repo().join("configs/batch.toml");
    // 1 ms an item on one thread: 6 s, flushed every 2 s.
    let mut child = Command::new(sampo_bin())
        .current_dir(sb.path(""))
        .args([
            "run",
            spec.to_str().unwrap(),
            "-o",
            "slow.h5",
            "-q",
            "--threads",
            "1",
            "--set",
            "sampler.items=6000",
            "--set",
            "sampler.validate=0",
            "--set",
            "states.decay.cost_us=1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = sb.path("slow.h5.partial");
    let since = Instant::now();
    let mut seen = None;
    while since.elapsed() < Duration::from_secs(60) && seen.is_none() {
        std::thread::sleep(Duration::from_millis(300));
        if !partial.exists() {
            continue;
        }
        let target = sb.path("running.json");
        let o = sb.sampo(&[
            "plot",
            partial.to_str().unwrap(),
            "--kind",
            "batch",
            "--format",
            "json",
            "-o",
            target.to_str().unwrap(),
        ]);
        if !o.status.success() {
            continue;
        }
        let b: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
        let h = &b["histograms"][0];
        let counted: u64 = h["hist"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        if counted > 0 {
            seen = Some((b.clone(), counted, h["missing"].as_u64().unwrap()));
        }
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    let (b, counted, missing) = seen.expect("no rows plotted from the running run's .partial");
    // The rows written so far, the rest not yet: every item is one or the other.
    assert_eq!(counted + missing, 6000);
    assert!(
        missing > 0 || !still_running,
        "all rows counted while running"
    );
    assert_eq!(b["from"], "outputs");
    let png = sb.path("running.png");
    if partial.exists() {
        plot(
            &sb,
            &partial,
            &[
                "--kind",
                "batch",
                "--dpi",
                "30",
                "-o",
                png.to_str().unwrap(),
            ],
        );
        assert_eq!(png_size(&png), (390, 150));
    }
}
