//! docs/spec-reference.md, rendered from the run spec's JSON Schema
//! ([`schema`](super::schema)): a table of keys per `[table]`, kind and
//! value type, each with its type, allowed range, default and meaning.

use std::fmt::Write;

use serde_json::{Map, Value};

/// The reference page, from the document schema.
pub fn markdown(schema: &Value) -> String {
    let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
    let mut out = String::new();
    out.push_str(
        "# Run spec reference\n\n\
         Every table and key of a sampo run spec, generated from the types that read it \
         (`sampo schema --format markdown`; `sampo schema` prints the same as a JSON Schema, \
         which TOML editors use to complete and check a spec: put \
         `#:schema ./sampo.schema.json` on its first line). A key that is not listed is an \
         error; a key without a default must be given.\n\n",
    );
    let props = &schema["properties"];
    for table in ["run", "parallel", "python"] {
        let _ = writeln!(out, "## [{table}]\n");
        keys_table(&mut out, resolve(&props[table], &defs));
    }
    let kinds: Vec<String> = props["sampler"]["properties"]["kind"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    for kind in &kinds {
        let _ = writeln!(out, "## kind = \"{kind}\"\n");
        let _ = writeln!(out, "### [sampler]\n");
        keys_table(&mut out, &defs[&format!("sampler.{kind}")]);
        let _ = writeln!(out, "### [[states]]\n");
        keys_table(&mut out, &defs[&format!("states.{kind}")]);
    }
    let shared = ["run", "parallel", "python", "sampler", "states"];
    for (name, _) in props.as_object().into_iter().flatten() {
        if shared.contains(&name.as_str()) {
            continue;
        }
        let table = resolve(&props[name], &defs);
        let _ = writeln!(out, "## [{name}]\n");
        if let Some(text) = table.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", paragraph(text));
        }
        keys_table(&mut out, table);
    }
    out.push_str("## Value types\n\nThe tables and values that keys above refer to.\n\n");
    let mut names: Vec<&String> = defs
        .keys()
        .filter(|n| !n.starts_with("sampler.") && !n.starts_with("states."))
        .filter(|n| {
            !props
                .as_object()
                .is_some_and(|p| p.contains_key(n.as_str()))
        })
        .filter(|n| !matches!(n.as_str(), "RawRun" | "RawParallel" | "RawPython"))
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    for name in names {
        value_type(&mut out, name, &defs[name]);
    }
    out
}

/// A `$ref`'s target, or the schema itself.
pub fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

/// One section per value type: its variants (a tagged table's `kind`s), or
/// its keys, or what it is.
fn value_type(out: &mut String, name: &str, schema: &Value) {
    let _ = writeln!(out, "### {}\n", title(name));
    if let Some(text) = schema.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "{}\n", paragraph(text));
    }
    let variants = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array);
    match variants {
        Some(alts) if alts.iter().all(|a| tag_of(a).is_some()) => {
            for alt in alts {
                let tag = tag_of(alt).unwrap_or_default();
                let _ = writeln!(out, "#### kind = \"{tag}\"\n");
                if let Some(text) = alt.get("description").and_then(Value::as_str) {
                    let _ = writeln!(out, "{}\n", paragraph(text));
                }
                let keys = alt.get("properties").and_then(Value::as_object);
                if keys.is_some_and(|k| k.len() > 1) {
                    keys_table(out, alt);
                }
            }
        }
        _ if schema.get("properties").is_some() => keys_table(out, schema),
        _ => {
            let _ = writeln!(out, "{}\n", type_of(schema));
            if let Some(alts) = variants {
                for alt in alts {
                    if let Some(text) = alt.get("description").and_then(Value::as_str) {
                        let _ = writeln!(out, "- {}: {}", type_of(alt), paragraph(text));
                    }
                }
                out.push('\n');
            }
        }
    }
}

/// `kind`'s value in a tagged variant.
fn tag_of(variant: &Value) -> Option<&str> {
    variant["properties"]["kind"]["const"].as_str()
}

/// The section title (and anchor) of a value type.
fn title(name: &str) -> String {
    name.replace('.', " ")
}

/// A `$ref`'s last segment as the `$defs` key it names (a JSON pointer in a
/// URI fragment percent-encodes a space as `%20`).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The markdown anchor of a section title, as GitHub makes it.
fn anchor(name: &str) -> String {
    title(name)
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A table of an object schema's keys.
fn keys_table(out: &mut String, schema: &Value) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        out.push_str("No keys.\n\n");
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (key, value) in props {
        if key == "kind" && value.get("const").is_some() {
            continue;
        }
        let default = match (value.get("default"), value.get("x-default")) {
            (Some(v), _) => format!("`{}`", toml_literal(v)),
            (None, Some(Value::String(text))) => text.clone(),
            _ if required.contains(&key.as_str()) => "required".into(),
            _ => "—".into(),
        };
        let meaning = value
            .get("description")
            .and_then(Value::as_str)
            .map(paragraph)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{key}` | {} | {default} | {} |",
            type_of(value),
            meaning.replace('|', "\\|")
        );
    }
    out.push('\n');
}

/// A value as TOML writes it.
fn toml_literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_literal).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// A schema's type in words, with its range and allowed values.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = percent_decoded(r.rsplit('/').next().unwrap_or(r));
        return format!("[{}](#{})", title(&name), anchor(&name));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", toml_literal(v)))
            .collect();
        return values.join(" \\| ");
    }
    if let Some(c) = schema.get("const") {
        return format!("`{}`", toml_literal(c));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let alts: Vec<String> = alts.iter().map(type_of).collect();
            return alts.join(" or ");
        }
    }
    let range = range_of(schema);
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => format!("integer{range}"),
        Some("number") => format!("number{range}"),
        Some("string") => "string".into(),
        Some("boolean") => "boolean".into(),
        Some("array") => {
            if let Some(items) = schema.get("prefixItems").and_then(Value::as_array) {
                let items: Vec<String> = items.iter().map(type_of).collect();
                return format!("[{}]", items.join(", "));
            }
            match schema.get("items") {
                Some(items) => format!("array of {}{range}", type_of(items)),
                None => "array".into(),
            }
        }
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            // An externally tagged variant: `{ key = … }`.
            Some(props) if props.len() == 1 && schema.get("required").is_some() => {
                let (key, value) = props.iter().next().expect("one property");
                format!("`{{ {key} = … }}` ({})", type_of(value))
            }
            _ => match schema.get("additionalProperties") {
                Some(Value::Object(_)) if schema.get("properties").is_none() => {
                    format!("table of {}", type_of(&schema["additionalProperties"]))
                }
                _ => "table".into(),
            },
        },
        _ => "any TOML value".into(),
    }
}

/// " ≥ 1", " 1 to 64", " (1 to 64 items)".
fn range_of(schema: &Value) -> String {
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    let (low, high) = match schema.get("type").and_then(Value::as_str) {
        Some("array") => {
            return match (number("minItems"), number("maxItems")) {
                (Some(a), Some(b)) if a == b => format!(" ({a} items)"),
                (Some(a), Some(b)) => format!(" ({a} to {b} items)"),
                (Some(a), None) if a > 0.0 => format!(" (at least {a})"),
                _ => String::new(),
            };
        }
        _ => (
            number("minimum").or(number("exclusiveMinimum")),
            number("maximum").or(number("exclusiveMaximum")),
        ),
    };
    let open_low = schema.get("exclusiveMinimum").is_some();
    let show = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            format!("{}", x as i64)
        } else {
            format!("{x}")
        }
    };
    match (low, high) {
        // u64/usize's own bounds say nothing to a reader.
        (Some(a), Some(b)) if b >= 1.8e19 || b >= 4.2e9 && a == 0.0 => {
            if a == 0.0 {
                " ≥ 0".into()
            } else {
                format!(" ≥ {}", show(a))
            }
        }
        (Some(a), Some(b)) => format!(" {} to {}", show(a), show(b)),
        (Some(a), None) if open_low => format!(" > {}", show(a)),
        (Some(a), None) => format!(" ≥ {}", show(a)),
        (None, Some(b)) => format!(" ≤ {}", show(b)),
        (None, None) => String::new(),
    }
}

/// A doc comment as one line of a table.
pub fn paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
