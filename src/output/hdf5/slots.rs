//! The checkpoint slots of an output: two datasets written in turn, and
//! the attributes saying which one is whole, so that a crash at any instant
//! leaves the previous checkpoint or the new one, never a mixture.

use std::time::SystemTime;

use hdf5::File;

use super::io::write_attr;
use super::Hdf5Store;
use crate::output::{Attr, Extents, Store, StoreError};

/// The store's part of a checkpoint: the rows written per dataset, beside
/// the executor's state.
#[derive(serde::Deserialize)]
pub(super) struct StoreCheckpoint {
    pub(super) extents: Vec<Extents>,
    pub(super) state: Vec<u8>,
}

/// A [`StoreCheckpoint`] as it is written, borrowing its parts (the same
/// bytes: serde writes a slice as it writes a vector).
#[derive(serde::Serialize)]
struct StoreCheckpointRef<'a> {
    extents: &'a [Extents],
    state: &'a [u8],
}

/// The group holding the checkpoint: two slots, written in turn, and the
/// attributes `slot` (the one that is whole), `bytes` and `checksum`.
pub(super) const CHECKPOINT: &str = "checkpoint";

/// FNV-1a of the checkpoint's bytes: a torn slot is never taken for whole.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The last whole checkpoint of a file, if any.
pub(super) fn read_checkpoint(file: &File) -> Result<Option<StoreCheckpoint>, String> {
    let Ok(group) = file.group(CHECKPOINT) else {
        return Ok(None);
    };
    let read = || -> hdf5::Result<(u64, u64, u64)> {
        Ok((
            group.attr("slot")?.read_scalar::<u64>()?,
            group.attr("bytes")?.read_scalar::<u64>()?,
            group.attr("checksum")?.read_scalar::<u64>()?,
        ))
    };
    // A run killed while writing its first checkpoint has the group only.
    let Ok((slot, bytes, sum)) = read() else {
        return Ok(None);
    };
    let data = group
        .dataset(&format!("slot{slot}"))
        .and_then(|d| d.read_raw::<u8>())
        .map_err(|e| format!("its checkpoint cannot be read: {e}"))?;
    if data.len() as u64 != bytes || checksum(&data) != sum {
        return Err("its checkpoint is damaged (size or checksum)".into());
    }
    postcard::from_bytes(&data)
        .map(Some)
        .map_err(|e| format!("its checkpoint cannot be decoded: {e}"))
}

impl Hdf5Store {
    pub(super) fn write_slot(&mut self, state: &[u8]) -> Result<(), StoreError> {
        self.flush()?;
        let record = StoreCheckpointRef {
            extents: &self.extents,
            state,
        };
        let bytes = crate::output::encode_exact(&record).map_err(|e| self.err(e))?;
        self.ensure_space(bytes.len() as u64)?;
        let group = match self.file.group(CHECKPOINT) {
            Ok(g) => g,
            Err(_) => self
                .file
                .create_group(CHECKPOINT)
                .map_err(|e| self.err(e))?,
        };
        let current = group.attr("slot").and_then(|a| a.read_scalar::<u64>()).ok();
        // The slot not in use is written whole and flushed before `slot`
        // points at it.
        let slot = current.map_or(0, |c| 1 - c);
        let name = format!("slot{slot}");
        if group.link_exists(&name) {
            group.unlink(&name).map_err(|e| self.err(e))?;
        }
        let ds = group
            .new_dataset::<u8>()
            .shape(bytes.len())
            .create(name.as_str())
            .map_err(|e| self.err(e))?;
        ds.write_raw(&bytes).map_err(|e| self.err(e))?;
        self.file.flush().map_err(|e| self.err(e))?;
        for (attr, value) in [
            ("bytes", bytes.len() as u64),
            ("checksum", checksum(&bytes)),
            ("slot", slot),
        ] {
            write_attr(&group, attr, &Attr::U64(value)).map_err(|e| self.err(e))?;
        }
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        write_attr(&group, "time", &Attr::Str(now)).map_err(|e| self.err(e))?;
        self.file.flush().map_err(|e| self.err(e))
    }
}
