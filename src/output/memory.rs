//! An in-memory [`Store`]: the test double that lets the executor and the
//! jobs be tested in one process, with every write and flush on record.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use super::{Attr, Column, Extents, Layout, Record, Store, StoreError};

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
        let Some(i) = self.layout.find(path) else {
            return Vec::new();
        };
        let decl = &self.layout.datasets[i];
        let row_len: usize = decl.row_shape.iter().product();
        let lane_len = decl.lane_len();
        let rows = decl.rows.unwrap_or(self.extents[i].max) as usize;
        let mut out = vec![f64::NAN; rows * row_len];
        for r in self.records.iter().filter(|r| r.dataset == i) {
            let v: Vec<f64> = match &r.values {
                Column::F64(v) => v.clone(),
                Column::I64(v) => v.iter().map(|&x| x as f64).collect(),
                Column::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
                Column::Str(_) => continue,
            };
            for (k, row) in v.chunks(lane_len.max(1)).enumerate() {
                let at = (r.first_row as usize + k) * row_len
                    + r.lane.map_or(0, |l| l as usize * lane_len);
                out[at..at + row.len()].copy_from_slice(row);
            }
        }
        out
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

    fn discard(self: Box<Self>) {}
}
