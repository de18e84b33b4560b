//! How far delivery got through the journal, persisted across restarts.
//!
//! Batches are per (account, region), so they complete out of journal order.
//! A single byte offset is therefore not enough: the checkpoint keeps the
//! low-water offset (every record before it is delivered), the offsets of
//! records after it that are delivered already, and the batches in flight
//! (a file about to be renamed into place). On start, an in-flight batch
//! whose file exists counts as delivered and one whose file does not, as
//! pending: each record ends up in exactly one file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsutil;
use crate::error::SinkError;

/// The persisted delivery state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Checkpoint {
    /// Every journal record starting before this byte offset is delivered.
    pub(crate) journal_offset: u64,
    /// Offsets at or after `journal_offset` whose records are delivered.
    #[serde(default)]
    pub(crate) delivered: BTreeSet<u64>,
    /// Batches being written when the checkpoint was saved.
    #[serde(default)]
    pub(crate) in_flight: Vec<InFlight>,
}

/// A batch whose delivery file may or may not have been renamed into place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InFlight {
    /// The delivery file, relative to the delivery root.
    pub(crate) file: PathBuf,
    /// Journal offsets of the batch's records.
    pub(crate) offsets: Vec<u64>,
}

impl Checkpoint {
    /// Loads the checkpoint at `path`; a missing file means nothing is
    /// delivered yet.
    pub(crate) fn load(path: &Path) -> Result<Self, SinkError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| SinkError::CorruptCheckpoint {
                    path: path.to_owned(),
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SinkError::io("read", path)(e)),
        }
    }

    /// Saves atomically, so a crash leaves the old checkpoint or the new.
    pub(crate) fn save(&self, path: &Path) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec(self).map_err(|source| SinkError::CorruptCheckpoint {
            path: path.to_owned(),
            source,
        })?;
        fsutil::atomic_write(path, &bytes)
    }

    /// Settles batches left in flight by a crash: delivered if their file
    /// exists under `root`, pending otherwise.
    pub(crate) fn resolve_in_flight(&mut self, root: &Path) {
        for batch in std::mem::take(&mut self.in_flight) {
            if root.join(&batch.file).is_file() {
                self.delivered.extend(batch.offsets);
            }
        }
    }

    /// Whether the record at `offset` is delivered.
    pub(crate) fn is_delivered(&self, offset: u64) -> bool {
        offset < self.journal_offset || self.delivered.contains(&offset)
    }

    /// Moves the low-water mark to `low_water` (the first offset not yet
    /// delivered) and forgets delivered offsets below it.
    pub(crate) fn advance(&mut self, low_water: u64) {
        self.journal_offset = self.journal_offset.max(low_water);
        let keep = self.delivered.split_off(&self.journal_offset);
        self.delivered = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_and_round_trips() -> Result<(), SinkError> {
        let dir = tempfile::tempdir().map_err(SinkError::io("create", "tempdir"))?;
        let path = dir.path().join("cp.json");
        assert_eq!(Checkpoint::load(&path)?, Checkpoint::default());
        let cp = Checkpoint {
            journal_offset: 10,
            delivered: [30, 50].into(),
            in_flight: vec![InFlight {
                file: "AWSLogs/x.json.gz".into(),
                offsets: vec![20],
            }],
        };
        cp.save(&path)?;
        assert_eq!(Checkpoint::load(&path)?, cp);
        assert!(!dir.path().join(".cp.json.tmp").exists());
        Ok(())
    }

    #[test]
    fn corrupt_file_is_an_error() -> Result<(), SinkError> {
        let dir = tempfile::tempdir().map_err(SinkError::io("create", "tempdir"))?;
        let path = dir.path().join("cp.json");
        std::fs::write(&path, b"{not json").map_err(SinkError::io("write", &path))?;
        assert!(matches!(
            Checkpoint::load(&path),
            Err(SinkError::CorruptCheckpoint { .. })
        ));
        Ok(())
    }

    #[test]
    fn advance_prunes_and_in_flight_resolves_by_file() -> Result<(), SinkError> {
        let dir = tempfile::tempdir().map_err(SinkError::io("create", "tempdir"))?;
        std::fs::write(dir.path().join("done.gz"), b"")
            .map_err(SinkError::io("write", "done.gz"))?;
        let mut cp = Checkpoint {
            journal_offset: 0,
            delivered: [5].into(),
            in_flight: vec![
                InFlight {
                    file: "done.gz".into(),
                    offsets: vec![10, 20],
                },
                InFlight {
                    file: "lost.gz".into(),
                    offsets: vec![30],
                },
            ],
        };
        cp.resolve_in_flight(dir.path());
        assert!(cp.in_flight.is_empty());
        assert!(cp.is_delivered(10) && cp.is_delivered(20) && !cp.is_delivered(30));
        cp.advance(15);
        assert_eq!(cp.journal_offset, 15);
        assert_eq!(cp.delivered, [20].into());
        assert!(cp.is_delivered(5) && cp.is_delivered(20) && !cp.is_delivered(15));
        Ok(())
    }
}
