//! The control channel itself: the hello exchange, malformed input, and
//! reports that outlive a connection.
#![allow(clippy::unwrap_used)]

mod common;

use common::{sid, AgentProcess, Server};
use seashell_protocol::agent_channel::{
    encode_frame, AgentMessage, ErrorCode, FrameDecoder, Hello, Role, ServerMessage,
    SessionEndReason, DEFAULT_MAX_FRAME_LEN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Reads messages until the agent closes the connection.
async fn read_all(stream: &mut UnixStream) -> Vec<AgentMessage> {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(common::TIMEOUT, stream.read(&mut buf))
            .await
            .expect("the agent neither answered nor closed")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        decoder.push(&buf[..n]);
    }
    let mut messages = vec![];
    while let Some(m) = decoder.next_message().unwrap() {
        messages.push(m);
    }
    messages
}

#[tokio::test]
async fn a_server_for_another_environment_is_refused() {
    let agent = AgentProcess::start();
    let mut stream = UnixStream::connect(&agent.socket).await.unwrap();
    let hello = ServerMessage::Hello(Hello::new(Role::Server, "test").with_environment("env-x"));
    stream
        .write_all(&encode_frame(&hello, DEFAULT_MAX_FRAME_LEN).unwrap())
        .await
        .unwrap();
    let messages = read_all(&mut stream).await;
    assert!(
        matches!(messages[0], AgentMessage::Hello(_)),
        "{messages:?}"
    );
    assert!(
        matches!(
            messages[1],
            AgentMessage::Error {
                code: ErrorCode::UnsupportedVersion,
                ..
            }
        ),
        "{messages:?}"
    );
}

#[tokio::test]
async fn the_first_message_must_be_hello() {
    let agent = AgentProcess::start();
    let mut stream = UnixStream::connect(&agent.socket).await.unwrap();
    let status = ServerMessage::Status {
        request_id: seashell_protocol::agent_channel::RequestId(1),
    };
    stream
        .write_all(&encode_frame(&status, DEFAULT_MAX_FRAME_LEN).unwrap())
        .await
        .unwrap();
    let messages = read_all(&mut stream).await;
    assert!(
        matches!(
            messages[1],
            AgentMessage::Error {
                code: ErrorCode::BadRequest,
                ..
            }
        ),
        "{messages:?}"
    );
}

#[tokio::test]
async fn a_malformed_message_is_answered_and_the_connection_goes_on() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let garbage = br#"{"type":"no_such_message"}"#;
    let mut frame = (garbage.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(garbage);
    server.send_raw(&frame).await;
    let error = server
        .wait_for(|m| matches!(m, AgentMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            error,
            AgentMessage::Error {
                code: ErrorCode::BadRequest,
                request_id: None,
                ..
            }
        ),
        "{error:?}"
    );
    let status = server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    assert!(matches!(status, AgentMessage::Status { .. }), "{status:?}");
}

#[tokio::test]
async fn only_a_connection_that_says_hello_replaces_the_current_one() {
    let agent = AgentProcess::start();
    let mut first = Server::connect(&agent).await;
    // A connection that never says hello changes nothing.
    let _silent = UnixStream::connect(&agent.socket).await.unwrap();
    let status = first
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    assert!(matches!(status, AgentMessage::Status { .. }), "{status:?}");

    // One that does takes over, and the first is closed.
    let mut second = Server::connect(&agent).await;
    first.wait_closed().await;
    let status = second
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    assert!(matches!(status, AgentMessage::Status { .. }), "{status:?}");
}

#[tokio::test]
async fn a_session_end_is_reported_to_the_next_connection() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let s = sid("s-away");
    server.open_attached(&s).await;
    server.type_text(&s, "sleep 1; exit 7\r").await;
    // The shell has the command once it echoes it.
    server.wait_output(&s, "exit 7").await;
    drop(server);

    // The shell exits while no server is connected.
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    while !agent.log().contains("session ended") {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let mut server = Server::connect(&agent).await;
    let ended = server
        .wait_for(|m| matches!(m, AgentMessage::SessionEnded { .. }))
        .await;
    assert_eq!(
        ended,
        AgentMessage::SessionEnded {
            session_id: s,
            reason: SessionEndReason::Exited,
            exit_code: Some(7),
        }
    );
}
