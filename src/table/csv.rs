//! The CSV writer (the `csv` crate quotes what needs quoting). Tables with
//! the same columns share one header, so that the parameters of every state
//! make one table; a table with other columns starts a block of its own
//! after a blank line. NaN and infinities are empty fields.

use std::io::{self, Write};

use super::{Cell, Table};

/// Writes the rows of the tables shown in CSV.
pub fn write_csv(out: &mut dyn Write, tables: &[Table]) -> io::Result<()> {
    let mut header: Option<Vec<&str>> = None;
    for table in tables.iter().filter(|t| t.shown.csv) {
        let columns: Vec<usize> = (0..table.columns.len())
            .filter(|&c| table.columns[c].shown.csv)
            .collect();
        let rows: Vec<_> = table.rows.iter().filter(|r| r.shown.csv).collect();
        if columns.is_empty() || rows.is_empty() {
            continue;
        }
        let names: Vec<&str> = columns
            .iter()
            .map(|&c| table.columns[c].name.as_str())
            .collect();
        // Each table is written whole into a buffer (a table is a state's
        // parameters: small), so that the blank line between blocks can go
        // straight to `out`.
        let mut w = ::csv::Writer::from_writer(Vec::new());
        if header.as_ref() != Some(&names) {
            if header.is_some() {
                writeln!(out)?;
            }
            w.write_record(&names)?;
            header = Some(names);
        }
        for row in rows {
            w.write_record(columns.iter().map(|&c| field(&row.cells[c])))?;
        }
        out.write_all(&w.into_inner().map_err(|e| e.into_error())?)?;
    }
    Ok(())
}

/// A cell as a CSV field: every digit of a number; nothing for NaN, an
/// infinity or an empty cell; a list joined by `;`.
fn field(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(s) => s.clone(),
        Cell::Int(v) => v.to_string(),
        Cell::Bool(v) => v.to_string(),
        Cell::Float(v) if v.is_finite() => v.to_string(),
        Cell::Float(_) => String::new(),
        Cell::List(items) => items.iter().map(field).collect::<Vec<_>>().join(";"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, Shown};

    fn table(columns: &[&str]) -> Table {
        columns
            .iter()
            .fold(Table::new("s", "rows"), |t, c| t.column(Column::new(*c)))
    }

    #[test]
    fn nan_and_infinities_are_empty_fields() {
        let mut t = table(&["param", "mean", "sd", "rhat", "flags"]);
        t.push(vec![
            "a,b".into(),
            0.25.into(),
            f64::NAN.into(),
            f64::INFINITY.into(),
            Cell::List(vec!["R-hat>1.01".into(), "ESS<400".into()]),
        ]);
        t.push(vec![
            "c".into(),
            f64::NEG_INFINITY.into(),
            Cell::Empty,
            1.0.into(),
            Cell::List(vec![]),
        ]);
        let mut out = Vec::new();
        write_csv(&mut out, &[t]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "param,mean,sd,rhat,flags\n\"a,b\",0.25,,,R-hat>1.01;ESS<400\nc,,,1,\n"
        );
    }

    #[test]
    fn tables_with_the_same_columns_share_a_header() {
        let mut a = table(&["state", "x"]);
        a.push(vec!["g".into(), Cell::Int(1)]);
        let mut b = table(&["state", "x"]);
        b.push(vec!["f".into(), Cell::Int(2)]);
        b.push_shown(vec!["f".into(), Cell::Int(3)], Shown::TABLE);
        let mut c = table(&["state", "y", "z"]);
        c.push(vec!["h".into(), true.into(), Cell::Text(String::new())]);
        let hidden = table(&["other"]).shown(Shown::TABLE);
        let mut out = Vec::new();
        write_csv(&mut out, &[a, hidden, b, c]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "state,x\ng,1\nf,2\n\nstate,y,z\nh,true,\n"
        );
    }
}
