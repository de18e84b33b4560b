//! A shell on a pseudo-terminal.
//!
//! The shell is spawned with `std::process` rather than `tokio::process`:
//! the agent is the environment's init process and reaps every child with
//! `waitpid(-1)` (see [`crate::init`]), which would race with a runtime that
//! also waits for its own children. The child is therefore only known by
//! its pid, and its exit status arrives from the [`Reaper`].

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};
use seashell_protocol::agent_channel::Shell;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use crate::init::Reaper;

/// Why a shell could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// The requested shell is not installed in the environment.
    #[error("{0:?} is not installed in this environment")]
    ShellNotFound(Shell),
    /// Opening or configuring the pseudo-terminal failed.
    #[error("pseudo-terminal: {0}")]
    Pty(#[source] io::Error),
    /// Starting the shell failed.
    #[error("starting the shell: {0}")]
    Spawn(#[source] io::Error),
}

/// Who the shell runs as and where.
#[derive(Debug, Clone)]
pub struct ShellUser {
    /// User id to switch to, when the agent runs as root.
    pub uid: Option<u32>,
    /// Group id to switch to, when the agent runs as root.
    pub gid: Option<u32>,
    /// The user's name, for `USER` and `LOGNAME`.
    pub name: String,
    /// The home directory, also the working directory.
    pub home: PathBuf,
}

/// Environment variables the agent gives every shell. One of them is the
/// credentials endpoint's token, so `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct ShellEnv(pub BTreeMap<String, String>);

impl std::fmt::Debug for ShellEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct SpawnRequest<'a> {
    /// Which shell.
    pub shell: Shell,
    /// Initial size.
    pub cols: u16,
    /// Initial size.
    pub rows: u16,
    /// Extra environment from the server.
    pub env: &'a BTreeMap<String, String>,
    /// Variables the agent adds unless the server set them.
    pub defaults: &'a ShellEnv,
    /// The user to run as.
    pub user: &'a ShellUser,
}

/// A running shell and the master side of its terminal.
///
/// The master side is held twice (two descriptors of one open file) so
/// that reading and writing wait independently: input must get through
/// while output is being waited for.
#[derive(Debug)]
pub struct Pty {
    reader: pipe::Receiver,
    writer: pipe::Sender,
    pid: i32,
}

/// Where the shells may be installed; the first existing one is used.
fn candidates(shell: Shell) -> &'static [&'static str] {
    match shell {
        Shell::Bash => &["/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"],
        Shell::Zsh => &["/bin/zsh", "/usr/bin/zsh", "/usr/local/bin/zsh"],
        Shell::Pwsh => &[
            "/usr/bin/pwsh",
            "/usr/local/bin/pwsh",
            "/opt/microsoft/powershell/7/pwsh",
        ],
    }
}

/// What stands in for a missing shell. Only bash, the default, has a
/// stand-in: small images (busybox, Alpine) ship a POSIX `sh` but no bash,
/// and a default session should still get a prompt there. A shell asked for
/// by name (zsh, pwsh) must be the real one, or the request fails.
fn fallbacks(shell: Shell) -> &'static [&'static str] {
    match shell {
        Shell::Bash => &["/bin/sh"],
        Shell::Zsh | Shell::Pwsh => &[],
    }
}

/// The path of `shell`, if the environment has it; for bash, `/bin/sh`
/// when bash is not installed.
pub fn find_shell(shell: Shell) -> Option<&'static Path> {
    find_shell_with(shell, |p| p.is_file())
}

/// [`find_shell`] with the existence check supplied, so it can be tested
/// without touching the real `/bin`.
fn find_shell_with(shell: Shell, exists: impl Fn(&Path) -> bool) -> Option<&'static Path> {
    candidates(shell)
        .iter()
        .chain(fallbacks(shell))
        .map(Path::new)
        .find(|p| exists(p))
}

fn winsize(cols: u16, rows: u16) -> Winsize {
    Winsize {
        ws_row: rows.max(1),
        ws_col: cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    /// Starts the shell on a new pseudo-terminal, registering its pid with
    /// `reaper` before it can exit. Returns the terminal and a receiver for
    /// the shell's exit code.
    pub fn spawn(
        request: &SpawnRequest<'_>,
        reaper: &Reaper,
    ) -> Result<(Self, oneshot::Receiver<i32>), PtyError> {
        let program = find_shell(request.shell).ok_or(PtyError::ShellNotFound(request.shell))?;
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(|e| PtyError::Pty(e.into()))?;
        grantpt(&master).map_err(|e| PtyError::Pty(e.into()))?;
        unlockpt(&master).map_err(|e| PtyError::Pty(e.into()))?;
        let name = ptsname(&master, Vec::new()).map_err(|e| PtyError::Pty(e.into()))?;
        tcsetwinsize(&master, winsize(request.cols, request.rows))
            .map_err(|e| PtyError::Pty(e.into()))?;
        // NOCTTY: the agent leads its own session without a controlling
        // terminal (as PID 1 it always does), and opening a terminal would
        // otherwise make it the agent's, and so not the shell's.
        let slave = rustix::fs::open(
            Path::new(OsStr::from_bytes(name.as_bytes())),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| PtyError::Pty(e.into()))?;

        let mut command = Command::new(program);
        match request.shell {
            Shell::Bash | Shell::Zsh => {
                command.arg("-l");
            }
            Shell::Pwsh => {
                command.arg("-Login");
            }
        }
        command
            .env_clear()
            .env("HOME", &request.user.home)
            .env("USER", &request.user.name)
            .env("LOGNAME", &request.user.name)
            .env("SHELL", program)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .envs(&request.defaults.0)
            .envs(request.env)
            // Set last so the server cannot give the emulator a terminal
            // type it does not speak.
            .env("TERM", "xterm-256color")
            .current_dir(&request.user.home);
        let stdio = |fd: &OwnedFd| -> Result<Stdio, PtyError> {
            Ok(Stdio::from(fd.try_clone().map_err(PtyError::Pty)?))
        };
        command
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(stdio(&slave)?);
        if let Some(gid) = request.user.gid {
            command.gid(gid);
        }
        if let Some(uid) = request.user.uid {
            // std also clears the supplementary groups when it changes the
            // uid as root, so the shell keeps none of the agent's groups.
            command.uid(uid);
        }
        set_controlling_terminal(&mut command);

        let child = reaper
            .spawn_watched(|| command.spawn())
            .map_err(PtyError::Spawn)?;
        drop(slave);

        // Non-blocking, as the runtime's readiness-based I/O requires; the
        // flag belongs to the open file, so both descriptors share it.
        rustix::io::ioctl_fionbio(&master, true).map_err(|e| PtyError::Pty(e.into()))?;
        let writer = master.try_clone().map_err(PtyError::Pty)?;
        // The "pipe" types are tokio's readiness-driven wrappers for any
        // stream-like descriptor; a PTY master behaves as one.
        let reader = pipe::Receiver::from_owned_fd_unchecked(master).map_err(PtyError::Pty)?;
        let writer = pipe::Sender::from_owned_fd_unchecked(writer).map_err(PtyError::Pty)?;
        Ok((
            Self {
                reader,
                writer,
                pid: child.0,
            },
            child.1,
        ))
    }

    /// The shell's process id, which is also its process group and session.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Reads output; `Ok(0)` once the terminal has hung up (every process
    /// holding it has exited), which Linux reports as `EIO`.
    ///
    /// The terminal hands out at most a few KiB per read, so after waking
    /// up this keeps reading what is already there until `buf` is full:
    /// one wake-up and one message per flood chunk instead of many. It
    /// never waits for more once something has been read, so a keystroke's
    /// echo is not delayed.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            if filled == 0 {
                self.reader.readable().await?;
            }
            match self.reader.try_read(&mut buf[filled..]) {
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if filled > 0 {
                        return Ok(filled);
                    }
                }
                // The hang-up is reported by the next call.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Ok(filled)
                }
                Err(e) if filled > 0 => {
                    tracing::debug!(error = %e, "reading the terminal failed after a partial read");
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes input; returns how much was taken.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.writer.writable().await?;
            match self.writer.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }

    /// Changes the terminal size; the kernel sends the shell `SIGWINCH`.
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        tcsetwinsize(self.writer.as_fd(), winsize(cols, rows)).map_err(io::Error::from)
    }

    /// Sends `signal` to the shell's whole process group, so jobs it
    /// started in the foreground get it too.
    pub fn signal_group(&self, signal: nix::sys::signal::Signal) {
        let group = nix::unistd::Pid::from_raw(self.pid);
        if let Err(e) = nix::sys::signal::killpg(group, signal) {
            tracing::debug!(pid = self.pid, %signal, error = %e, "signalling the shell failed");
        }
    }
}

/// Makes the child a session leader whose controlling terminal is its
/// standard input (the PTY slave), as a login does, so job control and
/// Ctrl-C reach the right processes.
#[allow(unsafe_code)]
fn set_controlling_terminal(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe operations are allowed. It makes two raw
    // system calls through rustix (setsid, ioctl TIOCSCTTY), which allocate
    // nothing and take no locks.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid().map_err(io::Error::from)?;
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin()).map_err(io::Error::from)?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(shell: Shell, installed: &[&str]) -> Option<&'static Path> {
        find_shell_with(shell, |p| installed.iter().any(|i| Path::new(i) == p))
    }

    #[test]
    fn bash_is_preferred_and_sh_stands_in_when_it_is_missing() {
        let full = ["/bin/sh", "/usr/bin/bash", "/bin/zsh"];
        assert_eq!(find(Shell::Bash, &full), Some(Path::new("/usr/bin/bash")));
        // A busybox image: no bash, the default session gets sh.
        let busybox = ["/bin/sh"];
        assert_eq!(find(Shell::Bash, &busybox), Some(Path::new("/bin/sh")));
        assert_eq!(find(Shell::Bash, &[]), None);
    }

    #[test]
    fn shells_asked_for_by_name_have_no_stand_in() {
        let busybox = ["/bin/sh"];
        assert_eq!(find(Shell::Zsh, &busybox), None);
        assert_eq!(find(Shell::Pwsh, &busybox), None);
        assert_eq!(
            find(Shell::Zsh, &["/bin/sh", "/usr/bin/zsh"]),
            Some(Path::new("/usr/bin/zsh"))
        );
    }
}
