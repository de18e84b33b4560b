//! Environments whose init process is the Seashell agent.
//!
//! The agent (`seashell-agent`, `docs/agent.md`) is a static binary kept on
//! the host. [`AgentOptions::apply`] fills the agent-specific parts of an
//! [`EnvironmentSpec`]: the binary bind-mounted read-only at [`AGENT_PATH`],
//! an optional credentials-token file bind-mounted read-only at
//! [`TOKEN_PATH`], and the agent as the init process with its arguments.
//!
//! The agent runs as root inside the environment's user namespace (a mapped,
//! unprivileged uid on the host): it needs that to start the shells as
//! `cloudshell-user` (uid 1000). Its file transfers rely on `openat2`, which
//! the seccomp profile allows (it is not in [`crate::seccomp::DENIED_SYSCALLS`]).
//!
//! The control socket is created by the agent at [`SOCKET_PATH`], in the
//! environment's own `/run` (part of the root overlay, so it is fresh at
//! every start). The host reaches it through the init process's root
//! directory, `/proc/<host pid>/root/run/seashell/agent.sock`
//! ([`Runtime::agent_socket`]): the path is resolved inside the
//! environment's mount namespace, so no writable host directory has to be
//! shared with the environment, and the socket disappears with it. Root
//! inside owns that directory, so the connect resolves the path inside the
//! environment's root, refuses symbolic links and anything but a socket
//! (`crate::agent_socket`, used by every connect of
//! [`crate::agent_client`] and [`crate::agent_hub`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::environment::{EnvironmentId, EnvironmentSpec, Runtime};
use crate::error::{Error, Result};
use crate::spec::{USER_HOME, USER_ID};

/// Where the agent binary appears inside every environment.
pub const AGENT_PATH: &str = "/opt/seashell/agent";

/// Where the credentials-token file appears inside, when one is given.
pub const TOKEN_PATH: &str = "/opt/seashell/credentials-token";

/// The agent's control socket, inside the environment.
pub const SOCKET_PATH: &str = "/run/seashell/agent.sock";

/// How to run the agent as an environment's init process.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Host path of the static `seashell-agent` binary
    /// (`scripts/build-agent.sh` prints it). The OCI runtime mounts it from
    /// inside the user namespace, so the directories leading to it must be
    /// searchable by everyone (as `/usr/lib/...` or a `0755` build tree are).
    pub binary: PathBuf,
    /// Host path of a file holding the credentials endpoint's token. The
    /// agent makes a random token at each start when this is `None`; the
    /// shells learn the token from their environment either way, so the
    /// server only needs a fixed one if it wants to know it.
    pub credentials_token_file: Option<PathBuf>,
}

impl AgentOptions {
    /// Options for the agent binary at `binary`, with a token made by the
    /// agent.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        AgentOptions {
            binary: binary.into(),
            credentials_token_file: None,
        }
    }

    /// Makes `spec` run the agent: sets its init command and adds the
    /// read-only bind mounts of the binary (and of the token file).
    ///
    /// The token file, if any, is handed to root of the environment
    /// (`chown` to the mapped host uid) with mode `0400`: only the agent
    /// reads it, and host root's own files are unreadable to a mapped uid.
    pub fn apply(&self, spec: &mut EnvironmentSpec) -> Result<()> {
        let _span = tracing::debug_span!("agent.spec", env = %spec.id).entered();
        let meta = std::fs::metadata(&self.binary)
            .map_err(|e| Error::io("reading the agent binary", &self.binary, e))?;
        // The mapped root inside is not root on the host: the binary must be
        // executable by "others" to be started from inside.
        if !meta.is_file() || meta.permissions().mode() & 0o001 == 0 {
            return Err(Error::Invalid {
                what: "agent binary",
                value: self.binary.display().to_string(),
                reason: "must be a regular file executable by everyone (mode o+x)",
            });
        }
        let mut init = vec![
            AGENT_PATH.to_owned(),
            "--socket".to_owned(),
            SOCKET_PATH.to_owned(),
            "--home".to_owned(),
            USER_HOME.to_owned(),
            "--uid".to_owned(),
            USER_ID.to_string(),
            "--gid".to_owned(),
            USER_ID.to_string(),
            "--environment-id".to_owned(),
            spec.id.as_str().to_owned(),
        ];
        spec.ro_binds
            .push((self.binary.clone(), PathBuf::from(AGENT_PATH)));
        if let Some(token) = &self.credentials_token_file {
            hand_to_environment_root(token, spec)?;
            spec.ro_binds
                .push((token.clone(), PathBuf::from(TOKEN_PATH)));
            init.push("--credentials-token-file".to_owned());
            init.push(TOKEN_PATH.to_owned());
        }
        spec.init = init;
        Ok(())
    }
}

fn hand_to_environment_root(path: &Path, spec: &EnvironmentSpec) -> Result<()> {
    let root = spec.id_map.to_host(0).ok_or_else(|| Error::Invalid {
        what: "id map",
        value: format!("{:?}", spec.id_map),
        reason: "does not contain uid 0",
    })?;
    std::os::unix::fs::chown(path, Some(root), Some(root))
        .map_err(|e| Error::io("handing the token file to the environment", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400))
        .map_err(|e| Error::io("setting permissions of", path, e))
}

impl Runtime {
    /// Host pid of the environment's init process (the agent), if it is
    /// running.
    pub fn init_pid(&self, id: &EnvironmentId) -> Result<Option<i32>> {
        Ok(match self.runc().state(id.as_str())? {
            Some(s) if s.pid > 0 && s.status == "running" => i32::try_from(s.pid).ok(),
            _ => None,
        })
    }

    /// Host path of the agent's control socket in a running environment:
    /// [`SOCKET_PATH`] seen through `/proc/<pid>/root` of its init process.
    /// The path is only valid while this init process lives; ask again
    /// after a restart of the environment.
    ///
    /// Do not hand this path to a plain `connect(2)`: root inside can put a
    /// symbolic link there that an ordinary lookup follows on the *host*.
    /// [`crate::agent_client::AgentClient::connect`] and
    /// [`crate::agent_hub::AgentHub::connect`] resolve it inside the
    /// environment's root and connect only to a socket.
    pub fn agent_socket(&self, id: &EnvironmentId) -> Result<PathBuf> {
        match self.init_pid(id)? {
            Some(pid) => Ok(PathBuf::from(format!("/proc/{pid}/root{SOCKET_PATH}"))),
            None => Err(Error::InvalidTransition {
                id: id.to_string(),
                operation: "connect to the agent of",
                state: self.status(id)?.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::PreparedImage;
    use crate::spec::{IdMap, Limits};

    fn spec() -> EnvironmentSpec {
        EnvironmentSpec {
            id: EnvironmentId::new("env-a").expect("valid id"),
            hostname: "env-a".into(),
            image: PreparedImage {
                rootfs: "/nonexistent".into(),
                id_map: IdMap::default(),
            },
            id_map: IdMap::default(),
            limits: Limits::default(),
            home: None,
            init: vec![],
            ro_binds: vec![],
        }
    }

    #[test]
    fn the_agent_is_init_with_its_binary_bound_read_only() {
        // Any executable file will do as the "binary" here.
        let bin = PathBuf::from("/bin/sh");
        let mut s = spec();
        AgentOptions::new(&bin).apply(&mut s).expect("apply");
        assert_eq!(s.init[0], AGENT_PATH);
        let args = s.init.join(" ");
        assert!(args.contains("--socket /run/seashell/agent.sock"), "{args}");
        assert!(args.contains("--home /home/cloudshell-user"), "{args}");
        assert!(args.contains("--uid 1000 --gid 1000"), "{args}");
        assert!(args.contains("--environment-id env-a"), "{args}");
        assert!(!args.contains("token"), "{args}");
        assert_eq!(s.ro_binds, vec![(bin, PathBuf::from(AGENT_PATH))]);
    }

    #[test]
    fn a_missing_binary_is_refused() {
        let mut s = spec();
        let err = AgentOptions::new("/nonexistent/seashell-agent")
            .apply(&mut s)
            .expect_err("missing binary");
        assert!(err.to_string().contains("agent binary"), "{err}");
        assert!(s.init.is_empty());
    }
}
