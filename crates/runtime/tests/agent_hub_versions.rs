//! The hub against an agent of an older protocol version, played here over
//! a Unix socket: requests that version lacks are refused before anything
//! is sent.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use seashell_protocol::agent_channel::{
    encode_frame, FrameDecoder, Hello, Role, ServerMessage, SessionId, DEFAULT_MAX_FRAME_LEN,
    SEND_INPUT_VERSION,
};
use seashell_runtime::agent_hub::{AgentHub, HubError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

#[tokio::test]
async fn send_input_is_refused_for_a_version_2_agent_without_sending_it() {
    let dir = std::env::temp_dir().join(format!("seashell-hub-versions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("agent.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).unwrap();

    // The old agent: says hello with versions 1 to 2, then reports every
    // message it receives.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<ServerMessage>();
    let agent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let hello = Hello {
            max_version: SEND_INPUT_VERSION - 1,
            ..Hello::new(Role::Agent, "0.0.1").with_environment("env-old")
        };
        let frame = encode_frame(
            &seashell_protocol::agent_channel::AgentMessage::Hello(hello),
            DEFAULT_MAX_FRAME_LEN,
        )
        .unwrap();
        stream.write_all(&frame).await.unwrap();
        let mut decoder = FrameDecoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            decoder.push(&buf[..n]);
            while let Some(message) = decoder.next_message::<ServerMessage>().unwrap() {
                let _ = seen_tx.send(message);
            }
        }
    });

    let hub = AgentHub::connect(&socket, "env-old", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(hub.version(), SEND_INPUT_VERSION - 1);
    let hello = seen_rx.recv().await.unwrap();
    assert!(matches!(hello, ServerMessage::Hello(_)), "{hello:?}");

    let err = hub
        .send_input(&SessionId("s-1".into()), b"true\r")
        .await
        .unwrap_err();
    match &err {
        HubError::Unsupported {
            what,
            needs,
            agreed,
        } => {
            assert_eq!(*what, "send_input");
            assert_eq!(*needs, SEND_INPUT_VERSION);
            assert_eq!(*agreed, SEND_INPUT_VERSION - 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("needs version 3"), "{err}");
    // Nothing reached the agent.
    let after = tokio::time::timeout(Duration::from_millis(300), seen_rx.recv()).await;
    assert!(after.is_err(), "the agent received {after:?}");

    drop(hub);
    agent.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
