//! Shell sessions driven through the control channel and the data channel,
//! against the real agent binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{sid, AgentProcess, Server};
use seashell_protocol::agent_channel::{
    AgentMessage, AttachMode, ErrorCode, Hello, Role, ServerMessage, SessionEndReason,
    SEND_INPUT_VERSION,
};
use std::time::Duration;

#[tokio::test]
async fn echo_round_trips_and_the_shell_gets_its_environment() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-echo");
    server.open_attached(&s).await;
    // The quotes keep the typed command itself from matching.
    server.type_text(&s, "echo hel''lo\r").await;
    server.wait_output(&s, "hello").await;

    server
        .type_text(
            &s,
            "printf '<%s|%s|%s|%s>\\n' \"$TERM\" \"$AWS_REGION\" \"$PWD\" \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\"\r",
        )
        .await;
    let expected = format!(
        "<xterm-256color|us-east-1|{}|{}>",
        agent.home.display(),
        common::TOKEN
    );
    server.wait_output(&s, &expected).await;
    server
        .type_text(&s, "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"\r")
        .await;
    let uri = format!(
        "http://{}/latest/meta-data/container/security-credentials",
        agent.credentials_addr
    );
    server.wait_output(&s, &format!("{uri}\r\n")).await;

    if common::is_root() {
        server.type_text(&s, "echo uid=$(id -u)\r").await;
        server.wait_output(&s, "uid=1000").await;
    }

    let status = server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    let AgentMessage::Status { status, .. } = status else {
        panic!("{status:?}");
    };
    assert_eq!(status.sessions.len(), 1);
    assert!(status.sessions[0].attached);
    assert!(status.sessions[0].idle_ms.is_some());
    assert!(status.sessions[0].age_ms.is_some());
}

#[tokio::test]
async fn stty_size_follows_resizes() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-size");
    server.open(&s, 80, 24).await;
    server.attach(&s, AttachMode::Fresh).await;
    server.type_text(&s, "stty size\r").await;
    server.wait_output(&s, "24 80").await;
    server.resize(&s, 132, 43).await;
    server.type_text(&s, "stty size\r").await;
    server.wait_output(&s, "43 132").await;
}

#[tokio::test]
async fn resume_after_detach_delivers_every_byte_exactly_once() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-resume");
    server.open_attached(&s).await;
    server.type_text(&s, "seq 1 20000; echo do''ne\r").await;
    server.wait_output(&s, "\r\n3000\r\n").await;

    // The client stops acknowledging: what it receives from now on is
    // delivered but unacknowledged, so it will be resent.
    server.sessions.get_mut(&s).unwrap().ack = false;
    server.pump_for(Duration::from_millis(200)).await;
    // Then the connection drops: whatever is in flight is lost.
    server.detach(&s).await;
    server.pump_for(Duration::from_millis(500)).await;

    server.attach(&s, AttachMode::Resume).await;
    server.wait_output(&s, "done").await;

    let client = &server.sessions[&s];
    let expected: String = (1..=20000).map(|i| format!("{i}\r\n")).collect();
    let text = client.text();
    assert_eq!(
        text.matches(&expected).count(),
        1,
        "the numbers must appear once, complete and in order"
    );
    // Every sequence number was delivered once, in order, from 0.
    let delivered = &client.delivered;
    assert!(delivered.iter().enumerate().all(|(i, &s)| s == i as i64));
    assert!(
        client.duplicates > 0,
        "the resend must have repeated something already delivered"
    );
}

#[tokio::test]
async fn a_fresh_attach_gets_a_repaint_then_live_output() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-repaint");
    server.open_attached(&s).await;
    server.type_text(&s, "echo mark''er-$((6*7))\r").await;
    server.wait_output(&s, "marker-42").await;
    server.detach(&s).await;
    server.pump_for(Duration::from_millis(200)).await;

    // A reloaded tab: a new client with an empty terminal.
    server.attach(&s, AttachMode::Fresh).await;
    server.wait_output(&s, "marker-42").await;
    let client = &server.sessions[&s];
    assert_eq!(client.delivered[0], 0, "the handshake restarted from 0");
    assert!(
        String::from_utf8_lossy(&client.messages[0]).contains("marker-42"),
        "the first output after the handshake is the repaint"
    );
    let mut terminal = vt100::Parser::new(24, 80, 0);
    terminal.process(&client.output);
    let screen = terminal.screen().contents();
    assert!(screen.contains("echo mark''er-$((6*7))"), "{screen}");
    assert!(screen.contains("marker-42"), "{screen}");

    server.type_text(&s, "echo liv''e\r").await;
    server.wait_output(&s, "live").await;
}

/// The agent's flow-control window (its default).
const WINDOW: usize = 1024 * 1024;

#[tokio::test]
async fn output_is_paced_by_acknowledgements_and_ctrl_c_interrupts_a_flood() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-flood");
    server.open_attached(&s).await;
    server.type_text(&s, "echo rea''dy\r").await;
    server.wait_output(&s, "ready").await;

    // A client that acknowledges nothing gets about one window of output,
    // then the shell is paused.
    server.sessions.get_mut(&s).unwrap().ack = false;
    server.type_text(&s, "yes\r").await;
    server
        .wait_client(&s, |c| c.output.len() > WINDOW / 2)
        .await;
    server.pump_for(Duration::from_millis(1500)).await;
    let held = server.sessions[&s].output.len();
    assert!(
        held < WINDOW + 64 * 1024,
        "{held} bytes sent without acknowledgement"
    );

    // Once acknowledgements flow (here: a resume, which resends what is
    // unacknowledged), so does output.
    server.attach(&s, AttachMode::Resume).await;
    server
        .wait_client(&s, |c| c.output.len() > 4 * WINDOW)
        .await;
    server.type_text(&s, "\x03").await;
    server.type_text(&s, "echo stop''ped\r").await;
    server.wait_output(&s, "stopped").await;
}

#[tokio::test]
async fn shell_exit_reports_its_code() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-exit");
    server.open_attached(&s).await;
    server.type_text(&s, "exit 3\r").await;
    let ended = server
        .wait_for(|m| matches!(m, AgentMessage::SessionEnded { .. }))
        .await;
    assert_eq!(
        ended,
        AgentMessage::SessionEnded {
            session_id: s.clone(),
            reason: SessionEndReason::Exited,
            exit_code: Some(3),
        }
    );
    server.wait_client(&s, |c| c.closed).await;
    let reply = server
        .request(|request_id| ServerMessage::AttachSession {
            request_id,
            session_id: s.clone(),
            mode: AttachMode::Resume,
        })
        .await;
    assert!(
        matches!(
            reply,
            AgentMessage::Error {
                code: ErrorCode::UnknownSession,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn close_session_and_duplicate_ids() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-close");
    server.open(&s, 80, 24).await;
    let again = server
        .request(|request_id| ServerMessage::OpenSession {
            request_id,
            session_id: s.clone(),
            shell: Default::default(),
            cols: 80,
            rows: 24,
            env: Default::default(),
        })
        .await;
    assert!(
        matches!(
            again,
            AgentMessage::Error {
                code: ErrorCode::SessionExists,
                ..
            }
        ),
        "{again:?}"
    );
    let reply = server
        .request(|request_id| ServerMessage::CloseSession {
            request_id,
            session_id: s.clone(),
            reason: None,
        })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    let ended = server
        .wait_for(|m| matches!(m, AgentMessage::SessionEnded { .. }))
        .await;
    assert_eq!(
        ended,
        AgentMessage::SessionEnded {
            session_id: s,
            reason: SessionEndReason::Closed,
            exit_code: None,
        }
    );
}

#[tokio::test]
async fn the_server_ends_an_idle_session_and_the_client_is_told() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-idle");
    server.open_attached(&s).await;
    server.type_text(&s, "echo rea''dy\r").await;
    server.wait_output(&s, "ready").await;
    let reply = server
        .request(|request_id| ServerMessage::CloseSession {
            request_id,
            session_id: s.clone(),
            reason: Some(SessionEndReason::IdleTimeout),
        })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    let ended = server
        .wait_for(|m| matches!(m, AgentMessage::SessionEnded { .. }))
        .await;
    assert_eq!(
        ended,
        AgentMessage::SessionEnded {
            session_id: s.clone(),
            reason: SessionEndReason::IdleTimeout,
            exit_code: None,
        }
    );
    server.wait_client(&s, |c| c.closed).await;
    let said = server.sessions[&s].closed_output.clone();
    assert!(said.contains("no input"), "{said:?}");
}

#[tokio::test]
async fn sessions_survive_a_server_reconnect() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-reconnect");
    server.open_attached(&s).await;
    server.type_text(&s, "echo fir''st\r").await;
    server.wait_output(&s, "first").await;
    let client = server.sessions.remove(&s).unwrap();

    // The server restarts: a new connection replaces the old one.
    let mut restarted = Server::connect(&agent).await;
    drop(server);
    restarted.sessions.insert(s.clone(), client);
    restarted.attach(&s, AttachMode::Resume).await;
    restarted.type_text(&s, "echo sec''ond\r").await;
    restarted.wait_output(&s, "second").await;
}

#[tokio::test]
async fn orphans_are_reaped() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-orphan");
    server.open_attached(&s).await;
    // The inner shell exits at once, orphaning its sleeping child.
    server
        .type_text(&s, "sh -c 'sleep 3 & echo orphan=$!:'\r")
        .await;
    server.wait_output(&s, ":\r\n").await;
    let text = server.sessions[&s].text();
    let pid: i32 = text
        .rsplit("orphan=")
        .next()
        .and_then(|t| t.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"));
    let status = format!("/proc/{pid}/status");
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    let mut adopted = false;
    // Reaped means gone from /proc; a zombie would stay there.
    while let Ok(text) = std::fs::read_to_string(&status) {
        adopted |= text.contains(&format!("PPid:\t{}\n", agent.pid()));
        assert!(std::time::Instant::now() < deadline, "orphan never reaped");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(adopted, "the agent adopted the orphan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_sessions_and_stops_the_agent() {
    let mut agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-term");
    server.open_attached(&s).await;
    server.type_text(&s, "echo rea''dy\r").await;
    server.wait_output(&s, "ready").await;
    let status = tokio::task::block_in_place(|| agent.terminate());
    assert!(status.success(), "{status:?}");
    let ended = server
        .wait_for(|m| matches!(m, AgentMessage::SessionEnded { .. }))
        .await;
    assert!(
        matches!(
            ended,
            AgentMessage::SessionEnded {
                reason: SessionEndReason::EnvironmentStopping,
                ..
            }
        ),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_shell_the_environment_lacks_is_refused() {
    let pwsh = [
        "/usr/bin/pwsh",
        "/usr/local/bin/pwsh",
        "/opt/microsoft/powershell/7/pwsh",
    ];
    if pwsh.iter().any(|p| std::path::Path::new(p).exists()) {
        eprintln!("skipped: this machine has pwsh");
        return;
    }
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let reply = server
        .request(|request_id| ServerMessage::OpenSession {
            request_id,
            session_id: sid("s-pwsh"),
            shell: seashell_protocol::agent_channel::Shell::Pwsh,
            cols: 80,
            rows: 24,
            env: Default::default(),
        })
        .await;
    assert!(
        matches!(
            reply,
            AgentMessage::Error {
                code: ErrorCode::BadRequest,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_fresh_attach_restores_a_full_screen_program() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-fullscreen");
    server.open_attached(&s).await;
    // What a full-screen program does: alternate screen, application
    // cursor keys, bracketed paste, text, then the cursor somewhere. The
    // program prints it itself, so once it shows, the program is in the
    // foreground and Ctrl-C reaches it.
    server
        .type_text(
            &s,
            "sh -c 'printf \"\\033[?1049h\\033[H\\033[2J\\033[?1h\\033[?2004hfull\"\"screen\\033[7;12H\"; exec sleep 600'\r",
        )
        .await;
    server.wait_output(&s, "fullscreen").await;
    let mut live = vt100::Parser::new(24, 80, 0);
    live.process(&server.sessions[&s].output);
    assert!(live.screen().alternate_screen());
    server.detach(&s).await;

    server.attach(&s, AttachMode::Fresh).await;
    server.wait_output(&s, "fullscreen").await;
    let mut repainted = vt100::Parser::new(24, 80, 0);
    repainted.process(&server.sessions[&s].output);
    let (a, b) = (repainted.screen(), live.screen());
    assert!(a.alternate_screen(), "on the alternate screen");
    assert!(a.application_cursor(), "application cursor keys");
    assert!(a.bracketed_paste(), "bracketed paste");
    assert_eq!(a.cursor_position(), (6, 11));
    assert_eq!(a.cursor_position(), b.cursor_position());
    assert_eq!(a.contents(), b.contents());

    // Ctrl-C ends the program; the shell is back.
    server.type_text(&s, "\x03").await;
    server.type_text(&s, "echo bac''k\r").await;
    server.wait_output(&s, "back").await;
}

#[tokio::test]
async fn input_sent_by_the_server_reaches_the_shell_like_keystrokes() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-send-input");
    server.open_attached(&s).await;
    // The arithmetic keeps the echoed command line itself from matching.
    let reply = server
        .request(|request_id| ServerMessage::SendInput {
            request_id,
            session_id: s.clone(),
            data: b"echo sent-$((6*7))\r".as_slice().into(),
        })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    server.wait_output(&s, "sent-42").await;

    // It counts as input for the idle clock.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_before = idle_ms(&mut server).await;
    assert!(idle_before >= 1000, "{idle_before}");
    let reply = server
        .request(|request_id| ServerMessage::SendInput {
            request_id,
            session_id: s.clone(),
            data: b"\r".as_slice().into(),
        })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    let idle_after = idle_ms(&mut server).await;
    assert!(idle_after < idle_before, "{idle_after} vs {idle_before}");

    let reply = server
        .request(|request_id| ServerMessage::SendInput {
            request_id,
            session_id: sid("s-nobody"),
            data: b"true\r".as_slice().into(),
        })
        .await;
    assert!(
        matches!(
            reply,
            AgentMessage::Error {
                code: ErrorCode::UnknownSession,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn send_input_is_refused_on_a_connection_of_an_older_version() {
    let agent = AgentProcess::start();
    let mut hello = Hello::new(Role::Server, "test").with_environment("env-test");
    hello.max_version = SEND_INPUT_VERSION - 1;
    let mut server = Server::connect_with(&agent, hello).await;
    let s = sid("s-old-peer");
    server.open_attached(&s).await;
    let reply = server
        .request(|request_id| ServerMessage::SendInput {
            request_id,
            session_id: s.clone(),
            data: b"true\r".as_slice().into(),
        })
        .await;
    assert!(
        matches!(
            reply,
            AgentMessage::Error {
                code: ErrorCode::UnsupportedVersion,
                ..
            }
        ),
        "{reply:?}"
    );
}

async fn idle_ms(server: &mut Server) -> u64 {
    let status = server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    let AgentMessage::Status { status, .. } = status else {
        panic!("{status:?}");
    };
    status.sessions[0].idle_ms.unwrap()
}
