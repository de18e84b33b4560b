//! Images and the per-environment root filesystem.
//!
//! # Ownership inside the user namespace
//!
//! Container uid 0 is host uid `base`, so for the image to look root-owned
//! inside, its files must be owned by `base + uid` on the host. Two ways
//! exist: id-mapped mounts (the kernel translates ownership at mount time;
//! runc supports them from 1.2) or shifting the tree once when the image is
//! imported. Seashell shifts: it works with every runc and kernel, costs one
//! walk per (image, id base), and the shifted tree is never written to —
//! environments only ever see it as the read-only lower layer of an overlay.
//! Environments that share an id base share the prepared image.
//!
//! # Root filesystem
//!
//! Each environment's root is an overlay mounted by the runtime on the host
//! before `runc create`: lower = the prepared image (read-only), upper and
//! work directories private to the environment. Stopping the environment
//! unmounts the overlay and deletes the upper directory, so everything
//! outside the home volume (`/tmp`, packages installed under `/usr`, …)
//! starts fresh on the next start.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};

use crate::cmd;
use crate::error::{Error, Result};
use crate::spec::IdMap;

/// Name of the metadata file next to a prepared image's `rootfs`.
const IMAGE_META: &str = "seashell-image.json";

/// An image prepared for one id range, ready to be an overlay lower layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// Directory holding the shifted root filesystem.
    pub rootfs: PathBuf,
    /// The id range the tree is owned by.
    pub id_map: IdMap,
}

#[derive(Serialize, Deserialize)]
struct ImageMeta {
    host_base: u32,
    size: u32,
}

/// Copies `source` to `<dest>/rootfs` and shifts its ownership into
/// `id_map`. The copy is built under a temporary name and renamed into place,
/// so a crash never leaves a half-shifted image that looks complete.
pub(crate) fn import(source: &Path, dest: &Path, id_map: IdMap) -> Result<PreparedImage> {
    id_map.validate()?;
    if !source.join("bin").exists() && !source.join("usr/bin").exists() {
        return Err(Error::Invalid {
            what: "image directory",
            value: source.display().to_string(),
            reason: "does not look like a root filesystem (no bin or usr/bin)",
        });
    }
    if dest.exists() {
        return open(dest);
    }
    let parent = dest.parent().ok_or_else(|| Error::Invalid {
        what: "image destination",
        value: dest.display().to_string(),
        reason: "has no parent directory",
    })?;
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("removing", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("creating directory", &tmp, e))?;
    let result = (|| {
        let cp = cmd::require_program("cp", "coreutils")?;
        let mut src_arg = source.as_os_str().to_owned();
        src_arg.push("/.");
        cmd::run(
            cmd::command(&cp, ["-a", "--reflink=auto"])
                .arg(&src_arg)
                .arg(tmp.join("rootfs")),
        )?;
        shift_tree(&tmp.join("rootfs"), id_map)?;
        let meta = serde_json::to_vec(&ImageMeta {
            host_base: id_map.host_base,
            size: id_map.size,
        })
        .map_err(|e| Error::Parse {
            what: "image metadata",
            detail: e.to_string(),
        })?;
        let meta_path = tmp.join(IMAGE_META);
        std::fs::write(&meta_path, meta).map_err(|e| Error::io("writing", &meta_path, e))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::io("setting permissions of", &tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io("renaming image into", dest, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    open(dest)
}

/// Opens an image prepared earlier by [`import`].
pub(crate) fn open(dir: &Path) -> Result<PreparedImage> {
    let meta_path = dir.join(IMAGE_META);
    let bytes = std::fs::read(&meta_path).map_err(|e| Error::io("reading", &meta_path, e))?;
    let meta: ImageMeta = serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        what: "image metadata",
        detail: format!("{}: {e}", meta_path.display()),
    })?;
    Ok(PreparedImage {
        rootfs: dir.join("rootfs"),
        id_map: IdMap {
            host_base: meta.host_base,
            size: meta.size,
        },
    })
}

/// Re-owns every entry of `root` from `uid` to `base + uid`.
///
/// `lchown` is used so symbolic links are changed themselves and never
/// followed out of the tree. The kernel clears set-uid/set-gid bits on
/// chown, so they are restored afterwards (`sudo` depends on them). It also
/// drops file capabilities (`security.capability`); none are needed inside,
/// where `ping` uses ICMP datagram sockets instead of `CAP_NET_RAW`. Ids
/// outside the mapped range would show up as `nobody` inside; they are
/// rejected instead of silently produced. A file with several hard links
/// (Debian has some, e.g. `perlbug`/`perlthanks`) is one inode: it is
/// shifted once, at its first name.
fn shift_tree(root: &Path, id_map: IdMap) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    let mut linked = std::collections::HashSet::new();
    while let Some(path) = stack.pop() {
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| Error::io("inspecting", &path, e))?;
        if !meta.is_dir() && meta.nlink() > 1 && !linked.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let (Some(uid), Some(gid)) = (id_map.to_host(meta.uid()), id_map.to_host(meta.gid()))
        else {
            return Err(Error::Invalid {
                what: "image file owner",
                value: format!("{} ({}:{})", path.display(), meta.uid(), meta.gid()),
                reason: "uid/gid outside the mapped range",
            });
        };
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(|e| Error::io("changing owner of", &path, e))?;
        let ft = meta.file_type();
        if !ft.is_symlink() && meta.mode() & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(|e| Error::io("restoring mode of", &path, e))?;
        }
        if ft.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| Error::io("listing", &path, e))? {
                let entry = entry.map_err(|e| Error::io("listing", &path, e))?;
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Host paths of one environment's root filesystem layers.
#[derive(Debug, Clone)]
pub(crate) struct OverlayPaths {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

/// Creates the upper and work directories and mounts the overlay.
///
/// The upper directory's root is owned by the environment's root (and takes
/// the image root's mode), because the overlay's `/` takes its ownership from
/// it. The overlay is mounted without `nosuid`: set-uid programs in the image
/// (`sudo`) must work inside; they grant at most the environment's root.
pub(crate) fn mount_overlay(p: &OverlayPaths, id_map: IdMap) -> Result<()> {
    for d in [&p.upper, &p.work, &p.target] {
        std::fs::create_dir_all(d).map_err(|e| Error::io("creating directory", d, e))?;
    }
    let lower_meta =
        std::fs::metadata(&p.lower).map_err(|e| Error::io("inspecting", &p.lower, e))?;
    std::os::unix::fs::chown(&p.upper, Some(id_map.host_base), Some(id_map.host_base))
        .map_err(|e| Error::io("changing owner of", &p.upper, e))?;
    std::fs::set_permissions(
        &p.upper,
        std::fs::Permissions::from_mode(lower_meta.mode() & 0o7777),
    )
    .map_err(|e| Error::io("setting permissions of", &p.upper, e))?;
    for d in [&p.lower, &p.upper, &p.work] {
        // Overlay options are comma-separated and use ':' between lower
        // layers; runtime-generated paths never contain them, but check
        // rather than produce a different mount than intended.
        if d.to_string_lossy().contains([',', ':', '\\']) {
            return Err(Error::Invalid {
                what: "overlay layer path",
                value: d.display().to_string(),
                reason: "contains ',', ':' or '\\'",
            });
        }
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        p.lower.display(),
        p.upper.display(),
        p.work.display()
    );
    // nodev: device nodes come only from the runtime's private /dev.
    mount(
        Some("overlay"),
        &p.target,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|e| Error::sys("mounting overlay on", &p.target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (chown), as the suite runs.
    #[test]
    fn hard_links_are_shifted_once() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("seashell-shift-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
        std::fs::write(dir.join("bin/perlbug"), "x").expect("write");
        std::fs::hard_link(dir.join("bin/perlbug"), dir.join("bin/perlthanks")).expect("link");
        let map = IdMap {
            host_base: 100_000,
            size: 65_536,
        };
        let shifted = shift_tree(&dir, map);
        let owner = std::fs::metadata(dir.join("bin/perlthanks")).map(|m| m.uid());
        let _ = std::fs::remove_dir_all(&dir);
        shifted.expect("shift");
        assert_eq!(owner.expect("stat"), 100_000);
    }
}
