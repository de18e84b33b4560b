//! Where records go.
//!
//! Sinks are asynchronous so the server can await them in request handlers;
//! file sinks do their blocking I/O on Tokio's blocking pool, so they must be
//! used from within a Tokio runtime.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::SinkError;
use crate::redact::RedactedRecord;

pub(crate) mod checkpoint;
pub mod delivery;
pub(crate) mod fsutil;
pub mod jsonl;

/// A destination for records.
///
/// Only [`RedactedRecord`]s are accepted, so every record a sink sees has
/// had its secrets removed. A server stores records in its database by
/// implementing this trait.
#[async_trait]
pub trait Sink: Send + Sync + fmt::Debug {
    /// Stores one record. When this returns `Ok`, the record is as durable
    /// as the sink makes it (for the file sinks: on disk, fsynced), so a
    /// mutating call may be acknowledged.
    async fn write(&self, record: &RedactedRecord) -> Result<(), SinkError>;

    /// Delivers whatever the sink holds back (for example a partial batch),
    /// as on a clean shutdown.
    async fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// The sink's backlog, for metrics.
    fn lag(&self) -> SinkLag {
        SinkLag::default()
    }
}

/// How far a sink is behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkLag {
    /// Records accepted but not yet delivered.
    pub pending_records: usize,
    /// Age of the oldest of them (by `eventTime`), if any.
    pub oldest_pending_age: Option<Duration>,
}

/// Writes every record to each of several sinks, in order.
#[derive(Debug, Clone, Default)]
pub struct FanoutSink {
    sinks: Vec<Arc<dyn Sink>>,
}

impl FanoutSink {
    /// A fan-out over `sinks`.
    #[must_use]
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        Self { sinks }
    }

    /// The sinks, in write order.
    #[must_use]
    pub fn sinks(&self) -> &[Arc<dyn Sink>] {
        &self.sinks
    }
}

#[async_trait]
impl Sink for FanoutSink {
    /// Stops at the first sink that fails, so that a record is never
    /// reported stored while the durable sink (put it first) lacks it.
    async fn write(&self, record: &RedactedRecord) -> Result<(), SinkError> {
        for sink in &self.sinks {
            sink.write(record).await?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        for sink in &self.sinks {
            sink.flush().await?;
        }
        Ok(())
    }

    /// The sum of pending records and the oldest age over all sinks.
    fn lag(&self) -> SinkLag {
        self.sinks
            .iter()
            .map(|s| s.lag())
            .fold(SinkLag::default(), |a, b| SinkLag {
                pending_records: a.pending_records + b.pending_records,
                oldest_pending_age: a.oldest_pending_age.max(b.oldest_pending_age),
            })
    }
}

/// Runs blocking file I/O off the async executor.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, SinkError>
where
    F: FnOnce() -> Result<T, SinkError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SinkError::Worker(e.to_string()))?
}
