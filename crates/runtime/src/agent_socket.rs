//! Reaching an agent's socket through its environment's root without
//! trusting what root inside the environment put on the way.
//!
//! The host connects to `/proc/<pid>/root/run/seashell/agent.sock`
//! ([`crate::Runtime::agent_socket`]). With ordinary path resolution the
//! kernel follows symbolic links met after `/proc/<pid>/root` as the
//! *server* sees them: an absolute link is resolved against the host's
//! root. Root inside the environment owns `/run/seashell`, so it could
//! replace the socket with a link to any host Unix socket — another
//! environment's agent (`/proc/<its pid>/root/...`), the container
//! runtime's, systemd's — and the server would speak the agent protocol to
//! it at its next connect (a server restart reattaches running
//! environments).
//!
//! So the part after `/proc/<pid>/root` is resolved by the kernel inside
//! that root: `openat2` from an `O_PATH` descriptor of the root with
//! `RESOLVE_IN_ROOT` (`..` and absolute paths stay in the environment's
//! root), `RESOLVE_NO_SYMLINKS` (the path is the agent's own and has no
//! link in any image; a link there is tampering, refused at once with a
//! clear error instead of a timeout) and `RESOLVE_NO_MAGICLINKS` (no
//! `/proc/.../fd` jumps). The result must be a socket (`fstat`), and the
//! connection is made through `/proc/self/fd/<n>` of that very descriptor,
//! so nothing can be swapped between the check and the `connect(2)`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Splits `/proc/<pid>/root/<inside>` into the root (`/proc/<pid>/root`)
/// and the path inside it. Other paths (host sockets of tests, benches)
/// give `None` and are connected to as they are.
pub(crate) fn split_environment_root(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut components = path.components();
    if components.next() != Some(Component::RootDir)
        || components.next() != Some(Component::Normal("proc".as_ref()))
    {
        return None;
    }
    let pid = match components.next() {
        Some(Component::Normal(p)) if p.to_str().is_some_and(is_pid) => p.to_owned(),
        _ => None?,
    };
    if components.next() != Some(Component::Normal("root".as_ref())) {
        return None;
    }
    let inside: PathBuf = components.collect();
    if inside.as_os_str().is_empty() {
        return None;
    }
    Some((Path::new("/proc").join(pid).join("root"), inside))
}

fn is_pid(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Opens `inside` as an `O_PATH` descriptor, resolved within `root` as
/// described in the module documentation, and checks it is a socket.
///
/// Errors keep their kind where it matters to the caller: `NotFound` while
/// the environment or its agent's socket does not exist yet (worth
/// waiting for); anything refused has a message that says why.
pub(crate) fn open_socket_in_root(root: &Path, inside: &Path) -> io::Result<OwnedFd> {
    // `/proc/<pid>/root` is the host's own procfs; following its magic link
    // here is what reaches the environment's root.
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let mut attempts = 0;
    let fd = loop {
        match rustix::fs::openat2(
            &dir,
            inside,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        ) {
            Ok(fd) => break fd,
            // A rename inside the root raced the lookup; the kernel asks
            // for a retry.
            Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
            Err(Errno::LOOP) => {
                return Err(io::Error::other(format!(
                    "refused: {} inside the environment is or passes through a symbolic link",
                    inside.display()
                )))
            }
            Err(Errno::XDEV) => {
                return Err(io::Error::other(format!(
                    "refused: {} inside the environment leads out of its root",
                    inside.display()
                )))
            }
            Err(Errno::NOSYS) => {
                return Err(io::Error::other(
                    "refused: the kernel lacks openat2 (Linux 5.6 or later is needed to reach \
                     an agent's socket safely)",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    };
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
        return Err(io::Error::other(format!(
            "refused: {} inside the environment is not a socket",
            inside.display()
        )));
    }
    Ok(fd)
}

/// The path through which `connect(2)` reaches the socket `fd` refers to.
/// Valid while `fd` is open.
pub(crate) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_through_a_process_root_are_split() {
        assert_eq!(
            split_environment_root(Path::new("/proc/42/root/run/seashell/agent.sock")),
            Some((
                PathBuf::from("/proc/42/root"),
                PathBuf::from("run/seashell/agent.sock")
            ))
        );
        for other in [
            "/tmp/agent.sock",
            "/proc/self/root/run/x.sock",
            "/proc/42/cwd/x.sock",
            "/proc/42/root",
            "proc/42/root/x.sock",
            "/proc//root/x.sock",
        ] {
            assert_eq!(split_environment_root(Path::new(other)), None, "{other}");
        }
    }
}
