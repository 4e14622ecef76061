//! Datasets and attributes in HDF5's terms: creating a declared dataset,
//! selecting rows (of one lane), writing records and attributes.

use hdf5::types::{FixedUnicode, VarLenUnicode};
use hdf5::{Dataset, File, H5Type, Location, SliceOrIndex};
use ndarray::{ArrayView, IxDyn};

use crate::limits::NAME_MAX;
use crate::output::{Attr, Column, DatasetDecl, Dtype, Record};

type NameString = FixedUnicode<NAME_MAX>;

/// Creates a declared dataset (filled with NaN for floats), with its
/// initial values if it has any.
pub(super) fn create_dataset(file: &File, decl: &DatasetDecl) -> hdf5::Result<Dataset> {
    let rows = decl.rows.unwrap_or(0) as usize;
    let max = (decl.rows.is_some() && !decl.resizable).then_some(rows);
    let mut shape = vec![hdf5::Extent::new(rows, max)];
    shape.extend(decl.row_shape.iter().map(|&n| hdf5::Extent::fixed(n)));
    let chunk = decl.chunk_shape();
    let extents = hdf5::SimpleExtents::from_vec(shape);
    let ds = match decl.dtype {
        Dtype::F64 => file
            .new_dataset::<f64>()
            .chunk(chunk.clone())
            .fill_value(f64::NAN)
            .shape(extents)
            .create(decl.path.as_str())?,
        Dtype::I64 => file
            .new_dataset::<i64>()
            .chunk(chunk.clone())
            .fill_value(decl.int_fill.unwrap_or(0))
            .shape(extents)
            .create(decl.path.as_str())?,
        Dtype::U8 => file
            .new_dataset::<u8>()
            .chunk(chunk.clone())
            .shape(extents)
            .create(decl.path.as_str())?,
        Dtype::Str(_) => file
            .new_dataset::<NameString>()
            .chunk(chunk.clone())
            .shape(extents)
            .create(decl.path.as_str())?,
    };
    if let Some(values) = &decl.init {
        let record = Record {
            dataset: 0,
            first_row: 0,
            rows: values.len() as u64 / decl.lane_len().max(1) as u64,
            lane: None,
            values: values.clone(),
        };
        if decl.rows.is_none() {
            let mut full = vec![record.rows as usize];
            full.extend(&decl.row_shape);
            ds.resize(full)?;
        }
        write_record(&ds, decl, &record)?;
    }
    Ok(ds)
}

/// The selection of `rows` rows from `first` (of one lane, if given).
pub(super) fn hyperslab(
    decl: &DatasetDecl,
    first: u64,
    rows: u64,
    lane: Option<u64>,
) -> hdf5::Hyperslab {
    rows_slab(first, 1, rows, &decl.row_shape, lane)
}

/// The selection of `count` rows from `first`, every `step`-th, of a
/// dataset whose rows have `row_shape` (of one lane — an index along the
/// row's first axis — if given). The store and the reader both select so.
pub(crate) fn rows_slab(
    first: u64,
    step: u64,
    count: u64,
    row_shape: &[usize],
    lane: Option<u64>,
) -> hdf5::Hyperslab {
    let mut sel = vec![SliceOrIndex::SliceCount {
        start: first as usize,
        step: step.max(1) as usize,
        count: count as usize,
        block: 1,
    }];
    for (axis, &n) in row_shape.iter().enumerate() {
        sel.push(match lane {
            Some(l) if axis == 0 => SliceOrIndex::Index(l as usize),
            _ => SliceOrIndex::SliceCount {
                start: 0,
                step: 1,
                count: n,
                block: 1,
            },
        });
    }
    hdf5::Hyperslab::from(sel)
}

/// Writes records of consecutive lanes over the same rows (each one lane,
/// sorted by lane) as one block: one selection and one write instead of
/// one per lane, the values interleaved row by row.
pub(super) fn write_lanes(ds: &Dataset, decl: &DatasetDecl, block: &[Record]) -> hdf5::Result<()> {
    let Some((first, Some(lane))) = block.first().map(|r| (r, r.lane)) else {
        return Ok(());
    };
    let (rows, lanes) = (first.rows as usize, block.len());
    let mut shape = vec![rows, lanes];
    shape.extend(decl.row_shape.iter().skip(1));
    let mut sel = vec![
        SliceOrIndex::SliceCount {
            start: first.first_row as usize,
            step: 1,
            count: rows,
            block: 1,
        },
        SliceOrIndex::SliceCount {
            start: lane as usize,
            step: 1,
            count: lanes,
            block: 1,
        },
    ];
    sel.extend(
        decl.row_shape
            .iter()
            .skip(1)
            .map(|&n| SliceOrIndex::SliceCount {
                start: 0,
                step: 1,
                count: n,
                block: 1,
            }),
    );
    let sel = hdf5::Hyperslab::from(sel);
    let part = decl.lane_len();
    /// Row r of every lane, then row r + 1: the block's memory order.
    fn interleave<T: Clone>(parts: &[&[T]], rows: usize, part: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(parts.len() * rows * part);
        for r in 0..rows {
            for p in parts {
                out.extend_from_slice(&p[r * part..(r + 1) * part]);
            }
        }
        out
    }
    // The block's values, interleaved, of the records' one type.
    macro_rules! interleaved {
        ($variant:ident) => {{
            let parts: Vec<_> = block
                .iter()
                .map(|r| match &r.values {
                    Column::$variant(v) => Ok(&v[..]),
                    _ => Err(hdf5::Error::from("records of one dataset have one type")),
                })
                .collect::<hdf5::Result<_>>()?;
            interleave(&parts, rows, part)
        }};
    }
    match &first.values {
        Column::F64(_) => write_values(ds, &shape, &interleaved!(F64), sel),
        Column::I64(_) => write_values(ds, &shape, &interleaved!(I64), sel),
        Column::U8(_) => write_values(ds, &shape, &interleaved!(U8), sel),
        Column::Str(_) => {
            let names: Vec<NameString> = interleaved!(Str).iter().map(|s| name_string(s)).collect();
            write_values(ds, &shape, &names, sel)
        }
    }
}

pub(super) fn write_record(ds: &Dataset, decl: &DatasetDecl, r: &Record) -> hdf5::Result<()> {
    let mut shape = vec![r.rows as usize];
    let skip = usize::from(r.lane.is_some());
    shape.extend(decl.row_shape.iter().skip(skip));
    let sel = hyperslab(decl, r.first_row, r.rows, r.lane);
    match &r.values {
        Column::F64(v) => write_values(ds, &shape, v, sel),
        Column::I64(v) => write_values(ds, &shape, v, sel),
        Column::U8(v) => write_values(ds, &shape, v, sel),
        Column::Str(v) => {
            let names: Vec<NameString> = v.iter().map(|s| name_string(s)).collect();
            write_values(ds, &shape, &names, sel)
        }
    }
}

/// Writes `values`, of `shape`, to the selection `sel` of `ds`.
fn write_values<T: H5Type>(
    ds: &Dataset,
    shape: &[usize],
    values: &[T],
    sel: hdf5::Hyperslab,
) -> hdf5::Result<()> {
    let view = ArrayView::from_shape(IxDyn(shape), values)
        .map_err(|e| hdf5::Error::from(e.to_string().as_str()))?;
    ds.write_slice(view, sel)
}

/// A name as a fixed-length string (names are validated to fit; longer
/// text is cut at a character boundary rather than failing a run).
fn name_string(s: &str) -> NameString {
    let mut end = s.len().min(NAME_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].replace('\0', " ")).parse().unwrap_or_default()
}

fn to_vlu(s: &str) -> VarLenUnicode {
    // Only fails on interior NUL bytes; replace them rather than fail a run.
    s.replace('\0', "\u{fffd}").parse().unwrap_or_default()
}

/// Creates or replaces an attribute.
pub(super) fn write_attr(loc: &Location, name: &str, value: &Attr) -> hdf5::Result<()> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)?;
    }
    fn scalar<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5::Result<()> {
        loc.new_attr::<T>().create(name)?.write_scalar(v)
    }
    match value {
        Attr::Str(s) => scalar(loc, name, &to_vlu(s)),
        Attr::I64(v) => scalar(loc, name, v),
        Attr::U64(v) => scalar(loc, name, v),
        Attr::F64(v) => scalar(loc, name, v),
        Attr::Bool(v) => scalar(loc, name, v),
        Attr::F64s(values) => loc
            .new_attr::<f64>()
            .shape(values.len())
            .create(name)?
            .write(values),
        Attr::Strs(list) => {
            let values: Vec<VarLenUnicode> = list.iter().map(|s| to_vlu(s)).collect();
            loc.new_attr::<VarLenUnicode>()
                .shape(values.len())
                .create(name)?
                .write(&values)
        }
    }
}
