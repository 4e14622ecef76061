//! `--set key=value`: overrides of spec values on the command line, applied
//! to the spec's text before it is read, as CmdStan and Cobaya users expect
//! (`--set run.seed=3 --set sampler.steps=5000`). A key is a dotted path
//! of tables; a state is named by its `name` (`states.gauss.steps=4000`) or
//! its position (`states.0.steps=4000`). The value is TOML (`3`, `"x"`,
//! `[1.0, 2.0]`, `{ kind = "prior" }`); text that is not TOML is taken as a
//! string. The rest of the file is left as written, and every line of the
//! result knows where it came from ([`Origins`]): an error in the file is
//! located in the file, an error in an override in its `--set`.

use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Why an override cannot be applied (a usage error: exit 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--set {set}: {message}")]
pub struct OverrideError {
    pub set: String,
    pub message: String,
}

/// Where a line of the spec text with the overrides applied came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOrigin {
    /// Line `n` (from 0) of the file, unchanged.
    File(usize),
    /// Written by the override `n` (from 0).
    Set(usize),
}

/// The origin of each line of the text with the overrides applied, so that
/// a location in it can be told in the file or in the `--set` it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins {
    /// The overrides, as given (`key=value`).
    pub sets: Vec<String>,
    /// One per line of the text (`split('\n')`).
    pub lines: Vec<LineOrigin>,
}

impl Origins {
    /// Where line `line` (from 0) of the text came from; a line past the
    /// end (never, for a span of the text) is taken as the file's.
    pub fn of_line(&self, line: usize) -> LineOrigin {
        self.lines
            .get(line)
            .copied()
            .unwrap_or(LineOrigin::File(line))
    }

    /// The character of `set` (from 0) for character `column` of a line that
    /// override wrote, `text`: in its value when the column is at or after
    /// where the value is written, else at its key.
    pub fn column_in_set(set: &str, text: &str, column: usize) -> usize {
        let Some((key, value)) = set.split_once('=') else {
            return 0;
        };
        let value_at = key.chars().count() + 1 + (value.len() - value.trim_start().len());
        let value = value.trim();
        // Where the value is written: as given, or (a string it quoted)
        // after the line's `=`.
        let written = text.find(value).or_else(|| {
            text.find('=')
                .map(|i| text.len() - text[i + 1..].trim_start().len())
        });
        match written.map(|b| text[..b].chars().count()) {
            Some(at) if column >= at => {
                value_at + (column - at).min(value.chars().count().saturating_sub(1))
            }
            _ => key.len() - key.trim_start().len(),
        }
    }
}

/// A spec's text with the overrides applied, and where each line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub text: String,
    /// `None` when nothing was overridden (every line is the file's).
    pub origins: Option<Origins>,
}

/// The spec text with every override applied, in order. A spec that does
/// not parse is returned as it is, for the spec reader to report where.
pub fn apply(text: &str, sets: &[String]) -> Result<Applied, OverrideError> {
    let unchanged = || Applied {
        text: text.to_string(),
        origins: None,
    };
    if sets.is_empty() {
        return Ok(unchanged());
    }
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok(unchanged());
    };
    let mut current = text.to_string();
    let mut lines: Vec<LineOrigin> = (0..current.split('\n').count())
        .map(LineOrigin::File)
        .collect();
    for (n, set) in sets.iter().enumerate() {
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
        let next = doc.to_string();
        lines = trace(&current, &next, &lines, n);
        current = next;
    }
    Ok(Applied {
        text: current,
        origins: Some(Origins {
            sets: sets.to_vec(),
            lines,
        }),
    })
}

/// The origins of the lines of `next`, the text after override `n` changed
/// `prev` (whose lines came from `origins`): the lines before and after the
/// change keep theirs, the lines between are the override's. An override
/// changes one place of the document (a value, or a key or table it adds).
fn trace(prev: &str, next: &str, origins: &[LineOrigin], n: usize) -> Vec<LineOrigin> {
    let before: Vec<&str> = prev.split('\n').collect();
    let after: Vec<&str> = next.split('\n').collect();
    let shortest = before.len().min(after.len());
    let head = before
        .iter()
        .zip(&after)
        .take_while(|(a, b)| a == b)
        .count();
    let tail = before
        .iter()
        .rev()
        .zip(after.iter().rev())
        .take(shortest - head)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = origins[..head].to_vec();
    out.extend(std::iter::repeat_n(
        LineOrigin::Set(n),
        after.len() - head - tail,
    ));
    out.extend_from_slice(&origins[before.len() - tail..]);
    out
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
        applied(sets).map(|a| a.text)
    }

    fn applied(sets: &[&str]) -> Result<Applied, OverrideError> {
        apply(
            SPEC,
            &sets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn every_line_knows_whether_the_file_or_an_override_wrote_it() {
        use LineOrigin::{File, Set};
        let a = applied(&["sampler.steps=5000", "run.seed=3", "states.a.steps=7"]).unwrap();
        let origins = a.origins.unwrap();
        for (i, line) in a.text.split('\n').enumerate() {
            match origins.of_line(i) {
                File(n) => assert_eq!(line, SPEC.split('\n').nth(n).unwrap(), "{}", a.text),
                Set(0) => {
                    assert!(line.contains("sampler") || line.contains("5000") || line.is_empty())
                }
                Set(1) => assert_eq!(line, "seed = 3"),
                Set(2) => assert_eq!(line, "steps = 7"),
                Set(n) => panic!("no override {n}"),
            }
        }
        // The lines after an inserted key are still the file's.
        let b = a
            .text
            .split('\n')
            .position(|l| l == "name = \"b\"")
            .unwrap();
        assert_eq!(origins.of_line(b), File(8), "{}", a.text);
        assert!(apply(SPEC, &[]).unwrap().origins.is_none());
    }

    #[test]
    fn a_column_in_an_override_line_is_told_in_the_override() {
        // The value: its character; before it: the key.
        assert_eq!(
            Origins::column_in_set("parallel.threads=100000", "threads = 100000", 10),
            17
        );
        assert_eq!(
            Origins::column_in_set("parallel.threads=100000", "threads = 100000", 12),
            19
        );
        assert_eq!(
            Origins::column_in_set("parallel.threads=100000", "threads = 100000", 0),
            0
        );
        assert_eq!(Origins::column_in_set("foo.bar=1", "[foo]", 1), 0);
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
