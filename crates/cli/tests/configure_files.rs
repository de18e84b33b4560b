//! `seashell configure` (the real binary) and the modes of the files it
//! writes: the shared credentials file is 0600 afterwards whatever was
//! there before — a fresh file, an old one readable by everyone, a leftover
//! temporary file from an interrupted run, a symlink planted where the
//! temporary file goes — and whatever the umask. No server is needed: the
//! command only writes files.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// `seashell configure …` with `umask 000`, so only the command's own
/// modes count, in a home of its own; `answers` go to its prompts.
fn configure(home: &Path, args: &[&str], answers: &str) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_seashell"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run seashell configure");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answers.as_bytes())
        .expect("answers");
    let out = child.wait_with_output().expect("configure");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn interactive(home: &Path) {
    configure(
        home,
        &["configure", "--profile", "seashell"],
        &format!("http://127.0.0.1:8080\nAKIAEXAMPLE12345678\n{SECRET}\nus-east-1\njson\n"),
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn write_with_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The credentials file holds the secret, is a regular file of mode 0600,
/// and no temporary file is left beside it.
fn private_with_secret(home: &Path) -> String {
    let credentials = home.join("credentials");
    let meta = std::fs::symlink_metadata(&credentials).expect("credentials");
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(mode(&credentials), 0o600, "the credentials file's mode");
    let text = std::fs::read_to_string(&credentials).expect("read");
    assert!(text.contains(SECRET), "{text}");
    assert!(
        !home.join("credentials.seashell-tmp").exists(),
        "a temporary file was left"
    );
    text
}

#[test]
fn the_credentials_file_is_private_whatever_was_there() {
    // A fresh home: credentials 0600, config 0644, even with umask 000.
    let home = tempfile::tempdir().expect("tempdir");
    interactive(home.path());
    private_with_secret(home.path());
    assert_eq!(mode(&home.path().join("config")), 0o644);

    // An existing credentials file readable by everyone: replaced by a
    // private one that keeps its other profiles.
    let home = tempfile::tempdir().expect("tempdir");
    write_with_mode(
        &home.path().join("credentials"),
        "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other-secret\n",
        0o644,
    );
    interactive(home.path());
    let text = private_with_secret(home.path());
    assert!(
        text.contains("[other]") && text.contains("other-secret"),
        "{text}"
    );

    // A leftover temporary file of mode 0644 (an interrupted run, or
    // someone else's): not reused with its mode.
    let home = tempfile::tempdir().expect("tempdir");
    write_with_mode(
        &home.path().join("credentials.seashell-tmp"),
        "half a file",
        0o644,
    );
    interactive(home.path());
    private_with_secret(home.path());

    // The same for `configure set` of a credential.
    write_with_mode(
        &home.path().join("credentials.seashell-tmp"),
        "half a file",
        0o666,
    );
    configure(
        home.path(),
        &[
            "configure",
            "--profile",
            "seashell",
            "set",
            "aws_session_token",
            "token-value",
        ],
        "",
    );
    let text = private_with_secret(home.path());
    assert!(text.contains("token-value"), "{text}");

    // A symlink where the temporary file goes: the secrets are not written
    // through it, and its target is left alone.
    let home = tempfile::tempdir().expect("tempdir");
    let elsewhere = home.path().join("elsewhere");
    write_with_mode(&elsewhere, "not yours\n", 0o644);
    std::os::unix::fs::symlink(&elsewhere, home.path().join("credentials.seashell-tmp"))
        .expect("symlink");
    interactive(home.path());
    private_with_secret(home.path());
    assert_eq!(
        std::fs::read_to_string(&elsewhere).expect("read"),
        "not yours\n"
    );
    assert_eq!(mode(&elsewhere), 0o644);
}
