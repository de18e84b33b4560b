//! `image::ensure`, what the server calls at start: builds an image only
//! when it is missing or incomplete, reuses a complete one at once, waits
//! for a build already running, and never replaces what it must not.
//!
//! Runs on the minimal image (seconds, no network), as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use seashell_runtime::image::{
    self, BuildOptions, BuildOutcome, ImageKind, NoProgress, IMAGE_INFO_FILE,
};

/// A scratch directory removed on drop (the minimal build mounts nothing).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!(
            "seashell-image-ensure-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(output: &Path, kind: ImageKind) -> BuildOptions {
    BuildOptions {
        kind,
        output: output.to_owned(),
        force: false,
        mirror: None,
    }
}

fn ensure(output: &Path) -> image::BuildReport {
    image::ensure(&options(output, ImageKind::Minimal), &mut NoProgress)
        .unwrap_or_else(|e| panic!("ensure {}: {e}", output.display()))
}

#[test]
fn builds_only_what_is_missing_or_incomplete() {
    let dir = Scratch::new("basic");
    let out = dir.0.join("minimal");

    let first = ensure(&out);
    assert_eq!(first.outcome, BuildOutcome::Built);
    assert_eq!(first.info.name, "seashell-minimal");
    assert!(image::complete(&out, ImageKind::Minimal)
        .expect("complete")
        .is_some());

    // A complete image is reused, untouched: same build, no new log.
    let log = image::build_log_path(&out);
    std::fs::remove_file(&log).expect("remove log");
    let again = ensure(&out);
    assert_eq!(again.outcome, BuildOutcome::Reused);
    assert_eq!(again.info, first.info);
    assert!(!log.exists(), "a reuse wrote a build log");

    // A damaged image (its binary no longer the one its description
    // records) is rebuilt and swapped in.
    std::fs::write(out.join("bin/busybox"), b"not busybox").expect("damage");
    assert!(image::complete(&out, ImageKind::Minimal)
        .expect("complete")
        .is_none());
    let rebuilt = ensure(&out);
    assert_eq!(rebuilt.outcome, BuildOutcome::Built);
    let busybox = std::fs::read(out.join("bin/busybox")).expect("busybox");
    assert_eq!(
        busybox,
        std::fs::read("/bin/busybox").expect("host busybox"),
        "the rebuilt image has the real busybox again"
    );
    // So is one whose shell is gone.
    std::fs::remove_file(out.join("bin/sh")).expect("remove sh");
    assert_eq!(ensure(&out).outcome, BuildOutcome::Built);
    assert!(out.join("bin/sh").symlink_metadata().is_ok());
    assert_eq!(ensure(&out).outcome, BuildOutcome::Reused);
}

#[test]
fn never_replaces_a_foreign_directory_or_another_image() {
    let dir = Scratch::new("foreign");
    let foreign = dir.0.join("mine");
    std::fs::create_dir_all(&foreign).expect("dir");
    std::fs::write(foreign.join("keep.txt"), "mine").expect("file");
    let err = image::ensure(&options(&foreign, ImageKind::Minimal), &mut NoProgress)
        .expect_err("foreign directory");
    assert!(
        err.to_string().contains("not an image built by Seashell"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("keep.txt")).expect("kept"),
        "mine"
    );

    // An image of another kind: refused before anything is built or
    // downloaded.
    let out = dir.0.join("minimal");
    ensure(&out);
    let before = std::fs::read_to_string(out.join(IMAGE_INFO_FILE)).expect("info");
    let err =
        image::ensure(&options(&out, ImageKind::Default), &mut NoProgress).expect_err("other kind");
    assert!(err.to_string().contains("another image"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join(IMAGE_INFO_FILE)).expect("info"),
        before
    );
}

#[test]
fn waits_for_a_build_already_running() {
    let dir = Scratch::new("wait");
    let out = dir.0.join("minimal");
    // Another build holds the output's lock (util-linux `flock`, as a
    // concurrent `seashell image build` would).
    let lock = dir.0.join(".minimal.lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .stdout(Stdio::null())
        .spawn()
        .expect("flock (util-linux)");
    // Until flock has the lock, ensure could take it first.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !held(&lock) {
        assert!(std::time::Instant::now() < deadline, "flock never locked");
        std::thread::sleep(Duration::from_millis(20));
    }
    // `build` fails at once; `ensure` waits, then builds.
    let err =
        image::build(&options(&out, ImageKind::Minimal), &mut NoProgress).expect_err("locked");
    assert!(err.to_string().contains("another build"), "{err}");
    let report = ensure(&out);
    assert!(
        holder.try_wait().expect("wait").is_some(),
        "ensure returned while the other build still held the lock"
    );
    assert_eq!(report.outcome, BuildOutcome::Built);
    let _ = holder.wait();
}

/// Whether someone holds `lock` (a non-blocking `flock` fails).
fn held(lock: &Path) -> bool {
    lock.exists()
        && !Command::new("flock")
            .args(["--nonblock", "--exclusive"])
            .arg(lock)
            .arg("true")
            .status()
            .map(|s| s.success())
            .unwrap_or(true)
}
