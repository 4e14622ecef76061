//! An in-memory [`Store`]: the test double that lets the executor and the
//! jobs be tested in one process, with every write and flush on record. It
//! is also a [`Reader`], so that a job's `summary` reads what its run wrote
//! as it would read the HDF5 file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use super::reader::{ReadError, Reader, Rows};
use super::{Attr, Column, DatasetDecl, Extents, Layout, Record, Store, StoreError};

/// Keeps every record as written, in order.
#[derive(Debug)]
pub struct MemoryStore {
    pub layout: Layout,
    /// Every record, in the order it was written.
    pub records: Vec<Record>,
    pub attrs: BTreeMap<(String, String), Attr>,
    pub flushes: usize,
    /// The checkpoints recorded, in order.
    pub checkpoints: Vec<Vec<u8>>,
    extents: Vec<Extents>,
}

impl MemoryStore {
    pub fn new(layout: Layout) -> Self {
        let extents = layout
            .datasets
            .iter()
            .map(|d| Extents::new(d.lane_count()))
            .collect();
        Self {
            layout,
            records: Vec::new(),
            attrs: BTreeMap::new(),
            flushes: 0,
            checkpoints: Vec::new(),
            extents,
        }
    }

    /// The dataset at `path` as a dense float array (rows × row size; NaN
    /// where nothing was written; integers converted), later records
    /// overwriting earlier ones.
    pub fn f64_rows(&self, path: &str) -> Vec<f64> {
        self.layout
            .find(path)
            .map_or_else(Vec::new, |i| self.dense_f64(i, false))
    }

    /// Dataset `i` as a dense float array, as [`Self::f64_rows`]; with
    /// `init`, the values it was created with under the records, as the
    /// HDF5 store writes them when it creates the file.
    fn dense_f64(&self, i: usize, init: bool) -> Vec<f64> {
        self.dense(i, init, f64::NAN, |c| match c {
            Column::F64(v) => Some(v.clone()),
            Column::I64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::U8(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
            Column::Str(_) => None,
        })
    }

    /// Dataset `i` as a dense array of `T`: `fill` where nothing was
    /// written (HDF5's fill: NaN for floats, zero or empty otherwise), then
    /// its initial values (with `init`) and its records in the order
    /// written, each as `values` converts it (`None`: of another type).
    fn dense<T: Clone>(
        &self,
        i: usize,
        init: bool,
        fill: T,
        values: impl Fn(&Column) -> Option<Vec<T>>,
    ) -> Vec<T> {
        let decl = &self.layout.datasets[i];
        let row_len: usize = decl.row_shape.iter().product();
        let lane_len = decl.lane_len();
        let mut out = vec![fill; self.extent(i) as usize * row_len];
        let initial = decl.init.as_ref().filter(|_| init).map(|v| (None, 0, v));
        let written = self
            .records
            .iter()
            .filter(|r| r.dataset == i)
            .map(|r| (r.lane, r.first_row, &r.values));
        for (lane, first_row, column) in initial.into_iter().chain(written) {
            let Some(v) = values(column) else {
                continue;
            };
            // A record without a lane holds whole rows.
            let len = if lane.is_some() { lane_len } else { row_len };
            for (k, row) in v.chunks(len.max(1)).enumerate() {
                let at =
                    (first_row as usize + k) * row_len + lane.map_or(0, |l| l as usize * lane_len);
                out[at..at + row.len()].clone_from_slice(row);
            }
        }
        out
    }

    /// Rows of dataset `i`: its fixed count, or as far as it was written
    /// (or created with values).
    fn extent(&self, i: usize) -> u64 {
        let decl = &self.layout.datasets[i];
        let init_rows = decl
            .init
            .as_ref()
            .map_or(0, |v| v.len() as u64 / decl.lane_len().max(1) as u64);
        decl.rows
            .unwrap_or_else(|| self.extents[i].max.max(init_rows))
    }

    /// The dataset at `path` for the reader, or the error it would give.
    fn dataset(&self, path: &str) -> Result<(usize, &DatasetDecl), ReadError> {
        let path = path.trim_start_matches('/');
        self.layout
            .find(path)
            .map(|i| (i, &self.layout.datasets[i]))
            .ok_or_else(|| ReadError::Read {
                path: "memory".into(),
                message: format!("/{path}: no such dataset"),
            })
    }
}

impl Store for MemoryStore {
    fn write(&mut self, record: Record) -> Result<(), StoreError> {
        let decl = self
            .layout
            .datasets
            .get(record.dataset)
            .ok_or_else(|| StoreError::Record(format!("no dataset {}", record.dataset)))?;
        decl.check(&record).map_err(StoreError::Record)?;
        self.extents[record.dataset].advance(record.first_row, record.rows);
        self.records.push(record);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.flushes += 1;
        Ok(())
    }

    fn read_f64(
        &mut self,
        dataset: usize,
        rows: Range<u64>,
        lane: Option<u64>,
    ) -> Result<Vec<f64>, StoreError> {
        let decl = &self.layout.datasets[dataset];
        let all = self.f64_rows(&decl.path.clone());
        let row_len: usize = decl.row_shape.iter().product();
        let lane_len = decl.lane_len();
        let end = (rows.end as usize).min(all.len() / row_len.max(1));
        let mut out = Vec::new();
        for row in rows.start as usize..end {
            let at = row * row_len + lane.map_or(0, |l| l as usize * lane_len);
            let len = if lane.is_some() { lane_len } else { row_len };
            out.extend_from_slice(&all[at..at + len]);
        }
        Ok(out)
    }

    fn read_u8(&mut self, dataset: usize, rows: Range<u64>) -> Result<Vec<u8>, StoreError> {
        let all = self.dense(dataset, false, 0u8, |c| match c {
            Column::U8(v) => Some(v.clone()),
            _ => None,
        });
        let end = (rows.end as usize).min(all.len());
        Ok(all
            .get(rows.start as usize..end)
            .unwrap_or_default()
            .to_vec())
    }

    fn rows_written(&self, dataset: usize) -> u64 {
        self.extents[dataset].complete()
    }

    fn set_attr(&mut self, group: &str, name: &str, value: Attr) -> Result<(), StoreError> {
        self.attrs.insert((group.into(), name.into()), value);
        Ok(())
    }

    fn checkpoint(&mut self, state: &[u8]) -> Result<(), StoreError> {
        self.flush()?;
        self.checkpoints.push(state.to_vec());
        Ok(())
    }

    // The store is gone after these: the tests that need its contents
    // keep it by value and never end it.

    fn partial(&self) -> PathBuf {
        PathBuf::from("(memory)")
    }

    fn finish(self: Box<Self>) -> Result<PathBuf, StoreError> {
        Ok(self.partial())
    }

    fn pause(self: Box<Self>, _why: &str) -> Result<PathBuf, StoreError> {
        Ok(self.partial())
    }

    fn abandon(self: Box<Self>, _reason: &str) -> PathBuf {
        self.partial()
    }

    fn mark_failed(&mut self, _reason: &str) {}

    fn discard(self: Box<Self>) {}
}

/// Reads what was written as [`super::Hdf5Reader`] reads the file: groups
/// and datasets of the layout, attributes as last set (an extent attribute
/// such as emcee's `iteration` as the store keeps it: the rows written in
/// every lane), NaN in float rows never written.
impl Reader for MemoryStore {
    fn exists(&self, path: &str) -> bool {
        let path = path.trim_matches('/');
        let within = |p: &str| p == path || p.starts_with(&format!("{path}/"));
        path.is_empty()
            || self.layout.groups.iter().any(|g| within(&g.path))
            || self.layout.datasets.iter().any(|d| within(&d.path))
    }

    fn attr(&self, path: &str, name: &str) -> Result<Option<Attr>, ReadError> {
        let path = path.trim_start_matches('/');
        let set = self.attrs.iter().find(|((g, n), _)| {
            let g = g.trim_start_matches('/');
            g == path && n == name
        });
        if let Some((_, value)) = set {
            return Ok(Some(value.clone()));
        }
        let extent = self.layout.datasets.iter().position(|d| {
            d.extent_attr
                .as_ref()
                .is_some_and(|(g, n)| g.trim_start_matches('/') == path && n == name)
        });
        if let Some(i) = extent {
            return Ok(Some(Attr::I64(self.extents[i].complete() as i64)));
        }
        Ok(self
            .layout
            .groups
            .iter()
            .filter(|g| g.path.trim_start_matches('/') == path)
            .flat_map(|g| &g.attrs)
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone()))
    }

    fn shape(&self, dataset: &str) -> Result<Vec<usize>, ReadError> {
        let (i, decl) = self.dataset(dataset)?;
        let mut shape = vec![self.extent(i) as usize];
        shape.extend(&decl.row_shape);
        Ok(shape)
    }

    fn read_f64(
        &self,
        dataset: &str,
        rows: Option<Rows>,
        lane: Option<u64>,
    ) -> Result<Vec<f64>, ReadError> {
        let (i, decl) = self.dataset(dataset)?;
        let all = self.dense_f64(i, true);
        let row_len: usize = decl.row_shape.iter().product();
        let rows = rows.unwrap_or(Rows::every(0..self.extent(i)));
        // A lane is an index along axis 1, as the HDF5 reader selects it.
        let (offset, len) = match (lane, decl.row_shape.first()) {
            (Some(l), Some(&n)) => {
                let part = row_len / n.max(1);
                (l as usize * part, part)
            }
            _ => (0, row_len),
        };
        let mut out = Vec::new();
        let end = rows.range.end.min(self.extent(i));
        for row in (rows.range.start..end).step_by(rows.step.max(1) as usize) {
            let at = row as usize * row_len + offset;
            out.extend_from_slice(&all[at..at + len]);
        }
        Ok(out)
    }

    fn read_i64(&self, dataset: &str) -> Result<Vec<i64>, ReadError> {
        let (i, _) = self.dataset(dataset)?;
        Ok(self.dense(i, true, 0, |c| match c {
            Column::I64(v) => Some(v.clone()),
            _ => None,
        }))
    }

    fn read_strings(&self, dataset: &str) -> Result<Vec<String>, ReadError> {
        let (i, _) = self.dataset(dataset)?;
        Ok(self.dense(i, true, String::new(), |c| match c {
            Column::Str(v) => Some(v.clone()),
            _ => None,
        }))
    }
}
