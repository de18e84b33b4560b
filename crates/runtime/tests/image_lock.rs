//! The default image's Python lock against the real PyPI and the host's real
//! pip, the way the image build uses it (`--require-hashes --no-deps
//! --only-binary=:all:`), for the image's Python (CPython 3.11) on both
//! architectures the lock covers:
//!
//! - every pinned file pip picks is on PyPI with exactly a digest the lock
//!   lists, and the lock installs with nothing else fetched;
//! - one altered digest makes pip refuse, naming the package, before the
//!   file can be used.
//!
//! Needs `python3` with `venv` (scripts/aws-clients.sh installs it) and
//! access to PyPI; fails without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seashell_runtime::image::DEFAULT_PIP_LOCK;
use sha2::{Digest, Sha256};

/// A throwaway virtual environment, so the host's Python packages and pip
/// configuration play no part.
fn venv(dir: &Path) -> PathBuf {
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed (apt-get install python3-venv): {e}"));
    assert!(
        out.status.success(),
        "python3 -m venv failed (apt-get install python3-venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("bin/python")
}

/// `pip download` of `lock` as the image installs it: hashes required, no
/// dependency resolution, wheels only, for CPython 3.11 on `arch`.
fn download(python: &Path, lock: &Path, arch: &str, dest: &Path) -> Output {
    Command::new(python)
        .args(["-m", "pip", "download", "--disable-pip-version-check"])
        .args(["--require-hashes", "--no-deps", "--only-binary=:all:"])
        .args(["--implementation", "cp", "--python-version", "3.11"])
        .args(["--abi", "cp311", "--abi", "abi3", "--abi", "none"])
        .args(["--platform", &format!("manylinux_2_36_{arch}")])
        .args(["--platform", &format!("manylinux_2_17_{arch}")])
        .args(["--platform", &format!("manylinux2014_{arch}")])
        .arg("--requirement")
        .arg(lock)
        .arg("--dest")
        .arg(dest)
        // PyPI only, as inside the image's tree (whose environment is
        // cleared): no find-links directory, other index or config file.
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_NO_INDEX")
        .env_remove("PIP_CONSTRAINT")
        .output()
        .expect("running pip")
}

fn wheels(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("reading a downloaded wheel");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_python_lock_matches_pypi_and_an_altered_hash_is_refused() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-lock");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    let python = venv(&tmp.join("venv"));
    let lock = tmp.join("pip-requirements.lock");
    std::fs::write(&lock, DEFAULT_PIP_LOCK).expect("write lock");
    let pinned = DEFAULT_PIP_LOCK
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("=="))
        .count();

    // The lock as it is: every file pip picks matches a pinned digest.
    let mut yaml_digest = None;
    for arch in ["x86_64", "aarch64"] {
        let dest = tmp.join(format!("ok-{arch}"));
        let out = download(&python, &lock, arch, &dest);
        assert!(
            out.status.success(),
            "pip refused the lock for {arch}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = wheels(&dest);
        assert_eq!(got.len(), pinned, "{arch}: one wheel per pin: {got:?}");
        for wheel in &got {
            let digest = sha256_hex(wheel);
            assert!(
                DEFAULT_PIP_LOCK.contains(&format!("--hash=sha256:{digest}")),
                "{} ({digest}) is not pinned in the lock",
                wheel.display()
            );
            let name = wheel.file_name().unwrap_or_default().to_string_lossy();
            if arch == "x86_64" && name.to_ascii_lowercase().starts_with("pyyaml-") {
                yaml_digest = Some(digest);
            }
        }
    }

    // One altered digest: the one of the x86_64 PyYAML wheel, among the
    // many digests of that release's wheels, so pip has other digests of
    // that package to (wrongly) accept it by.
    let real = yaml_digest.expect("a PyYAML wheel was downloaded for x86_64");
    let flipped = if real.ends_with('0') { "1" } else { "0" };
    let altered = format!("{}{flipped}", &real[..real.len() - 1]);
    let tampered_text = DEFAULT_PIP_LOCK.replace(
        &format!("--hash=sha256:{real}"),
        &format!("--hash=sha256:{altered}"),
    );
    assert_ne!(tampered_text, DEFAULT_PIP_LOCK);
    let tampered = tmp.join("tampered.lock");
    std::fs::write(&tampered, tampered_text).expect("write tampered lock");
    let dest = tmp.join("tampered-x86_64");
    let out = download(&python, &tampered, "x86_64", &dest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "pip accepted a lock with an altered hash:\n{stderr}"
    );
    assert!(
        stderr.contains("THESE PACKAGES DO NOT MATCH THE HASHES"),
        "pip failed for another reason than the hash:\n{stderr}"
    );
    // pip lists the digests it expected (the altered one among them) and
    // the one it got (the real one, which the lock no longer holds).
    assert!(
        stderr.contains("pyyaml==")
            && stderr.contains(&altered)
            && stderr
                .lines()
                .any(|l| l.trim_start().starts_with("Got") && l.contains(&real)),
        "the refusal does not name the package and the digests:\n{stderr}"
    );
    assert!(
        !wheels(&dest).iter().any(|w| w
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_ascii_lowercase()
            .starts_with("pyyaml-")),
        "the mismatching wheel was kept: {:?}",
        wheels(&dest)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
