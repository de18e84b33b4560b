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

/// The first wait before a failed batch is tried again; it doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

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
        // A batch that fails (the database is unreachable) is kept and
        // tried again until it is stored: the records are in the journal
        // already, and the history must not lose them to an outage. New
        // records wait in the queue meanwhile. Waiters are answered after
        // each attempt, so a shutdown never waits for the database.
        let mut wait = RETRY_FIRST;
        while !batch.is_empty() {
            match store.insert_audit_records(&batch).await {
                Ok(()) => batch.clear(),
                Err(e) => {
                    tracing::warn!(error = %e, records = batch.len(), retry_in = ?wait, "audit records not indexed yet");
                    for done in waiters.drain(..) {
                        let _ = done.send(());
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

/// How far before the newest indexed record [`catch_up`] looks for
/// records the index lacks: records are journalled in about the order of
/// their `eventTime`, a request's record up to its duration late.
const CATCH_UP_WINDOW_SECONDS: i64 = 600;

/// Indexes the journal's records that the history table lacks: those
/// that were still queued when the process died (SIGKILL, power loss).
/// Reads the journal backwards from its end to [`CATCH_UP_WINDOW_SECONDS`]
/// before the newest indexed record (all of it when the table is empty),
/// so a start costs about the records of the last minutes, not the whole
/// journal. Returns how many records it indexed.
pub async fn catch_up(store: &Store, journal: &std::path::Path) -> Result<usize, String> {
    let since = store
        .newest_audit_time()
        .await
        .map_err(|e| e.to_string())?
        .map(|t| t - CATCH_UP_WINDOW_SECONDS);
    let path = journal.to_path_buf();
    let records = tokio::task::spawn_blocking(move || journal_since(&path, since))
        .await
        .map_err(|e| e.to_string())??;
    if records.is_empty() {
        return Ok(0);
    }
    let known = store
        .audit_event_ids_since(since.unwrap_or(i64::MIN))
        .await
        .map_err(|e| e.to_string())?;
    let missing: Vec<RedactedRecord> = records
        .into_iter()
        .filter(|r| !known.contains(&r.event_id.to_string()))
        .collect();
    for chunk in missing.chunks(BATCH) {
        store
            .insert_audit_records(chunk)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(missing.len())
}

/// The journal's records with `eventTime` at or after `since` (seconds),
/// read from the end backwards; all of them without `since`.
fn journal_since(
    path: &std::path::Path,
    since: Option<i64>,
) -> Result<Vec<RedactedRecord>, String> {
    journal_since_by(path, since, 1 << 20)
}

/// [`journal_since`], reading `chunk` bytes at a time.
fn journal_since_by(
    path: &std::path::Path,
    since: Option<i64>,
    chunk: u64,
) -> Result<Vec<RedactedRecord>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut end = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let mut out = Vec::new();
    // Bytes after the last newline seen so far: the head of a line whose
    // start is in an earlier chunk.
    let mut carry: Vec<u8> = Vec::new();
    let mut done = false;
    while end > 0 && !done {
        let start = end.saturating_sub(chunk);
        let mut buf = vec![0; usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        buf.extend_from_slice(&carry);
        let mut lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        // The first piece may be the tail of a line that starts earlier.
        carry = if start > 0 {
            lines.remove(0).to_vec()
        } else {
            Vec::new()
        };
        for line in lines.iter().rev().filter(|l| !l.is_empty()) {
            // A torn last line (cut on the next open) is skipped.
            let Ok(record) = serde_json::from_slice::<RedactedRecord>(line) else {
                continue;
            };
            if since.is_some_and(|s| record.event_time.timestamp() < s) {
                done = true;
                break;
            }
            out.push(record);
        }
        end = start;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seashell_audit::{IdentityType, Record, UserIdentity};

    fn record(seconds: i64) -> RedactedRecord {
        Record::api_call(
            "iam.amazonaws.com",
            "ListUsers",
            "us-east-1",
            UserIdentity::new(IdentityType::Unknown),
        )
        .event_time(chrono::DateTime::from_timestamp(seconds, 0).expect("time"))
        .build()
    }

    #[test]
    fn the_journal_is_read_backwards_to_the_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let records: Vec<RedactedRecord> = (0..40).map(|i| record(1_000 + i)).collect();
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).expect("json"));
            text.push('\n');
        }
        // A torn last line, as a crash leaves it.
        text.push_str("{\"eventVersion\":\"1.");
        std::fs::write(&path, text).expect("write");
        // Chunks far smaller than a line: lines cross every boundary.
        for chunk in [7, 100, 1 << 20] {
            let since = journal_since_by(&path, Some(1_030), chunk).expect("read");
            let ids: Vec<_> = since.iter().map(|r| r.event_id).collect();
            let want: Vec<_> = records[30..].iter().rev().map(|r| r.event_id).collect();
            assert_eq!(ids, want, "chunk {chunk}");
            let all = journal_since_by(&path, None, chunk).expect("read");
            assert_eq!(all.len(), 40, "chunk {chunk}");
        }
        assert!(journal_since(&dir.path().join("missing"), None)
            .expect("missing")
            .is_empty());
    }
}
