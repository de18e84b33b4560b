//! Running external programs with useful errors.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// Directories searched after `PATH`: system tools live in sbin on Debian
/// and a non-login root shell does not always have them in `PATH`.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Finds `name` in `PATH` and the usual system directories. A name that
/// contains a slash is taken as a path.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds `program` or fails naming the Debian package that provides it.
pub(crate) fn require_program(program: &str, package: &str) -> Result<PathBuf> {
    find_program(program).ok_or_else(|| Error::MissingProgram {
        program: program.to_owned(),
        package: package.to_owned(),
    })
}

/// Renders a command line for error messages and logs.
pub(crate) fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with stdin closed, capturing its output; a
/// non-zero exit becomes [`Error::Command`] carrying its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let line = display(cmd);
    tracing::debug!(command = %line, "running");
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Command {
            command: line.clone(),
            status: "could not be started".into(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Like [`run`] but returns standard output as text.
pub(crate) fn run_stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Convenience: a [`Command`] for `program` with `args`.
pub(crate) fn command<I, S>(program: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}
