//! `--set key=value`: overrides of spec values on the command line, applied
//! to the spec's text before it is read, as CmdStan and Cobaya users expect
//! (`--set run.seed=3 --set sampler.steps=5000`). A key is a dotted path
//! of tables; a state is named by its `name` (`states.gauss.steps=4000`) or
//! its position (`states.0.steps=4000`). The value is TOML (`3`, `"x"`,
//! `[1.0, 2.0]`, `{ kind = "prior" }`); text that is not TOML is taken as a
//! string. The rest of the file is left as written, so error locations in
//! it stay right.

use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Why an override cannot be applied (a usage error: exit 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--set {set}: {message}")]
pub struct OverrideError {
    pub set: String,
    pub message: String,
}

/// The spec text with every override applied, in order. A spec that does
/// not parse is returned as it is, for the spec reader to report where.
pub fn apply(text: &str, sets: &[String]) -> Result<String, OverrideError> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok(text.to_string());
    };
    for set in sets {
        let err = |message: String| OverrideError {
            set: set.clone(),
            message,
        };
        let (key, raw) = set
            .split_once('=')
            .ok_or_else(|| err("expected key=value, e.g. --set sampler.steps=5000".into()))?;
        let path: Vec<&str> = key.trim().split('.').map(str::trim).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(err(format!("`{key}` is not a dotted key")));
        }
        let value = raw
            .trim()
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(raw.trim()));
        let (last, parents) = path.split_last().expect("not empty");
        let table = walk(doc.as_table_mut(), parents).map_err(err)?;
        match table.get_mut(last) {
            Some(item) => *item = Item::Value(value),
            None => {
                table.insert(last, Item::Value(value));
            }
        }
    }
    Ok(doc.to_string())
}

/// The table at `path`, creating tables that are missing; an array of
/// tables is entered by an element's `name` or by its index.
fn walk<'a>(table: &'a mut dyn TableLike, path: &[&str]) -> Result<&'a mut dyn TableLike, String> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(table);
    };
    if table.get(first).is_none() {
        table.insert(first, Item::Table(toml_edit::Table::new()));
    }
    let item = table.get_mut(first).expect("present");
    if item.is_array_of_tables() {
        let array = item.as_array_of_tables_mut().expect("checked");
        let Some((which, rest)) = rest.split_first() else {
            return Err(format!(
                "`{first}` is a list: name an element (by its name or index)"
            ));
        };
        let index = match which.parse::<usize>() {
            Ok(i) if i < array.len() => i,
            _ => array
                .iter()
                .position(|t| t.get("name").and_then(Item::as_str) == Some(*which))
                .ok_or_else(|| format!("no element `{which}` in `{first}`"))?,
        };
        let element = array.get_mut(index).expect("in range");
        return walk(element, rest);
    }
    match item.as_table_like_mut() {
        Some(t) => walk(t, rest),
        None => Err(format!("`{first}` is a value, not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "[run]\nseed = 1 # the seed\n\n[[states]]\nname = \"a\"\nmodel = { kind = \"gaussian\", mean = [0.0] }\n\n[[states]]\nname = \"b\"\n";

    fn set(sets: &[&str]) -> Result<String, OverrideError> {
        apply(
            SPEC,
            &sets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn values_tables_and_states_by_name_or_index() {
        let out = set(&[
            "run.seed=3",
            "sampler.steps=5000",
            "states.b.steps=7",
            "states.0.model.mean=[1.5]",
            "run.name=plain text",
        ])
        .unwrap();
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(doc["run"]["seed"].as_integer(), Some(3));
        assert_eq!(doc["run"]["name"].as_str(), Some("plain text"));
        assert_eq!(doc["sampler"]["steps"].as_integer(), Some(5000));
        let states = doc["states"].as_array().unwrap();
        assert_eq!(states[1]["steps"].as_integer(), Some(7));
        assert_eq!(states[0]["model"]["mean"][0].as_float(), Some(1.5));
        // Untouched lines stay as written.
        assert!(out.contains("name = \"a\"\n"));
    }

    #[test]
    fn bad_overrides_say_why() {
        assert!(set(&["run.seed"])
            .unwrap_err()
            .message
            .contains("key=value"));
        assert!(set(&["states.c.steps=1"])
            .unwrap_err()
            .message
            .contains("no element `c`"));
        assert!(set(&["states.steps=1"])
            .unwrap_err()
            .message
            .contains("is a list: name an element"));
        assert!(set(&["run.seed.x=1"])
            .unwrap_err()
            .message
            .contains("is a value"));
        assert!(set(&["run..seed=1"])
            .unwrap_err()
            .message
            .contains("dotted key"));
    }
}
