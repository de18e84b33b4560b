//! Durable file operations shared by the sinks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::SinkError;

/// Makes a directory's entries (new files, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    // Opening a directory read-only and fsyncing it is how POSIX persists
    // its entries; elsewhere this is best effort.
    let result = File::open(dir)
        .map_err(SinkError::io("open directory", dir))
        .and_then(|d| d.sync_all().map_err(SinkError::io("sync directory", dir)));
    if cfg!(unix) {
        result
    } else {
        Ok(())
    }
}

/// Creates `dir` and its missing parents, syncing each parent whose entries
/// changed so the new directories survive a crash.
pub(crate) fn create_dirs(dir: &Path) -> Result<(), SinkError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another writer may have created it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(SinkError::io("create directory", dir)(e)),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// The parent directory of `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` atomically: a reader sees the old content or
/// the new, never a mix, even across a crash.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let dir = parent_of(path);
    let tmp = temp_name(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(SinkError::io("create", &tmp))?;
        file.write_all(bytes)
            .map_err(SinkError::io("write", &tmp))?;
        file.sync_all().map_err(SinkError::io("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(SinkError::io("rename into place", path))
    })();
    if result.is_err() {
        // Leave no half-written temporary behind; the error already says why.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// A hidden temporary name next to `path`.
pub(crate) fn temp_name(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}
