//! Root inside an environment replacing the agent's socket: whatever it
//! plants at `/run/seashell/agent.sock` (an absolute or a climbing symbolic
//! link to a host socket, a link to another environment's agent, a linked
//! directory, a plain file), the server's connect — `Runtime::agent_socket`
//! then `AgentHub::connect`, as `envs/lifecycle.rs` does — refuses it at
//! once with a clear error and reaches no other socket. A plain
//! `connect(2)` on the same path shows each absolute link would have worked.
//!
//! The agent binary comes from `SEASHELL_AGENT_BIN`, or else
//! `scripts/build-agent.sh` (see `agent_environment.rs`).

mod common;

use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Fixture, TIMEOUT};
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_hub::{AgentHub, HubError};
use seashell_runtime::{EnvironmentId, ExecUser, Limits};

fn start(f: &Fixture, name: &str) -> EnvironmentId {
    let id = f.id(name);
    let mut spec = f.spec(&id, Some(f.home_key(name)), Limits::default());
    AgentOptions::new(common::agent_binary())
        .apply(&mut spec)
        .expect("agent spec");
    f.rt.create(&spec)
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    f.rt.start(&id)
        .unwrap_or_else(|e| panic!("start {id}: {e}"));
    id
}

/// A Unix socket the test listens on, on the host.
fn host_listener(path: &Path) -> UnixListener {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("socket dir");
    let listener = UnixListener::bind(path).expect("bind host socket");
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

/// Whether a connection waits on `listener` (taking it).
fn was_connected(listener: &UnixListener) -> bool {
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

/// Connects as the server does and expects a prompt refusal naming `why`.
async fn refused(f: &Fixture, id: &EnvironmentId, why: &str) -> String {
    let socket = f.rt.agent_socket(id).expect("agent socket");
    let started = Instant::now();
    let e = AgentHub::connect(&socket, id.as_str(), TIMEOUT)
        .await
        .expect_err("the planted path must be refused");
    // Refused at once, not after waiting out the connect timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(e, HubError::Connect { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains(why), "{message}");
    assert!(message.contains("refused"), "{message}");
    message
}

#[test]
fn a_planted_socket_path_never_leads_the_server_elsewhere() {
    let f = Fixture::new("agentsock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let a = start(&f, "a");
    let b = start(&f, "b");

    // The ordinary case: both agents are reached through their roots.
    let (hub_a, hub_b) = rt.block_on(async {
        let connect = |id: EnvironmentId| {
            let socket = f.rt.agent_socket(&id).expect("agent socket");
            async move {
                AgentHub::connect(&socket, id.as_str(), TIMEOUT)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {id}: {e}"))
            }
        };
        (connect(a.clone()).await, connect(b.clone()).await)
    });
    let a_path = f.rt.agent_socket(&a).expect("agent socket");
    let b_pid = f.rt.init_pid(&b).expect("state").expect("running");

    // 1. An absolute link to a host socket.
    let host = f.root.join("host-sockets/host.sock");
    let listener = host_listener(&host);
    f.ok(
        &a,
        ExecUser::Root,
        &format!("ln -sfn {} /run/seashell/agent.sock", host.display()),
    );
    // A plain connect follows the link on the host: the attack is real.
    UnixStream::connect(&a_path).expect("a plain connect follows the link");
    assert!(
        was_connected(&listener),
        "the plain connect reached the host socket"
    );
    rt.block_on(refused(&f, &a, "symbolic link"));
    assert!(
        !was_connected(&listener),
        "the server reached the host socket"
    );

    // 2. A relative link climbing out of the root.
    f.ok(
        &a,
        ExecUser::Root,
        &format!(
            "ln -sfn ../../../../../../../../..{} /run/seashell/agent.sock",
            host.display()
        ),
    );
    rt.block_on(refused(&f, &a, "symbolic link"));
    assert!(
        !was_connected(&listener),
        "the server reached the host socket"
    );

    // 3. A link to the other environment's agent, as the host names it.
    f.ok(
        &a,
        ExecUser::Root,
        &format!("ln -sfn /proc/{b_pid}/root/run/seashell/agent.sock /run/seashell/agent.sock"),
    );
    UnixStream::connect(&a_path).expect("a plain connect reaches the other agent");
    rt.block_on(refused(&f, &a, "symbolic link"));

    // 4. The directory replaced by a link to a host directory holding a
    // socket of that name.
    let host_dir = f.root.join("host-dir");
    let dir_listener = host_listener(&host_dir.join("agent.sock"));
    f.ok(
        &a,
        ExecUser::Root,
        &format!(
            "mv /run/seashell /run/seashell.moved && ln -s {} /run/seashell",
            host_dir.display()
        ),
    );
    UnixStream::connect(&a_path).expect("a plain connect follows the directory link");
    assert!(
        was_connected(&dir_listener),
        "the plain connect reached the host directory"
    );
    rt.block_on(refused(&f, &a, "symbolic link"));
    assert!(
        !was_connected(&dir_listener),
        "the server reached the host directory"
    );

    // 5. Something other than a socket.
    f.ok(
        &a,
        ExecUser::Root,
        "rm /run/seashell && mkdir /run/seashell && echo x > /run/seashell/agent.sock",
    );
    rt.block_on(refused(&f, &a, "not a socket"));
    f.ok(
        &a,
        ExecUser::Root,
        "rm /run/seashell/agent.sock && mkfifo /run/seashell/agent.sock",
    );
    rt.block_on(refused(&f, &a, "not a socket"));

    // Nothing of this touched the other environment's connection, and the
    // connections made before the tampering still work.
    rt.block_on(async {
        assert!(!hub_b.is_closed());
        hub_b
            .status()
            .await
            .expect("the other environment's hub works");
        hub_a.status().await.expect("the earlier connection works");
    });
    assert!(!was_connected(&listener));
    assert!(!was_connected(&dir_listener));
}
