//! Thin wrapper over the OCI runtime command line (`runc`, `crun`).
//!
//! All containers of one Seashell instance live under a private `--root`
//! state directory, so `list` shows only Seashell's containers and two
//! instances (or test runs) never see each other's.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cmd;
use crate::error::{Error, Result};

/// Container state as reported by `runc state`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ContainerState {
    pub id: String,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// Pid of the init process on the host (0 once stopped).
    #[serde(default)]
    pub pid: i64,
}

/// Output of a command run inside an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code; `128 + n` when killed by signal `n` (shell convention).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ExecOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// The OCI runtime binary and its state directory.
#[derive(Debug, Clone)]
pub(crate) struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
}

impl Runc {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    /// `runc create`, with the runtime's own log going to `log`.
    ///
    /// The container's standard streams are `/dev/null`: the init process
    /// inherits them, and anything else (a host file, a pipe) would give the
    /// environment a host resource it could fill or block on. runc reports
    /// its errors, including those from inside the new namespaces, through
    /// `--log`; the lines written by this call become the error's text.
    pub fn create(&self, id: &str, bundle: &Path, log: &Path) -> Result<()> {
        let len_before = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        let mut c = self.cmd();
        // No session keyring per container: the kernel counts keyrings per
        // host uid (`kernel.keys.maxkeys`, 200 by default), and every
        // environment's root is the same mapped uid, which capped a host at
        // about 200 environments. The keyring syscalls are denied by the
        // seccomp profile, so an environment cannot use the inherited one.
        c.arg("--log")
            .arg(log)
            .args(["create", "--no-new-keyring", "--bundle"])
            .arg(bundle)
            .arg(id);
        let line = cmd::display(&c);
        tracing::debug!(command = %line, "running");
        let status = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| Error::Command {
                command: line.clone(),
                status: "could not be started".into(),
                stderr: e.to_string(),
            })?;
        if status.success() {
            return Ok(());
        }
        let mut text = String::new();
        if let Ok(mut f) = File::open(log) {
            use std::io::{Seek, SeekFrom};
            let _ = f.seek(SeekFrom::Start(len_before));
            let _ = f.read_to_string(&mut text);
        }
        Err(Error::Command {
            command: line,
            status: status.to_string(),
            stderr: text.trim().to_owned(),
        })
    }

    /// `runc start`.
    pub fn start(&self, id: &str) -> Result<()> {
        cmd::run(self.cmd().args(["start", id])).map(drop)
    }

    /// `runc state`; `None` if the container does not exist.
    pub fn state(&self, id: &str) -> Result<Option<ContainerState>> {
        match cmd::run_stdout(self.cmd().args(["state", id])) {
            Ok(out) => serde_json::from_str(&out)
                .map(Some)
                .map_err(|e| Error::Parse {
                    what: "runc state",
                    detail: e.to_string(),
                }),
            Err(Error::Command { stderr, .. }) if stderr.contains("does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `runc kill <id> <signal>`; a container that already stopped is fine.
    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        match cmd::run(self.cmd().args(["kill", id, signal])) {
            Ok(_) => Ok(()),
            Err(Error::Command { stderr, .. })
                if stderr.contains("not running")
                    || stderr.contains("does not exist")
                    || stderr.contains("process already finished") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `runc delete --force`: kills what is left and removes the container
    /// and its cgroups. A missing container is fine.
    pub fn delete(&self, id: &str) -> Result<()> {
        match cmd::run(self.cmd().args(["delete", "--force", id])) {
            Ok(_) => Ok(()),
            Err(Error::Command { stderr, .. }) if stderr.contains("does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `runc list`: ids of all containers under the state directory.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let out = cmd::run_stdout(self.cmd().args(["list", "--format", "json"]))?;
        let trimmed = out.trim();
        if trimmed.is_empty() || trimmed == "null" {
            return Ok(Vec::new());
        }
        serde_json::from_str(trimmed).map_err(|e| Error::Parse {
            what: "runc list",
            detail: e.to_string(),
        })
    }

    /// `runc exec --process <json>`, collecting output, with a deadline.
    pub fn exec(&self, id: &str, process_json: &Path, timeout: Duration) -> Result<ExecOutput> {
        let mut c = self.cmd();
        c.args(["exec", "--process"]).arg(process_json).arg(id);
        let line = cmd::display(&c);
        tracing::debug!(command = %line, "running");
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Command {
                command: line.clone(),
                status: "could not be started".into(),
                stderr: e.to_string(),
            })?;
        let out_r = child.stdout.take().map(reader);
        let err_r = child.stderr.take().map(reader);
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Timeout {
                        command: line,
                        seconds: timeout.as_secs(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    return Err(Error::Command {
                        command: line,
                        status: "wait failed".into(),
                        stderr: e.to_string(),
                    })
                }
            }
        };
        // Background processes started by the command may keep the pipes
        // open after it exits; take what arrived by the deadline.
        let collect = |r: Option<Receiver<Vec<u8>>>| {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(200));
            r.and_then(|rx| rx.recv_timeout(wait).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let stdout = collect(out_r);
        let stderr = collect(err_r);
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        Ok(ExecOutput {
            code,
            stdout,
            stderr,
        })
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}
