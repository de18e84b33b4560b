//! CloudTrail-style delivery files, the layout SIEM integrations ingest:
//!
//! ```text
//! <root>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
//!     <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 random chars>.json.gz
//! ```
//!
//! each a gzip of `{"Records":[…]}` for one (recipient account, region).
//!
//! Crash safety: a record is first appended and fsynced to the JSON lines
//! journal, and only then acknowledged. Batches are written to a temporary
//! file, fsynced and renamed into place, and a checkpoint file records which
//! journal records have reached a file (including batches in flight, settled
//! on restart by whether their file exists). On open, the journal is replayed
//! from the checkpoint, so a crash at any point neither loses a record nor
//! puts one in two files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;

use super::checkpoint::{Checkpoint, InFlight};
use super::jsonl::{encode, Journal};
use super::{blocking, fsutil, Sink, SinkLag};
use crate::error::SinkError;
use crate::redact::RedactedRecord;

/// The longest a record may wait for delivery, as CloudTrail promises.
pub const MAX_DELIVERY_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Where and when the delivery sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Directory that receives `AWSLogs/…`.
    pub root: PathBuf,
    /// The JSON lines journal (also usable as a plain JSON lines log).
    pub journal: PathBuf,
    /// The delivery checkpoint file.
    pub checkpoint: PathBuf,
    /// A batch is written as soon as it holds this many records.
    pub max_records: usize,
    /// A batch is written once its oldest record is this old (at most
    /// [`MAX_DELIVERY_INTERVAL`]).
    pub max_age: Duration,
}

impl DeliveryConfig {
    /// Defaults under `data_dir`: files in `cloudtrail/`, journal
    /// `audit.jsonl`, checkpoint `audit.delivery.json`, batches of 1000
    /// records or 5 minutes.
    #[must_use]
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        let dir = data_dir.as_ref();
        Self {
            root: dir.join("cloudtrail"),
            journal: dir.join("audit.jsonl"),
            checkpoint: dir.join("audit.delivery.json"),
            max_records: 1000,
            max_age: MAX_DELIVERY_INTERVAL,
        }
    }

    /// Sets the batch size.
    #[must_use]
    pub fn with_max_records(mut self, max_records: usize) -> Self {
        self.max_records = max_records;
        self
    }

    /// Sets the longest wait before a partial batch is written.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn validate(&self) -> Result<(), SinkError> {
        if self.max_records == 0 {
            return Err(SinkError::Config("max_records must be at least 1".into()));
        }
        if self.max_age.is_zero() || self.max_age > MAX_DELIVERY_INTERVAL {
            return Err(SinkError::Config(format!(
                "max_age must be between 1 ms and {} s, not {:?}",
                MAX_DELIVERY_INTERVAL.as_secs(),
                self.max_age
            )));
        }
        Ok(())
    }
}

/// Writes CloudTrail delivery files, durably journalled first.
///
/// Call [`DeliverySink::deliver_due`] every few seconds (for example from a
/// `tokio::time::interval`) so partial batches go out on time, and
/// [`Sink::flush`] on shutdown. Dropping the sink without flushing loses
/// nothing: the next [`DeliverySink::open`] delivers what was pending.
#[derive(Debug, Clone)]
pub struct DeliverySink {
    // Delivery: batches, checkpoint. Writers never take this lock, so a batch
    // being written never holds up a request.
    state: Arc<Mutex<State>>,
    // The journal and the records appended since the last delivery.
    journal: Arc<Mutex<JournalSide>>,
    // Kept apart so metrics never wait behind a batch being written.
    status: Arc<Mutex<Status>>,
    // Records waiting for the next journal write (group commit).
    pending: Arc<Mutex<Pending>>,
    // Signalled when enough records arrived to fill a batch.
    ready: Arc<tokio::sync::Notify>,
    max_records: usize,
}

/// The journal and what was appended to it since delivery last looked.
#[derive(Debug)]
struct JournalSide {
    journal: Journal,
    incoming: Vec<Queued>,
}

/// A record waiting to be journalled, and who to tell when it is.
type Waiting = (
    RedactedRecord,
    Vec<u8>,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

/// Group commit: concurrent writers queue their records; one of them (the
/// leader) writes everything queued with one write and one fsync, then
/// repeats until the queue is empty. Under load many records share each
/// fsync; alone, a record costs the same single fsync as before.
#[derive(Debug, Default)]
struct Pending {
    items: Vec<Waiting>,
    leader: bool,
}

#[derive(Debug, Clone, Default)]
struct Status {
    pending: usize,
    oldest: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl DeliverySink {
    /// Opens the journal and checkpoint, settling any batch a crash left in
    /// flight and queueing every journalled record not yet delivered.
    ///
    /// # Errors
    /// Invalid configuration, unreadable files, a corrupt journal line or
    /// checkpoint, or a journal shorter than the checkpoint.
    pub async fn open(config: DeliveryConfig) -> Result<Self, SinkError> {
        let max_records = config.max_records;
        let (state, journal) = blocking(move || State::open(config)).await?;
        let status = Arc::new(Mutex::new(state.status(None)));
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
            journal: Arc::new(Mutex::new(JournalSide {
                journal,
                incoming: Vec::new(),
            })),
            status,
            pending: Arc::new(Mutex::new(Pending::default())),
            ready: Arc::new(tokio::sync::Notify::new()),
            max_records,
        })
    }

    /// Resolves when enough records have arrived since the last delivery to
    /// fill a batch: the caller then runs [`DeliverySink::deliver_due`].
    /// Writers only journal; delivery files are written by whoever calls
    /// `deliver_due`, so writing them never delays a request.
    pub async fn batch_ready(&self) {
        self.ready.notified().await;
    }

    /// Writes every batch that is full or whose oldest record has waited
    /// `max_age`. Returns how many records were delivered.
    ///
    /// # Errors
    /// The first delivery that failed; its records stay queued.
    pub async fn deliver_due(&self) -> Result<usize, SinkError> {
        self.deliver(Utc::now(), false).await
    }

    /// [`Self::deliver_due`] as if the time were `now` (files are named and
    /// dated by `now`).
    ///
    /// # Errors
    /// As [`Self::deliver_due`].
    pub async fn deliver_due_at(&self, now: DateTime<Utc>) -> Result<usize, SinkError> {
        self.deliver(now, false).await
    }

    /// The last delivery error seen while writing, if the latest delivery
    /// attempt failed.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.status.lock().ok().and_then(|s| s.last_error.clone())
    }

    async fn deliver(&self, now: DateTime<Utc>, force: bool) -> Result<usize, SinkError> {
        let state = Arc::clone(&self.state);
        let journal = Arc::clone(&self.journal);
        let status = Arc::clone(&self.status);
        blocking(move || {
            let mut state = state.lock().map_err(|_| SinkError::Poisoned)?;
            // Take what writers appended, with the journal length that goes
            // with it: the checkpoint may never claim past that length.
            let (incoming, len) = {
                let mut side = journal.lock().map_err(|_| SinkError::Poisoned)?;
                (std::mem::take(&mut side.incoming), side.journal.len())
            };
            state.absorb(incoming, len);
            let result = state.deliver(now, force);
            publish(&status, &state, result.as_ref().err());
            result
        })
        .await
    }
}

#[async_trait]
impl Sink for DeliverySink {
    /// Journals the record (fsynced, shared with concurrent writers) and
    /// returns. Delivery files are written by [`DeliverySink::deliver_due`];
    /// when a batch fills, [`DeliverySink::batch_ready`] resolves so the
    /// caller can run it at once. A failed delivery never fails a write: the
    /// record is durable and stays queued; see [`DeliverySink::last_error`].
    async fn write(&self, record: &RedactedRecord) -> Result<(), SinkError> {
        let line = encode(record)?;
        let (done, wait) = tokio::sync::oneshot::channel();
        let lead = {
            let mut pending = self.pending.lock().map_err(|_| SinkError::Poisoned)?;
            pending.items.push((record.clone(), line, done));
            !std::mem::replace(&mut pending.leader, true)
        };
        if lead {
            let (pending, journal, status, ready) = (
                Arc::clone(&self.pending),
                Arc::clone(&self.journal),
                Arc::clone(&self.status),
                Arc::clone(&self.ready),
            );
            let max_records = self.max_records;
            tokio::task::spawn_blocking(move || {
                commit_queued(&pending, &journal, &status, &ready, max_records);
            });
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(SinkError::Batch(message)),
            Err(_) => Err(SinkError::Worker("the journal writer stopped".into())),
        }
    }

    /// Writes every pending record, whatever the batch size and age.
    async fn flush(&self) -> Result<(), SinkError> {
        self.deliver(Utc::now(), true).await.map(drop)
    }

    fn lag(&self) -> SinkLag {
        let Ok(status) = self.status.lock() else {
            return SinkLag::default();
        };
        SinkLag {
            pending_records: status.pending,
            oldest_pending_age: status
                .oldest
                .map(|t| (Utc::now() - t).to_std().unwrap_or(Duration::ZERO)),
        }
    }
}

/// The leader's loop: journal everything queued, answer its writers, repeat
/// until nothing is queued.
fn commit_queued(
    pending: &Mutex<Pending>,
    journal: &Mutex<JournalSide>,
    status: &Mutex<Status>,
    ready: &tokio::sync::Notify,
    max_records: usize,
) {
    loop {
        let batch = match pending.lock() {
            Ok(mut p) if p.items.is_empty() => {
                p.leader = false;
                return;
            }
            Ok(mut p) => std::mem::take(&mut p.items),
            // A poisoned queue cannot be served; its writers see their
            // channel close.
            Err(_) => return,
        };
        let (records, rest): (Vec<RedactedRecord>, Vec<(Vec<u8>, _)>) =
            batch.into_iter().map(|(r, l, d)| (r, (l, d))).unzip();
        let (lines, waiters): (Vec<Vec<u8>>, Vec<_>) = rest.into_iter().unzip();
        let oldest = records.iter().map(|r| r.event_time).min();
        let count = records.len();
        let result = (|| -> Result<usize, SinkError> {
            let mut side = journal.lock().map_err(|_| SinkError::Poisoned)?;
            let slices: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            let offsets = side.journal.append_many(&slices)?;
            side.incoming.extend(
                records
                    .into_iter()
                    .zip(offsets)
                    .map(|(record, offset)| Queued { offset, record }),
            );
            Ok(side.incoming.len())
        })();
        if let Ok(waiting) = &result {
            if let Ok(mut s) = status.lock() {
                s.pending += count;
                s.oldest = match (s.oldest, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if *waiting >= max_records {
                ready.notify_one();
            }
        }
        let answer = result.map(drop).map_err(|e| e.to_string());
        for waiter in waiters {
            let _ = waiter.send(answer.clone());
        }
    }
}

fn publish(status: &Mutex<Status>, state: &State, error: Option<&SinkError>) {
    if let Ok(mut s) = status.lock() {
        *s = state.status(error.map(ToString::to_string));
    }
}

/// Records of one (account, region), in journal order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    account: String,
    region: String,
}

impl GroupKey {
    fn of(record: &RedactedRecord) -> Self {
        Self {
            account: path_component(record.delivery_account().unwrap_or("unknown")),
            region: path_component(&record.aws_region),
        }
    }
}

/// Makes a value safe as one path component: no separators, no `..`.
fn path_component(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

#[derive(Debug)]
struct Queued {
    offset: u64,
    record: RedactedRecord,
}

#[derive(Debug)]
struct State {
    config: DeliveryConfig,
    /// The journal's length as of the records queued here: the checkpoint's
    /// low-water mark never passes it.
    journal_len: u64,
    checkpoint: Checkpoint,
    groups: BTreeMap<GroupKey, Vec<Queued>>,
    /// Offsets not yet known delivered (queued or in flight): the smallest
    /// is where the checkpoint's low-water mark must stop.
    unsettled: BTreeSet<u64>,
}

/// The result of writing one batch.
enum Outcome {
    /// The file is in place and the checkpoint says so.
    Delivered,
    /// The file is in place, but recording that failed; a restart settles it.
    DeliveredUnrecorded(SinkError),
    /// No file: the records are still queued.
    Failed(SinkError),
}

impl State {
    fn open(config: DeliveryConfig) -> Result<(Self, Journal), SinkError> {
        config.validate()?;
        let journal = Journal::open(&config.journal)?;
        let mut checkpoint = Checkpoint::load(&config.checkpoint)?;
        if checkpoint.journal_offset > journal.len() {
            return Err(SinkError::JournalTruncated {
                path: config.journal.clone(),
                len: journal.len(),
                offset: checkpoint.journal_offset,
            });
        }
        checkpoint.resolve_in_flight(&config.root);
        let mut state = Self {
            config,
            journal_len: journal.len(),
            checkpoint,
            groups: BTreeMap::new(),
            unsettled: BTreeSet::new(),
        };
        state.replay(&journal)?;
        let low_water = state.low_water();
        state.checkpoint.advance(low_water);
        state.checkpoint.save(&state.config.checkpoint)?;
        Ok((state, journal))
    }

    /// Queues every journalled record the checkpoint does not mark delivered.
    fn replay(&mut self, journal: &Journal) -> Result<(), SinkError> {
        let mut found = Vec::new();
        let path = journal.path().to_owned();
        let checkpoint = &self.checkpoint;
        journal.read_from(checkpoint.journal_offset, |offset, line| {
            if checkpoint.is_delivered(offset) {
                return Ok(());
            }
            let record: RedactedRecord =
                serde_json::from_str(line).map_err(|source| SinkError::CorruptJournal {
                    path: path.clone(),
                    offset,
                    source,
                })?;
            found.push(Queued { offset, record });
            Ok(())
        })?;
        for queued in found {
            self.queue(queued);
        }
        Ok(())
    }

    /// Queues records writers appended, and notes the journal length that
    /// covers them.
    fn absorb(&mut self, incoming: Vec<Queued>, journal_len: u64) {
        for queued in incoming {
            self.queue(queued);
        }
        self.journal_len = journal_len;
    }

    fn queue(&mut self, queued: Queued) -> GroupKey {
        let key = GroupKey::of(&queued.record);
        self.unsettled.insert(queued.offset);
        self.groups.entry(key.clone()).or_default().push(queued);
        key
    }

    fn low_water(&self) -> u64 {
        self.unsettled.first().copied().unwrap_or(self.journal_len)
    }

    fn is_due(&self, group: &[Queued], now: DateTime<Utc>, force: bool) -> bool {
        let Some(oldest) = group.iter().map(|q| q.record.event_time).min() else {
            return false;
        };
        let max_age =
            chrono::Duration::from_std(self.config.max_age).unwrap_or(chrono::Duration::MAX);
        force || group.len() >= self.config.max_records || now - oldest >= max_age
    }

    /// Writes every due batch; stops at the first failure.
    fn deliver(&mut self, now: DateTime<Utc>, force: bool) -> Result<usize, SinkError> {
        let keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        let mut delivered = 0;
        let mut first_error = None;
        for key in keys {
            let Some(mut group) = self.groups.remove(&key) else {
                continue;
            };
            while first_error.is_none() && self.is_due(&group, now, force) {
                let n = group.len().min(self.config.max_records);
                match self.write_batch(&key, &group[..n], now) {
                    Outcome::Delivered => {}
                    Outcome::DeliveredUnrecorded(e) => first_error = Some(e),
                    Outcome::Failed(e) => {
                        first_error = Some(e);
                        break;
                    }
                }
                group.drain(..n);
                delivered += n;
            }
            if !group.is_empty() {
                self.groups.insert(key, group);
            }
        }
        first_error.map_or(Ok(delivered), Err)
    }

    fn write_batch(&mut self, key: &GroupKey, batch: &[Queued], now: DateTime<Utc>) -> Outcome {
        let relative = delivery_path(key, now);
        let path = self.config.root.join(&relative);
        let offsets: Vec<u64> = batch.iter().map(|q| q.offset).collect();
        // Announce the batch before its file can exist, so a crash after
        // the rename is recognised as delivered on restart.
        self.checkpoint.in_flight.push(InFlight {
            file: relative,
            offsets: offsets.clone(),
        });
        if let Err(e) = self.checkpoint.save(&self.config.checkpoint) {
            self.checkpoint.in_flight.pop();
            return Outcome::Failed(e);
        }
        let dir = fsutil::parent_of(&path).to_owned();
        if let Err(e) = fsutil::create_dirs(&dir).and_then(|()| write_gzip(&path, batch)) {
            // No file: on restart the saved in-flight entry resolves to
            // "not delivered", matching memory.
            self.checkpoint.in_flight.pop();
            return Outcome::Failed(e);
        }
        if let Err(e) = fsutil::sync_dir(&dir) {
            // The rename may not survive a power loss: leave the batch in
            // flight (and its offsets unsettled) for the next open to settle.
            return Outcome::DeliveredUnrecorded(e);
        }
        self.checkpoint.in_flight.pop();
        self.checkpoint.delivered.extend(offsets.iter().copied());
        for offset in &offsets {
            self.unsettled.remove(offset);
        }
        let low_water = self.low_water();
        self.checkpoint.advance(low_water);
        match self.checkpoint.save(&self.config.checkpoint) {
            Ok(()) => Outcome::Delivered,
            Err(e) => Outcome::DeliveredUnrecorded(e),
        }
    }

    fn status(&self, last_error: Option<String>) -> Status {
        let queued = self.groups.values().flatten();
        Status {
            pending: self.groups.values().map(Vec::len).sum(),
            oldest: queued.map(|q| q.record.event_time).min(),
            last_error,
        }
    }
}

/// `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<name>.json.gz`.
fn delivery_path(key: &GroupKey, now: DateTime<Utc>) -> PathBuf {
    let GroupKey { account, region } = key;
    let name = format!(
        "{account}_CloudTrail_{region}_{}_{}.json.gz",
        now.format("%Y%m%dT%H%MZ"),
        random_suffix()
    );
    Path::new("AWSLogs")
        .join(account)
        .join("CloudTrail")
        .join(region)
        .join(now.format("%Y").to_string())
        .join(now.format("%m").to_string())
        .join(now.format("%d").to_string())
        .join(name)
}

/// Sixteen random letters and digits, as in CloudTrail's file names.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Two v4 UUIDs give 32 bytes from the OS generator; the modulo bias is
    // irrelevant for a uniqueness suffix.
    let bytes = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ];
    bytes
        .iter()
        .flatten()
        .take(16)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[derive(Serialize)]
struct DeliveryFile<'a> {
    #[serde(rename = "Records")]
    records: Vec<&'a RedactedRecord>,
}

/// Writes `{"Records":[…]}` gzipped to a temporary file, syncs it and
/// renames it to `path`.
fn write_gzip(path: &Path, batch: &[Queued]) -> Result<(), SinkError> {
    let tmp = fsutil::temp_name(path);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(SinkError::io("create", &tmp))?;
        let content = DeliveryFile {
            records: batch.iter().map(|q| &q.record).collect(),
        };
        // Encoded whole, then compressed in one pass: fed the encoder's many
        // small writes, the compressor clears its 32 KiB output buffer on
        // each, which was most of a busy server's CPU time (the "Audit
        // delivery" profile in docs/benchmarks.md).
        let json = serde_json::to_vec(&content).map_err(|source| SinkError::Encode {
            event_id: batch.first().map(|q| q.record.event_id).unwrap_or_default(),
            source,
        })?;
        let mut gz = GzEncoder::new(BufWriter::new(file), Compression::default());
        gz.write_all(&json)
            .map_err(SinkError::io("compress", &tmp))?;
        let mut writer = gz.finish().map_err(SinkError::io("compress", &tmp))?;
        writer.flush().map_err(SinkError::io("write", &tmp))?;
        let file = writer
            .into_inner()
            .map_err(|e| SinkError::io("write", &tmp)(e.into_error()))?;
        file.sync_all().map_err(SinkError::io("sync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(SinkError::io("rename into place", path))
    })();
    if result.is_err() {
        // Leave no half-written temporary behind; the error already says why.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn file_layout_matches_cloudtrail() {
        let key = GroupKey {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
        };
        let now = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).single();
        let Some(now) = now else { panic!("valid date") };
        let path = delivery_path(&key, now);
        let text = path.to_string_lossy().into_owned();
        let prefix = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/04/111122223333_CloudTrail_eu-west-1_20260304T0506Z_";
        assert!(text.starts_with(prefix), "{text}");
        let suffix = &text[prefix.len()..];
        assert_eq!(suffix.len(), 16 + ".json.gz".len(), "{text}");
        assert!(suffix.ends_with(".json.gz"));
        assert!(suffix[..16].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random_suffix(), random_suffix());
    }

    #[test]
    fn path_components_cannot_escape() {
        assert_eq!(path_component("../../etc"), "______etc");
        assert_eq!(path_component("us-east-1"), "us-east-1");
        assert_eq!(path_component(""), "unknown");
        assert_eq!(path_component("a/b"), "a_b");
    }

    #[test]
    fn config_is_validated() {
        let base = DeliveryConfig::new("/tmp/x");
        assert!(base.validate().is_ok());
        assert!(base.clone().with_max_records(0).validate().is_err());
        assert!(base
            .clone()
            .with_max_age(Duration::from_secs(301))
            .validate()
            .is_err());
        assert!(base.with_max_age(Duration::ZERO).validate().is_err());
    }
}
