//! Copies audit records into the database for `LookupEvents`, in batches.
//!
//! The journal has already made each record durable before its reply was
//! sent; this index is what searches read, so it may trail by a moment and
//! costs requests no extra database commit.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use seashell_audit::RedactedRecord;

use crate::store::Store;

/// Records waiting to be indexed, at most.
const QUEUE: usize = 10_000;
/// Records per transaction, at most.
const BATCH: usize = 256;

/// A message to the indexer.
#[derive(Debug)]
pub enum IndexMessage {
    /// Index this record.
    Record(Box<RedactedRecord>),
    /// Answer once everything sent before is indexed.
    Flush(oneshot::Sender<()>),
}

/// The sending side, held by the server state.
#[derive(Debug, Clone)]
pub struct Indexer {
    tx: mpsc::Sender<IndexMessage>,
}

impl Indexer {
    /// Starts the indexing task.
    pub fn spawn(store: Store) -> (Indexer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Indexer { tx }, tokio::spawn(run(store, rx)))
    }

    /// Queues a record; if the queue is full the record stays only in the
    /// journal and files (and a warning is logged), so a slow database never
    /// holds up requests.
    pub fn index(&self, record: RedactedRecord) {
        if self
            .tx
            .try_send(IndexMessage::Record(Box::new(record)))
            .is_err()
        {
            tracing::warn!("audit index queue full; record kept in the journal only");
        }
    }

    /// Waits until every record queued so far is indexed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(IndexMessage::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<IndexMessage>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                IndexMessage::Record(r) => batch.push(*r),
                IndexMessage::Flush(done) => waiters.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.insert_audit_records(&batch).await {
                tracing::error!(error = %e, records = batch.len(), "audit records not indexed; they remain in the journal");
            }
            batch.clear();
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}
