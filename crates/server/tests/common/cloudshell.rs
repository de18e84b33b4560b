//! A server that runs real environments (the minimal busybox image, the
//! static agent as init, runc as root), and the CloudShell API client of
//! `api_client.rs`.

#[allow(unused_imports)] // Re-exported for the tests that use them from here.
pub use super::api_client::{Answer, Api};
#[allow(unused_imports)]
pub use super::environments::{agent_binary, cleanup, minimal, Cleanup};
use super::TestDb;

/// A configuration whose environments run the minimal image without
/// network, under a cgroup parent of the test's own.
pub fn config(db: &TestDb) -> seashell_server::Config {
    minimal(super::server_config(db))
}

/// Runs `script` as cloudshell-user in a running environment of `running`
/// and returns its standard output; a failure fails the test.
pub fn sh(running: &seashell_server::Running, id: &str, script: &str) -> String {
    let rt = running.state().envs.runtime().expect("runtime");
    let out = rt
        .exec(
            &seashell_runtime::EnvironmentId::new(id).expect("id"),
            seashell_runtime::ExecUser::CloudshellUser,
            &["sh", "-c", script],
            std::time::Duration::from_secs(60),
        )
        .expect("exec");
    assert!(out.code == 0, "{script}: {out:?}");
    out.stdout
}
