//! An environment whose init is the real, static `seashell-agent`: the
//! control socket is reachable from the host, sessions run the image's
//! shell as uid 1000, and the home outlives a stop and start.
//!
//! The agent binary comes from `SEASHELL_AGENT_BIN` (`scripts/test.sh` sets
//! it from `scripts/build-agent.sh`); without it the test runs
//! `scripts/build-agent.sh` itself, which is quick once the static build
//! exists.

mod common;

use std::time::Duration;

use common::{Fixture, TIMEOUT};
use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
use seashell_runtime::agent::{AgentOptions, AGENT_PATH};
use seashell_runtime::agent_client::AgentClient;
use seashell_runtime::{EnvironmentId, HomeKey, Limits};

fn start(f: &Fixture, id: &EnvironmentId, home: &HomeKey, agent: &AgentOptions) {
    let mut spec = f.spec(id, Some(home.clone()), Limits::default());
    agent.apply(&mut spec).expect("agent spec");
    f.rt.create(&spec)
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    f.rt.start(id).unwrap_or_else(|e| panic!("start {id}: {e}"));
}

async fn connect(f: &Fixture, id: &EnvironmentId) -> AgentClient {
    let socket = f.rt.agent_socket(id).expect("agent socket");
    AgentClient::connect_when_ready(&socket, Some(id.as_str()), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("connecting to the agent: {e}"))
}

/// Types `line` and waits for `expect` in the output. The expectations are
/// computed by the shell (`$((…))`), so the echo of the typed line never
/// matches them by itself.
async fn run(agent: &mut AgentClient, session: &SessionId, line: &str, expect: &str) -> String {
    agent
        .send_input(session, format!("{line}\n").as_bytes())
        .await
        .expect("typing");
    agent
        .wait_output(session, expect)
        .await
        .unwrap_or_else(|e| panic!("waiting for {expect:?} after {line:?}: {e}"))
}

#[test]
fn agent_runs_the_environment_and_its_sessions() {
    let f = Fixture::new("agent");
    let id = f.id("env");
    let home = f.home_key("agent");
    let token_file = f.root.join("credentials-token");
    std::fs::write(&token_file, "token-from-the-server").expect("token file");
    let agent = AgentOptions {
        binary: common::agent_binary(),
        credentials_token_file: Some(token_file),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    start(&f, &id, &home, &agent);
    rt.block_on(async {
        let mut agent = connect(&f, &id).await;
        // The agent is the environment's init: the host pid of the
        // container's PID 1 runs the bind-mounted binary.
        let pid = f.rt.init_pid(&id).expect("state").expect("running");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        assert!(
            cmdline.starts_with(AGENT_PATH.as_bytes()),
            "{:?}",
            String::from_utf8_lossy(&cmdline)
        );
        let s1 = SessionId("s1".into());
        agent
            .open_session(&s1, Shell::Bash, 100, 30, Default::default())
            .await
            .expect("open session");
        agent.attach(&s1, AttachMode::Fresh).await.expect("attach");
        agent.resize(&s1, 120, 40).await.expect("resize");

        run(&mut agent, &s1, "echo hello-from-env", "\nhello-from-env").await;
        // The image has no bash: the agent's stand-in is busybox sh, run as
        // cloudshell-user in the home volume, under an agent that is PID 1.
        run(
            &mut agent,
            &s1,
            "echo uid=$(id -u):$((40+2))",
            "uid=1000:42",
        )
        .await;
        run(
            &mut agent,
            &s1,
            "echo pid1=$(head -c 19 /proc/1/cmdline):$((40+3))",
            "pid1=/opt/seashell/agent:43",
        )
        .await;
        run(
            &mut agent,
            &s1,
            "echo cols=$(stty size):$((40+4))",
            "cols=40 120:44",
        )
        .await;
        run(
            &mut agent,
            &s1,
            "echo pwd=$PWD:$((40+5))",
            "pwd=/home/cloudshell-user:45",
        )
        .await;
        // The token the server handed over reaches the shells.
        run(
            &mut agent,
            &s1,
            "echo tok=$AWS_CONTAINER_AUTHORIZATION_TOKEN:$((40+6))",
            "tok=token-from-the-server:46",
        )
        .await;
        run(
            &mut agent,
            &s1,
            "echo kept-$((6*7)) > ~/kept.txt && echo wrote-$((1+1))",
            "wrote-2",
        )
        .await;
    });

    f.rt.stop(&id).expect("stop");
    assert_eq!(f.rt.init_pid(&id).expect("state"), None);
    start(&f, &id, &home, &agent);

    rt.block_on(async {
        let mut agent = connect(&f, &id).await;
        let s2 = SessionId("s2".into());
        agent
            .open_session(&s2, Shell::Bash, 80, 24, Default::default())
            .await
            .expect("open session after restart");
        agent.attach(&s2, AttachMode::Fresh).await.expect("attach");
        run(
            &mut agent,
            &s2,
            "cat ~/kept.txt; echo done-$((2+2))",
            "kept-42",
        )
        .await;
        let out = run(&mut agent, &s2, "ls -n ~/kept.txt", "1000").await;
        assert!(
            out.contains("1000     1000") || out.contains("1000 1000"),
            "{out}"
        );

        // `exit` ends the session: the client sees the channel close.
        agent.send_input(&s2, b"exit\n").await.expect("typing");
        agent
            .wait_for("channel_closed", |e| {
                matches!(
                    e,
                    seashell_runtime::agent_client::Event::ChannelClosed { .. }
                )
            })
            .await
            .expect("channel closed after exit");
    });

    // SIGTERM reaches the agent, which ends cleanly before the timeout.
    let begun = std::time::Instant::now();
    f.rt.stop(&id).expect("stop");
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "the agent did not exit on SIGTERM"
    );
}
