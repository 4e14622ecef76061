//! One table type for what sampo prints as tables (`sampo summary`, the
//! run's closing report), and one writer per format: fixed-width text
//! ([`fixed`]), CSV ([`csv`]) and JSON ([`json`]).
//!
//! A kind builds [`Table`]s from typed [`Cell`]s and never formats text
//! itself, so that every kind's summary reads the same in each format: NaN
//! is `NaN` in a fixed-width table, an empty field in CSV and `null` in JSON.

mod csv;
mod fixed;
mod json;

use std::io::{self, Write};

pub use self::csv::write_csv;
pub use self::fixed::write_fixed;
pub use self::json::{to_json, write_json};

/// A typed value of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing (an empty field; `null` in JSON).
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Several values: joined by spaces in a fixed-width table and by `;`
    /// in CSV, an array in JSON (a row's flags, the chains used).
    List(Vec<Cell>),
}

impl Cell {
    fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float(_))
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Float(v)
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}

impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::from(v as u64)
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Empty, Into::into)
    }
}

impl<T: Into<Cell>> From<Vec<T>> for Cell {
    fn from(v: Vec<T>) -> Self {
        Cell::List(v.into_iter().map(Into::into).collect())
    }
}

/// The formats a table, a column or a row appears in. A column that repeats
/// one of the table's fields (the state, in every row of a CSV) is left out
/// of JSON, which has the field once; a table that restates other tables'
/// values for reading (a combined evidence table) is fixed-width only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub table: bool,
    pub csv: bool,
    pub json: bool,
}

impl Shown {
    pub const ALL: Shown = Shown {
        table: true,
        csv: true,
        json: true,
    };
    /// The fixed-width table only.
    pub const TABLE: Shown = Shown {
        table: true,
        csv: false,
        json: false,
    };
    /// CSV only.
    pub const CSV: Shown = Shown {
        table: false,
        csv: true,
        json: false,
    };
    /// CSV and JSON, not the fixed-width table (a column too detailed to
    /// read there).
    pub const DATA: Shown = Shown {
        table: false,
        csv: true,
        json: true,
    };
    /// The fixed-width table and JSON, not CSV.
    pub const NOT_CSV: Shown = Shown {
        table: true,
        csv: false,
        json: true,
    };
}

/// How a number is written in a fixed-width table (CSV and JSON always
/// carry every digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// As Rust displays it.
    Plain,
    /// With this many decimals.
    Fixed(usize),
    /// In scientific notation with this many decimals.
    Sci(usize),
}

/// A column: its name (the CSV header, the JSON key), its heading in a
/// fixed-width table, and how its numbers are written there.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub heading: String,
    pub style: Style,
    pub shown: Shown,
}

impl Column {
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            heading: name.clone(),
            name,
            style: Style::Plain,
            shown: Shown::ALL,
        }
    }

    pub fn heading(mut self, heading: impl Into<String>) -> Self {
        self.heading = heading.into();
        self
    }

    pub fn fixed(mut self, decimals: usize) -> Self {
        self.style = Style::Fixed(decimals);
        self
    }

    pub fn sci(mut self, decimals: usize) -> Self {
        self.style = Style::Sci(decimals);
        self
    }

    pub fn shown(mut self, shown: Shown) -> Self {
        self.shown = shown;
        self
    }
}

/// A row: one cell per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub shown: Shown,
}

/// A table: title lines, named fields (facts about the whole table), typed
/// columns and rows, and notes. In JSON a table is an object of its fields
/// plus its rows under `rows_key`, listed under its `section` (or the
/// section itself, when `single`).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The key of the JSON object this table goes under.
    pub section: String,
    /// The section is this one table (an object), not a list of tables.
    pub single: bool,
    /// Lines above the table (fixed-width only).
    pub title: Vec<String>,
    pub fields: Vec<(String, Cell)>,
    /// The key of the rows' list in JSON.
    pub rows_key: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// Lines below the table (fixed-width only): caveats, what the flags mean.
    pub notes: Vec<String>,
    pub shown: Shown,
}

impl Table {
    pub fn new(section: impl Into<String>, rows_key: impl Into<String>) -> Self {
        Self {
            section: section.into(),
            single: false,
            title: Vec::new(),
            fields: Vec::new(),
            rows_key: rows_key.into(),
            columns: Vec::new(),
            rows: Vec::new(),
            notes: Vec::new(),
            shown: Shown::ALL,
        }
    }

    pub fn single(mut self) -> Self {
        self.single = true;
        self
    }

    pub fn shown(mut self, shown: Shown) -> Self {
        self.shown = shown;
        self
    }

    pub fn title(mut self, line: impl Into<String>) -> Self {
        self.title.push(line.into());
        self
    }

    pub fn field(mut self, name: impl Into<String>, value: impl Into<Cell>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    pub fn column(mut self, column: Column) -> Self {
        self.columns.push(column);
        self
    }

    pub fn note(mut self, line: impl Into<String>) -> Self {
        self.notes.push(line.into());
        self
    }

    /// Adds a row shown in every format.
    pub fn push(&mut self, cells: Vec<Cell>) {
        self.push_shown(cells, Shown::ALL);
    }

    pub fn push_shown(&mut self, cells: Vec<Cell>, shown: Shown) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(Row { cells, shown });
    }

    /// Inserts column `at` with the same value in every row (a table's
    /// field repeated for CSV, which has no place for fields).
    pub fn insert_constant(&mut self, at: usize, column: Column, value: Cell) {
        self.columns.insert(at, column);
        for row in &mut self.rows {
            row.cells.insert(at, value.clone());
        }
    }

    /// The value of a field, if the table has it.
    pub fn get(&self, name: &str) -> Option<&Cell> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

/// What a command prints: lines above the tables, top-level fields (JSON)
/// and the tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// Lines above the tables (fixed-width only).
    pub heading: Vec<String>,
    pub fields: Vec<(String, Cell)>,
    pub tables: Vec<Table>,
}

/// A fixed-width table, CSV or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Writes a document in the chosen format.
pub fn write(out: &mut dyn Write, doc: &Document, format: Format) -> io::Result<()> {
    match format {
        Format::Table => {
            for line in &doc.heading {
                writeln!(out, "{line}")?;
            }
            write_fixed(out, &doc.tables)
        }
        Format::Csv => write_csv(out, &doc.tables),
        Format::Json => write_json(out, doc),
    }
}
