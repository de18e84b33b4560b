//! Host checks: is this machine able to run environments?
//!
//! Everything the local backend relies on is checked once, up front, so that
//! a misconfigured host fails with one clear message ("install e2fsprogs",
//! "crun needs a cgroup v2-only host") instead of an obscure error from the
//! middle of `runc create`.

use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::{Error, Result};

/// How cgroup controllers are mounted on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Legacy: every controller on its own v1 hierarchy, no v2 mount.
    V1,
    /// Controllers on v1 hierarchies plus an (empty) v2 hierarchy at
    /// `/sys/fs/cgroup/unified`, as systemd's "hybrid" mode sets up.
    Hybrid,
    /// Only the unified v2 hierarchy is mounted at `/sys/fs/cgroup`.
    V2,
}

impl std::fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupLayout::V1 => "cgroup v1",
            CgroupLayout::Hybrid => {
                "hybrid cgroups (v1 controllers + v2 at /sys/fs/cgroup/unified)"
            }
            CgroupLayout::V2 => "cgroup v2 (unified)",
        })
    }
}

/// Which OCI runtime implementation is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciRuntimeKind {
    /// runc, the reference implementation (Debian package `runc`).
    Runc,
    /// crun (Debian package `crun`).
    Crun,
}

impl OciRuntimeKind {
    /// Debian package providing the runtime.
    pub fn package(self) -> &'static str {
        match self {
            OciRuntimeKind::Runc => "runc",
            OciRuntimeKind::Crun => "crun",
        }
    }

    /// Default program name.
    pub fn program(self) -> &'static str {
        self.package()
    }
}

/// What the host checks found.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// Runtime implementation.
    pub runtime_kind: OciRuntimeKind,
    /// Absolute path of the runtime binary.
    pub runtime_path: PathBuf,
    /// First line of `<runtime> --version`.
    pub runtime_version: String,
    /// Parsed `(major, minor, patch)` of the runtime version, if recognised.
    pub runtime_semver: Option<(u32, u32, u32)>,
    /// Whether the runtime can create id-mapped mounts (runc ≥ 1.2; crun ≥ 1.8).
    /// The runtime crate does not depend on it: images are shifted instead.
    pub runtime_supports_idmap: bool,
    /// Cgroup layout of the host.
    pub cgroup_layout: CgroupLayout,
    /// `mkfs.ext4` path.
    pub mkfs_ext4: PathBuf,
    /// `mount` path.
    pub mount: PathBuf,
    /// `losetup` path.
    pub losetup: PathBuf,
}

/// Classifies the cgroup layout from the text of `/proc/self/mounts`.
pub fn cgroup_layout_from_mounts(mounts: &str) -> Result<CgroupLayout> {
    let mut root_type = None;
    let mut unified_v2 = false;
    let mut any_v1 = false;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_src), Some(target), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        match (target, fstype) {
            ("/sys/fs/cgroup", t) => root_type = Some(t.to_owned()),
            ("/sys/fs/cgroup/unified", "cgroup2") => unified_v2 = true,
            (t, "cgroup") if t.starts_with("/sys/fs/cgroup/") => any_v1 = true,
            _ => {}
        }
    }
    match root_type.as_deref() {
        Some("cgroup2") => Ok(CgroupLayout::V2),
        Some(_) if any_v1 && unified_v2 => Ok(CgroupLayout::Hybrid),
        Some(_) if any_v1 => Ok(CgroupLayout::V1),
        _ => Err(Error::Host {
            check: "cgroups",
            reason: "no cgroup hierarchy is mounted at /sys/fs/cgroup; \
                     mount cgroup2 there (or the v1 controllers) before starting Seashell"
                .into(),
        }),
    }
}

/// Detects the cgroup layout of this host.
pub fn cgroup_layout() -> Result<CgroupLayout> {
    let path = Path::new("/proc/self/mounts");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    cgroup_layout_from_mounts(&text)
}

/// Parses `runc version 1.1.5+ds1` / `crun version 1.8.1` into a triple.
pub fn parse_runtime_version(first_line: &str) -> Option<(u32, u32, u32)> {
    let word = first_line.split_whitespace().nth(2)?;
    let core: String = word
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Runs every check and returns what was found.
///
/// `runtime` is the program name or path of the OCI runtime; its kind is
/// recognised from `--version` output.
pub fn check(runtime: &str) -> Result<HostReport> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Host {
            check: "privileges",
            reason: "the local OCI backend must run as root (it mounts overlays and loop devices \
                     and creates user namespaces with a 65536-id range)"
                .into(),
        });
    }
    let guessed_package = if runtime.ends_with("crun") {
        "crun"
    } else {
        "runc"
    };
    let runtime_path = cmd::require_program(runtime, guessed_package)?;
    let version_out = cmd::run_stdout(&mut cmd::command(&runtime_path, ["--version"]))?;
    let first = version_out
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let runtime_kind = if first.starts_with("crun") {
        OciRuntimeKind::Crun
    } else if first.starts_with("runc") {
        OciRuntimeKind::Runc
    } else {
        return Err(Error::Host {
            check: "oci runtime",
            reason: format!(
                "{} does not look like runc or crun (`--version` said {first:?})",
                runtime_path.display()
            ),
        });
    };
    let runtime_semver = parse_runtime_version(&first);
    let runtime_supports_idmap = match (runtime_kind, runtime_semver) {
        (OciRuntimeKind::Runc, Some(v)) => v >= (1, 2, 0),
        (OciRuntimeKind::Crun, Some(v)) => v >= (1, 8, 0),
        (_, None) => false,
    };

    let cgroup_layout = cgroup_layout()?;
    if runtime_kind == OciRuntimeKind::Crun && cgroup_layout != CgroupLayout::V2 {
        // crun drives cgroups through the unified hierarchy; on a hybrid host
        // the v2 tree at /sys/fs/cgroup/unified has no controllers, so it
        // cannot enforce the CPU, memory and pids limits every environment
        // must have.
        return Err(Error::Host {
            check: "oci runtime",
            reason: format!(
                "crun needs a host where only cgroup v2 is mounted, but this host has {cgroup_layout}; \
                 use runc (the default) here, or boot with systemd.unified_cgroup_hierarchy=1"
            ),
        });
    }
    if cgroup_layout != CgroupLayout::V2 {
        for controller in ["cpu", "memory", "pids"] {
            let p = Path::new("/sys/fs/cgroup").join(controller);
            if !p.is_dir() {
                return Err(Error::Host {
                    check: "cgroups",
                    reason: format!(
                        "cgroup v1 controller `{controller}` is not mounted at {}; \
                         environment limits cannot be enforced",
                        p.display()
                    ),
                });
            }
        }
    }

    let mkfs_ext4 = cmd::require_program("mkfs.ext4", "e2fsprogs")?;
    cmd::require_program("debugfs", "e2fsprogs")?;
    let mount = cmd::require_program("mount", "mount")?;
    let losetup = cmd::require_program("losetup", "mount")?;
    cmd::require_program("umount", "mount")?;

    check_filesystems()?;
    check_loop()?;
    check_userns()?;

    Ok(HostReport {
        runtime_kind,
        runtime_path,
        runtime_version: first,
        runtime_semver,
        runtime_supports_idmap,
        cgroup_layout,
        mkfs_ext4,
        mount,
        losetup,
    })
}

fn check_filesystems() -> Result<()> {
    let path = Path::new("/proc/filesystems");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let has = |fs: &str| {
        text.lines()
            .any(|l| l.split_whitespace().last() == Some(fs))
    };
    for fs in ["overlay", "ext4"] {
        if !has(fs) {
            // Both are usually modules that the kernel loads on first mount;
            // try once so the check does not depend on boot order.
            let _ = cmd::find_program("modprobe")
                .map(|p| cmd::run(&mut cmd::command(&p, [fs])).is_ok());
            let again = std::fs::read_to_string(path).unwrap_or_default();
            if !again
                .lines()
                .any(|l| l.split_whitespace().last() == Some(fs))
            {
                return Err(Error::Host {
                    check: "filesystems",
                    reason: format!(
                        "the kernel does not support the `{fs}` filesystem (not in /proc/filesystems, \
                         `modprobe {fs}` did not help)"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn check_loop() -> Result<()> {
    if !Path::new("/dev/loop-control").exists() {
        let _ = cmd::find_program("modprobe").map(|p| cmd::run(&mut cmd::command(&p, ["loop"])));
    }
    if !Path::new("/dev/loop-control").exists() {
        return Err(Error::Host {
            check: "loop devices",
            reason: "/dev/loop-control is missing; load the `loop` module (home volumes are \
                     loop-mounted ext4 images)"
                .into(),
        });
    }
    Ok(())
}

fn check_userns() -> Result<()> {
    let path = Path::new("/proc/sys/user/max_user_namespaces");
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "0" => Err(Error::Host {
            check: "user namespaces",
            reason: "user.max_user_namespaces is 0; environments need user namespaces \
                     (sysctl -w user.max_user_namespaces=15000)"
                .into(),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Host {
            check: "user namespaces",
            reason: format!(
                "{} unreadable ({e}); kernel without user namespaces?",
                path.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn layouts() {
        assert_eq!(
            cgroup_layout_from_mounts(HYBRID).ok(),
            Some(CgroupLayout::Hybrid)
        );
        let v1: String = HYBRID
            .lines()
            .filter(|l| !l.contains("unified"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(cgroup_layout_from_mounts(&v1).ok(), Some(CgroupLayout::V1));
        let v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(cgroup_layout_from_mounts(v2).ok(), Some(CgroupLayout::V2));
        assert!(cgroup_layout_from_mounts("proc /proc proc rw 0 0\n").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_runtime_version("runc version 1.1.5+ds1"),
            Some((1, 1, 5))
        );
        assert_eq!(parse_runtime_version("crun version 1.8"), Some((1, 8, 0)));
        assert_eq!(parse_runtime_version("runc"), None);
    }
}
