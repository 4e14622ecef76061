//! The gallery of example specs in configs/: every spec there (found by
//! listing the folder, so a new one is covered without editing this file)
//! opens with the gallery's header, passes `sampo check`, and, unless
//! [`NOT_RUN`] names it with a reason, runs and gives the answer its header
//! promises.
//!
//! The header:
//!
//! ```text
//! # <one-line title>
//! #
//! # Shows: <what it demonstrates, may wrap onto `# ` lines>
//! # Expect: <the answer a correct run gives, may wrap>
//! #
//! #   <set-up commands, if any>
//! #   sampo check configs/<name>.toml
//! #   sampo run configs/<name>.toml     # writes <file>.h5 (about N s on 2 cores)
//! ```
//!
//! In the Expect text every `=` is a claim this test checks against the run's
//! `sampo summary --format json`, within five times the Monte Carlo error the
//! summary reports: `mean(state, param) = v` (a posterior mean, an SMC
//! state's mean, or a batch output's mean), `log Z(state) = v`,
//! `P(state) = v` (a trans-conceptual state probability), and for paths
//! `share(state, label) = v`, `absorbed(state, label) = v` and
//! `hitting time(state, target) = v`. "nothing flagged" claims that no
//! parameter carries a diagnostic flag and no batch item failed. Values that
//! are not claims are written with `≈`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::*;

/// Specs that are checked here but not run, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "batch-tem1d.toml",
        "10 000 TEM1D models take about 40 s; tests/python/test_tem1d_plugin.py \
         runs 200 of them and compares them with pytem1d",
    ),
    (
        "python.toml",
        "one Python call per point in its scalar state: about 12 s; \
         tests/python/test_python_models.py runs Python models",
    ),
    (
        "scaling.toml",
        "a benchmark, slow on purpose (a 1 ms busy-wait per evaluation), \
         with no answer to check",
    ),
];

/// Monte Carlo errors allowed between a claim and the run's estimate.
const SIGMAS: f64 = 5.0;

/// Every configs/*.toml, by file name, sorted.
fn configs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("configs"))
        .expect("configs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no configs/*.toml");
    names
}

fn text_of(name: &str) -> String {
    std::fs::read_to_string(repo().join("configs").join(name)).expect(name)
}

/// A spec's header, as described in this file's opening comment.
struct Header {
    expect: String,
    /// The file the `sampo run` line says it writes.
    writes: String,
}

fn header(name: &str, text: &str) -> Result<Header, String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .first()
        .and_then(|l| l.strip_prefix("# "))
        .filter(|t| !t.trim().is_empty())
        .ok_or("line 1 must be `# <title>`")?;
    if lines.get(1) != Some(&"#") {
        return Err("line 2 must be `#`".into());
    }
    let mut i = 2;
    field(&lines, &mut i, "# Shows: ", "# Expect: ")?;
    let expect = field(&lines, &mut i, "# Expect: ", "#")?;
    i += 1;
    let mut commands = Vec::new();
    while let Some(c) = lines.get(i).and_then(|l| l.strip_prefix("#   ")) {
        commands.push(c.trim_end());
        i += 1;
    }
    let check = format!("sampo check configs/{name}");
    if !commands.contains(&check.as_str()) {
        return Err(format!("no `#   {check}` line after the Expect text"));
    }
    let run = format!("sampo run configs/{name}");
    let writes = commands
        .iter()
        .filter_map(|c| c.strip_prefix(&run))
        .find_map(|rest| rest.trim_start().strip_prefix("# writes "))
        .ok_or(format!(
            "no `#   {run}     # writes <file>.h5 (about N s on 2 cores)` line"
        ))?;
    let (file, time) = writes
        .split_once(" (about ")
        .ok_or("the run line must end `(about N s on 2 cores)`")?;
    let seconds = time
        .strip_suffix(" s on 2 cores)")
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or("the run line must end `(about N s on 2 cores)`")?;
    if !file.ends_with(".h5") || seconds <= 0.0 {
        return Err(format!("the run line's `writes {writes}`"));
    }
    Ok(Header {
        expect,
        writes: file.to_string(),
    })
}

/// The text of a header field starting at line `i` with `prefix`, up to the
/// line that starts with `next`; leaves `i` there.
fn field(lines: &[&str], i: &mut usize, prefix: &str, next: &str) -> Result<String, String> {
    let first = lines
        .get(*i)
        .and_then(|l| l.strip_prefix(prefix))
        .ok_or(format!("line {}: expected `{prefix}…`", *i + 1))?;
    let mut text = first.trim().to_string();
    *i += 1;
    loop {
        let line = lines.get(*i).ok_or("the header ends early")?;
        if *line == next || (next != "#" && line.starts_with(next)) || *line == "#" {
            break;
        }
        let more = line
            .strip_prefix("# ")
            .ok_or(format!("line {}: the header ends before `{next}`", *i + 1))?;
        text.push(' ');
        text.push_str(more.trim());
        *i += 1;
    }
    if text.is_empty() {
        return Err(format!("`{prefix}` is empty"));
    }
    Ok(text)
}

/// A number the Expect text claims.
#[derive(Debug)]
struct Claim {
    quantity: &'static str,
    args: Vec<String>,
    value: f64,
}

const QUANTITIES: [(&str, usize); 6] = [
    ("hitting time", 2),
    ("absorbed", 2),
    ("log Z", 1),
    ("share", 2),
    ("mean", 2),
    ("P", 1),
];

/// Every `quantity(args) = number` in `expect`; an `=` in any other form is
/// an error, so that a claim cannot go unchecked by a typo.
fn claims(expect: &str) -> Result<Vec<Claim>, String> {
    let mut out = Vec::new();
    for (pos, _) in expect.match_indices('=') {
        let before = expect[..pos].trim_end();
        let bad = || {
            format!(
                "`{}= …` is not a claim `quantity(state[, name]) = number` \
                 (quantities: {:?}); write values that are not checked with ≈",
                tail(before, 40),
                QUANTITIES.map(|q| q.0)
            )
        };
        let inner = before.strip_suffix(')').ok_or_else(bad)?;
        let open = inner.rfind('(').ok_or_else(bad)?;
        let head = &inner[..open];
        let (quantity, arity) = QUANTITIES
            .into_iter()
            .find(|(q, _)| {
                head.strip_suffix(q)
                    .is_some_and(|rest| !rest.ends_with(|c: char| c.is_alphanumeric()))
            })
            .ok_or_else(bad)?;
        let args: Vec<String> = inner[open + 1..]
            .split(',')
            .map(|a| a.trim().to_string())
            .collect();
        if args.len() != arity || args.iter().any(String::is_empty) {
            return Err(bad());
        }
        let number: String = expect[pos + 1..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '−'))
            .collect();
        let value = number
            .trim_end_matches('.')
            .replace('−', "-")
            .parse::<f64>()
            .map_err(|_| bad())?;
        out.push(Claim {
            quantity,
            args,
            value,
        });
    }
    Ok(out)
}

fn tail(s: &str, chars: usize) -> String {
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(chars)).collect()
}

/// The element of the array `list` whose `key` is `name`.
fn by<'a>(list: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|v| v[key].as_str() == Some(name))
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v[key].as_f64()
}

/// The run's estimate of a claim and its Monte Carlo error.
fn estimate(summary: &Value, claim: &Claim) -> Option<(f64, f64)> {
    let a = &claim.args;
    match claim.quantity {
        "mean" => {
            let state = by(&summary["states"], "state", &a[0])
                .or_else(|| by(&summary["evidences"], "state", &a[0]))?;
            if let Some(p) = by(&state["params"], "param", &a[1]) {
                return Some((num(p, "mean")?, num(p, "mcse_mean")?));
            }
            let o = by(&state["outputs"], "output", &a[1])?;
            Some((num(o, "mean")?, num(o, "sd")? / num(o, "count")?.sqrt()))
        }
        "log Z" => {
            let e = by(&summary["evidences"], "state", &a[0])?;
            Some((num(e, "log_evidence")?, num(e, "log_evidence_err")?))
        }
        "P" => {
            let s = by(&summary["transc"]["states"], "state", &a[0])
                .or_else(|| by(&summary["evidences"], "state", &a[0]))?;
            Some((num(s, "probability")?, num(s, "probability_err")?))
        }
        "share" => {
            let f = by(&summary["final"], "state", &a[0])?;
            let s = by(&f["states"], "label", &a[1])?;
            Some((num(s, "share")?, num(s, "se")?))
        }
        "absorbed" => {
            let f = by(&summary["absorption"], "state", &a[0])?;
            let s = by(&f["absorbing"], "label", &a[1])?;
            Some((num(s, "probability")?, num(s, "se")?))
        }
        "hitting time" => {
            let h = by(&summary["hitting"], "state", &a[0])?;
            let t = by(&h["targets"], "target", &a[1])?;
            Some((num(t, "mean")?, num(t, "se")?))
        }
        _ => None,
    }
}

/// What is flagged in a summary: parameters with flags, flagged
/// trans-conceptual states, failed batch items.
fn flagged(summary: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for s in list(&summary["states"])
        .iter()
        .chain(&list(&summary["evidences"]))
    {
        let state = s["state"].as_str().unwrap_or("?");
        for p in list(&s["params"]) {
            let flags = p["flags"].as_array().unwrap_or(&empty);
            if !flags.is_empty() {
                out.push(format!("{state}.{}: {flags:?}", p["param"]));
            }
        }
        if s["failed"].as_u64().is_some_and(|n| n > 0) {
            out.push(format!("{state}: {} failed items", s["failed"]));
        }
    }
    for s in list(&summary["transc"]["states"]) {
        let flags = s["flags"].as_array().unwrap_or(&empty);
        if !flags.is_empty() {
            out.push(format!("transc {}: {flags:?}", s["state"]));
        }
    }
    out
}

/// The venv Python models import numpy from: $SAMPO_VENV, else the
/// repository's .venv (both made by scripts/python-env.sh).
fn venv() -> PathBuf {
    std::env::var_os("SAMPO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"))
}

/// Builds what `name` needs (the example plugins, as tests/plugins.rs does)
/// and fails with the header's set-up when something it needs is missing:
/// a fetched library (scripts/fetch-tem1d.sh) or a venv with numpy
/// (scripts/python-env.sh; scripts/test.sh runs both before `cargo test`).
fn provide(name: &str, text: &str) {
    let spec: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let states = spec["states"].as_array().expect("states");
    for state in states {
        let Some(model) = state.get("model").and_then(|m| m.as_table()) else {
            continue;
        };
        match model.get("kind").and_then(|k| k.as_str()) {
            Some("plugin") => {
                example_plugins();
                let lib = model["library"].as_str().expect("library");
                let path = repo().join("configs").join(lib);
                assert!(
                    path.exists(),
                    "{name} needs {}: run the set-up in its header \
                     (scripts/test.sh does it before cargo test)",
                    path.display()
                );
            }
            Some("python") => {
                let python = venv().join("bin/python");
                let ok = Command::new(&python)
                    .args(["-c", "import numpy"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                assert!(
                    ok,
                    "{name} needs a venv with numpy at {} ($SAMPO_VENV): \
                     run scripts/python-env.sh",
                    venv().display()
                );
            }
            _ => {}
        }
    }
}

/// `sampo args…` from the repository's root, as a spec's header runs it,
/// with the venv for Python models.
fn sampo_in_repo(args: &[&str], out: Option<&Path>) -> Output {
    let mut cmd = Command::new(sampo_bin());
    cmd.current_dir(repo())
        .args(args)
        .env("VIRTUAL_ENV", venv())
        .env_remove("SLURM_CPUS_PER_TASK")
        .env_remove("SAMPO_INJECT_FAULT");
    if let Some(out) = out {
        cmd.arg("-o").arg(out);
    }
    cmd.output().expect("sampo runs")
}

#[test]
fn every_config_opens_with_the_gallery_header() {
    let mut errors = Vec::new();
    for name in configs() {
        match header(&name, &text_of(&name)).and_then(|h| claims(&h.expect)) {
            Ok(_) => {}
            Err(e) => errors.push(format!("configs/{name}: {e}")),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn a_header_without_its_lines_or_with_a_malformed_claim_is_refused() {
    let good = "# T\n#\n# Shows: s\n# Expect: mean(a, x) = 1,\n#         P(b) = 0.5\n#\n\
                #   sampo check configs/x.toml\n\
                #   sampo run configs/x.toml     # writes x.h5 (about 1 s on 2 cores)\n";
    let h = header("x.toml", good).expect("a good header");
    assert_eq!(h.writes, "x.h5");
    let c = claims(&h.expect).unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].quantity, c[0].value), ("mean", 1.0));
    assert_eq!((c[1].quantity, c[1].args[0].as_str()), ("P", "b"));
    for bad in [
        good.replace("# Shows: s\n", ""),
        good.replace("# Expect: ", "# Expects: "),
        good.replace("#   sampo check configs/x.toml\n", ""),
        good.replace(" (about 1 s on 2 cores)", ""),
        good.replace("#\n# Shows", "# Shows"),
    ] {
        assert!(header("x.toml", &bad).is_err(), "accepted:\n{bad}");
    }
    for bad in [
        "mean(a) = 1",
        "median(a, x) = 1",
        "x = 1",
        "mean(a, x) = one",
    ] {
        assert!(claims(bad).is_err(), "accepted `{bad}`");
    }
    assert!(claims("amplitude ≈ 2.03").unwrap().is_empty());
}

#[test]
fn every_config_passes_check_and_writes_the_file_its_header_names() {
    for name in configs() {
        let text = text_of(&name);
        provide(&name, &text);
        let o = sampo_in_repo(&["check", &format!("configs/{name}")], None);
        assert_ok(&o);
        let out = stdout(&o);
        let output = out
            .lines()
            .find_map(|l| l.strip_prefix("output"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name}: no output line in\n{out}"));
        if let Ok(h) = header(&name, &text) {
            assert_eq!(h.writes, output, "{name}: the header names another file");
        }
    }
}

#[test]
fn the_not_run_list_names_configs_that_exist() {
    let names = configs();
    for (name, why) in NOT_RUN {
        assert!(
            names.iter().any(|n| n == name),
            "{name} ({why}) is not in configs/"
        );
    }
}

/// The quick configs run (from the repository's root, into a temporary
/// directory) and give what their Expect text claims.
#[test]
fn the_quick_configs_give_their_expected_answers() {
    let sb = Sandbox::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for name in configs() {
        if NOT_RUN.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let text = text_of(&name);
        provide(&name, &text);
        let out = sb.path(&name.replace(".toml", ".h5"));
        let start = std::time::Instant::now();
        let o = sampo_in_repo(&["run", &format!("configs/{name}"), "-q"], Some(&out));
        assert_ok(&o);
        eprintln!("{name}: ran in {:.1} s", start.elapsed().as_secs_f64());
        let o = sb.sampo(&["summary", out.to_str().unwrap(), "--format", "json"]);
        assert_ok(&o);
        let summary: Value = serde_json::from_str(&stdout(&o)).expect("summary JSON");
        // A header that does not parse fails the header test; here its
        // claims are simply absent.
        let Ok(h) = header(&name, &text) else {
            continue;
        };
        for claim in claims(&h.expect).unwrap_or_default() {
            let Some((est, err)) = estimate(&summary, &claim) else {
                failures.push(format!("{name}: {claim:?} is not in the summary"));
                continue;
            };
            checked += 1;
            let ok = err.is_finite() && err > 0.0 && (est - claim.value).abs() <= SIGMAS * err;
            eprintln!(
                "{name}: {}({}) = {} claimed, {est:.6} ± {err:.2e} estimated",
                claim.quantity,
                claim.args.join(", "),
                claim.value
            );
            if !ok {
                failures.push(format!(
                    "{name}: {}({}) = {}, but the run gives {est} ± {err}",
                    claim.quantity,
                    claim.args.join(", "),
                    claim.value
                ));
            }
        }
        if h.expect.contains("nothing flagged") {
            let flags = flagged(&summary);
            if !flags.is_empty() {
                failures.push(format!("{name}: nothing flagged, but {flags:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} claims checked");
}

/// The gallery has a spec of every kind of work the schema lists, chains
/// with a stopping rule, a `[transc]` stage, and user models in C, Fortran, Rust and Python.
#[test]
fn the_gallery_covers_every_kind() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/sampo.schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    let kinds: Vec<&str> = schema["properties"]["sampler"]["properties"]["kind"]["enum"]
        .as_array()
        .expect("sampler kinds")
        .iter()
        .map(|k| k.as_str().expect("kind"))
        .collect();
    assert!(kinds.len() >= 5, "{kinds:?}");
    let mut seen: Vec<String> = Vec::new();
    for name in configs() {
        let spec: toml::Table = toml::from_str(&text_of(&name)).expect(&name);
        let kind = spec
            .get("sampler")
            .and_then(|s| s.get("kind"))
            .and_then(|k| k.as_str())
            .unwrap_or("ensemble");
        seen.push(kind.to_string());
        if kind == "chains" && spec["sampler"].get("stop").is_some() {
            seen.push("chains with [sampler.stop]".into());
        }
        if spec.contains_key("transc") {
            seen.push("[transc]".into());
        }
        for state in spec["states"].as_array().expect("states") {
            let Some(model) = state.get("model") else {
                continue;
            };
            match model.get("kind").and_then(|k| k.as_str()) {
                Some("python") => seen.push("python".into()),
                Some("plugin") => {
                    let lib = model["library"].as_str().unwrap_or("");
                    for lang in ["c", "fortran", "rust"] {
                        if lib.contains(&format!("examples/plugins/{lang}/")) {
                            seen.push(format!("plugin-{lang}"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let wanted = kinds.iter().map(|k| k.to_string()).chain(
        [
            "chains with [sampler.stop]",
            "[transc]",
            "python",
            "plugin-c",
            "plugin-fortran",
            "plugin-rust",
        ]
        .map(String::from),
    );
    for w in wanted {
        assert!(seen.contains(&w), "no config in configs/ shows {w}");
    }
}
