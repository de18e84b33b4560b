//! Real environments for tests and benchmarks: the static agent, server
//! settings for the minimal image, and the cleanup of what environments
//! leave on the host. Self-contained, so benchmarks and other crates' tests
//! can include it with `#[path]`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

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

/// Makes `config` run the minimal image without network, under a cgroup
/// parent of its own, with the background duties every second.
pub fn minimal(mut config: seashell_server::Config) -> seashell_server::Config {
    let s = &mut config.cloudshell;
    s.image = "minimal".into();
    s.agent_binary = Some(agent_binary());
    s.network = false;
    s.cgroup_parent = format!(
        "seashell-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    s.duty_interval_seconds = 1;
    config
}

/// Cleans up after a test server when dropped, also when the test fails.
pub struct Cleanup(pub seashell_server::Config);

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(&self.0);
    }
}

/// Removes what a test server's environments left on the host: containers
/// (through the runtime's reconciliation with nothing to keep), mounts and
/// cgroups. Call at the end of a test, after the server stopped.
pub fn cleanup(config: &seashell_server::Config) {
    let s = &config.cloudshell;
    let state_dir = s
        .state_dir
        .clone()
        .unwrap_or_else(|| seashell_server::envs::backend::default_state_dir(&config.data_dir));
    let rt = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
        data_dir: s.runtime_dir(&config.data_dir),
        state_dir: state_dir.clone(),
        cgroup_parent: s.cgroup_parent.clone(),
        network: None,
        ..seashell_runtime::RuntimeConfig::default()
    });
    if let Ok(rt) = rt {
        match rt.reconcile(&|_| false) {
            Ok(r) if !r.errors.is_empty() => eprintln!("cleanup reported errors: {:?}", r.errors),
            Err(e) => eprintln!("cleanup: {e}"),
            _ => {}
        }
        if let Err(e) = rt.remove_cgroup_parent() {
            eprintln!("cleanup: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    let runtime_dir = s.runtime_dir(&config.data_dir);
    if nothing_mounted_under(&runtime_dir) {
        let _ = std::fs::remove_dir_all(&runtime_dir);
    }
}

/// Whether no mount point lies under `dir` (so removing it cannot reach
/// through a mount).
pub fn nothing_mounted_under(dir: &std::path::Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().to_string();
    !mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m.starts_with(&prefix))
}
