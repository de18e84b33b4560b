//! File transfer confined to the home directory.
//!
//! Every path is resolved by the kernel with `openat2(RESOLVE_BENEATH)`
//! relative to a descriptor of the home directory, so neither `..` nor a
//! symlink (absolute or relative) can lead outside it, even if the user
//! swaps directories for symlinks while a transfer runs. Uploads go to a
//! temporary file in the target directory and are renamed into place only
//! once complete, so a failed or abandoned upload — including one that
//! fills the volume — leaves nothing behind.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    fallocate, fchown, fstat, fstatvfs, openat, openat2, renameat, unlinkat, AtFlags,
    FallocateFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Uid, CWD,
};
use rustix::io::Errno;
use seashell_protocol::agent_channel::ErrorCode;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path is malformed (empty, or names no file).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// The path leads outside the home directory.
    #[error("the path leads outside the home directory")]
    OutsideHome,
    /// The file or a directory on the way does not exist.
    #[error("no such file or directory")]
    NotFound,
    /// The path names something other than a regular file.
    #[error("not a regular file")]
    NotAFile,
    /// A chunk did not start where the previous one ended.
    #[error("chunk at offset {got}, expected {expected}")]
    OutOfOrder {
        /// The offset the next chunk must have.
        expected: u64,
        /// The offset it had.
        got: u64,
    },
    /// The home volume is full.
    #[error("no space left in the home directory")]
    NoSpace,
    /// Another input/output error.
    #[error("{0}")]
    Io(#[source] io::Error),
}

impl FileError {
    /// The control-channel error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            FileError::InvalidPath(_) | FileError::NotAFile | FileError::OutOfOrder { .. } => {
                ErrorCode::BadRequest
            }
            FileError::OutsideHome => ErrorCode::PathOutsideHome,
            FileError::NotFound => ErrorCode::NotFound,
            FileError::NoSpace => ErrorCode::NoSpace,
            FileError::Io(_) => ErrorCode::Io,
        }
    }
}

impl From<Errno> for FileError {
    fn from(e: Errno) -> Self {
        match e {
            // RESOLVE_BENEATH reports an escape as EXDEV.
            Errno::XDEV => FileError::OutsideHome,
            Errno::NOENT => FileError::NotFound,
            Errno::NOSPC | Errno::DQUOT => FileError::NoSpace,
            other => FileError::Io(other.into()),
        }
    }
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(code) => Errno::from_raw_os_error(code).into(),
            None => FileError::Io(e),
        }
    }
}

/// Kernel path resolution rules for every lookup under home.
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

/// The home directory, held open.
#[derive(Debug)]
pub struct Home {
    dir: OwnedFd,
    path: PathBuf,
    owner: Option<(u32, u32)>,
}

impl Home {
    /// Opens the home directory at `path`. Files written get `owner`
    /// (uid, gid) when given, i.e. when the agent runs as root.
    pub fn open(path: &Path, owner: Option<(u32, u32)>) -> io::Result<Self> {
        let dir = openat(
            CWD,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
            owner,
        })
    }

    /// The home directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in use on the home volume.
    pub fn used_bytes(&self) -> Option<u64> {
        let s = fstatvfs(&self.dir).ok()?;
        Some(
            s.f_blocks
                .saturating_sub(s.f_bfree)
                .saturating_mul(s.f_frsize),
        )
    }

    /// `requested` as a path relative to home. Absolute paths are accepted
    /// only under the home directory's own path.
    fn relative(&self, requested: &str) -> Result<PathBuf, FileError> {
        if requested.is_empty() || requested.contains('\0') {
            return Err(FileError::InvalidPath("empty or contains NUL".into()));
        }
        let path = Path::new(requested);
        let relative = if path.is_absolute() {
            path.strip_prefix(&self.path)
                .map_err(|_| FileError::OutsideHome)?
        } else {
            path
        };
        if relative.as_os_str().is_empty() {
            return Err(FileError::InvalidPath("names the home directory".into()));
        }
        Ok(relative.to_path_buf())
    }

    fn open_beneath(&self, path: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd, FileError> {
        loop {
            match openat2(&self.dir, path, flags | OFlags::CLOEXEC, mode, beneath()) {
                // openat2 asks the caller to retry when a rename raced it.
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                other => return Ok(other?),
            }
        }
    }

    /// Starts an upload to `path`. With `size`, the space is reserved at
    /// once, so a file that cannot fit fails before any data is sent.
    pub fn begin_write(&self, path: &str, size: Option<u64>) -> Result<PendingWrite, FileError> {
        let relative = self.relative(path)?;
        let name = match relative.components().next_back() {
            Some(Component::Normal(name)) => name.to_os_string(),
            _ => return Err(FileError::InvalidPath("names no file".into())),
        };
        let parent = relative
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = self.open_beneath(parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        let mut temp = OsStr::new(".").to_os_string();
        temp.push(&name);
        temp.push(format!(
            ".seashell-upload-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let fd = openat(
            &dir,
            &temp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let mut pending = PendingWrite {
            dir,
            temp: temp.into(),
            name: name.into(),
            file: None,
            next_offset: 0,
            finished: false,
        };
        if let Some((uid, gid)) = self.owner {
            fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        }
        if let Some(size) = size.filter(|&s| s > 0) {
            match fallocate(&fd, FallocateFlags::empty(), 0, size) {
                // Not every filesystem can reserve space; writing will
                // still report a full volume.
                Ok(()) | Err(Errno::OPNOTSUPP) => {}
                Err(e) => return Err(e.into()),
            }
        }
        pending.file = Some(File::from(fd));
        Ok(pending)
    }

    /// Opens `path` for download; returns the file and its size.
    pub fn open_read(&self, path: &str) -> Result<(File, u64), FileError> {
        let relative = self.relative(path)?;
        // NONBLOCK: opening a FIFO would otherwise wait for a writer, and
        // hold up the agent for as long as the user likes. It changes
        // nothing for the regular files that pass the check below.
        let fd = self.open_beneath(
            &relative,
            OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        let stat = fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(FileError::NotAFile);
        }
        Ok((File::from(fd), u64::try_from(stat.st_size).unwrap_or(0)))
    }
}

/// An upload in progress. Dropping it before [`finish`](Self::finish)
/// removes the temporary file.
#[derive(Debug)]
pub struct PendingWrite {
    dir: OwnedFd,
    temp: PathBuf,
    name: PathBuf,
    file: Option<File>,
    next_offset: u64,
    finished: bool,
}

impl PendingWrite {
    /// Appends a chunk, which must start where the previous one ended.
    pub fn write_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), FileError> {
        if offset != self.next_offset {
            return Err(FileError::OutOfOrder {
                expected: self.next_offset,
                got: offset,
            });
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| FileError::Io(io::Error::other("transfer already failed")))?;
        file.write_all(data)?;
        self.next_offset += u64::try_from(data.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.next_offset
    }

    /// Flushes the file to disk and moves it into place, replacing any
    /// file of that name (a symlink there is replaced, not followed).
    pub fn finish(mut self) -> Result<(), FileError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| FileError::Io(io::Error::other("transfer already failed")))?;
        // Space reserved up front beyond what arrived is given back.
        file.set_len(self.next_offset)?;
        // Errors of delayed allocation (ENOSPC on some filesystems) show
        // here, before the file replaces anything.
        file.sync_all()?;
        drop(file);
        renameat(&self.dir, &self.temp, &self.dir, &self.name)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if !self.finished {
            self.file = None;
            if let Err(e) = unlinkat(&self.dir, &self.temp, AtFlags::empty()) {
                tracing::warn!(error = %e, "could not remove an unfinished upload");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path(), None).unwrap();
        (dir, home)
    }

    #[test]
    fn write_then_read_and_nothing_left_over() {
        let (dir, home) = home();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut w = home.begin_write("sub/a.txt", Some(5)).unwrap();
        w.write_chunk(0, b"hel").unwrap();
        assert!(w.write_chunk(0, b"lo").is_err());
        w.write_chunk(3, b"lo").unwrap();
        w.finish().unwrap();
        let (mut f, size) = home.open_read("sub/a.txt").unwrap();
        assert_eq!(size, 5);
        let mut text = String::new();
        io::Read::read_to_string(&mut f, &mut text).unwrap();
        assert_eq!(text, "hello");
        let entries: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn escapes_are_refused() {
        let (dir, home) = home();
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("../..", dir.path().join("up")).unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        for path in ["../x", "a/../../x", "/etc/passwd", "etc/passwd", "up/x"] {
            let e = home.open_read(path).unwrap_err();
            assert_eq!(e.code(), ErrorCode::PathOutsideHome, "{path}: {e}");
        }
        for path in ["../x", "etc/x", "up/x"] {
            let e = home.begin_write(path, None).unwrap_err();
            assert_eq!(e.code(), ErrorCode::PathOutsideHome, "{path}: {e}");
        }
        assert_eq!(
            home.open_read("missing").unwrap_err().code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            home.begin_write("", None).unwrap_err().code(),
            ErrorCode::BadRequest
        );
        assert_eq!(
            home.begin_write("..", None).unwrap_err().code(),
            ErrorCode::BadRequest
        );
        assert_eq!(
            home.open_read(".").unwrap_err().code(),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let (dir, home) = home();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            home.open_read("pipe").unwrap_err().code(),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn absolute_paths_under_home_are_accepted() {
        let (dir, home) = home();
        let absolute = dir.path().join("abs.txt");
        let w = home.begin_write(absolute.to_str().unwrap(), None).unwrap();
        w.finish().unwrap();
        assert!(absolute.exists());
    }

    #[test]
    fn abandoned_upload_leaves_nothing() {
        let (dir, home) = home();
        let mut w = home.begin_write("gone.txt", None).unwrap();
        w.write_chunk(0, b"partial").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
