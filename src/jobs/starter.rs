//! `sampo new`: a commented starter spec of a kind, from the kind's example
//! and the spec's schema (so the comments name every key the kind reads,
//! with its default and meaning, as docs/spec-reference.md does).

use std::fmt::Write;

use serde_json::Value;

use super::{spec_schema, Kind, STAGE_TABLES};
use crate::spec::reference::{paragraph, resolve};

/// The starter spec of `kind` with `states` states (copies of the kind's
/// example state), and a `[stage]` table when `stage` is given.
pub fn starter(kind: Kind, states: usize, stage: Option<&str>) -> String {
    let schema = spec_schema();
    let defs = &schema["$defs"].as_object().cloned().unwrap_or_default();
    let example = kind.example();
    let (sampler, state) = example
        .split_once("[[states]]")
        .expect("a kind's example ends with one state");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# A starter spec of kind = \"{0}\" (`sampo new {0}`): run it with\n\
         #   sampo check spec.toml && sampo run spec.toml\n\
         # Commented keys show their defaults; docs/spec-reference.md has them all.\n",
        kind.name()
    );
    out.push_str("[run]\n");
    let _ = writeln!(out, "name = \"{}\"", kind.name());
    out.push_str("seed = 1\n");
    commented(
        &mut out,
        resolve(&schema["properties"]["run"], defs),
        &["name", "seed"],
    );
    out.push_str("\n[parallel]\n");
    commented(
        &mut out,
        resolve(&schema["properties"]["parallel"], defs),
        &[],
    );
    out.push('\n');
    let written: Vec<&str> = sampler.lines().filter_map(key_of).collect();
    out.push_str(sampler.trim_end());
    out.push('\n');
    commented(
        &mut out,
        &defs[&format!("sampler.{}", kind.name())],
        &written,
    );
    let state_keys: Vec<&str> = state.lines().filter_map(key_of).collect();
    for i in 1..=states {
        out.push_str("\n[[states]]");
        let body = if states == 1 {
            state.to_string()
        } else {
            numbered(state, i)
        };
        out.push_str(body.trim_end());
        out.push('\n');
        if i == 1 {
            commented(
                &mut out,
                &defs[&format!("states.{}", kind.name())],
                &state_keys,
            );
        }
    }
    if let Some(stage) = stage {
        let _ = writeln!(out, "\n[{stage}]");
        commented(&mut out, resolve(&schema["properties"][stage], defs), &[]);
    }
    out
}

/// The second stages `sampo new --stage` accepts.
pub fn stages() -> &'static [&'static str] {
    STAGE_TABLES
}

/// The key a line of TOML sets, if it sets one.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(key)
}

/// The example's state with its name suffixed by `i`.
fn numbered(state: &str, i: usize) -> String {
    state
        .lines()
        .map(|line| match line.strip_prefix("name = \"") {
            Some(rest) => format!("name = \"{}{i}\"", rest.trim_end_matches('"')),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A comment line per key of `table` not in `skip`: `# key = default`
/// (or `# key = …` without one) and its meaning.
fn commented(out: &mut String, table: &Value, skip: &[&str]) {
    let Some(props) = table.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, value) in props {
        if skip.contains(&key.as_str()) || key == "kind" && value.get("const").is_some() {
            continue;
        }
        let mut meaning = value
            .get("description")
            .and_then(Value::as_str)
            .map(paragraph)
            .unwrap_or_default();
        let default = match (value.get("default"), value.get("x-default")) {
            (Some(Value::String(s)), _) => format!("\"{s}\""),
            (Some(v), _) => v.to_string(),
            (None, Some(Value::String(text))) => match toml_value(text) {
                Some(literal) => literal,
                None => {
                    let _ = write!(meaning, " Default: {}.", text.replace('`', ""));
                    "…".into()
                }
            },
            _ => "…".into(),
        };
        let assignment = format!("# {key} = {default}");
        let _ = writeln!(out, "{assignment:<32} # {meaning}");
    }
}

/// A described default that is a TOML value in backticks (`` `{ kind =
/// "prior" }` ``), as TOML.
fn toml_value(text: &str) -> Option<String> {
    let inner = text.strip_prefix('`')?.strip_suffix('`')?;
    toml::from_str::<toml::Table>(&format!("v = {inner}")).ok()?;
    Some(inner.to_string())
}
