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
//! running environment. Only the kernel writes the image (it is not
//! reachable from inside), so mounting it exposes the ext4 driver to no
//! crafted metadata.

use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::cmd;
use crate::error::{Error, Result};

/// Default size of an environment's root disk: 2 GiB.
pub const DEFAULT_ROOT_BYTES: u64 = 2 << 30;

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

/// Creates a new sparse image of `size` bytes at `image` holding an empty
/// ext4 file system. An existing file is replaced: root disks never outlive
/// their environment's run.
pub(crate) fn create(image: &Path, size: u64, mkfs: &Path) -> Result<()> {
    validate(size)?;
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(image)
        .map_err(|e| Error::io("creating", image, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("setting permissions of", image, e))?;
    // Sparse: blocks are allocated only as the environment writes.
    f.set_len(size).map_err(|e| Error::io("sizing", image, e))?;
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
        .arg(image),
    )?;
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
}
