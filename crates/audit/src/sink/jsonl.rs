//! JSON lines: one record per line, appended and fsynced before `write`
//! returns.
//!
//! The same file format is the delivery sink's journal. A crash can leave
//! at most one torn line at the end (a write that never returned, so was
//! never acknowledged); opening the file cuts it off.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{blocking, fsutil, Sink};
use crate::error::SinkError;
use crate::redact::RedactedRecord;

/// An append-only JSON lines file, for one writer.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Length of the complete lines; every append starts here.
    len: u64,
    /// A failed append could not be rolled back: the end of the file is
    /// unknown, so refuse to write more rather than corrupt it.
    broken: bool,
}

impl Journal {
    /// Opens or creates the journal, cutting off a torn last line.
    pub(crate) fn open(path: &Path) -> Result<Self, SinkError> {
        let dir = fsutil::parent_of(path);
        fsutil::create_dirs(dir)?;
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(SinkError::io("open", path))?;
        let len = complete_len(&mut file).map_err(SinkError::io("read", path))?;
        let actual = file.metadata().map_err(SinkError::io("stat", path))?.len();
        if actual != len {
            file.set_len(len)
                .map_err(SinkError::io("cut the torn line of", path))?;
            file.sync_all().map_err(SinkError::io("sync", path))?;
        }
        if !existed {
            fsutil::sync_dir(dir)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
            broken: false,
        })
    }

    /// The journal's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Length in bytes of the complete lines.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one line (without its newline) and syncs it to disk.
    /// Returns the byte offset where the line starts.
    pub(crate) fn append(&mut self, line: &[u8]) -> Result<u64, SinkError> {
        if self.broken {
            return Err(SinkError::io("append to", &self.path)(
                std::io::Error::other(
                    "an earlier failed append could not be rolled back; reopen the journal",
                ),
            ));
        }
        let offset = self.len;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let result = self
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(&buf))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            // Roll back a partial line so the next append starts clean;
            // reopening cuts it off if even that fails.
            if self.file.set_len(offset).is_err() {
                self.broken = true;
            }
            return Err(SinkError::io("append to", &self.path)(e));
        }
        self.len = offset + buf.len() as u64;
        Ok(offset)
    }

    /// Appends several lines with one write and one sync (group commit).
    /// Returns each line's starting offset. All or none are appended.
    pub(crate) fn append_many(&mut self, lines: &[&[u8]]) -> Result<Vec<u64>, SinkError> {
        if self.broken {
            return Err(SinkError::io("append to", &self.path)(
                std::io::Error::other(
                    "an earlier failed append could not be rolled back; reopen the journal",
                ),
            ));
        }
        let start = self.len;
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        let mut offsets = Vec::with_capacity(lines.len());
        for line in lines {
            offsets.push(start + buf.len() as u64);
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        let result = self
            .file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.write_all(&buf))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            if self.file.set_len(start).is_err() {
                self.broken = true;
            }
            return Err(SinkError::io("append to", &self.path)(e));
        }
        self.len = start + buf.len() as u64;
        Ok(offsets)
    }

    /// Reads the complete lines from byte `from` on, calling `each` with
    /// each line's offset and text (blank lines skipped).
    pub(crate) fn read_from(
        &self,
        from: u64,
        mut each: impl FnMut(u64, &str) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        let file = File::open(&self.path).map_err(SinkError::io("open", &self.path))?;
        let mut reader = BufReader::new(file.take(self.len));
        // `take` limits to the complete lines; skip to `from` within them.
        std::io::copy(&mut (&mut reader).take(from), &mut std::io::sink())
            .map_err(SinkError::io("read", &self.path))?;
        let mut offset = from;
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(SinkError::io("read", &self.path))?;
            if n == 0 {
                return Ok(());
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if !text.trim().is_empty() {
                each(offset, text)?;
            }
            offset += n as u64;
        }
    }
}

/// The length of `file` up to and including its last newline.
fn complete_len(file: &mut File) -> std::io::Result<u64> {
    const CHUNK: usize = 64 * 1024;
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut buf = vec![0u8; CHUNK];
    // Scan backwards: a torn tail is short, so this reads one chunk.
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Serialises `record` as one JSON line (no newline).
pub(crate) fn encode(record: &RedactedRecord) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(record).map_err(|source| SinkError::Encode {
        event_id: record.event_id,
        source,
    })
}

/// A JSON lines audit log: each record is on disk, fsynced, when
/// [`Sink::write`] returns.
///
/// Do not open the delivery sink's journal with this sink as well: each file
/// must have one writer.
#[derive(Debug, Clone)]
pub struct JsonlSink {
    journal: Arc<Mutex<Journal>>,
}

impl JsonlSink {
    /// Opens or creates the file at `path` (and its directories).
    ///
    /// # Errors
    /// Returns [`SinkError::Io`] when the file cannot be opened or repaired.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let journal = blocking(move || Journal::open(&path)).await?;
        Ok(Self {
            journal: Arc::new(Mutex::new(journal)),
        })
    }

    /// The file's path.
    ///
    /// # Errors
    /// Returns [`SinkError::Poisoned`] if a writer panicked.
    pub fn path(&self) -> Result<PathBuf, SinkError> {
        let journal = self.journal.lock().map_err(|_| SinkError::Poisoned)?;
        Ok(journal.path().to_owned())
    }
}

#[async_trait]
impl Sink for JsonlSink {
    async fn write(&self, record: &RedactedRecord) -> Result<(), SinkError> {
        let line = encode(record)?;
        let journal = Arc::clone(&self.journal);
        blocking(move || {
            let mut journal = journal.lock().map_err(|_| SinkError::Poisoned)?;
            journal.append(&line).map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserIdentity;
    use crate::record::Record;

    fn record(name: &str) -> RedactedRecord {
        Record::api_call(
            "cloudshell.amazonaws.com",
            name,
            "us-east-1",
            UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE"),
        )
        .request_parameters(serde_json::json!({"Password": "pw"}))
        .build()
    }

    #[tokio::test]
    async fn appends_one_record_per_line() -> Result<(), SinkError> {
        let dir = tempfile::tempdir().map_err(SinkError::io("create", "tempdir"))?;
        let path = dir.path().join("logs/audit.jsonl");
        let sink = JsonlSink::open(&path).await?;
        let a = record("CreateEnvironment");
        let b = record("DeleteEnvironment");
        sink.write(&a).await?;
        sink.write(&b).await?;
        // Reopening appends after what is there.
        drop(sink);
        let sink = JsonlSink::open(&path).await?;
        let c = record("StartEnvironment");
        sink.write(&c).await?;

        let text = std::fs::read_to_string(&path).map_err(SinkError::io("read", &path))?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(text.ends_with('\n'));
        let parsed: Vec<RedactedRecord> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(parsed, vec![a, b, c]);
        assert!(!text.contains("\"pw\""));
        Ok(())
    }

    #[tokio::test]
    async fn cuts_a_torn_last_line() -> Result<(), SinkError> {
        let dir = tempfile::tempdir().map_err(SinkError::io("create", "tempdir"))?;
        let path = dir.path().join("audit.jsonl");
        let sink = JsonlSink::open(&path).await?;
        let a = record("CreateEnvironment");
        sink.write(&a).await?;
        drop(sink);
        // A crash mid-append leaves a partial line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(SinkError::io("open", &path))?;
        f.write_all(b"{\"eventVersion\":\"1.1")
            .map_err(SinkError::io("write", &path))?;
        drop(f);

        let sink = JsonlSink::open(&path).await?;
        let b = record("DeleteEnvironment");
        sink.write(&b).await?;
        let text = std::fs::read_to_string(&path).map_err(SinkError::io("read", &path))?;
        let parsed: Result<Vec<RedactedRecord>, _> =
            text.lines().map(serde_json::from_str).collect();
        assert_eq!(parsed.ok(), Some(vec![a, b]));
        Ok(())
    }

    #[test]
    fn complete_len_finds_last_newline_across_chunks() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("j");
        let mut content = vec![b'x'; 100_000];
        content.push(b'\n');
        content.extend(vec![b'y'; 70_000]);
        std::fs::write(&path, &content)?;
        let mut f = File::open(&path)?;
        assert_eq!(complete_len(&mut f)?, 100_001);
        std::fs::write(&path, b"no newline")?;
        let mut f = File::open(&path)?;
        assert_eq!(complete_len(&mut f)?, 0);
        Ok(())
    }
}
