//! The real AWS SDK for Python (botocore) reads the credentials endpoint the
//! way the shells' tools do.
//!
//! Uses `$SEASHELL_TEST_AWS_BIN/python` (see `scripts/aws-clients.sh`), or
//! `python3` when it has botocore; fails, naming the set-up script, when
//! neither does.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{AgentProcess, Server, TOKEN};
use seashell_protocol::agent_channel::{AgentMessage, Credentials, ServerMessage};
use seashell_protocol::Secret;

/// Prints how botocore resolved credentials, or the error it met.
const RESOLVE: &str = r#"
import botocore.session
try:
    c = botocore.session.get_session().get_credentials()
    if c is None:
        print("none")
    else:
        f = c.get_frozen_credentials()
        print("|".join([c.method, f.access_key, f.secret_key, f.token]))
except Exception as e:
    print("error|" + type(e).__name__)
"#;

fn python() -> Option<PathBuf> {
    let candidates = std::env::var_os("SEASHELL_TEST_AWS_BIN")
        .map(|bin| PathBuf::from(bin).join("python"))
        .into_iter()
        .chain([PathBuf::from("python3")]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import botocore"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    None
}

fn resolve(python: &PathBuf, agent: &AgentProcess, home: &std::path::Path) -> String {
    let uri = format!(
        "http://{}/latest/meta-data/container/security-credentials",
        agent.credentials_addr
    );
    let mut command = Command::new(python);
    command.arg("-c").arg(RESOLVE);
    // Only what a shell in the environment would have.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let out = command
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", TOKEN)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_reads_the_pushed_credentials() {
    let Some(python) = python() else {
        panic!("no Python with botocore: run scripts/test.sh, or export SEASHELL_TEST_AWS_BIN=\"$(scripts/aws-clients.sh)\"");
    };
    let agent = AgentProcess::start();
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::connect(&agent).await;

    let before = tokio::task::block_in_place(|| resolve(&python, &agent, home.path()));
    assert!(
        before.starts_with("error|"),
        "nothing pushed yet, so no credentials: {before}"
    );

    let reply = server
        .request(|request_id| ServerMessage::PutCredentials {
            request_id,
            credentials: Credentials {
                access_key_id: "ASIABOTOCORETEST0001".into(),
                secret_access_key: Secret::new("botocore/secret/key"),
                token: Secret::new("botocore-session-token"),
                expiration: "2099-01-01T00:00:00Z".into(),
            },
        })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    let after = tokio::task::block_in_place(|| resolve(&python, &agent, home.path()));
    assert_eq!(
        after,
        "container-role|ASIABOTOCORETEST0001|botocore/secret/key|botocore-session-token"
    );
}
