//! Reading an output back: [`Reader`], a read-only view of groups, datasets
//! and attributes by path, and [`Hdf5Reader`], which opens a finished file,
//! a failed run's `.partial` or one still being written.
//!
//! A file still being written is opened without HDF5's file lock, which its
//! writer holds; its metadata may be caught mid-update, so a caller that
//! gets [`ReadError::Read`] may open the file again and retry.

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::types::{FixedUnicode, TypeDescriptor, VarLenUnicode};
use hdf5::File;

use super::Attr;
use crate::limits::NAME_MAX;

/// Why a file could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The path is not a file HDF5 can open (exit 2: the user named the
    /// wrong file).
    #[error("{}: {message}", path.display())]
    NotOutput { path: PathBuf, message: String },
    /// A read failed; in a file being written, trying again may succeed.
    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

/// Rows along axis 0: `start`, `start + step`, … before `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub range: Range<u64>,
    pub step: u64,
}

impl Rows {
    pub fn every(range: Range<u64>) -> Self {
        Self { range, step: 1 }
    }

    fn count(&self) -> u64 {
        if self.range.end <= self.range.start {
            0
        } else {
            (self.range.end - self.range.start - 1) / self.step.max(1) + 1
        }
    }
}

/// A read-only view of an output, by path ("states/g/chain"; "/" is the
/// root). It knows groups, datasets and attributes, never a kind of work.
pub trait Reader {
    /// Whether a group or dataset exists.
    fn exists(&self, path: &str) -> bool;
    /// An attribute of a group or dataset (or of the root, "/"); `None` if
    /// it has none of that name.
    fn attr(&self, path: &str, name: &str) -> Result<Option<Attr>, ReadError>;
    /// The shape of a dataset.
    fn shape(&self, dataset: &str) -> Result<Vec<usize>, ReadError>;
    /// Values of a numeric dataset as floats, row-major: the `rows` given
    /// (all by default) and, with `lane`, only index `lane` along axis 1.
    fn read_f64(
        &self,
        dataset: &str,
        rows: Option<Rows>,
        lane: Option<u64>,
    ) -> Result<Vec<f64>, ReadError>;
    /// Every value of an integer dataset.
    fn read_i64(&self, dataset: &str) -> Result<Vec<i64>, ReadError>;
    /// Every value of a string dataset.
    fn read_strings(&self, dataset: &str) -> Result<Vec<String>, ReadError>;

    /// A string attribute, if present.
    fn attr_str(&self, path: &str, name: &str) -> Result<Option<String>, ReadError> {
        Ok(match self.attr(path, name)? {
            Some(Attr::Str(s)) => Some(s),
            _ => None,
        })
    }

    /// A non-negative integer attribute (stored signed or unsigned), if
    /// present.
    fn attr_u64(&self, path: &str, name: &str) -> Result<Option<u64>, ReadError> {
        Ok(match self.attr(path, name)? {
            Some(Attr::U64(v)) => Some(v),
            Some(Attr::I64(v)) => Some(v.max(0) as u64),
            _ => None,
        })
    }
}

/// An HDF5 output opened for reading.
pub struct Hdf5Reader {
    file: File,
    path: PathBuf,
}

impl Hdf5Reader {
    /// Opens a file for reading without HDF5's file lock, which the writer
    /// of a run in progress holds. Reading never changes the file, so the
    /// lock protects nothing here.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        // HDF5 reads this when the library starts, at this process's first
        // HDF5 call (and nothing else in the process reads the environment
        // concurrently). Works with every HDF5 ≥ 1.10.0, unlike the
        // file-access property, which needs 1.10.7.
        if std::env::var_os("HDF5_USE_FILE_LOCKING").is_none() {
            std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
        }
        match File::open(path) {
            Ok(file) => Ok(Self {
                file,
                path: path.to_path_buf(),
            }),
            Err(e) => {
                // An empty file may be a run's output before its first flush.
                let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
                if empty || looks_like_hdf5(path) {
                    Err(ReadError::Read {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })
                } else {
                    Err(ReadError::NotOutput {
                        path: path.to_path_buf(),
                        message: "not an HDF5 file".into(),
                    })
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl ToString) -> ReadError {
        ReadError::Read {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn dataset(&self, path: &str) -> Result<hdf5::Dataset, ReadError> {
        self.file
            .dataset(path)
            .map_err(|e| self.err(format!("/{path}: {e}")))
    }
}

/// HDF5's signature at the start of the file (where sampo's files have it).
fn looks_like_hdf5(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == *b"\x89HDF\r\n\x1a\n")
}

fn read_attr(a: &hdf5::Attribute) -> hdf5::Result<Option<Attr>> {
    let scalar = a.is_scalar();
    Ok(Some(match a.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii if scalar => {
            Attr::Str(a.read_scalar::<VarLenUnicode>()?.as_str().to_owned())
        }
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii => Attr::Strs(
            a.read_raw::<VarLenUnicode>()?
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        ),
        TypeDescriptor::Integer(_) if scalar => Attr::I64(a.read_scalar::<i64>()?),
        TypeDescriptor::Unsigned(_) if scalar => Attr::U64(a.read_scalar::<u64>()?),
        TypeDescriptor::Float(_) if scalar => Attr::F64(a.read_scalar::<f64>()?),
        TypeDescriptor::Float(_) => Attr::F64s(a.read_raw::<f64>()?),
        TypeDescriptor::Boolean if scalar => Attr::Bool(a.read_scalar::<bool>()?),
        _ => return Ok(None),
    }))
}

impl Reader for Hdf5Reader {
    fn exists(&self, path: &str) -> bool {
        self.file.link_exists(path.trim_start_matches('/')) || path.trim_matches('/').is_empty()
    }

    fn attr(&self, path: &str, name: &str) -> Result<Option<Attr>, ReadError> {
        let path = path.trim_start_matches('/');
        let attr = if path.is_empty() {
            self.file.attr(name)
        } else if let Ok(g) = self.file.group(path) {
            g.attr(name)
        } else {
            self.dataset(path)?.attr(name)
        };
        match attr {
            Ok(a) => read_attr(&a).map_err(|e| self.err(format!("/{path} attribute {name}: {e}"))),
            Err(_) => Ok(None),
        }
    }

    fn shape(&self, dataset: &str) -> Result<Vec<usize>, ReadError> {
        Ok(self.dataset(dataset)?.shape())
    }

    fn read_f64(
        &self,
        dataset: &str,
        rows: Option<Rows>,
        lane: Option<u64>,
    ) -> Result<Vec<f64>, ReadError> {
        let ds = self.dataset(dataset)?;
        let shape = ds.shape();
        if rows.is_none() && lane.is_none() {
            return ds.read_raw::<f64>().map_err(|e| self.err(e));
        }
        let rows = rows.unwrap_or(Rows::every(0..shape.first().copied().unwrap_or(0) as u64));
        let count = rows.count();
        if count == 0 || shape.is_empty() {
            return Ok(Vec::new());
        }
        let selection =
            super::hdf5::rows_slab(rows.range.start, rows.step, count, &shape[1..], lane);
        let values = ds
            .read_slice::<f64, _, ndarray::IxDyn>(selection)
            .map_err(|e| self.err(format!("/{dataset}: {e}")))?;
        Ok(values.iter().copied().collect())
    }

    fn read_i64(&self, dataset: &str) -> Result<Vec<i64>, ReadError> {
        self.dataset(dataset)?
            .read_raw::<i64>()
            .map_err(|e| self.err(format!("/{dataset}: {e}")))
    }

    fn read_strings(&self, dataset: &str) -> Result<Vec<String>, ReadError> {
        let ds = self.dataset(dataset)?;
        let fixed = ds
            .read_raw::<FixedUnicode<NAME_MAX>>()
            .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect());
        fixed.or_else(|_| {
            ds.read_raw::<VarLenUnicode>()
                .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect())
                .map_err(|e| self.err(format!("/{dataset}: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Column, DatasetDecl, Dtype, Layout, Record, RunInfo, Store};

    /// A new output at `path` with `layout`, as one rank of one thread.
    fn store_at(path: &std::path::Path, layout: &Layout) -> crate::output::Hdf5Store {
        let info = RunInfo {
            ranks: 1,
            threads: 1,
            command_line: String::new(),
            mpi_library: String::new(),
        };
        crate::output::Hdf5Store::create(path, false, layout, &[], &info).unwrap()
    }

    #[test]
    fn lanes_written_as_one_block_land_where_single_lanes_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.h5");
        let mut layout = Layout::default();
        layout.group("g", vec![]);
        let x = layout.add(DatasetDecl::fixed("g/x", Dtype::F64, vec![4, 2], 6).with_lanes());
        let n = layout.add(DatasetDecl::fixed("g/n", Dtype::I64, vec![4], 6).with_lanes());
        let mut store = store_at(&path, &layout);
        // Lanes 2, 0 and 1 over rows 0..3 (one block once sorted), lane 3
        // over rows 2..5 (alone); value 1000 lane + 10 row + k.
        for (lane, rows) in [(2u64, 0..3u64), (0, 0..3), (3, 2..5), (1, 0..3)] {
            let (first, count) = (rows.start, rows.end - rows.start);
            let x_values = rows
                .clone()
                .flat_map(|r| (0..2).map(move |k| (1000 * lane + 10 * r + k) as f64))
                .collect();
            let n_values = rows.map(|r| (1000 * lane + 10 * r) as i64).collect();
            for (dataset, values) in [(x, Column::F64(x_values)), (n, Column::I64(n_values))] {
                store
                    .write(Record {
                        dataset,
                        first_row: first,
                        rows: count,
                        lane: Some(lane),
                        values,
                    })
                    .unwrap();
            }
        }
        let done = store.finish().unwrap();
        let r = Hdf5Reader::open(&done).unwrap();
        let got = r.read_f64("g/x", None, None).unwrap();
        let counts = r.read_f64("g/n", None, None).unwrap();
        for row in 0..6u64 {
            for lane in 0..4u64 {
                let written = if lane == 3 {
                    (2..5).contains(&row)
                } else {
                    row < 3
                };
                let at = (row * 4 + lane) as usize;
                for k in 0..2u64 {
                    let v = got[at * 2 + k as usize];
                    if written {
                        assert_eq!(
                            v,
                            (1000 * lane + 10 * row + k) as f64,
                            "row {row} lane {lane}"
                        );
                    } else {
                        assert!(v.is_nan(), "row {row} lane {lane}: {v}");
                    }
                }
                if written {
                    assert_eq!(counts[at], (1000 * lane + 10 * row) as f64);
                }
            }
        }
    }

    #[test]
    fn reads_what_the_store_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.h5");
        let mut layout = Layout::default();
        layout.group("g", vec![("iteration".into(), Attr::I64(3))]);
        let x = layout.add(DatasetDecl::fixed("g/x", Dtype::F64, vec![2, 3], 4).with_lanes());
        layout.add(
            DatasetDecl::fixed("g/names", Dtype::Str(NAME_MAX), vec![], 2)
                .with_init(Column::Str(vec!["a".into(), "b".into()])),
        );
        let mut store = store_at(&path, &layout);
        for lane in 0..2u64 {
            let values = (0..12).map(|v| (v + 100 * lane) as f64).collect();
            store
                .write(Record {
                    dataset: x,
                    first_row: 0,
                    rows: 4,
                    lane: Some(lane),
                    values: Column::F64(values),
                })
                .unwrap();
        }
        let done = store.finish().unwrap();
        let r = Hdf5Reader::open(&done).unwrap();
        assert!(r.exists("g/x") && r.exists("/") && !r.exists("g/y"));
        assert_eq!(r.attr_u64("g", "iteration").unwrap(), Some(3));
        assert_eq!(
            r.attr_str("/", "status").unwrap().as_deref(),
            Some("complete")
        );
        assert_eq!(r.attr("g", "nothing").unwrap(), None);
        assert_eq!(r.shape("g/x").unwrap(), [4, 2, 3]);
        assert_eq!(r.read_strings("g/names").unwrap(), ["a", "b"]);
        // Rows 1 and 3 of lane 1: row k of a lane holds 3k..3k+3 (+ 100).
        let picked = r
            .read_f64(
                "g/x",
                Some(Rows {
                    range: 1..4,
                    step: 2,
                }),
                Some(1),
            )
            .unwrap();
        assert_eq!(picked, [103.0, 104.0, 105.0, 109.0, 110.0, 111.0]);
        assert_eq!(r.read_f64("g/x", None, None).unwrap().len(), 24);
        let missing = r.read_f64("g/y", None, None).unwrap_err();
        assert!(matches!(missing, ReadError::Read { .. }), "{missing}");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not HDF5").unwrap();
        assert!(matches!(
            Hdf5Reader::open(&text),
            Err(ReadError::NotOutput { .. })
        ));
    }
}
