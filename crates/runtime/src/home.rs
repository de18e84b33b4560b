//! Home volumes: one ext4 image per (account, principal, region).
//!
//! A home is a sparse file holding an ext4 filesystem of fixed size. The
//! filesystem itself is the quota: when it is full, writes fail with ENOSPC
//! inside that environment and nothing else on the host is affected. The file
//! is loop-mounted on the host while its environment runs and bind-mounted at
//! `/home/cloudshell-user`; it survives stop/start and is removed only by an
//! explicit delete.
//!
//! The filesystem is created with no reserved blocks (`-m 0`: "root" inside
//! is not host root, so reserved blocks would only be lost space) and with
//! its root directory owned by the host uid that `cloudshell-user` maps to,
//! so the user owns their home inside without a chown pass.
//!
//! Only the kernel ever writes the image's metadata (the file is not visible
//! inside any environment), so mounting it does not expose the ext4 driver
//! to crafted images.

use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cmd;
use crate::error::{Error, Result};

/// Default size of a home volume: 1 GiB.
pub const DEFAULT_HOME_BYTES: u64 = 1 << 30;

/// Identifies a home volume.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HomeKey {
    /// Account id, e.g. `123456789012`.
    pub account: String,
    /// Principal (user name or ARN).
    pub principal: String,
    /// Region, e.g. `eu-west-1`.
    pub region: String,
}

impl HomeKey {
    /// Builds a key.
    pub fn new(
        account: impl Into<String>,
        principal: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        HomeKey {
            account: account.into(),
            principal: principal.into(),
            region: region.into(),
        }
    }

    /// File name of the volume: `home-<sha256>.ext4`.
    ///
    /// The name is a hash of the length-prefixed key parts, so nothing a user
    /// controls (an ARN with `/`, `..`, NUL, very long names) reaches the
    /// filesystem path, and distinct keys cannot collide by concatenation
    /// (`("a/b","c")` versus `("a","b/c")`).
    pub fn file_name(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.account, &self.principal, &self.region] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut name = String::with_capacity(5 + 64 + 5);
        name.push_str("home-");
        for b in digest {
            name.push_str(&format!("{b:02x}"));
        }
        name.push_str(".ext4");
        name
    }
}

/// Creates the volume at `path` if it does not exist yet.
///
/// The filesystem is built in a temporary file and renamed into place, so a
/// crash never leaves an unformatted image under the final name.
pub(crate) fn ensure(path: &Path, size: u64, mkfs: &Path, owner: u32) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let dir = path.parent().ok_or_else(|| Error::Invalid {
        what: "home path",
        value: path.display().to_string(),
        reason: "has no parent directory",
    })?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let tmp = path.with_extension(format!("partial-{}", std::process::id()));
    let result = (|| {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("setting permissions of", &tmp, e))?;
        // Sparse: blocks are allocated only as the user writes.
        f.set_len(size).map_err(|e| Error::io("sizing", &tmp, e))?;
        drop(f);
        cmd::run(
            cmd::command(mkfs, ["-q", "-F", "-m", "0", "-L", "seashell-home", "-E"])
                // lazy_journal_init: the file was just made sparse, so its
                // journal reads as zeros already; zeroing it would allocate
                // 32 MiB per 1 GiB home (33 MiB of disk per environment
                // instead of under 1 MiB).
                .arg(format!("root_owner={owner}:{owner},lazy_journal_init=1"))
                .arg(&tmp),
        )?;
        // lost+found is created root-owned, which inside the environment is
        // an unmapped uid ("nobody"); give it to the user like the rest.
        let debugfs = cmd::require_program("debugfs", "e2fsprogs")?;
        for field in ["uid", "gid"] {
            cmd::run(
                cmd::command(&debugfs, ["-w", "-R"])
                    .arg(format!("set_inode_field lost+found {field} {owner}"))
                    .arg(&tmp),
            )?;
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming home volume to", path, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(true)
}

/// Loop devices currently backed by `image` (as `/dev/loopN`).
pub(crate) fn attached_loops(losetup: &Path, image: &Path) -> Result<Vec<String>> {
    let out = cmd::run_stdout(
        cmd::command(losetup, ["--noheadings", "--output", "NAME", "-j"]).arg(image),
    )?;
    Ok(out
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// All loop devices and their backing files.
pub(crate) fn all_loops(losetup: &Path) -> Result<Vec<(String, PathBuf)>> {
    let out = cmd::run_stdout(&mut cmd::command(
        losetup,
        [
            "--list",
            "--noheadings",
            "--raw",
            "--output",
            "NAME,BACK-FILE",
        ],
    ))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (name, file) = l.trim().split_once(' ')?;
            // losetup --raw escapes spaces as \x20; runtime paths have none.
            Some((
                name.to_owned(),
                PathBuf::from(file.trim().trim_end_matches(" (deleted)")),
            ))
        })
        .collect())
}

/// Loop-mounts `image` at `target`.
///
/// Refuses when the image is already attached: two ext4 mounts of the same
/// image through different loop devices would corrupt it. `mount -o loop`
/// sets the loop device to auto-clear, so unmounting releases it.
pub(crate) fn mount(mount_bin: &Path, losetup: &Path, image: &Path, target: &Path) -> Result<()> {
    let loops = attached_loops(losetup, image)?;
    if !loops.is_empty() {
        return Err(Error::HomeInUse {
            path: image.to_path_buf(),
            devices: loops.join(", "),
        });
    }
    std::fs::create_dir_all(target).map_err(|e| Error::io("creating directory", target, e))?;
    cmd::run(
        cmd::command(
            mount_bin,
            [
                "-t",
                "ext4",
                "-o",
                "loop,nosuid,nodev,noatime,errors=remount-ro",
            ],
        )
        .arg(image)
        .arg(target),
    )?;
    Ok(())
}

/// Removes the volume file. Fails if it is attached.
pub(crate) fn delete(losetup: &Path, image: &Path) -> Result<bool> {
    if !image.exists() {
        return Ok(false);
    }
    let loops = attached_loops(losetup, image)?;
    if !loops.is_empty() {
        return Err(Error::HomeInUse {
            path: image.to_path_buf(),
            devices: loops.join(", "),
        });
    }
    std::fs::remove_file(image).map_err(|e| Error::io("removing", image, e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a = HomeKey::new("123456789012", "../../etc/passwd", "eu-west-1").file_name();
        assert!(a.starts_with("home-") && a.ends_with(".ext4"));
        assert!(a[5..a.len() - 5].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a.len(), 5 + 64 + 5);
        let b = HomeKey::new("a/b", "c", "r").file_name();
        let c = HomeKey::new("a", "b/c", "r").file_name();
        assert_ne!(b, c);
        assert_eq!(b, HomeKey::new("a/b", "c", "r").file_name());
    }

    /// A new home is sparse, journal included: a host with a thousand 1 GiB
    /// homes must not spend 33 GB of disk on zeroed journals.
    #[test]
    fn a_new_home_allocates_little_disk() {
        use std::os::unix::fs::MetadataExt;
        let mkfs = cmd::require_program("mkfs.ext4", "e2fsprogs").expect("mkfs.ext4");
        let dir = std::env::temp_dir().join(format!("seashell-home-test-{}", std::process::id()));
        let path = dir.join("home.ext4");
        let made = ensure(&path, 1 << 30, &mkfs, 1000);
        let allocated = std::fs::metadata(&path).map(|m| m.blocks() * 512);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(made.expect("ensure"), "the volume was created");
        let allocated = allocated.expect("metadata");
        assert!(
            allocated < 4 << 20,
            "a new 1 GiB home allocates {allocated} bytes"
        );
    }
}
