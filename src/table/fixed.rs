//! The fixed-width writer: each table's title, its columns aligned under
//! their headings (text to the left, numbers to the right), and its notes.

use std::io::{self, Write};

use super::{Cell, Column, Style, Table};

/// Writes the tables shown in a fixed-width table, one after another.
pub fn write_fixed(out: &mut dyn Write, tables: &[Table]) -> io::Result<()> {
    for table in tables.iter().filter(|t| t.shown.table) {
        write_one(out, table)?;
    }
    Ok(())
}

fn write_one(out: &mut dyn Write, table: &Table) -> io::Result<()> {
    for line in &table.title {
        writeln!(out, "{line}")?;
    }
    let columns: Vec<usize> = (0..table.columns.len())
        .filter(|&c| table.columns[c].shown.table)
        .collect();
    let rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .filter(|r| r.shown.table)
        .map(|r| {
            columns
                .iter()
                .map(|&c| text(&r.cells[c], &table.columns[c]))
                .collect()
        })
        .collect();
    if !columns.is_empty() {
        // Text columns (no number in any row) read left to right.
        let left: Vec<bool> = columns
            .iter()
            .map(|&c| {
                !table
                    .rows
                    .iter()
                    .filter(|r| r.shown.table)
                    .any(|r| r.cells[c].is_number())
            })
            .collect();
        let width: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                rows.iter()
                    .map(|r| r[k].chars().count())
                    .chain([table.columns[c].heading.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let last = cells.len() - 1;
            let mut s = String::from(" ");
            for (k, cell) in cells.into_iter().enumerate() {
                let pad = width[k].saturating_sub(cell.chars().count());
                s.push(' ');
                // Text after numbers stands apart (the flags after τ).
                if k > 0 && left[k] && !left[k - 1] {
                    s.push(' ');
                }
                if left[k] {
                    s.push_str(cell);
                    // No trailing blanks after the last column.
                    if k < last {
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                } else {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(cell);
                }
            }
            s.trim_end().to_owned()
        };
        let headings = columns
            .iter()
            .map(|&c| table.columns[c].heading.as_str())
            .collect();
        writeln!(out, "{}", line(headings))?;
        for r in &rows {
            writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
        }
    }
    for note in &table.notes {
        writeln!(out, "  {note}")?;
    }
    Ok(())
}

/// A cell as the column's style writes it.
fn text(cell: &Cell, column: &Column) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(s) => s.clone(),
        Cell::Int(v) => v.to_string(),
        Cell::Bool(v) => v.to_string(),
        Cell::Float(v) => match column.style {
            Style::Plain => v.to_string(),
            Style::Fixed(d) => format!("{v:.d$}"),
            Style::Sci(d) => format!("{v:.d$e}"),
        },
        Cell::List(items) => items
            .iter()
            .map(|c| text(c, column))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Shown;

    #[test]
    fn columns_align_text_left_and_numbers_right() {
        let mut t = Table::new("s", "rows")
            .title("state g")
            .column(Column::new("param"))
            .column(Column::new("mean").fixed(2))
            .column(Column::new("mcse").sci(1))
            .column(Column::new("hidden").shown(Shown::CSV))
            .column(Column::new("flags"))
            .note("a note");
        t.push(vec![
            "a".into(),
            1.5.into(),
            0.00123.into(),
            Cell::Int(7),
            Cell::List(vec!["R-hat>1.01".into(), "ESS<400".into()]),
        ]);
        t.push(vec![
            "long_name".into(),
            (-10.25).into(),
            f64::NAN.into(),
            Cell::Int(7),
            Cell::List(vec![]),
        ]);
        t.push_shown(
            vec![
                "csv only".into(),
                0.0.into(),
                0.0.into(),
                Cell::Int(0),
                Cell::Empty,
            ],
            Shown::CSV,
        );
        let mut out = Vec::new();
        write_fixed(&mut out, &[t]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "state g\n\
             \x20 param       mean   mcse  flags\n\
             \x20 a           1.50 1.2e-3  R-hat>1.01 ESS<400\n\
             \x20 long_name -10.25    NaN\n\
             \x20 a note\n"
        );
    }

    #[test]
    fn a_table_shown_elsewhere_only_is_not_written() {
        let t = Table::new("s", "rows").title("hidden").shown(Shown::CSV);
        let mut out = Vec::new();
        write_fixed(&mut out, &[t]).unwrap();
        assert!(out.is_empty());
    }
}
