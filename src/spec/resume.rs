//! What a resumed run may change: the settings that do not touch the
//! results (threads, timeouts, checkpoints, wall time, how the spec was
//! written). Anything else would make the resumed file a mixture of two
//! runs, so `--resume` refuses it with the list of changed keys.

use serde_json::Value;

use super::RunSpec;

/// Keys of the resolved spec (dotted paths) a resume may change.
const FREE: [&str; 8] = [
    "output",
    "threads",
    "rank_timeout",
    "checkpoint_every",
    "walltime",
    "path",
    "text",
    "overrides",
];

/// The keys (dotted, `states.0.model.mean`) whose values differ between the
/// resolved spec recorded in a file (`recorded`, JSON) and `spec`, each as
/// `key: old → new`, leaving out the free ones.
pub fn changed_keys(recorded: &str, spec: &RunSpec) -> Result<Vec<String>, String> {
    let old: Value = serde_json::from_str(recorded)
        .map_err(|e| format!("the file's resolved spec is unreadable: {e}"))?;
    let new = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    let mut changes = Vec::new();
    diff("", &old, &new, &mut changes);
    changes.retain(|c| {
        let top = c.split([':', '.']).next().unwrap_or("");
        !FREE.contains(&top)
    });
    Ok(changes)
}

fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                diff(&join(k), va, b.get(k).unwrap_or(&Value::Null), out);
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                diff(&join(k), &Value::Null, vb, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                diff(&join(&i.to_string()), va, vb, out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {} → {}", short(a), short(b))),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> RunSpec {
        RunSpec::from_source(&super::super::SpecSource::new("t.toml", text)).unwrap()
    }

    const BASE: &str = r#"
[run]
seed = 1
[sampler]
walkers = 8
steps = 100
[[states]]
name = "g"
params = ["x"]
model = { kind = "gaussian", mean = [0.0], cov = [[1.0]] }
prior = { kind = "uniform", low = [-5.0], high = [5.0] }
"#;

    #[test]
    fn only_result_changing_keys_are_reported() {
        let old = serde_json::to_string(&spec(BASE)).unwrap();
        let free = BASE.replace(
            "seed = 1",
            "seed = 1\ncheckpoint_every = \"5m\"\nwalltime = \"1h\"",
        ) + "[parallel]\nthreads = 2\n";
        let mut free = spec(&free);
        free.overrides = vec!["run.checkpoint_every=\"5m\"".into()];
        assert_eq!(changed_keys(&old, &free).unwrap(), Vec::<String>::new());
        let changed = BASE
            .replace("seed = 1", "seed = 2")
            .replace("[0.0]", "[0.5]");
        let keys = changed_keys(&old, &spec(&changed)).unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys[0].starts_with("seed: 1 → 2"), "{keys:?}");
        assert!(
            keys[1].starts_with("states.0.model.mean.0: 0.0 → 0.5"),
            "{keys:?}"
        );
    }
}
