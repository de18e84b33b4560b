//! Error type of the runtime crate.
//!
//! Every variant carries enough context to act on it without a debugger:
//! which command failed and what it printed, which path could not be
//! touched, which host feature is missing and which package provides it.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors returned by the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program the runtime needs is not installed.
    #[error("required program `{program}` was not found in PATH, /usr/sbin or /sbin; install the Debian package `{package}`")]
    MissingProgram {
        /// Program name, e.g. `mkfs.ext4`.
        program: String,
        /// Debian package that provides it.
        package: String,
    },

    /// The host cannot run environments; `reason` explains why and what to do.
    #[error("host check failed: {check}: {reason}")]
    Host {
        /// Short name of the failed check.
        check: &'static str,
        /// Explanation and remedy.
        reason: String,
    },

    /// An external command exited unsuccessfully.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for logs.
        command: String,
        /// Exit status description.
        status: String,
        /// What the command wrote to standard error (trimmed).
        stderr: String,
    },

    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "creating directory".
        action: &'static str,
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A system call (mount, umount, …) failed.
    #[error("{action} {path}: {source}")]
    Sys {
        /// What was being done, e.g. "mounting overlay on".
        action: &'static str,
        /// Path involved.
        path: PathBuf,
        /// Underlying errno.
        #[source]
        source: nix::errno::Errno,
    },

    /// Building or writing the OCI configuration failed.
    #[error("OCI runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),

    /// Output of an external tool could not be understood.
    #[error("cannot parse output of {what}: {detail}")]
    Parse {
        /// Which tool or file.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },

    /// A caller-supplied name or value is not acceptable.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// Kind of value (environment id, hostname, …).
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The environment does not exist in the OCI runtime.
    #[error("environment {id} does not exist")]
    NotFound {
        /// Environment id.
        id: String,
    },

    /// The requested lifecycle operation is not possible in the current state.
    #[error("cannot {operation} environment {id} while it is {state}")]
    InvalidTransition {
        /// Environment id.
        id: String,
        /// Operation attempted.
        operation: &'static str,
        /// Current state.
        state: String,
    },

    /// A home volume is already attached (mounted by another environment).
    #[error("home volume {path} is in use by loop device(s) {devices}")]
    HomeInUse {
        /// Image file.
        path: PathBuf,
        /// Loop devices backed by it.
        devices: String,
    },

    /// The data directory's file system has too little free space to start
    /// another environment.
    #[error("the file system of {path} has {free_mib} MiB free; starting an environment needs {needed_mib} MiB (its root disk plus the {floor_mib} MiB kept free)")]
    LowDiskSpace {
        /// The data directory.
        path: PathBuf,
        /// Free space, in MiB.
        free_mib: u64,
        /// What a start needs, in MiB.
        needed_mib: u64,
        /// The configured floor (`RuntimeConfig::min_free_bytes`), in MiB.
        floor_mib: u64,
    },

    /// An image was prepared for a different uid/gid range than requested.
    #[error("image {image} is prepared for host id base {prepared}, environment uses {requested}")]
    ImageMapping {
        /// Image directory.
        image: PathBuf,
        /// Base the image tree is owned by.
        prepared: u32,
        /// Base the environment maps to.
        requested: u32,
    },

    /// A process run with a deadline did not finish in time.
    #[error("command `{command}` did not finish within {seconds} s")]
    Timeout {
        /// The command line.
        command: String,
        /// The deadline.
        seconds: u64,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: nix::errno::Errno,
    ) -> Self {
        Error::Sys {
            action,
            path: path.into(),
            source,
        }
    }
}
