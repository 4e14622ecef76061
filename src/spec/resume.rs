//! What a resumed run may change: the settings that do not touch the
//! results (threads, timeouts, checkpoints, wall time, how the spec was
//! written). Anything else would make the resumed file a mixture of two
//! runs, so `--resume` refuses it with the list of changed keys.

use serde_json::Value;

/// Keys of the resolved spec (dotted paths) a resume may change.
const FREE: [&str; 9] = [
    "output",
    "threads",
    "rank_timeout",
    "evaluation_timeout",
    "checkpoint_every",
    "walltime",
    "path",
    "text",
    "overrides",
];

/// The keys (dotted, `states.0.model.mean`) whose values differ between the
/// resolved spec recorded in a file (`recorded`, JSON) and `new` (the
/// resolved spec of this run, as JSON), each as `key: old → new`, leaving out
/// the free ones.
pub fn changed_keys(recorded: &str, new: &Value) -> Result<Vec<String>, String> {
    let old: Value = serde_json::from_str(recorded)
        .map_err(|e| format!("the file's resolved spec is unreadable: {e}"))?;
    let mut changes = Vec::new();
    diff("", &old, new, &mut changes);
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
    use serde_json::json;

    #[test]
    fn only_result_changing_keys_are_reported() {
        let old = json!({
            "seed": 1, "threads": 0, "walltime": null, "overrides": [],
            "states": [{"name": "g", "model": {"mean": [0.0]}}],
        });
        let free = json!({
            "seed": 1, "threads": 2, "walltime": 3600.0, "overrides": ["run.walltime=\"1h\""],
            "states": [{"name": "g", "model": {"mean": [0.0]}}],
        });
        assert_eq!(
            changed_keys(&old.to_string(), &free).unwrap(),
            Vec::<String>::new()
        );
        let changed = json!({
            "seed": 2, "threads": 0, "walltime": null, "overrides": [],
            "states": [{"name": "g", "model": {"mean": [0.5]}}],
        });
        let keys = changed_keys(&old.to_string(), &changed).unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys[0].starts_with("seed: 1 → 2"), "{keys:?}");
        assert!(
            keys[1].starts_with("states.0.model.mean.0: 0.0 → 0.5"),
            "{keys:?}"
        );
    }
}
