//! Shared fixture of the runtime integration tests.
//!
//! Each test gets its own data directory, runc state directory and cgroup
//! parent, and a [`Fixture`] whose `Drop` removes every container, mount,
//! loop device, cgroup and file it created, even when the test panics.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::Duration;

use seashell_runtime::{
    EnvironmentId, EnvironmentSpec, ExecOutput, ExecUser, HomeKey, IdMap, Limits, NetworkConfig,
    PreparedImage, Runtime, RuntimeConfig,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

const TEST_ROOT_PREFIX: &str = "seashell-rt-";

fn config_for(
    root: &Path,
    tag: &str,
    home_bytes: u64,
    network: Option<NetworkConfig>,
) -> RuntimeConfig {
    RuntimeConfig {
        oci_runtime: "runc".into(),
        data_dir: root.join("data"),
        state_dir: root.join("runc"),
        cgroup_parent: format!("seashell-test-{tag}"),
        home_bytes,
        stop_timeout: Duration::from_secs(3),
        network,
        min_free_bytes: seashell_runtime::DEFAULT_MIN_FREE_BYTES,
    }
}

/// Kills host processes a dead test run started (web servers of the network
/// test), recognised by the run's directory on their command line.
fn kill_processes_using(root: &Path) {
    let needle = root.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Cleans up after test processes that were killed before their guards
/// ran (for example by a CI timeout): their directories carry their pid.
fn sweep_dead_runs() {
    let Ok(rd) = std::fs::read_dir("/var/tmp") else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_prefix(TEST_ROOT_PREFIX) else {
            continue;
        };
        let pid = tag
            .strip_prefix('t')
            .and_then(|t| t.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let root = entry.path();
        eprintln!("cleaning up after dead test run {}", root.display());
        kill_processes_using(&root);
        // The network test's stand-in for the outside world.
        let _ = Command::new("ip")
            .args(["netns", "del", &format!("seashell-out-{pid}")])
            .stderr(std::process::Stdio::null())
            .status();
        let config = config_for(&root, tag, 0, Some(NetworkConfig::default()));
        // The directory stays until a sweep succeeds: it is what leads the
        // next run here, to retry what this one could not remove.
        let swept = match Runtime::new(config) {
            Ok(rt) => {
                let clean = match rt.reconcile(&|_| false) {
                    Ok(r) if r.errors.is_empty() => true,
                    Ok(r) => {
                        eprintln!("cleanup of {}: {:?}", root.display(), r.errors);
                        false
                    }
                    Err(e) => {
                        eprintln!("cleanup of {}: {e}", root.display());
                        false
                    }
                };
                let _ = rt.remove_cgroup_parent();
                clean
            }
            Err(_) => false,
        };
        if swept && mounts_under(&root).is_empty() && loops_under(&root).is_empty() {
            let _ = std::fs::remove_dir_all(&root);
        }
    }
}

/// Init process of test environments: waits for SIGTERM and exits cleanly.
pub const INIT: &[&str] = &[
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done",
];

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Fails (never skips) when a tool the tests need is missing.
pub fn require_host_tools() {
    assert!(
        nix_is_root(),
        "the runtime integration tests must run as root (they create containers, mounts and loop devices)"
    );
    for (program, package) in [
        ("runc", "runc"),
        ("mkfs.ext4", "e2fsprogs"),
        ("losetup", "mount"),
        ("mount", "mount"),
    ] {
        let found = [
            "/usr/sbin",
            "/sbin",
            "/usr/bin",
            "/bin",
            "/usr/local/bin",
            "/usr/local/sbin",
        ]
        .iter()
        .any(|d| Path::new(d).join(program).exists());
        assert!(
            found,
            "`{program}` is missing: install the Debian package `{package}` (scripts/install-runtime-deps.sh)"
        );
    }
    let busybox_static = Command::new("ldd")
        .arg("/bin/busybox")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(false);
    assert!(
        Path::new("/bin/busybox").exists() && busybox_static,
        "/bin/busybox is missing or not static: install the Debian package `busybox-static` \
         (scripts/install-runtime-deps.sh)"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

pub struct Fixture {
    pub rt: Runtime,
    pub root: PathBuf,
    pub image: PreparedImage,
    pub id_map: IdMap,
    pub tag: String,
}

pub struct Options {
    pub id_map: IdMap,
    pub home_bytes: u64,
    pub network: Option<NetworkConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            id_map: IdMap::default(),
            home_bytes: 64 << 20,
            network: None,
        }
    }
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        Self::with(name, Options::default())
    }

    pub fn with(name: &str, opts: Options) -> Fixture {
        require_host_tools();
        SWEEP.call_once(sweep_dead_runs);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("t{}-{n}-{name}", std::process::id());
        let root = PathBuf::from("/var/tmp").join(format!("{TEST_ROOT_PREFIX}{tag}"));
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("stale test dir");
        }
        std::fs::create_dir_all(&root).expect("create test dir");
        let src = root.join("image-src");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/minimal/build.sh");
        let out = Command::new("sh")
            .arg(&script)
            .arg(&src)
            .output()
            .expect("run images/minimal/build.sh");
        assert!(
            out.status.success(),
            "images/minimal/build.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = config_for(&root, &tag, opts.home_bytes, opts.network);
        let rt = Runtime::new(config).unwrap_or_else(|e| panic!("runtime host checks: {e}"));
        let image = rt
            .import_image("minimal", &src, opts.id_map)
            .unwrap_or_else(|e| panic!("import image: {e}"));
        Fixture {
            rt,
            root,
            image,
            id_map: opts.id_map,
            tag,
        }
    }

    /// A unique environment id for this fixture.
    pub fn id(&self, name: &str) -> EnvironmentId {
        let raw = format!("{}-{name}", self.tag)
            .to_lowercase()
            .replace('_', "-");
        EnvironmentId::new(raw).expect("valid id")
    }

    pub fn home_key(&self, who: &str) -> HomeKey {
        HomeKey::new(
            "123456789012",
            format!("arn:aws:iam::123456789012:user/{who}"),
            "eu-west-1",
        )
    }

    pub fn spec(
        &self,
        id: &EnvironmentId,
        home: Option<HomeKey>,
        limits: Limits,
    ) -> EnvironmentSpec {
        EnvironmentSpec {
            id: id.clone(),
            hostname: "seashell-env".into(),
            image: self.image.clone(),
            id_map: self.id_map,
            limits,
            home,
            init: INIT.iter().map(|s| (*s).to_owned()).collect(),
            ro_binds: vec![],
        }
    }

    /// Creates and starts an environment.
    pub fn up(&self, id: &EnvironmentId, home: Option<HomeKey>, limits: Limits) {
        self.rt
            .create(&self.spec(id, home, limits))
            .unwrap_or_else(|e| panic!("create {id}: {e}"));
        self.rt
            .start(id)
            .unwrap_or_else(|e| panic!("start {id}: {e}"));
    }

    /// Runs a shell script inside and returns its output.
    pub fn sh(&self, id: &EnvironmentId, user: ExecUser, script: &str) -> ExecOutput {
        self.rt
            .exec(id, user, &["/bin/sh", "-c", script], TIMEOUT)
            .unwrap_or_else(|e| panic!("exec in {id}: {e}"))
    }

    /// Runs a script that must succeed; returns its trimmed stdout.
    pub fn ok(&self, id: &EnvironmentId, user: ExecUser, script: &str) -> String {
        let out = self.sh(id, user, script);
        assert!(out.success(), "`{script}` failed: {out:?}");
        out.stdout.trim().to_owned()
    }

    pub fn env_dir(&self, id: &EnvironmentId) -> PathBuf {
        self.rt.config().data_dir.join("envs").join(id.as_str())
    }
}

/// Mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|t| Path::new(t).starts_with(dir))
        .collect()
}

/// Loop devices whose backing file is under `dir`.
pub fn loops_under(dir: &Path) -> Vec<String> {
    let out = Command::new("losetup")
        .args([
            "--list",
            "--noheadings",
            "--raw",
            "--output",
            "NAME,BACK-FILE",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter(|l| {
            l.split_once(' ')
                .map(|(_, f)| Path::new(f.trim()).starts_with(dir))
                .unwrap_or(false)
        })
        .map(str::to_owned)
        .collect()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let report = self.rt.reconcile(&|_| false);
        match &report {
            Ok(r) if !r.errors.is_empty() => eprintln!("cleanup reported errors: {:?}", r.errors),
            Err(e) => eprintln!("cleanup failed: {e}"),
            _ => {}
        }
        if let Err(e) = self.rt.remove_cgroup_parent() {
            eprintln!("cleanup: {e}");
        }
        let left = mounts_under(&self.root);
        let loops = loops_under(&self.root);
        if left.is_empty() && loops.is_empty() {
            if let Err(e) = std::fs::remove_dir_all(&self.root) {
                eprintln!("cleanup: removing {}: {e}", self.root.display());
            }
        } else {
            // Never delete through a mount.
            eprintln!(
                "cleanup: leaving {} (mounts {left:?}, loops {loops:?})",
                self.root.display()
            );
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "mounts left behind: {left:?}");
            assert!(loops.is_empty(), "loop devices left behind: {loops:?}");
        }
    }
}

/// The static agent binary: `SEASHELL_AGENT_BIN`, else built by
/// `scripts/build-agent.sh` (quick once the static build exists).
pub fn agent_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return PathBuf::from(bin);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/build-agent.sh failed (or set SEASHELL_AGENT_BIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
