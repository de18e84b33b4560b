//! `seashell image build` on the minimal busybox image (about a second, no
//! network): the build's output name only ever holds a complete image; a
//! second build reuses it; `--force` replaces it; an interrupted build leaves
//! nothing under the output name and the next build cleans up after it; a
//! directory that is not an image is never replaced.
//!
//! The same code paths build the default Debian image, which takes minutes
//! and downloads packages; `scripts/build-default-image.sh` builds and
//! verifies that one.
//!
//! Building needs root (the image's files are owned by root and
//! `cloudshell-user`); as any other user the tests check that the command
//! says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn seashell() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seashell"))
}

fn is_root() -> bool {
    // `id -u` rather than a libc dependency for one call.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn build(output: &Path, extra: &[&str]) -> Output {
    seashell()
        .args(["image", "build", "--minimal", "--output"])
        .arg(output)
        .args(extra)
        .env_remove("BUSYBOX")
        .output()
        .expect("run seashell image build")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Entries of `dir` whose names start with `prefix`.
fn leftovers(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

fn assert_complete(output: &Path) {
    assert!(
        output.join("bin/busybox").is_file(),
        "no busybox in {output:?}"
    );
    assert!(output.join("bin/sh").exists(), "no sh in {output:?}");
    let info = std::fs::read_to_string(output.join("etc/seashell-image")).expect("image info");
    assert!(info.contains("NAME=seashell-minimal\n"), "{info}");
    assert!(info.contains("PACKAGES_DIGEST=sha256:"), "{info}");
    assert!(info.contains("BUILD_DATE=20"), "{info}");
}

#[test]
fn builds_then_reuses_then_force_rebuilds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("min");
    if !is_root() {
        let out = build(&output, &[]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("must run as root"),
            "{}",
            text(&out.stderr)
        );
        assert!(!output.exists());
        return;
    }

    let out = build(&output, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Built seashell-minimal"),
        "{}",
        text(&out.stdout)
    );
    // Not a terminal: plain step lines, no spinner escapes.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[1/3] "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert_complete(&output);
    assert!(leftovers(dir.path(), ".min.partial-").is_empty());
    assert!(dir.path().join("min.build.log").is_file());

    // A second build reuses the image as it is.
    let canary = output.join("canary");
    std::fs::write(&canary, "old image").expect("write canary");
    let out = build(&output, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Reusing seashell-minimal"),
        "{}",
        text(&out.stdout)
    );
    assert!(canary.exists(), "a reused image must be left untouched");

    // --force builds a new tree and swaps it in.
    let out = build(&output, &["--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Built seashell-minimal"),
        "{}",
        text(&out.stdout)
    );
    assert!(!canary.exists(), "--force must replace the old image");
    assert_complete(&output);
    assert!(leftovers(dir.path(), ".min.partial-").is_empty());
    assert!(leftovers(dir.path(), ".min.old-").is_empty());

    // Another kind of image is not silently replaced (this fails before any
    // download: the output check comes first).
    let out = seashell()
        .args(["image", "build", "--output"])
        .arg(&output)
        .output()
        .expect("run seashell image build");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("pass --force"),
        "{}",
        text(&out.stderr)
    );
    assert_complete(&output);
}

#[test]
fn interrupted_build_leaves_nothing_under_the_output_name() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("min");
    let started = dir.path().join("started");

    // A busybox stand-in that hangs once the build has created its tree
    // (build.sh lists the applets from inside it), so the build can be
    // killed halfway.
    let real = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox-static is installed");
    let wrapper = dir.path().join("slow-busybox");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$PWD\" in *.partial-*) touch '{}'; sleep 60 ;; esac\nexec {real} \"$@\"\n",
            started.display()
        ),
    )
    .expect("write wrapper");
    let chmod = Command::new("chmod").arg("755").arg(&wrapper).status();
    assert!(chmod.map(|s| s.success()).unwrap_or(false));

    let mut child = {
        use std::os::unix::process::CommandExt as _;
        seashell()
            .args(["image", "build", "--minimal", "--output"])
            .arg(&output)
            .env("BUSYBOX", &wrapper)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn seashell image build")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the build never reached build.sh's applet loop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Kill the whole build (seashell, sh, the stand-in) as a crash would.
    let kill = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    assert!(kill.map(|s| s.success()).unwrap_or(false));
    let _ = child.wait();

    assert!(
        !output.exists(),
        "an interrupted build must leave nothing under the output name"
    );
    assert_eq!(
        leftovers(dir.path(), ".min.partial-").len(),
        1,
        "the half-made tree has its temporary name"
    );

    // The next build removes the leftovers and completes.
    let out = build(&output, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Built seashell-minimal"));
    assert_complete(&output);
    assert!(leftovers(dir.path(), ".min.partial-").is_empty());
}

#[test]
fn a_directory_that_is_not_an_image_is_never_replaced() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("data");
    std::fs::create_dir(&output).expect("mkdir");
    std::fs::write(output.join("precious"), "keep me").expect("write");
    for extra in [&[][..], &["--force"][..]] {
        let out = build(&output, extra);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("not an image built by Seashell"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(output.join("precious")).expect("read"),
            "keep me"
        );
    }

    // An empty directory, on the other hand, is simply filled.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = build(&empty, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_complete(&empty);
}
