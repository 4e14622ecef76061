//! The run spec as a JSON Schema, derived from the serde types that read it
//! (their doc comments are the descriptions): `sampo schema` prints it, and
//! [`reference`](super::reference) renders it as docs/spec-reference.md.
//!
//! A spec's `[sampler] kind` decides which keys `[sampler]` and each
//! `[[states]]` entry may have, so the document is one `if`/`then` per kind
//! over a common frame. TOML has no null, so the `null` that schemars allows
//! for an `Option` is taken out: an absent key is how a spec leaves one out.

use std::marker::PhantomData;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::posterior::RawPosterior;

/// The keys of a state of a kind that samples a posterior: the shared
/// posterior keys (`model`, `prior`, `cost_us`) with the kind's own `T`.
pub struct WithPosterior<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for WithPosterior<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}+posterior", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut merged = RawPosterior::json_schema(generator);
        merge_object(&mut merged, T::json_schema(generator));
        merged
    }
}

/// What the registry knows of one kind, for the schema.
pub struct KindKeys {
    pub name: &'static str,
    /// Its `[sampler]` table (without `kind`, which is added here).
    pub sampler: Schema,
    /// A state's own keys (without `name` and `params`, added here).
    pub state: Schema,
}

/// A second stage's table, and the kinds it follows.
pub struct StageKeys {
    pub name: &'static str,
    pub table: Schema,
    pub follows: Vec<&'static str>,
}

/// The generator every part of the schema comes from.
pub fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// The whole document's schema, from the parts the registry gives.
pub fn document(
    mut generator: SchemaGenerator,
    kinds: Vec<KindKeys>,
    stages: Vec<StageKeys>,
) -> Value {
    let run = generator.subschema_for::<super::raw::RawRun>();
    let parallel = generator.subschema_for::<super::raw::RawParallel>();
    let python = generator.subschema_for::<super::raw::RawPython>();
    let head = super::RawStateHead::json_schema(&mut generator);
    let mut defs = generator.take_definitions(true);
    let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    let mut cases = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let mut sampler = kind.sampler;
        let tag = Schema::try_from(json!({
            "type": "object",
            "properties": { "kind": {
                "description": "The kind of work (default \"ensemble\").",
                "const": kind.name,
            } },
        }))
        .expect("an object is a schema");
        merge_object(&mut sampler, tag);
        let mut state = head.clone();
        merge_object(&mut state, kind.state);
        let sampler_def = format!("sampler.{}", kind.name);
        let state_def = format!("states.{}", kind.name);
        defs.insert(sampler_def.clone(), sampler.to_value());
        defs.insert(state_def.clone(), state.to_value());
        // The first kind is the default: a spec without `kind` is one.
        let condition = if i == 0 {
            json!({ "properties": { "sampler": { "properties": { "kind": { "const": kind.name } } } } })
        } else {
            json!({
                "properties": { "sampler": {
                    "properties": { "kind": { "const": kind.name } },
                    "required": ["kind"],
                } },
                "required": ["sampler"],
            })
        };
        cases.push(json!({
            "if": condition,
            "then": { "properties": {
                "sampler": { "$ref": format!("#/$defs/{sampler_def}") },
                "states": { "items": { "$ref": format!("#/$defs/{state_def}") } },
            } },
        }));
    }
    let mut properties = Map::new();
    properties.insert("run".into(), run.to_value());
    properties.insert("parallel".into(), parallel.to_value());
    properties.insert("python".into(), python.to_value());
    properties.insert(
        "sampler".into(),
        json!({
            "description": "The kind of work and its settings; its keys depend on `kind`.",
            "type": "object",
            "properties": { "kind": { "enum": names } },
        }),
    );
    properties.insert(
        "states".into(),
        json!({
            "description": "The states (models or processes), each with a unique `name`.",
            "type": "array",
            "minItems": 1,
            "items": { "type": "object", "required": ["name"] },
        }),
    );
    for stage in stages {
        let def = stage.name.to_string();
        let mut table = stage.table.to_value();
        if let Some(text) = table.get("description").and_then(Value::as_str) {
            let follows: Vec<String> = stage.follows.iter().map(|k| format!("\"{k}\"")).collect();
            let text = format!("{text} Follows kind = {}.", follows.join(" or "));
            table["description"] = Value::String(text);
        }
        defs.insert(def.clone(), table);
        properties.insert(def.clone(), json!({ "$ref": format!("#/$defs/{def}") }));
    }
    let mut doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sampo run spec",
        "description": "A TOML run spec for `sampo run` / `sampo check`.",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "allOf": cases,
        "$defs": defs,
    });
    strip_null(&mut doc);
    doc
}

/// Adds `more`'s properties (and required keys) to the object schema `into`.
fn merge_object(into: &mut Schema, more: Schema) {
    let more = more.to_value();
    let target = into.ensure_object();
    if let Some(props) = more.get("properties").and_then(Value::as_object) {
        let into_props = target
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(into_props) = into_props {
            for (k, v) in props {
                into_props.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(req) = more.get("required").and_then(Value::as_array) {
        let into_req = target
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(into_req) = into_req {
            into_req.extend(req.iter().cloned());
        }
    }
    target.insert("type".into(), "object".into());
    target.insert("additionalProperties".into(), false.into());
}

/// Takes `null` out of every `type` list and `anyOf`/`oneOf`: TOML has none.
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(alts)) = map.get_mut(key) {
                    alts.retain(|a| a.get("type").and_then(Value::as_str) != Some("null"));
                    alts.retain(|a| a.get("const") != Some(&Value::Null));
                    if alts.len() == 1 {
                        let only = alts.remove(0);
                        map.remove(key);
                        if let Value::Object(only) = only {
                            for (k, v) in only {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|x| !x.is_null());
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}
