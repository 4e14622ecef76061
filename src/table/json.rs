//! The JSON writer (serde_json): a document is an object of its fields and
//! its tables' sections; a table is an object of its fields and its rows.
//! NaN and infinities are `null`.

use std::io::{self, Write};

use serde_json::{Map, Value};

use super::{Cell, Document, Table};

/// Writes a document as pretty-printed JSON and a final line break.
pub fn write_json(out: &mut dyn Write, doc: &Document) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_json(doc))?;
    writeln!(out)
}

/// A document as JSON: its fields, then each section in the order of its
/// first table (a list of tables, or one table's object when `single`).
pub fn to_json(doc: &Document) -> Value {
    let mut top = Map::new();
    for (name, cell) in &doc.fields {
        top.insert(name.clone(), value(cell));
    }
    for table in doc.tables.iter().filter(|t| t.shown.json) {
        let object = table_json(table);
        if table.single {
            top.insert(table.section.clone(), object);
        } else {
            match top
                .entry(table.section.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(list) => list.push(object),
                // A field of the same name came first: the section keeps
                // its place and becomes the list.
                other => *other = Value::Array(vec![object]),
            }
        }
    }
    Value::Object(top)
}

fn table_json(table: &Table) -> Value {
    let mut object = Map::new();
    for (name, cell) in &table.fields {
        object.insert(name.clone(), value(cell));
    }
    let columns: Vec<usize> = (0..table.columns.len())
        .filter(|&c| table.columns[c].shown.json)
        .collect();
    if !columns.is_empty() {
        let rows = table
            .rows
            .iter()
            .filter(|r| r.shown.json)
            .map(|r| {
                let mut row = Map::new();
                for &c in &columns {
                    row.insert(table.columns[c].name.clone(), value(&r.cells[c]));
                }
                Value::Object(row)
            })
            .collect();
        object.insert(table.rows_key.clone(), Value::Array(rows));
    }
    Value::Object(object)
}

fn value(cell: &Cell) -> Value {
    match cell {
        Cell::Empty => Value::Null,
        Cell::Text(s) => Value::from(s.as_str()),
        Cell::Int(v) => Value::from(*v),
        Cell::Bool(v) => Value::from(*v),
        // serde_json makes NaN and infinities null.
        Cell::Float(v) => Value::from(*v),
        Cell::List(items) => Value::Array(items.iter().map(value).collect()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::table::{Column, Shown};

    #[test]
    fn tables_go_under_their_sections_with_null_for_nan() {
        let mut state = Table::new("states", "params")
            .field("state", "g")
            .field("replicate", Cell::Empty)
            .field("acceptance", f64::NAN)
            .column(Column::new("state").shown(Shown::CSV))
            .column(Column::new("param"))
            .column(Column::new("mean"))
            .column(Column::new("flags"));
        state.push(vec![
            "g".into(),
            "a".into(),
            f64::INFINITY.into(),
            Cell::List(vec!["ESS<400".into()]),
        ]);
        state.push_shown(
            vec!["g".into(), "x".into(), 0.0.into(), Cell::Empty],
            Shown::CSV,
        );
        let mut other = Table::new("transc", "states")
            .single()
            .field("tau", 2.5)
            .column(Column::new("state"));
        other.push(vec!["g".into()]);
        let doc = Document {
            heading: vec!["not in JSON".into()],
            fields: vec![("status".into(), "complete".into())],
            tables: vec![
                state.clone(),
                Table::new("hidden", "rows").shown(Shown::TABLE),
                other,
                state,
            ],
        };
        let row = json!({"param": "a", "mean": null, "flags": ["ESS<400"]});
        let state = json!({
            "state": "g", "replicate": null, "acceptance": null, "params": [row]
        });
        assert_eq!(
            to_json(&doc),
            json!({
                "status": "complete",
                "states": [state, state],
                "transc": {"tau": 2.5, "states": [{"state": "g"}]},
            })
        );
        let mut out = Vec::new();
        write_json(&mut out, &doc).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("}\n") && !text.contains("NaN"), "{text}");
        // Key order is kept (the document's fields first).
        assert!(text.find("status") < text.find("states"), "{text}");
    }
}
