//! The server↔agent control channel: frames, messages, handshake.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use seashell_protocol::agent_channel::frame::LENGTH_PREFIX_LEN;
use seashell_protocol::agent_channel::{
    encode_frame, encode_message, negotiate, AgentMessage, AgentStatus, AttachMode, Binary,
    Credentials, ErrorCode, FrameDecoder, FrameError, Hello, RequestId, Role, ServerMessage,
    SessionEndReason, SessionId, SessionSummary, Shell, TransferId, BINARY_FRAME_VERSION,
    DEFAULT_MAX_FRAME_LEN, FILE_READ_ACK_VERSION, FILE_READ_WINDOW, PROTOCOL_VERSION,
    SEND_INPUT_VERSION,
};
use seashell_protocol::Secret;
use std::collections::BTreeMap;

fn sid(s: &str) -> SessionId {
    SessionId(s.to_owned())
}

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "ASIAEXAMPLE".into(),
        secret_access_key: Secret::new("s3cr3t-key"),
        token: Secret::new("s3cr3t-token"),
        expiration: "2026-11-24T13:00:00Z".into(),
    }
}

fn all_server_messages() -> Vec<ServerMessage> {
    let r = RequestId(1);
    let t = TransferId(9);
    vec![
        ServerMessage::Hello(Hello::new(Role::Server, "0.1.0").with_environment("env-1")),
        ServerMessage::OpenSession {
            request_id: r,
            session_id: sid("s-1"),
            shell: Shell::Zsh,
            cols: 120,
            rows: 40,
            env: BTreeMap::from([("AWS_REGION".to_owned(), "eu-west-1".to_owned())]),
        },
        ServerMessage::AttachSession {
            request_id: r,
            session_id: sid("s-1"),
            mode: AttachMode::Fresh,
        },
        ServerMessage::DetachSession {
            session_id: sid("s-1"),
        },
        ServerMessage::CloseSession {
            request_id: r,
            session_id: sid("s-1"),
            reason: Some(SessionEndReason::IdleTimeout),
        },
        ServerMessage::DataChannel {
            session_id: sid("s-1"),
            frame: Binary(vec![0, 1, 2, 255]),
        },
        ServerMessage::SendInput {
            request_id: r,
            session_id: sid("s-1"),
            data: Binary(b"ls -l\r".to_vec()),
        },
        ServerMessage::PutCredentials {
            request_id: r,
            credentials: credentials(),
        },
        ServerMessage::WithdrawCredentials { request_id: r },
        ServerMessage::FileWriteBegin {
            request_id: r,
            transfer_id: t,
            path: "notes/todo.txt".into(),
            size: Some(5),
        },
        ServerMessage::FileWriteChunk {
            transfer_id: t,
            offset: 0,
            data: Binary(b"hello".to_vec()),
        },
        ServerMessage::FileWriteEnd {
            request_id: r,
            transfer_id: t,
        },
        ServerMessage::FileWriteAbort { transfer_id: t },
        ServerMessage::FileRead {
            request_id: r,
            transfer_id: t,
            path: "notes/todo.txt".into(),
        },
        ServerMessage::FileReadAck {
            transfer_id: t,
            offset: 8 << 20,
        },
        ServerMessage::FileReadAbort { transfer_id: t },
        ServerMessage::Status { request_id: r },
        ServerMessage::Error {
            request_id: None,
            code: ErrorCode::UnsupportedVersion,
            message: "no common version".into(),
        },
    ]
}

fn all_agent_messages() -> Vec<AgentMessage> {
    let r = RequestId(2);
    let t = TransferId(3);
    vec![
        AgentMessage::Hello(Hello::new(Role::Agent, "0.1.0")),
        AgentMessage::Ok { request_id: r },
        AgentMessage::SessionOpened {
            request_id: r,
            session_id: sid("s-1"),
        },
        AgentMessage::SessionEnded {
            session_id: sid("s-1"),
            reason: SessionEndReason::Exited,
            exit_code: Some(0),
        },
        AgentMessage::DataChannel {
            session_id: sid("s-1"),
            frame: Binary(vec![9; 300]),
        },
        AgentMessage::FileReadBegin {
            request_id: r,
            transfer_id: t,
            size: 3,
        },
        AgentMessage::FileReadChunk {
            transfer_id: t,
            offset: 0,
            data: Binary(b"abc".to_vec()),
        },
        AgentMessage::FileReadEnd { transfer_id: t },
        AgentMessage::Status {
            request_id: r,
            status: AgentStatus {
                agent_version: "0.1.0".into(),
                uptime_ms: 1234,
                sessions: vec![SessionSummary {
                    session_id: sid("s-1"),
                    shell: Shell::Bash,
                    attached: true,
                    idle_ms: Some(5_000),
                    age_ms: Some(60_000),
                }],
                credentials_expiration: Some("2026-11-24T13:00:00Z".into()),
                home_used_bytes: None,
            },
        },
        AgentMessage::Error {
            request_id: Some(r),
            code: ErrorCode::PathOutsideHome,
            message: "../etc/passwd leaves the home directory".into(),
        },
    ]
}

#[test]
fn every_message_round_trips_through_a_frame() {
    for m in all_server_messages() {
        let frame = encode_frame(&m, DEFAULT_MAX_FRAME_LEN).unwrap();
        let mut d = FrameDecoder::default();
        d.push(&frame);
        assert_eq!(d.next_message::<ServerMessage>().unwrap(), Some(m));
        assert_eq!(d.buffered_len(), 0);
    }
    for m in all_agent_messages() {
        let frame = encode_frame(&m, DEFAULT_MAX_FRAME_LEN).unwrap();
        let mut d = FrameDecoder::default();
        d.push(&frame);
        assert_eq!(d.next_message::<AgentMessage>().unwrap(), Some(m));
    }
}

/// The frame is the 4-byte big-endian body length, then the JSON. The JSON
/// here is written out by hand from the message definitions (125 bytes,
/// so the prefix is 00 00 00 7d): internally
/// tagged by `type`, members in declaration order, snake_case names.
#[test]
fn golden_open_session_frame() {
    let m = ServerMessage::OpenSession {
        request_id: RequestId(7),
        session_id: sid("s-1"),
        shell: Shell::Bash,
        cols: 80,
        rows: 24,
        env: BTreeMap::from([("AWS_REGION".to_owned(), "us-east-1".to_owned())]),
    };
    let json = r#"{"type":"open_session","request_id":7,"session_id":"s-1","shell":"bash","cols":80,"rows":24,"env":{"AWS_REGION":"us-east-1"}}"#;
    let frame = encode_frame(&m, DEFAULT_MAX_FRAME_LEN).unwrap();
    assert_eq!(json.len(), 125);
    assert_eq!(&frame[..4], &[0, 0, 0, 125]);
    assert_eq!(&frame[4..], json.as_bytes());
}

#[test]
fn golden_data_channel_and_credentials_json() {
    // [0, 1, 2, 255] in base64: 000000 000000 000100 000010 | 111111 11(0000)
    // → "AAEC" + "/w==".
    let m = ServerMessage::DataChannel {
        session_id: sid("s-1"),
        frame: Binary(vec![0, 1, 2, 255]),
    };
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"type":"data_channel","session_id":"s-1","frame":"AAEC/w=="}"#
    );

    let m = ServerMessage::PutCredentials {
        request_id: RequestId(3),
        credentials: credentials(),
    };
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"type":"put_credentials","request_id":3,"credentials":{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t-key","Token":"s3cr3t-token","Expiration":"2026-11-24T13:00:00Z"}}"#
    );
}

#[test]
fn secrets_and_bytes_stay_out_of_debug_output() {
    let m = ServerMessage::PutCredentials {
        request_id: RequestId(3),
        credentials: credentials(),
    };
    let debug = format!("{m:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("ASIAEXAMPLE"));
    assert!(debug.contains("***"));

    let m = AgentMessage::DataChannel {
        session_id: sid("s-1"),
        frame: Binary(b"password123".to_vec()),
    };
    let debug = format!("{m:?}");
    assert!(!debug.contains("password123"), "{debug}");
    assert!(debug.contains("<11 bytes>"));
}

#[test]
fn hello_json_and_negotiation() {
    let server = Hello::new(Role::Server, "0.1.0");
    assert_eq!(
        serde_json::to_string(&ServerMessage::Hello(server.clone())).unwrap(),
        r#"{"type":"hello","protocol":"seashell-agent","role":"server","min_version":1,"max_version":4,"software_version":"0.1.0"}"#
    );
    let agent_json = r#"{"type":"hello","protocol":"seashell-agent","role":"agent","min_version":1,"max_version":5,"software_version":"9.9.9","future_member":true}"#;
    let AgentMessage::Hello(agent) = serde_json::from_str(agent_json).unwrap() else {
        panic!("not a hello");
    };
    assert_eq!(negotiate(&server, &agent), Ok(4));
    // A version-3 peer (no binary frames) is still spoken to.
    let v3_json = r#"{"type":"hello","protocol":"seashell-agent","role":"agent","min_version":1,"max_version":3,"software_version":"0.1.0"}"#;
    let AgentMessage::Hello(v3) = serde_json::from_str(v3_json).unwrap() else {
        panic!("not a hello");
    };
    assert_eq!(negotiate(&server, &v3), Ok(3));
    // A version-2 peer (no send_input) is still spoken to.
    let v2_json = r#"{"type":"hello","protocol":"seashell-agent","role":"agent","min_version":1,"max_version":2,"software_version":"0.1.0"}"#;
    let AgentMessage::Hello(v2) = serde_json::from_str(v2_json).unwrap() else {
        panic!("not a hello");
    };
    assert_eq!(negotiate(&server, &v2), Ok(2));
    // A version-1 peer (no flow-controlled downloads) is still spoken to.
    let old_json = r#"{"type":"hello","protocol":"seashell-agent","role":"agent","min_version":1,"max_version":1,"software_version":"0.1.0"}"#;
    let AgentMessage::Hello(old) = serde_json::from_str(old_json).unwrap() else {
        panic!("not a hello");
    };
    assert_eq!(negotiate(&server, &old), Ok(1));
    const { assert!(FILE_READ_ACK_VERSION > 1 && FILE_READ_ACK_VERSION <= PROTOCOL_VERSION) };
    const {
        assert!(
            SEND_INPUT_VERSION > FILE_READ_ACK_VERSION && SEND_INPUT_VERSION <= PROTOCOL_VERSION
        )
    };
}

#[test]
fn golden_send_input_json() {
    let send = ServerMessage::SendInput {
        request_id: RequestId(5),
        session_id: sid("s-1"),
        data: Binary(b"echo hi\r".to_vec()),
    };
    let json = r#"{"type":"send_input","request_id":5,"session_id":"s-1","data":"ZWNobyBoaQ0="}"#;
    assert_eq!(serde_json::to_string(&send).unwrap(), json);
    assert_eq!(serde_json::from_str::<ServerMessage>(json).unwrap(), send);
    assert_eq!(send.request_id(), Some(RequestId(5)));
    // The bytes are required: an input without any means nothing.
    assert!(serde_json::from_str::<ServerMessage>(
        r#"{"type":"send_input","request_id":5,"session_id":"s-1"}"#
    )
    .is_err());
}

#[test]
fn golden_file_read_flow_control_json() {
    let ack = ServerMessage::FileReadAck {
        transfer_id: TransferId(7),
        offset: 1_048_576,
    };
    let json = r#"{"type":"file_read_ack","transfer_id":7,"offset":1048576}"#;
    assert_eq!(serde_json::to_string(&ack).unwrap(), json);
    assert_eq!(serde_json::from_str::<ServerMessage>(json).unwrap(), ack);
    assert_eq!(ack.request_id(), None);

    let abort = ServerMessage::FileReadAbort {
        transfer_id: TransferId(7),
    };
    let json = r#"{"type":"file_read_abort","transfer_id":7}"#;
    assert_eq!(serde_json::to_string(&abort).unwrap(), json);
    assert_eq!(serde_json::from_str::<ServerMessage>(json).unwrap(), abort);
    assert_eq!(abort.request_id(), None);

    // The offset is required: an acknowledgement without one means nothing.
    assert!(
        serde_json::from_str::<ServerMessage>(r#"{"type":"file_read_ack","transfer_id":7}"#)
            .is_err()
    );
    // The window is a few chunks, and well below a frame.
    const { assert!(FILE_READ_WINDOW >= 4 << 20 && FILE_READ_WINDOW <= 64 << 20) };
}

#[test]
fn unknown_error_codes_and_message_types() {
    let m: AgentMessage =
        serde_json::from_str(r#"{"type":"error","code":"quota_exploded","message":"x"}"#).unwrap();
    assert_eq!(
        m,
        AgentMessage::Error {
            request_id: None,
            code: ErrorCode::Unknown,
            message: "x".into()
        }
    );
    assert!(serde_json::from_str::<AgentMessage>(r#"{"type":"teleport"}"#).is_err());
    // Out-of-range terminal sizes are refused rather than truncated.
    assert!(serde_json::from_str::<ServerMessage>(
        r#"{"type":"open_session","request_id":1,"session_id":"s","cols":70000,"rows":24}"#
    )
    .is_err());
}

#[test]
fn defaults_for_optional_members() {
    let m: ServerMessage = serde_json::from_str(
        r#"{"type":"open_session","request_id":1,"session_id":"s","cols":80,"rows":24}"#,
    )
    .unwrap();
    let ServerMessage::OpenSession { shell, env, .. } = m else {
        panic!("not open_session");
    };
    assert_eq!(shell, Shell::Bash);
    assert!(env.is_empty());
}

#[test]
fn attach_without_mode_resumes() {
    let m: ServerMessage =
        serde_json::from_str(r#"{"type":"attach_session","request_id":1,"session_id":"s"}"#)
            .unwrap();
    let ServerMessage::AttachSession { mode, .. } = m else {
        panic!("not attach_session");
    };
    assert_eq!(mode, AttachMode::Resume);
    let fresh = serde_json::to_value(ServerMessage::AttachSession {
        request_id: RequestId(2),
        session_id: sid("s"),
        mode: AttachMode::Fresh,
    })
    .unwrap();
    assert_eq!(fresh["mode"], "fresh");
}

#[test]
fn close_without_reason() {
    let m: ServerMessage =
        serde_json::from_str(r#"{"type":"close_session","request_id":1,"session_id":"s"}"#)
            .unwrap();
    let ServerMessage::CloseSession { reason, .. } = m else {
        panic!("not close_session");
    };
    assert_eq!(reason, None);
}

#[test]
fn request_ids() {
    let with_ids = all_server_messages()
        .iter()
        .filter(|m| m.request_id().is_some())
        .count();
    assert_eq!(with_ids, 10);
    assert_eq!(
        AgentMessage::Ok {
            request_id: RequestId(5)
        }
        .request_id(),
        Some(RequestId(5))
    );
    assert_eq!(
        AgentMessage::FileReadEnd {
            transfer_id: TransferId(1)
        }
        .request_id(),
        None
    );
}

// ---- frame decoder ----

#[test]
fn decoder_handles_partial_and_batched_input() {
    let msgs = all_agent_messages();
    let stream: Vec<u8> = msgs
        .iter()
        .flat_map(|m| encode_frame(m, DEFAULT_MAX_FRAME_LEN).unwrap())
        .collect();

    // One byte at a time.
    let mut d = FrameDecoder::default();
    let mut got = Vec::new();
    for b in &stream {
        d.push(std::slice::from_ref(b));
        while let Some(m) = d.next_message::<AgentMessage>().unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);

    // All at once.
    let mut d = FrameDecoder::default();
    d.push(&stream);
    let mut got = Vec::new();
    while let Some(m) = d.next_message::<AgentMessage>().unwrap() {
        got.push(m);
    }
    assert_eq!(got, msgs);
}

#[test]
fn oversized_frames_are_refused_before_their_body_arrives() {
    let mut d = FrameDecoder::new(100);
    d.push(&101u32.to_be_bytes());
    assert!(matches!(
        d.next_message::<AgentMessage>(),
        Err(FrameError::TooLarge { len: 101, max: 100 })
    ));

    let mut d = FrameDecoder::default();
    d.push(&u32::MAX.to_be_bytes());
    assert!(matches!(d.next_body(), Err(FrameError::TooLarge { .. })));

    let big = AgentMessage::DataChannel {
        session_id: sid("s"),
        frame: Binary(vec![0; 200]),
    };
    assert!(matches!(
        encode_frame(&big, 100),
        Err(FrameError::TooLarge { max: 100, .. })
    ));
}

#[test]
fn a_bad_frame_is_consumed_and_the_stream_continues() {
    let mut d = FrameDecoder::default();
    d.push(&5u32.to_be_bytes());
    d.push(b"{bad}");
    d.push(
        &encode_frame(
            &AgentMessage::Ok {
                request_id: RequestId(1),
            },
            1000,
        )
        .unwrap(),
    );
    assert!(matches!(
        d.next_message::<AgentMessage>(),
        Err(FrameError::Json(_))
    ));
    assert_eq!(
        d.next_message::<AgentMessage>().unwrap(),
        Some(AgentMessage::Ok {
            request_id: RequestId(1)
        })
    );
    assert_eq!(d.next_message::<AgentMessage>().unwrap(), None);
}

#[test]
fn incomplete_prefix_waits() {
    let mut d = FrameDecoder::default();
    d.push(&[0, 0]);
    assert!(d.next_body().unwrap().is_none());
    assert_eq!(d.buffered_len(), 2);
    assert_eq!(LENGTH_PREFIX_LEN, 4);
}

proptest! {
    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
    ) {
        let mut d = FrameDecoder::new(1024);
        for c in chunks {
            d.push(&c);
            // Stop at the first error, as a connection would.
            while let Ok(Some(_)) = d.next_message::<ServerMessage>() {}
        }
    }

    #[test]
    fn any_split_of_a_stream_decodes_the_same(cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let msgs = all_server_messages();
        let stream: Vec<u8> = msgs
            .iter()
            .flat_map(|m| encode_frame(m, DEFAULT_MAX_FRAME_LEN).unwrap())
            .collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len())).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            d.push(&stream[w[0]..w[1]]);
            while let Some(m) = d.next_message::<ServerMessage>().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
    }
}

#[test]
fn data_channel_frames_travel_in_binary_from_version_4() {
    let session_id = SessionId("s-0123456789abcdef".into());
    let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let agent = AgentMessage::DataChannel {
        session_id: session_id.clone(),
        frame: Binary(payload.clone()),
    };
    let server = ServerMessage::DataChannel {
        session_id: session_id.clone(),
        frame: Binary(payload.clone()),
    };
    let binary = encode_message(&agent, BINARY_FRAME_VERSION, DEFAULT_MAX_FRAME_LEN).unwrap();
    let json = encode_message(&agent, BINARY_FRAME_VERSION - 1, DEFAULT_MAX_FRAME_LEN).unwrap();
    assert_eq!(binary[0] & 0x80, 0x80, "flagged as binary");
    assert_eq!(binary.len(), 4 + 1 + session_id.0.len() + payload.len());
    assert_eq!(json[0] & 0x80, 0, "an older peer gets JSON");
    assert!(json.len() > payload.len() * 4 / 3, "base64 inside");
    // Other messages stay JSON whatever the version.
    let other = ServerMessage::DetachSession {
        session_id: session_id.clone(),
    };
    let other_frame = encode_message(&other, BINARY_FRAME_VERSION, DEFAULT_MAX_FRAME_LEN).unwrap();
    assert_eq!(&other_frame[4..5], b"{");

    // Both forms decode, mixed in one stream, split at every size.
    let stream: Vec<u8> = [binary.clone(), json, binary.clone()].concat();
    for step in [1, 3, 4096, stream.len()] {
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for chunk in stream.chunks(step) {
            d.push(chunk);
            while let Some(m) = d.next_message::<AgentMessage>().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![agent.clone(), agent.clone(), agent.clone()]);
    }
    let mut d = FrameDecoder::default();
    d.push(&encode_message(&server, BINARY_FRAME_VERSION, DEFAULT_MAX_FRAME_LEN).unwrap());
    assert_eq!(d.next_message::<ServerMessage>().unwrap(), Some(server));

    // The size limit holds for binary frames too, before the body arrives.
    assert!(matches!(
        encode_message(&agent, BINARY_FRAME_VERSION, 1000),
        Err(FrameError::TooLarge { .. })
    ));
    let mut d = FrameDecoder::new(1000);
    d.push(&binary[..8]);
    assert!(matches!(
        d.next_message::<AgentMessage>(),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn malformed_binary_frames_are_refused_and_the_stream_stays_in_step() {
    let good = AgentMessage::DataChannel {
        session_id: SessionId("s".into()),
        frame: Binary(b"ok".to_vec()),
    };
    let flagged = |body: &[u8]| {
        let mut f = ((body.len() as u32) | 0x8000_0000).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    for body in [&b""[..], b"\x05abc", b"\x02\xff\xfe"] {
        let mut d = FrameDecoder::default();
        d.push(&flagged(body));
        d.push(&encode_message(&good, BINARY_FRAME_VERSION, DEFAULT_MAX_FRAME_LEN).unwrap());
        assert!(matches!(
            d.next_message::<AgentMessage>(),
            Err(FrameError::Binary(_))
        ));
        assert_eq!(
            d.next_message::<AgentMessage>().unwrap(),
            Some(good.clone())
        );
    }
}
