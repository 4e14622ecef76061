//! Validation of whole specs through the registry: one test per kind of bad
//! spec, each checking where the error points and what it says.

use std::path::{Path, PathBuf};

use super::*;
use crate::jobs::ensemble::moves::{Move, WeightedMove};
use crate::jobs::ensemble::sampler::EnsembleSettings;
use crate::jobs::ensemble::spec::DEFAULT_DE_SIGMA;
use crate::spec::{Init, SpecSource, DEFAULT_CHECKPOINT_EVERY};

/// The resolved ensemble settings of state `k`.
fn ensemble(spec: &RunSpec, k: usize) -> &EnsembleSettings {
    match &spec.sampler {
        SamplerSpec::Ensemble(e) => &e.states[k],
        other => panic!("not an ensemble: {other:?}"),
    }
}

const STATE: &str = r#"
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

fn parse(text: &str) -> Result<RunSpec, SpecError> {
    RunSpec::from_source(&SpecSource::new("t.toml", text))
}

/// The error for `text`, checked to point at the first occurrence of `at`.
fn error_at(text: &str, at: &str, needle: &str) -> SpecError {
    let e = parse(text).expect_err("spec should be rejected");
    let offset = text
        .find(at)
        .unwrap_or_else(|| panic!("`{at}` not in spec"));
    let line = text[..offset].matches('\n').count() + 1;
    assert_eq!(e.line, line, "line of {e}");
    assert!(e.message.contains(needle), "expected `{needle}` in: {e}");
    assert!(e.to_string().starts_with(&format!("t.toml:{line}:")), "{e}");
    e
}

#[test]
fn minimal_spec_gets_defaults() {
    let spec = parse(STATE).unwrap();
    assert_eq!(spec.name, "t");
    assert_eq!(spec.seed, 0);
    assert_eq!(spec.output, PathBuf::from("t.h5"));
    assert_eq!(spec.replicates, 1);
    let e = ensemble(&spec, 0);
    assert_eq!((e.walkers, e.steps, e.burn, e.thin), (32, 2000, 500, 1));
    assert_eq!(e.init, Init::Prior);
    assert_eq!(
        e.moves,
        vec![WeightedMove {
            kind: Move::Stretch { a: 2.0 },
            weight: 1.0
        }]
    );
}

#[test]
fn per_state_overrides_win() {
    let text = format!(
        "[sampler]\nwalkers = 8\nsteps = 100\n{STATE}walkers = 12\nsteps = 50\nburn = 10\n"
    );
    let spec = parse(&text).unwrap();
    let e = ensemble(&spec, 0);
    assert_eq!((e.walkers, e.steps, e.burn), (12, 50, 10));
}

#[test]
fn the_quickstart_spec_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quickstart.toml");
    let spec = RunSpec::from_file(&path).unwrap();
    assert!(spec.states.len() >= 2);
}

#[test]
fn syntax_errors_are_located() {
    let e = error_at("[run]\nseed = = 3\n", "= 3", "");
    assert_eq!(e.line, 2);
}

#[test]
fn unknown_keys_are_rejected() {
    error_at(
        &format!("[run]\nseeed = 1\n{STATE}"),
        "seeed",
        "`seeed` is not a key of [run]; did you mean `seed`?",
    );
    error_at(
        &format!("{STATE}colour = \"red\"\n"),
        "colour",
        "`colour` is not a key of state `g`",
    );
    let text = STATE.replace("mean = [0.0, 1.0],", "mean = [0.0, 1.0], scale = 2.0,");
    error_at(&text, "scale", "`model.scale` is not a key of state `g`");
    error_at(
        &format!("[sampler]\nwalker = 8\n{STATE}"),
        "walker",
        "`walker` is not a key of [sampler] kind = \"ensemble\"; did you mean `walkers`?",
    );
    // Keys every state of these kinds shares are suggested too.
    error_at(
        &format!("{STATE}cost_uss = 3\n"),
        "cost_uss",
        "`cost_uss` is not a key of state `g`; did you mean `cost_us`?",
    );
    error_at(
        &format!("[sampler]\nkind = \"smc\"\n{STATE}paramz = [\"a\", \"b\"]\n"),
        "paramz",
        "`paramz` is not a key of state `g`; did you mean `params`?",
    );
    error_at(
        &format!("[sampelr]\nwalkers = 8\n{STATE}"),
        "sampelr",
        "`sampelr` is not a table of a run spec",
    );
}

/// Every key of every kind, written in a spec of every other kind that
/// lacks it, is an error at the key naming the kinds that have it: in
/// `[sampler]` and in a state. Generated from the registry and each kind's
/// example spec, so a new kind is covered by adding it.
#[test]
fn a_key_of_one_kind_is_a_located_error_in_every_other() {
    for &kind in Kind::ALL {
        let example = kind.example();
        let resolved = parse(example).unwrap_or_else(|e| panic!("{kind:?}'s example: {e}"));
        // The keys every state of a kind that samples a posterior shares.
        let shared: &[&str] = if resolved.posteriors().is_some() {
            fields_of::<RawPosterior>()
        } else {
            &[]
        };
        // [sampler] keys go right after its `kind`; a state's at the end.
        let after_kind = example.find('\n').unwrap() + 1;
        for &other in Kind::ALL.iter().filter(|k| **k != kind) {
            for state in [false, true] {
                for key in other.keys(state) {
                    let own = kind.keys(state).contains(key) || (state && shared.contains(key));
                    if own {
                        continue;
                    }
                    let text = if state {
                        format!("{example}{key} = 1\n")
                    } else {
                        let (head, tail) = example.split_at(after_kind);
                        format!("{head}{key} = 1\n{tail}")
                    };
                    let offset = text.find(&format!("\n{key} = 1")).unwrap() + 1;
                    let e = parse(&text).expect_err(&text);
                    let line = text[..offset].matches('\n').count() + 1;
                    assert_eq!(e.line, line, "{key} in {kind:?} ({state}): {e}");
                    let table = if state {
                        "state `g`".to_string()
                    } else {
                        format!("[sampler] kind = \"{}\"", kind.name())
                    };
                    assert!(
                        e.message.starts_with(&format!(
                            "`{key}` is not a key of {table} (it is a key of"
                        )) && e.message.contains(&format!("kind = \"{}\"", other.name())),
                        "{key} in {kind:?} ({state}): {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn wrong_types_are_rejected() {
    error_at(
        &format!("[run]\nseed = \"x\"\n{STATE}"),
        "\"x\"",
        "expected a seed from 0 to 18446744073709551615",
    );
    error_at(&format!("[run]\nseed = -4\n{STATE}"), "-4", "");
    error_at(
        &format!("[sampler]\nwalkers = 3.5\n{STATE}"),
        "3.5",
        "invalid type",
    );
    error_at(
        &STATE.replace("\"gaussian\"", "\"gausian\""),
        "model",
        "unknown variant `gausian`",
    );
}

#[test]
fn missing_keys_are_rejected() {
    error_at("[run]\nseed = 1\n", "[run]", "no [[states]]");
    let text = STATE.replace(
        "prior = { kind = \"uniform\", low = [-10.0, -10.0], high = [10.0, 10.0] }\n",
        "",
    );
    error_at(&text, "[[states]]", "missing field `prior`");
    error_at(
        &STATE.replace(", cov = [[1.0, 0.5], [0.5, 2.0]]", ""),
        "model",
        "missing field `cov`",
    );
}

#[test]
fn dimensions_must_agree() {
    error_at(
        &STATE.replace("cov = [[1.0, 0.5], [0.5, 2.0]]", "cov = [[1.0]]"),
        "model",
        "model.cov: expected 2 rows",
    );
    error_at(
        &STATE.replace("low = [-10.0, -10.0]", "low = [-10.0, -10.0, -10.0]"),
        "prior",
        "prior.high: has 2 entries but low has 3",
    );
    error_at(
        &STATE.replace(
            "low = [-10.0, -10.0], high = [10.0, 10.0]",
            "low = [-10.0], high = [10.0]",
        ),
        "prior",
        "the prior has 1 parameters but the model has 2",
    );
    error_at(
        &STATE.replace("[\"x\", \"y\"]", "[\"x\"]"),
        "[\"x\"]",
        "1 parameter names",
    );
    error_at(
        &STATE.replace("[\"x\", \"y\"]", "[\"x\", \"x\"]"),
        "[\"x\"",
        "duplicate parameter name",
    );
}

#[test]
fn covariance_must_be_symmetric_positive_definite() {
    error_at(
        &STATE.replace("[[1.0, 0.5], [0.5, 2.0]]", "[[1.0, 2.0], [2.0, 1.0]]"),
        "model",
        "not positive definite",
    );
    error_at(
        &STATE.replace("[[1.0, 0.5], [0.5, 2.0]]", "[[1.0, 0.5], [0.4, 2.0]]"),
        "model",
        "not symmetric",
    );
}

#[test]
fn non_finite_numbers_are_rejected() {
    let e = error_at(
        &STATE.replace("mean = [0.0, 1.0]", "mean = [nan, 1.0]"),
        "model",
        "mean[0]",
    );
    assert!(e.message.contains("finite"), "{e}");
    error_at(
        &STATE.replace("high = [10.0, 10.0]", "high = [10.0, inf]"),
        "prior",
        "high[1]",
    );
}

#[test]
fn walker_counts_are_checked() {
    error_at(
        &format!("[sampler]\nwalkers = 3\n{STATE}"),
        "walkers = 3",
        "too few",
    );
    error_at(
        &format!("[sampler]\nwalkers = 7\n{STATE}"),
        "walkers = 7",
        "must be even",
    );
    // A per-state value is the one pointed at.
    error_at(
        &format!("{STATE}walkers = 2\n"),
        "walkers = 2",
        "at least 2 × dim = 4",
    );
}

#[test]
fn steps_burn_and_thin_are_checked() {
    error_at(
        &format!("[sampler]\nsteps = 10\nburn = 10\n{STATE}"),
        "burn = 10",
        "burn (10) must be less than steps",
    );
    error_at(
        &format!("[sampler]\nthin = 0\n{STATE}"),
        "thin = 0",
        "thin must be at least 1",
    );
    error_at(
        &format!("[sampler]\nsteps = 2\nthin = 3\nburn = 0\n{STATE}"),
        "steps = 2",
        "at least thin",
    );
}

#[test]
fn moves_are_checked() {
    error_at(
        &format!("[sampler]\nmoves = [{{ kind = \"stretch\", a = 0.5 }}]\n{STATE}"),
        "{ kind",
        "greater than 1",
    );
    error_at(
        &format!("[sampler]\nmoves = [{{ kind = \"walk\", s = 1 }}]\n{STATE}"),
        "{ kind",
        "between 2 and",
    );
    error_at(
        &format!("[sampler]\nmoves = [{{ kind = \"de\", weight = -1.0 }}]\n{STATE}"),
        "{ kind",
        "weight",
    );
    error_at(
        &format!("[sampler]\nmoves = []\n{STATE}"),
        "[]",
        "at least one move",
    );
    error_at(
        &format!("[sampler]\nmoves = [{{ kind = \"hop\" }}]\n{STATE}"),
        "{ kind",
        "unknown variant `hop`",
    );
    let spec = parse(&format!(
        "[sampler]\nmoves = [{{ kind = \"de\" }}, {{ kind = \"walk\" }}]\n{STATE}"
    ))
    .unwrap();
    let moves = &ensemble(&spec, 0).moves;
    assert_eq!(
        moves[0].kind,
        Move::De {
            gamma0: 2.38 / 2.0,
            sigma: DEFAULT_DE_SIGMA
        }
    );
    assert_eq!(moves[1].kind, Move::Walk { s: 16 });
}

#[test]
fn ball_init_is_checked() {
    error_at(
        &format!("{STATE}init = {{ kind = \"ball\", center = [0.0], radius = 0.1 }}\n"),
        "init",
        "center has 1 entries",
    );
    error_at(
        &format!("{STATE}init = {{ kind = \"ball\", center = [0.0, 0.0], radius = [0.1] }}\n"),
        "init",
        "radius has 1 entries",
    );
    error_at(
        &format!("{STATE}init = {{ kind = \"ball\", center = [50.0, 0.0], radius = 0.1 }}\n"),
        "init",
        "outside the prior's support",
    );
    let spec = parse(&format!(
        "{STATE}init = {{ kind = \"ball\", center = [0.0, 1.0], radius = 0.1 }}\n"
    ))
    .unwrap();
    assert_eq!(
        ensemble(&spec, 0).init.clone(),
        Init::Ball {
            center: vec![0.0, 1.0],
            radius: vec![0.1, 0.1]
        }
    );
}

#[test]
fn state_names_are_checked() {
    let e = parse(&format!("{STATE}{STATE}")).unwrap_err();
    assert!(e.message.contains("duplicate state name `g`"), "{e}");
    assert_eq!(e.line, STATE.matches('\n').count() + 3);
    error_at(
        &STATE.replace("name = \"g\"", "name = \"a/b\""),
        "\"a/b\"",
        "no `/`",
    );
}

#[test]
fn run_section_is_checked() {
    error_at(
        &format!("[run]\nreplicates = 0\n{STATE}"),
        "replicates",
        "at least 1",
    );
    error_at(
        &format!("[run]\nname = \"\"\n{STATE}"),
        "name = \"\"",
        "must not be empty",
    );
    error_at(
        &format!("[sampler]\nkind = \"nuts\"\n{STATE}"),
        "\"nuts\"",
        "unknown variant `nuts`",
    );
}

#[test]
fn regression_data_files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.csv"), "x,y\n0,1\n1,3\n2,5\n").unwrap();
    let text = r#"
[[states]]
name = "line"
model = { kind = "polynomial-regression", data = "d.csv", order = 1, noise_sd = 0.5 }
prior = { kind = "normal", mean = [0.0, 0.0], sd = [5.0, 5.0] }
"#;
    let spec_path = dir.path().join("s.toml");
    let spec = RunSpec::from_source(&SpecSource::new(&spec_path, text)).unwrap();
    assert_eq!(
        spec.posterior(0).data.as_ref().unwrap().y,
        vec![1.0, 3.0, 5.0]
    );
    let missing = text.replace("d.csv", "nope.csv");
    let e = RunSpec::from_source(&SpecSource::new(&spec_path, missing)).unwrap_err();
    assert!(
        e.message.contains("cannot read data file") && e.line == 4,
        "{e}"
    );
}

#[test]
fn checkpoint_and_walltime_durations_are_checked_where_written() {
    let spec = parse(STATE).unwrap();
    assert_eq!(spec.checkpoint_every, Some(DEFAULT_CHECKPOINT_EVERY));
    assert_eq!(spec.walltime, None);
    let text = format!("[run]\ncheckpoint_every = \"90s\"\nwalltime = \"4h 30m\"\n{STATE}");
    let spec = parse(&text).unwrap();
    assert_eq!(spec.checkpoint_every, Some(90.0));
    assert_eq!(spec.walltime, Some(4.5 * 3600.0));
    let off = parse(&format!("[run]\ncheckpoint_every = \"off\"\n{STATE}")).unwrap();
    assert_eq!(off.checkpoint_every, None);
    let text = format!("[run]\ncheckpoint_every = \"soon\"\n{STATE}");
    error_at(&text, "\"soon\"", "run.checkpoint_every must be a duration");
    let text = format!("[run]\nwalltime = \"0.5s\"\n{STATE}");
    error_at(
        &text,
        "\"0.5s\"",
        "run.walltime must be a duration from 1 s to 100 years",
    );
    let text = format!("[run]\nwalltime = \"off\"\n{STATE}");
    error_at(&text, "\"off\"", "run.walltime must be a duration");
}

/// Every key of every kind's `[sampler]` and state, and of `[transc]`, set
/// to an absurd size (10¹⁵, as an integer and as a float): `check` and `run`
/// refuse it with a located error (its own bound, or the memory a rank
/// would need beyond this machine's), unless the key is listed here as one
/// that costs no memory. Generated from the spec types, so a new key is
/// covered as soon as it exists.
#[test]
fn absurd_sizes_of_every_key_are_refused() {
    use crate::spec::overrides;
    /// Keys whose size costs time and disk (the output's size, which
    /// `check` estimates), not memory: the rows are streamed to the file.
    const NOT_MEMORY: &[(&str, &str)] = &[
        ("ensemble", "sampler.steps"),
        ("ensemble", "states.0.steps"),
        ("chains", "sampler.steps"),
        ("chains", "states.0.steps"),
        ("ensemble", "transc.steps"),
        // Work only: statistics are merged chunk by chunk.
        ("paths", "sampler.paths"),
        // Clamped to the items (paths) of a state.
        ("batch", "sampler.chunk"),
        ("paths", "sampler.chunk"),
        // A cost hint for the scheduler, bounded to what it can order.
        ("batch", "states.0.cost_us"),
    ];
    let second = "\n[[states]]\nname = \"h\"\nparams = [\"x\", \"y\"]\nmodel = { kind = \"gaussian\", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }\nprior = { kind = \"uniform\", low = [-10.0, -10.0], high = [10.0, 10.0] }\n";
    let mut cases: Vec<(String, String)> = Vec::new();
    for kind in Kind::ALL {
        for key in kind.keys(false) {
            cases.push((kind.example().to_string(), format!("sampler.{key}")));
        }
        for key in kind.keys(true) {
            cases.push((kind.example().to_string(), format!("states.0.{key}")));
        }
    }
    let transc = format!("{}{second}\n[transc]\n", Kind::Ensemble.example());
    for key in fields_of::<transc::spec::RawTransc>() {
        cases.push((transc.clone(), format!("transc.{key}")));
    }
    for key in fields_of::<transc::spec::RawPseudoPrior>() {
        if *key != "kind" {
            cases.push((
                transc.replace(
                    "[transc]\n",
                    "[transc]\npseudo_prior = { kind = \"gaussian-mixture\" }\n",
                ),
                format!("transc.pseudo_prior.{key}"),
            ));
        }
    }
    let mut accepted = Vec::new();
    for (text, key) in &cases {
        for value in ["1000000000000000", "1e15"] {
            let set = format!("{key}={value}");
            let text = overrides::apply(text, std::slice::from_ref(&set))
                .unwrap()
                .text;
            if let Ok(spec) = parse(&text) {
                let kind = spec.sampler.kind().name();
                if !NOT_MEMORY.contains(&(kind, key.as_str())) {
                    accepted.push(format!("{kind} {set}"));
                }
            }
        }
    }
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
}

/// A pseudo-prior with more components than the first stage's samples can
/// fit is refused by `check`, not at the end of the first stage.
#[test]
fn transc_components_need_the_first_stages_samples() {
    let second = "\n[[states]]\nname = \"h\"\nparams = [\"x\", \"y\"]\nmodel = { kind = \"gaussian\", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }\nprior = { kind = \"uniform\", low = [-10.0, -10.0], high = [10.0, 10.0] }\n[transc]\npseudo_prior = { kind = \"gaussian-mixture\", components = 64 }\n";
    // 6 walkers × (20 − 10) rows = 60 samples, 128 needed.
    let text = Kind::Ensemble.example().replace(
        "kind = \"ensemble\"",
        "kind = \"ensemble\"\nwalkers = 6\nsteps = 20\nburn = 10",
    ) + second;
    let e = error_at(&text, "components = 64", "state `g` keeps 60");
    assert!(e.message.contains("needs 128 first-stage samples"), "{e}");
    // Enough: 6 × 22 rows = 132.
    assert!(parse(&text.replace("steps = 20", "steps = 32")).is_ok());
}

/// Every key of every table in the spec's schema says what it means (the
/// reference shows it), and every default it shows is one the spec reads.
#[test]
fn every_key_of_the_schema_is_described() {
    fn walk(path: &str, v: &serde_json::Value, missing: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    for (key, prop) in props {
                        let described = prop
                            .get("description")
                            .and_then(serde_json::Value::as_str)
                            .is_some_and(|d| !d.trim().is_empty());
                        // `kind` tags, and the one key of a variant such as
                        // `{ values = [...] }`, are described by the variant.
                        let by_variant = key == "kind" && prop.get("const").is_some()
                            || props.len() == 1 && map.contains_key("description");
                        if !described && !by_variant {
                            missing.push(format!("{path}.{key}"));
                        }
                    }
                }
                for (k, child) in map {
                    walk(&format!("{path}/{k}"), child, missing);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(&format!("{path}/{i}"), child, missing);
                }
            }
            _ => {}
        }
    }
    let schema = spec_schema();
    let mut missing = Vec::new();
    walk("", &schema["$defs"], &mut missing);
    assert!(
        missing.is_empty(),
        "keys without a description: {missing:?}"
    );
    // Every kind has its [sampler] and state tables, and [transc] is there.
    for kind in Kind::ALL {
        for table in ["sampler", "states"] {
            let def = &schema["$defs"][format!("{table}.{}", kind.name())];
            assert!(def["properties"].is_object(), "{table}.{}", kind.name());
        }
    }
    assert!(schema["properties"]["transc"].is_object());
}

/// The schema's keys are exactly those the spec reads: `fields_of` the raw
/// types, kind by kind.
#[test]
fn the_schema_has_the_keys_the_spec_reads() {
    let schema = spec_schema();
    let keys = |def: &str| -> Vec<String> {
        let mut keys: Vec<String> = schema["$defs"][def]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{def}"))
            .keys()
            .filter(|k| *k != "kind")
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    for &kind in Kind::ALL {
        let mut sampler: Vec<String> = kind.keys(false).iter().map(|k| k.to_string()).collect();
        sampler.sort();
        assert_eq!(
            keys(&format!("sampler.{}", kind.name())),
            sampler,
            "{kind:?}"
        );
        let posterior = parse(kind.example()).unwrap().posteriors().is_some();
        let mut state: Vec<String> = kind.keys(true).iter().map(|k| k.to_string()).collect();
        state.extend(["name".to_string(), "params".to_string()]);
        if posterior {
            state.extend(fields_of::<RawPosterior>().iter().map(|k| k.to_string()));
        }
        state.sort();
        assert_eq!(keys(&format!("states.{}", kind.name())), state, "{kind:?}");
    }
}

/// `sampo new`: every kind's starter spec, with one or several states and
/// with each second stage that follows it, is a spec `check` accepts, and
/// it names every `[sampler]` key of its kind (set or commented).
#[test]
fn starter_specs_are_valid_and_name_every_key() {
    for &kind in Kind::ALL {
        for states in [1, 3] {
            let text = starter::starter(kind, states, None);
            let spec = parse(&text).unwrap_or_else(|e| panic!("{kind:?} × {states}: {e}\n{text}"));
            assert_eq!(spec.states.len(), states, "{kind:?}");
            for key in kind.keys(false) {
                assert!(
                    text.contains(&format!("\n{key} =")) || text.contains(&format!("# {key} =")),
                    "{kind:?}: `{key}` missing from\n{text}"
                );
            }
        }
    }
    let text = starter::starter(Kind::Ensemble, 2, Some("transc"));
    let spec = parse(&text).unwrap_or_else(|e| panic!("transc: {e}\n{text}"));
    assert!(spec.second_stage.is_some());
}
