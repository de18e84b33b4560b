//! Errors of the sinks.

use std::path::PathBuf;

use uuid::Uuid;

/// Why a sink could not store or deliver records.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The batch this record was written in failed (the error of the write
    /// that carried several callers' records at once).
    #[error("audit: the journal write carrying this record failed: {0}")]
    Batch(String),
    /// A file operation failed.
    #[error("audit: cannot {action} {path}: {source}")]
    Io {
        /// What was being done, for example "append to".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("audit: cannot encode record {event_id}: {source}")]
    Encode {
        /// The record's `eventID`.
        event_id: Uuid,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A complete journal line is not a record.
    #[error("audit: journal {path} holds no valid record at byte {offset}: {source}")]
    CorruptJournal {
        /// The journal.
        path: PathBuf,
        /// Byte offset of the bad line.
        offset: u64,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The delivery checkpoint could not be parsed.
    #[error("audit: delivery checkpoint {path} is unreadable: {source}")]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The journal is shorter than the checkpoint says it was: it was
    /// truncated or replaced, and resuming would skip or repeat records.
    #[error(
        "audit: journal {path} is {len} bytes but delivery reached byte {offset}; \
         it was truncated or replaced (move the checkpoint aside to start over)"
    )]
    JournalTruncated {
        /// The journal.
        path: PathBuf,
        /// Its current length.
        len: u64,
        /// The checkpointed offset.
        offset: u64,
    },
    /// The configuration is invalid.
    #[error("audit: invalid delivery configuration: {0}")]
    Config(String),
    /// An earlier failure left the sink's state unusable.
    #[error("audit: sink state is unusable after a failure in another writer")]
    Poisoned,
    /// The blocking task doing the I/O did not complete.
    #[error("audit: sink worker did not complete: {0}")]
    Worker(String),
}

impl SinkError {
    /// Wraps an I/O error with what was being done to which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
