//! The root disk: a size-limited file system under the root overlay's upper
//! layer.
//!
//! Everything an environment writes outside its home (`/tmp`, `/var`,
//! packages installed under `/usr`) lands in the overlay's upper layer. If
//! that were a directory on the data directory's file system, one
//! environment could fill the host's disk, and with it the database, the
//! audit journal and the (sparse) home volumes of everybody else. So the
//! upper and work directories live on a file system of their own: a sparse
//! ext4 image per environment (`envs/<id>/root.ext4`), loop-mounted at
//! `envs/<id>/root` for as long as the environment exists. Its size
//! ([`crate::Limits::root_bytes`]) is the hard limit: writing past it gives
//! ENOSPC inside, and the image never takes more than that on the host.
//!
//! Why not a sized tmpfs: tmpfs pages are charged to the memory cgroup of
//! the process that writes them and, without swap, can never be reclaimed,
//! so every byte in `/tmp` would be a byte less of the environment's memory
//! limit, and a full tmpfs would end in the OOM killer rather than ENOSPC.
//! The ext4 image's page cache is charged too but is written back and
//! reclaimed under pressure. Why not project quotas: they need the
//! operator's data file system to be ext4 or XFS mounted with `prjquota`.
//!
//! The file system is throw-away, which shapes how it is made:
//!
//! - no journal (`^has_journal`): after a crash the image is deleted, never
//!   recovered; a journal would only cost writes;
//! - lazy inode table and journal initialisation at `mkfs` and
//!   `noinit_itable` at mount: the image is a new sparse file whose holes
//!   read as zeros, so zeroing the inode tables (tens of MiB per
//!   environment, written by the kernel's `ext4lazyinit` thread after
//!   mount) would only allocate host disk;
//! - the same layout at every size (`-T default`: 4 KiB blocks, an inode
//!   per 16 KiB), where `mke2fs` would otherwise pick 1 KiB blocks below
//!   512 MiB;
//! - no reserved blocks (`-m 0`): the overlay writes its upper layer with
//!   the mounter's (host root's) credentials, so reserved blocks would be
//!   usable from inside anyway;
//! - mounted without `nosuid`: set-uid programs copied up into the upper
//!   layer (`sudo` after a `chmod`) must keep working, as they do in the
//!   lower layer; `nodev` because device nodes come only from `/dev`.
//!
//! Blocks freed inside stay allocated in the image until the environment
//! stops (no online discard), so the host pays at most the image's size per
//! running environment. Only `mkfs` and the kernel write the image (it is
//! not reachable from inside), so mounting it exposes the ext4 driver to no
//! crafted metadata.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::unistd::{lseek, Whence};

use crate::cmd;
use crate::error::{Error, Result};

/// Default size of an environment's root disk: 2 GiB.
pub const DEFAULT_ROOT_BYTES: u64 = 2 << 30;

/// Version of the `mkfs` options below, part of a template's name, so a
/// change of them never reuses a template made with the old ones.
const FORMAT: &str = "v1";

/// Smallest root disk the runtime makes (an ext4 file system needs a few
/// MiB of metadata; below this the limit is mostly overhead).
pub const MIN_ROOT_BYTES: u64 = 16 << 20;

/// Checks a root disk size.
pub(crate) fn validate(size: u64) -> Result<()> {
    if size < MIN_ROOT_BYTES {
        return Err(Error::Invalid {
            what: "root disk size",
            value: size.to_string(),
            reason: "must be at least 16 MiB",
        });
    }
    Ok(())
}

/// Creates the root disk `image`: a sparse file of `size` bytes holding an
/// empty ext4 file system. An existing file is replaced: root disks never
/// outlive their environment's run.
///
/// Every empty file system of one size is the same, so `mkfs` runs once per
/// size, into `templates/root-v1-<size>.ext4`, and each environment gets a
/// sparse copy of it: a few hundred KiB of metadata instead of a `mkfs`
/// run on every cold start. (The copies share the file system UUID, which
/// ext4 does not mind.)
pub(crate) fn create(image: &Path, size: u64, templates: &Path, mkfs: &Path) -> Result<()> {
    validate(size)?;
    let template = template(templates, size, mkfs)?;
    copy_sparse(&template, image)
}

/// The template of root disks of `size` bytes, made if missing. It is
/// built under a temporary name and renamed into place, so a crash never
/// leaves a half-made template under the final name, and two environments
/// making it at once both end with a complete one.
fn template(dir: &Path, size: u64, mkfs: &Path) -> Result<PathBuf> {
    let path = dir.join(format!("root-{FORMAT}-{size}.ext4"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("setting permissions of", dir, e))?;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        "root-{FORMAT}-{size}.ext4.partial-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        f.set_len(size).map_err(|e| Error::io("sizing", &tmp, e))?;
        drop(f);
        cmd::run(
            cmd::command(
                mkfs,
                [
                    "-q",
                    "-F",
                    "-T",
                    "default",
                    "-m",
                    "0",
                    "-L",
                    "seashell-root",
                    "-O",
                    "^has_journal",
                    "-E",
                    "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                ],
            )
            .arg(&tmp),
        )?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| Error::io("renaming root disk template to", &path, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    tracing::info!(template = %path.display(), "made root disk template");
    Ok(path)
}

/// Copies `src` to `dst` (mode `0600`, replacing it) keeping it sparse:
/// only the data regions `SEEK_DATA` finds are read, and blocks of zeros
/// among them are skipped too, so the copy is sparse even on a file system
/// that reports the whole file as data.
fn copy_sparse(src: &Path, dst: &Path) -> Result<()> {
    const CHUNK: usize = 64 << 10;
    let from = File::open(src).map_err(|e| Error::io("opening", src, e))?;
    let len = from
        .metadata()
        .map_err(|e| Error::io("inspecting", src, e))?
        .len();
    let to = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dst)
        .map_err(|e| Error::io("creating", dst, e))?;
    to.set_len(len).map_err(|e| Error::io("sizing", dst, e))?;
    let seek = |offset: u64, whence| -> Result<Option<u64>> {
        let offset = i64::try_from(offset).map_err(|_| Error::Invalid {
            what: "root disk template size",
            value: len.to_string(),
            reason: "too large",
        })?;
        match lseek(from.as_raw_fd(), offset, whence) {
            Ok(o) => Ok(Some(o as u64)),
            // ENXIO: no data at or after `offset`.
            Err(nix::errno::Errno::ENXIO) => Ok(None),
            Err(e) => Err(Error::sys("seeking in", src, e)),
        }
    };
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0;
    while pos < len {
        let Some(start) = seek(pos, Whence::SeekData)? else {
            break;
        };
        let end = seek(start, Whence::SeekHole)?.unwrap_or(len).min(len);
        let mut at = start;
        while at < end {
            let n = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
            from.read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io("reading", src, e))?;
            if buf[..n].iter().any(|&b| b != 0) {
                to.write_all_at(&buf[..n], at)
                    .map_err(|e| Error::io("writing", dst, e))?;
            }
            at += n as u64;
        }
        pos = end;
    }
    Ok(())
}

/// Loop-mounts the root disk `image` at `target` (created `0700`: only the
/// host's root, which the overlay acts as, needs to enter it). `mount -o
/// loop` sets the loop device to auto-clear, so unmounting releases it.
pub(crate) fn mount(mount_bin: &Path, image: &Path, target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).map_err(|e| Error::io("creating directory", target, e))?;
    cmd::run(
        cmd::command(
            mount_bin,
            [
                "-t",
                "ext4",
                "-o",
                "loop,nodev,noatime,noinit_itable,errors=remount-ro",
            ],
        )
        .arg(image)
        .arg(target),
    )?;
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("setting permissions of", target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_below_the_minimum_are_refused() {
        assert!(validate(MIN_ROOT_BYTES).is_ok());
        assert!(validate(DEFAULT_ROOT_BYTES).is_ok());
        assert!(validate(MIN_ROOT_BYTES - 1).is_err());
        assert!(validate(0).is_err());
    }

    #[test]
    fn copies_stay_sparse_and_equal() {
        let dir = std::env::temp_dir().join(format!("seashell-rootdisk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (src, dst) = (dir.join("src"), dir.join("dst"));
        let f = File::create(&src).expect("create");
        f.set_len(64 << 20).expect("size");
        f.write_all_at(b"head", 0).expect("write");
        f.write_all_at(&[7u8; 100_000], 10 << 20).expect("write");
        // A block of zeros written as data is not copied as data.
        f.write_all_at(&vec![0u8; 1 << 20], 20 << 20)
            .expect("write");
        f.write_all_at(b"tail", (64 << 20) - 4).expect("write");
        drop(f);
        std::fs::write(&dst, b"old contents").expect("write");
        copy_sparse(&src, &dst).expect("copy");
        let (a, b) = (
            std::fs::read(&src).expect("read"),
            std::fs::read(&dst).expect("read"),
        );
        let blocks =
            std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&dst).expect("stat"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(a == b, "copy differs");
        assert!(
            blocks * 512 < 1 << 20,
            "copy not sparse: {} bytes",
            blocks * 512
        );
    }
}
