//! Init-process duties: reaping every child and waiting for the stop
//! signal.
//!
//! As PID 1 of the environment the agent inherits every orphaned process,
//! and each one stays a zombie until someone waits for it. The [`Reaper`]
//! therefore waits for *any* child (`waitpid(-1)`) whenever `SIGCHLD`
//! arrives, and hands the exit codes of the shells it started to their
//! sessions. Because it is the only place that waits, a shell's status can
//! never be taken by someone else.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::oneshot;

/// Exit codes follow the shell convention: a process killed by signal N
/// reports 128 + N.
const SIGNAL_EXIT_BASE: i32 = 128;

/// Collects exited children and delivers the exit codes of watched ones.
#[derive(Debug, Default)]
pub struct Reaper {
    waiting: Mutex<HashMap<i32, oneshot::Sender<i32>>>,
}

impl Reaper {
    /// A reaper watching nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a child with `spawn` and watches it. The lock is held across
    /// the spawn, so the child cannot be reaped before it is registered.
    pub fn spawn_watched(
        &self,
        spawn: impl FnOnce() -> io::Result<std::process::Child>,
    ) -> io::Result<(i32, oneshot::Receiver<i32>)> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let child = spawn()?;
        let pid = i32::try_from(child.id())
            .map_err(|_| io::Error::other("child pid does not fit in pid_t"))?;
        // Dropping a std `Child` neither kills nor waits for it; the reaper
        // does the waiting.
        drop(child);
        let (tx, rx) = oneshot::channel();
        waiting.insert(pid, tx);
        Ok((pid, rx))
    }

    /// Waits for every child that has exited, without blocking, and
    /// reports those being watched.
    pub fn reap(&self) {
        loop {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let (pid, code) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid.as_raw(), SIGNAL_EXIT_BASE + signal as i32)
                }
                // Stopped or continued children are still alive.
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    return;
                }
            };
            match waiting.remove(&pid) {
                Some(tx) => {
                    // The session may be gone already; nothing to tell then.
                    let _ = tx.send(code);
                }
                None => tracing::debug!(pid, code, "reaped an orphaned process"),
            }
        }
    }
}

/// Makes orphaned descendants come to the agent even when it is not PID 1
/// (run by hand, or under a runtime's own init), so it reaps them as it
/// would as PID 1.
pub fn become_subreaper() {
    let me = rustix::process::getpid();
    if !me.is_init() {
        if let Err(e) = rustix::process::set_child_subreaper(Some(me)) {
            tracing::warn!(error = %e, "could not become a child subreaper");
        }
    }
}

/// Installs the `SIGCHLD` handler. Call this before starting any child, so
/// that no exit goes unnoticed.
pub fn child_signal() -> io::Result<Signal> {
    signal(SignalKind::child())
}

/// Reaps children forever: on every `SIGCHLD`, and every few seconds in
/// case a signal was coalesced with one already being handled.
pub async fn run_reaper(reaper: Arc<Reaper>, mut sigchld: Signal) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = tick.tick() => {}
        }
        reaper.reap();
    }
}

/// Installs the stop handlers and returns a future that resolves when the
/// environment is asked to stop: `SIGTERM` (what the container runtime
/// sends) or `SIGINT` (Ctrl-C when run by hand). Install early: PID 1
/// ignores signals it has no handler for.
pub fn stop_signals() -> io::Result<impl std::future::Future<Output = &'static str>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
