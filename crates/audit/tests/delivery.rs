//! The delivery sink against real files: batching, layout, lag, and
//! exactly-once delivery across crashes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flate2::read::GzDecoder;
use seashell_audit::{
    DeliveryConfig, DeliverySink, FanoutSink, JsonlSink, MemoryHistory, Record, RedactedRecord,
    Sink, SinkError, UserIdentity,
};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A delivery file's path relative to the root, and its records.
type DeliveredFile = (String, Vec<Value>);

fn record(account: &str, region: &str, n: usize) -> RedactedRecord {
    Record::api_call(
        "cloudshell.amazonaws.com",
        "CreateSession",
        region,
        UserIdentity::iam_user(account, "alice", "AIDAEXAMPLE"),
    )
    .request_id(format!("req-{n}"))
    .request_parameters(serde_json::json!({"EnvironmentId": format!("env-{n}")}))
    .response_elements(
        serde_json::json!({"SessionId": format!("s-{n}"), "TokenValue": "live-token"}),
    )
    .build()
}

/// Every delivery file under `root`: path relative to root, and its records.
fn delivered(root: &Path) -> Result<Vec<DeliveredFile>, Box<dyn std::error::Error>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root)?.to_string_lossy().into_owned();
        assert!(rel.ends_with(".json.gz"), "stray file {rel}");
        let mut text = String::new();
        GzDecoder::new(std::fs::File::open(&file)?).read_to_string(&mut text)?;
        let doc: Value = serde_json::from_str(&text)?;
        let records = doc["Records"]
            .as_array()
            .cloned()
            .ok_or("no Records array")?;
        assert_eq!(doc.as_object().map(serde_json::Map::len), Some(1), "{rel}");
        out.push((rel, records));
    }
    Ok(out)
}

/// Event ids across all files, with how often each was delivered.
fn delivery_counts(root: &Path) -> Result<BTreeMap<String, usize>, Box<dyn std::error::Error>> {
    let mut counts = BTreeMap::new();
    for (_, records) in delivered(root)? {
        for r in records {
            let id = r["eventID"].as_str().ok_or("eventID")?.to_owned();
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn config(dir: &Path, max_records: usize) -> DeliveryConfig {
    DeliveryConfig::new(dir).with_max_records(max_records)
}

#[tokio::test]
async fn full_batches_go_out_when_due_and_flush_sends_the_rest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 3);
    let sink = DeliverySink::open(cfg.clone()).await?;
    let mut ids = Vec::new();
    for n in 0..7 {
        let r = record("111122223333", "us-east-1", n);
        ids.push(r.event_id.to_string());
        sink.write(&r).await?;
    }
    // Writers only journal: no file is written on the request path…
    assert!(delivered(&cfg.root)?.is_empty());
    assert_eq!(sink.lag().pending_records, 7);
    // …but they signal that batches are ready, and delivery writes them.
    tokio::time::timeout(std::time::Duration::from_secs(5), sink.batch_ready()).await?;
    assert_eq!(sink.deliver_due().await?, 6);
    let files = delivered(&cfg.root)?;
    assert_eq!(files.len(), 2, "two full batches of 3");
    assert!(files.iter().all(|(_, r)| r.len() == 3));
    let lag = sink.lag();
    assert_eq!(lag.pending_records, 1);
    assert!(lag.oldest_pending_age.is_some());

    sink.flush().await?;
    assert_eq!(sink.lag().pending_records, 0);
    assert_eq!(sink.lag().oldest_pending_age, None);
    let files = delivered(&cfg.root)?;
    assert_eq!(files.len(), 3);
    // Journal order is kept across files sorted by their batch.
    let mut got: Vec<String> = files
        .iter()
        .flat_map(|(_, r)| {
            r.iter()
                .filter_map(|v| v["eventID"].as_str().map(str::to_owned))
        })
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    // The token never reached a file.
    assert!(files
        .iter()
        .flat_map(|(_, r)| r)
        .all(|r| r["responseElements"]["TokenValue"] == "HIDDEN_DUE_TO_SECURITY_REASONS"));
    // Every record is also a line of the journal.
    let journal = std::fs::read_to_string(&cfg.journal)?;
    assert_eq!(journal.lines().count(), 7);
    Ok(())
}

#[tokio::test]
async fn files_are_grouped_by_account_and_region() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 100);
    let sink = DeliverySink::open(cfg.clone()).await?;
    for n in 0..3 {
        sink.write(&record("111122223333", "us-east-1", n)).await?;
        sink.write(&record("111122223333", "eu-west-1", n)).await?;
        sink.write(&record("444455556666", "us-east-1", n)).await?;
    }
    sink.flush().await?;
    let files = delivered(&cfg.root)?;
    assert_eq!(files.len(), 3);
    for (rel, records) in &files {
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 8, "{rel}");
        let (account, region) = (parts[1], parts[3]);
        assert_eq!(parts[0], "AWSLogs");
        assert_eq!(parts[2], "CloudTrail");
        assert!(
            parts[4].len() == 4 && parts[5].len() == 2 && parts[6].len() == 2,
            "{rel}"
        );
        let name = parts[7];
        assert!(
            name.starts_with(&format!("{account}_CloudTrail_{region}_")),
            "{rel}"
        );
        assert_eq!(records.len(), 3);
        for r in records {
            assert_eq!(r["recipientAccountId"], *account);
            assert_eq!(r["awsRegion"], *region);
        }
    }
    Ok(())
}

#[tokio::test]
async fn partial_batches_wait_for_max_age() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 100).with_max_age(Duration::from_secs(60));
    let sink = DeliverySink::open(cfg.clone()).await?;
    let written = record("111122223333", "us-east-1", 0);
    let t0 = written.event_time;
    sink.write(&written).await?;
    sink.write(&record("111122223333", "us-east-1", 1)).await?;

    assert_eq!(
        sink.deliver_due_at(t0 + chrono::Duration::seconds(30))
            .await?,
        0
    );
    assert!(delivered(&cfg.root)?.is_empty());
    let later = t0 + chrono::Duration::seconds(61);
    assert_eq!(sink.deliver_due_at(later).await?, 2);
    let files = delivered(&cfg.root)?;
    assert_eq!(files.len(), 1);
    // Files are dated by delivery time.
    let stamp = later.format("%Y/%m/%d").to_string();
    assert!(files[0].0.contains(&stamp), "{}", files[0].0);
    assert!(files[0]
        .0
        .contains(&later.format("_%Y%m%dT%H%MZ_").to_string()));
    Ok(())
}

#[tokio::test]
async fn crash_before_delivery_loses_and_repeats_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 4);
    let mut ids = Vec::new();
    {
        let sink = DeliverySink::open(cfg.clone()).await?;
        for n in 0..10 {
            let region = if n % 3 == 0 { "eu-west-1" } else { "us-east-1" };
            let r = record("111122223333", region, n);
            ids.push(r.event_id.to_string());
            sink.write(&r).await?;
        }
        // Some full batches went out; the rest is pending.
        sink.deliver_due().await?;
        assert!(!delivered(&cfg.root)?.is_empty());
        assert!(sink.lag().pending_records > 0);
        // Crash: drop without flushing.
    }
    let before: usize = delivery_counts(&cfg.root)?.values().sum();
    let sink = DeliverySink::open(cfg.clone()).await?;
    assert_eq!(
        sink.lag().pending_records,
        10 - before,
        "replayed exactly the undelivered"
    );
    // More traffic after the restart lands behind the replayed records.
    let extra = record("111122223333", "us-east-1", 99);
    ids.push(extra.event_id.to_string());
    sink.write(&extra).await?;
    sink.flush().await?;
    drop(sink);

    // A third start finds nothing left to deliver.
    let sink = DeliverySink::open(cfg.clone()).await?;
    assert_eq!(sink.lag().pending_records, 0);
    sink.flush().await?;

    let counts = delivery_counts(&cfg.root)?;
    ids.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), ids);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    Ok(())
}

/// Byte offset of every journal line.
fn line_offsets(journal: &Path) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(journal)?;
    let mut offsets = Vec::new();
    let mut at = 0u64;
    for line in text.split_inclusive('\n') {
        offsets.push(at);
        at += line.len() as u64;
    }
    Ok(offsets)
}

#[tokio::test]
async fn crash_around_the_rename_is_settled_by_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 100);
    let mut ids = Vec::new();
    {
        let sink = DeliverySink::open(cfg.clone()).await?;
        for n in 0..3 {
            let r = record("111122223333", "us-east-1", n);
            ids.push(r.event_id.to_string());
            sink.write(&r).await?;
        }
        sink.flush().await?;
    }
    let files = delivered(&cfg.root)?;
    assert_eq!(files.len(), 1);
    let file = files[0].0.clone();
    let offsets = line_offsets(&cfg.journal)?;

    // As if the process died after the rename but before recording it:
    // the checkpoint still shows the batch in flight.
    let in_flight = serde_json::json!({
        "journalOffset": 0, "delivered": [],
        "inFlight": [{"file": file, "offsets": offsets}]
    });
    std::fs::write(&cfg.checkpoint, serde_json::to_vec(&in_flight)?)?;
    let sink = DeliverySink::open(cfg.clone()).await?;
    assert_eq!(sink.lag().pending_records, 0, "the file exists: delivered");
    sink.flush().await?;
    drop(sink);
    assert!(delivery_counts(&cfg.root)?.values().all(|n| *n == 1));

    // As if it died before the rename: same checkpoint, no file.
    std::fs::remove_file(cfg.root.join(&file))?;
    std::fs::write(&cfg.checkpoint, serde_json::to_vec(&in_flight)?)?;
    let sink = DeliverySink::open(cfg.clone()).await?;
    assert_eq!(sink.lag().pending_records, 3, "no file: pending again");
    sink.flush().await?;
    let counts = delivery_counts(&cfg.root)?;
    ids.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), ids);
    assert!(counts.values().all(|n| *n == 1));
    Ok(())
}

#[tokio::test]
async fn torn_journal_tail_is_dropped_on_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 100);
    {
        let sink = DeliverySink::open(cfg.clone()).await?;
        sink.write(&record("111122223333", "us-east-1", 0)).await?;
    }
    // An append that never returned (so was never acknowledged).
    let mut journal = std::fs::read(&cfg.journal)?;
    journal.extend_from_slice(b"{\"eventVersion\":\"1.11\",\"userIdent");
    std::fs::write(&cfg.journal, journal)?;

    let sink = DeliverySink::open(cfg.clone()).await?;
    assert_eq!(sink.lag().pending_records, 1);
    sink.write(&record("111122223333", "us-east-1", 1)).await?;
    sink.flush().await?;
    assert_eq!(delivery_counts(&cfg.root)?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_truncated_journal_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 1);
    {
        let sink = DeliverySink::open(cfg.clone()).await?;
        sink.write(&record("111122223333", "us-east-1", 0)).await?;
        sink.write(&record("111122223333", "us-east-1", 1)).await?;
        sink.deliver_due().await?;
    }
    std::fs::write(&cfg.journal, b"")?;
    let err = DeliverySink::open(cfg.clone()).await.err();
    assert!(
        matches!(err, Some(SinkError::JournalTruncated { .. })),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_corrupt_journal_line_is_reported_with_its_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 100);
    {
        let sink = DeliverySink::open(cfg.clone()).await?;
        sink.write(&record("111122223333", "us-east-1", 0)).await?;
    }
    let len = std::fs::metadata(&cfg.journal)?.len();
    let mut journal = std::fs::read(&cfg.journal)?;
    journal.extend_from_slice(b"not a record\n");
    std::fs::write(&cfg.journal, journal)?;
    let err = DeliverySink::open(cfg.clone()).await.err();
    match err {
        Some(SinkError::CorruptJournal { offset, .. }) => assert_eq!(offset, len),
        other => panic!("expected CorruptJournal, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_each_delivered_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 7);
    let sink = Arc::new(DeliverySink::open(cfg.clone()).await?);
    let mut tasks = Vec::new();
    for t in 0..4 {
        let sink = Arc::clone(&sink);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..25 {
                let region = if t % 2 == 0 { "us-east-1" } else { "eu-west-1" };
                let r = record("111122223333", region, t * 100 + n);
                ids.push(r.event_id.to_string());
                sink.write(&r).await?;
            }
            Ok::<_, SinkError>(ids)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await??);
    }
    sink.flush().await?;
    let counts = delivery_counts(&cfg.root)?;
    assert_eq!(counts.len(), 100);
    assert!(counts.values().all(|n| *n == 1));
    ids.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), ids);
    Ok(())
}

/// Group commit: hundreds of writers at once share journal writes, and still
/// every record is journalled once, delivered once, and each writer returns
/// only after its own record is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_simultaneous_writers_share_journal_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 50);
    let sink = Arc::new(DeliverySink::open(cfg.clone()).await?);
    let mut tasks = Vec::new();
    for n in 0..400 {
        let sink = Arc::clone(&sink);
        let journal = cfg.journal.clone();
        tasks.push(tokio::spawn(async move {
            let r = record("111122223333", "us-east-1", n);
            let id = r.event_id.to_string();
            sink.write(&r).await?;
            // Durable on return: the line is in the journal file already.
            let text =
                std::fs::read_to_string(&journal).map_err(|e| SinkError::Worker(e.to_string()))?;
            assert!(text.contains(&id));
            Ok::<_, SinkError>(id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await??);
    }
    let journal = std::fs::read_to_string(&cfg.journal)?;
    assert_eq!(journal.lines().count(), 400);
    sink.flush().await?;
    let counts = delivery_counts(&cfg.root)?;
    assert_eq!(counts.len(), 400);
    assert!(counts.values().all(|n| *n == 1));
    ids.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), ids);
    Ok(())
}

/// Delivery runs beside writers (it never holds them up): batches cut while
/// records keep arriving, then a crash and a restart, still deliver every
/// record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivery_beside_writers_then_crash_delivers_each_record_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path(), 10);
    let mut ids = Vec::new();
    {
        let sink = Arc::new(DeliverySink::open(cfg.clone()).await?);
        let mut writers = Vec::new();
        for t in 0..8 {
            let sink = Arc::clone(&sink);
            writers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..40 {
                    let region = if n % 2 == 0 { "us-east-1" } else { "eu-west-1" };
                    let r = record("111122223333", region, t * 1000 + n);
                    ids.push(r.event_id.to_string());
                    sink.write(&r).await?;
                }
                Ok::<_, SinkError>(ids)
            }));
        }
        let deliverer = {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let mut total = 0;
                for _ in 0..50 {
                    total += sink.deliver_due().await?;
                    tokio::task::yield_now().await;
                }
                Ok::<_, SinkError>(total)
            })
        };
        for w in writers {
            ids.extend(w.await??);
        }
        let during = deliverer.await??;
        assert!(during > 0, "batches were delivered while writers ran");
        // Crash: drop without flushing.
    }
    let sink = DeliverySink::open(cfg.clone()).await?;
    sink.flush().await?;
    let counts = delivery_counts(&cfg.root)?;
    assert_eq!(counts.len(), 320);
    assert!(
        counts.values().all(|n| *n == 1),
        "no record delivered twice"
    );
    ids.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), ids);
    Ok(())
}

#[tokio::test]
async fn fanout_writes_everywhere_and_sums_lag() -> TestResult {
    let dir = tempfile::tempdir()?;
    let jsonl = Arc::new(JsonlSink::open(dir.path().join("plain.jsonl")).await?);
    let delivery = Arc::new(DeliverySink::open(config(&dir.path().join("d"), 100)).await?);
    let history = Arc::new(MemoryHistory::new());
    let fanout = FanoutSink::new(vec![jsonl, delivery, history.clone()]);
    fanout
        .write(&record("111122223333", "us-east-1", 0))
        .await?;
    fanout
        .write(&record("111122223333", "us-east-1", 1))
        .await?;
    assert_eq!(fanout.lag().pending_records, 2);
    assert_eq!(history.records().len(), 2);
    let lines = std::fs::read_to_string(dir.path().join("plain.jsonl"))?;
    assert_eq!(lines.lines().count(), 2);
    fanout.flush().await?;
    assert_eq!(fanout.lag().pending_records, 0);
    Ok(())
}
