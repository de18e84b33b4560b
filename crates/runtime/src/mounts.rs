//! Reading the host mount table and unmounting.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use crate::error::{Error, Result};

/// One entry of `/proc/self/mountinfo` (the fields the runtime uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub target: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Decodes the octal escapes (`\040` for space, …) of mountinfo fields.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of `/proc/self/mountinfo`.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let target = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let source = r.next().unwrap_or_default();
            Some(MountEntry {
                target: PathBuf::from(unescape(target)),
                fstype: fstype.to_owned(),
                source: unescape(source),
            })
        })
        .collect()
}

/// Current mounts of this process's mount namespace.
pub(crate) fn current() -> Result<Vec<MountEntry>> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    Ok(parse_mountinfo(&text))
}

/// Mount points at or below `dir`, deepest first (the order to unmount in).
pub(crate) fn under(dir: &Path) -> Result<Vec<MountEntry>> {
    let mut v: Vec<MountEntry> = current()?
        .into_iter()
        .filter(|m| m.target.starts_with(dir))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.target.components().count()));
    v.dedup_by(|a, b| a.target == b.target);
    Ok(v)
}

/// Unmounts `target` (every layer stacked on it). A target that is not
/// mounted is fine. A busy mount is detached lazily: the environment's
/// processes are gone by the time the runtime unmounts, so "busy" can only
/// mean a short-lived reference (for example a concurrent `ls`), and leaving
/// the mount in place would leak the loop device or the overlay.
pub(crate) fn unmount_all(target: &Path) -> Result<()> {
    loop {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                tracing::warn!(target = %target.display(), "mount busy, detaching lazily");
                umount2(target, MntFlags::MNT_DETACH)
                    .map_err(|e| Error::sys("detaching mount", target, e))?;
            }
            Err(e) => return Err(Error::sys("unmounting", target, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo() {
        let text =
            "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext4 /dev/loop0 rw,errors=continue\n\
                    40 35 0:30 / /x/rootfs rw shared:2 - overlay overlay rw,lowerdir=/i\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].target, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].source, "/dev/loop0");
        assert_eq!(m[1].fstype, "overlay");
    }
}
