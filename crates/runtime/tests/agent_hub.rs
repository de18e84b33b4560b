//! `AgentHub` against the real agent as init of a real environment: several
//! sessions over one connection, control requests while a session floods,
//! re-attaching, session-end reports, file transfer and the agent's errors.
//!
//! The agent binary comes from `SEASHELL_AGENT_BIN`, or else
//! `scripts/build-agent.sh` (see `agent_environment.rs`).

mod common;

use bytes::Bytes;
use common::{Fixture, TIMEOUT};
use futures_util::StreamExt;
use seashell_protocol::agent_channel::{AttachMode, ErrorCode, SessionEndReason, SessionId, Shell};
use seashell_protocol::data_channel::{
    ActionStatus, ActionType, ClientMessage, HandshakeResponsePayload, MessageType, PayloadType,
    ProcessedClientAction, Receive, ReorderBuffer, Uuid,
};
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_hub::{AgentHub, Attachment, HubError, SessionEnded};
use seashell_runtime::{EnvironmentId, HomeKey, Limits};

/// Starts an environment whose init is the agent, with a home volume.
fn start(f: &Fixture, name: &str) -> (EnvironmentId, HomeKey) {
    start_with(f, name, &[])
}

/// The same, with extra agent flags.
fn start_with(f: &Fixture, name: &str, agent_flags: &[&str]) -> (EnvironmentId, HomeKey) {
    let id = f.id(name);
    let home = f.home_key(name);
    let mut spec = f.spec(&id, Some(home.clone()), Limits::default());
    AgentOptions {
        binary: common::agent_binary(),
        credentials_token_file: None,
    }
    .apply(&mut spec)
    .expect("agent spec");
    spec.init
        .extend(agent_flags.iter().map(|f| (*f).to_owned()));
    f.rt.create(&spec)
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    f.rt.start(&id)
        .unwrap_or_else(|e| panic!("start {id}: {e}"));
    (id, home)
}

async fn hub(f: &Fixture, id: &EnvironmentId) -> AgentHub {
    let socket = f.rt.agent_socket(id).expect("agent socket");
    AgentHub::connect(&socket, id.as_str(), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("connecting the hub: {e}"))
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

/// The client end of one session's data channel over an [`Attachment`]:
/// answers the handshake, acknowledges and reorders output, numbers input.
struct Terminal {
    attachment: Attachment,
    incoming: ReorderBuffer<ClientMessage>,
    next_input: i64,
    output: Vec<u8>,
    handshake_done: bool,
    channel_closed: bool,
}

impl Terminal {
    async fn attach(hub: &AgentHub, session: &SessionId) -> Terminal {
        let attachment = hub
            .attach(session, AttachMode::Fresh)
            .await
            .unwrap_or_else(|e| panic!("attach {session}: {e}"));
        let mut t = Terminal::over(attachment);
        while !t.handshake_done {
            assert!(t.step().await, "attachment ended before the handshake");
        }
        t
    }

    fn over(attachment: Attachment) -> Terminal {
        Terminal {
            attachment,
            incoming: ReorderBuffer::default(),
            next_input: 0,
            output: Vec::new(),
            handshake_done: false,
            channel_closed: false,
        }
    }

    async fn input(&mut self, payload_type: PayloadType, payload: Vec<u8>) {
        let frame = ClientMessage::stream(
            MessageType::InputStreamData,
            self.next_input,
            payload_type,
            payload,
            Uuid::new_v4(),
            now_ms(),
        )
        .encode()
        .expect("encode input");
        self.next_input += 1;
        self.attachment.send_frame(frame).await.expect("send input");
    }

    async fn type_line(&mut self, line: &str) {
        self.input(PayloadType::Output, format!("{line}\n").into_bytes())
            .await;
    }

    /// Handles one frame; false once the attachment has ended.
    async fn step(&mut self) -> bool {
        let Some(frame) = self.attachment.next_frame().await else {
            return false;
        };
        let m = ClientMessage::decode(&frame).expect("a valid frame from the agent");
        match m.message_type {
            MessageType::OutputStreamData => {
                let ack = ClientMessage::acknowledge(&m, Uuid::new_v4(), now_ms())
                    .expect("ack")
                    .encode()
                    .expect("encode ack");
                // A replaced attachment's acknowledgements are refused.
                match self.attachment.send_frame(ack).await {
                    Ok(()) | Err(HubError::NotAttached) => {}
                    Err(e) => panic!("send ack: {e}"),
                }
                if let Receive::Deliver(ms) = self.incoming.receive(m.sequence_number, m) {
                    for m in ms {
                        self.deliver(m).await;
                    }
                }
            }
            MessageType::ChannelClosed => self.channel_closed = true,
            _ => {}
        }
        true
    }

    async fn deliver(&mut self, m: ClientMessage) {
        match m.payload_type {
            PayloadType::HandshakeRequest => {
                let response = HandshakeResponsePayload {
                    client_version: "agent-hub-test".into(),
                    processed_client_actions: vec![ProcessedClientAction {
                        action_type: ActionType::SessionType,
                        action_status: ActionStatus::Success,
                        action_result: serde_json::Value::Null,
                        error: String::new(),
                    }],
                    errors: vec![],
                };
                let payload = serde_json::to_vec(&response).expect("json");
                self.input(PayloadType::HandshakeResponse, payload).await;
            }
            PayloadType::HandshakeComplete => self.handshake_done = true,
            PayloadType::Output => self.output.extend_from_slice(&m.payload),
            _ => {}
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Processes frames until the output contains `needle`.
    async fn wait_for(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let needle_bytes = needle.as_bytes();
        // Searches only what arrived since the last look (and a needle's
        // length before it), so a flood does not make this quadratic.
        let mut from: usize = 0;
        loop {
            let start = from.saturating_sub(needle_bytes.len());
            if self.output[start..]
                .windows(needle_bytes.len())
                .any(|w| w == needle_bytes)
            {
                return;
            }
            from = self.output.len();
            let tail = |t: &Terminal| {
                let at = t.output.len().saturating_sub(300);
                String::from_utf8_lossy(&t.output[at..]).into_owned()
            };
            match tokio::time::timeout_at(deadline, self.step()).await {
                Ok(true) => {}
                Ok(false) => panic!("attachment ended waiting for {needle:?}: …{}", tail(self)),
                Err(_) => panic!("timed out waiting for {needle:?}: …{}", tail(self)),
            }
        }
    }

    async fn run(&mut self, line: &str, expect: &str) {
        self.type_line(line).await;
        self.wait_for(expect).await;
    }
}

async fn next_end(
    events: &mut tokio::sync::broadcast::Receiver<SessionEnded>,
    session: &SessionId,
) -> SessionEnded {
    loop {
        let e = tokio::time::timeout(TIMEOUT, events.recv())
            .await
            .expect("session_ended in time")
            .expect("events open");
        if &e.session_id == session {
            return e;
        }
    }
}

#[test]
fn sessions_share_one_connection() {
    let f = Fixture::new("hub");
    let (id, _home) = start(&f, "hub");
    tokio_runtime().block_on(async {
        let hub = hub(&f, &id).await;
        let mut events = hub.session_events();
        let (a, b) = (SessionId("a".into()), SessionId("b".into()));
        for s in [&a, &b] {
            hub.open_session(s, Shell::Bash, 80, 24, Default::default())
                .await
                .expect("open session");
        }

        // Two sessions attached at once, with independent traffic.
        let mut ta = Terminal::attach(&hub, &a).await;
        let mut tb = Terminal::attach(&hub, &b).await;
        ta.type_line("echo in-a-$((20+1))").await;
        tb.type_line("echo in-b-$((20+2))").await;
        tb.wait_for("in-b-22").await;
        ta.wait_for("in-a-21").await;
        assert!(!ta.text().contains("in-b-22"), "{}", ta.text());
        assert!(!tb.text().contains("in-a-21"), "{}", tb.text());

        // Session a floods and its client stops reading: the status request
        // and session b still get through, because the hub never waits for
        // a's queue.
        ta.type_line("yes flood-line").await;
        ta.wait_for("flood-line\r\nflood-line").await;
        let status = hub.status().await.expect("status while a floods");
        let mut listed: Vec<_> = status
            .sessions
            .iter()
            .map(|s| s.session_id.0.clone())
            .collect();
        listed.sort();
        assert_eq!(listed, ["a", "b"]);
        assert!(status.sessions.iter().all(|s| s.attached), "{status:?}");
        tb.run("echo still-$((30+3))", "still-33").await;

        // Ctrl-C reaches a's shell through the same connection while the
        // flood is unread; a new client then sees a prompt that answers.
        ta.input(PayloadType::Output, b"\x03".to_vec()).await;
        drop(ta);

        // Re-attaching replaces the older attachment: its frames end, and
        // dropping it does not detach the newer one.
        let older = hub.attach(&b, AttachMode::Resume).await.expect("attach b");
        let mut tb2 = Terminal::attach(&hub, &b).await;
        let mut older = older;
        assert!(!older.is_current());
        tokio::time::timeout(TIMEOUT, async {
            while older.next_frame().await.is_some() {}
        })
        .await
        .expect("the older attachment ends");
        tokio::time::timeout(TIMEOUT, async { while tb.step().await {} })
            .await
            .expect("the first attachment ends");
        // The replaced client's late frames are refused, not relayed into
        // the newer channel.
        assert!(matches!(
            older.send_frame(b"late".to_vec()).await,
            Err(HubError::NotAttached)
        ));
        drop(older);
        drop(tb);
        tb2.run("echo again-$((40+4))", "again-44").await;

        let mut ta2 = Terminal::attach(&hub, &a).await;
        ta2.run("echo after-flood-$((50+5))", "after-flood-55")
            .await;

        // Session-end reports: an exit with its code, and a close.
        tb2.type_line("exit 7").await;
        let ended = next_end(&mut events, &b).await;
        assert_eq!(ended.reason, SessionEndReason::Exited);
        assert_eq!(ended.exit_code, Some(7));
        // The attachment ends after the channel_closed.
        while tb2.step().await {}
        assert!(tb2.channel_closed);

        hub.close_session(&a, Some(SessionEndReason::IdleTimeout))
            .await
            .expect("close a");
        let ended = next_end(&mut events, &a).await;
        assert_eq!(ended.reason, SessionEndReason::IdleTimeout);
        let status = hub.status().await.expect("status");
        assert!(status.sessions.is_empty(), "{status:?}");
    });
}

#[test]
fn files_and_errors() {
    let f = Fixture::new("hubfiles");
    let (id, _home) = start(&f, "files");
    tokio_runtime().block_on(async {
        let hub = hub(&f, &id).await;

        // A few MiB, in uneven pieces, and back, byte for byte.
        let data: Vec<u8> = (0..3 * 1024 * 1024 + 12345u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let pieces: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(700_001)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let written = hub
            .write_file(
                "upload.bin",
                Some(data.len() as u64),
                futures_util::stream::iter(pieces),
            )
            .await
            .expect("write file");
        assert_eq!(written, data.len() as u64);
        let (size, mut stream) = hub.read_file("upload.bin").await.expect("read file");
        assert_eq!(size, data.len() as u64);
        let mut back = Vec::new();
        while let Some(chunk) = stream.next().await {
            back.extend_from_slice(&chunk.expect("chunk"));
        }
        assert!(back == data, "read back {} bytes that differ", back.len());
        // The shell sees the same file, owned by the user.
        let out = f.ok(
            &id,
            seashell_runtime::ExecUser::CloudshellUser,
            "stat -c '%s %u' /home/cloudshell-user/upload.bin",
        );
        assert_eq!(out, format!("{} 1000", data.len()));

        // A failing body abandons the upload: nothing is left.
        let pieces: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"partial")),
            Err(std::io::Error::other("client went away")),
        ];
        let err = hub
            .write_file("partial.txt", None, futures_util::stream::iter(pieces))
            .await
            .expect_err("failing body");
        assert!(matches!(err, HubError::Body(_)), "{err:?}");
        hub.status().await.expect("status after the abort");
        let left = f.ok(
            &id,
            seashell_runtime::ExecUser::CloudshellUser,
            "ls -a /home/cloudshell-user",
        );
        assert!(!left.contains("partial"), "{left}");

        // The agent's refusals arrive as HubError::Agent with its code.
        let agent_code = |e: HubError| match e {
            HubError::Agent { code, .. } => code,
            other => panic!("expected an agent error, got {other:?}"),
        };
        let unknown = SessionId("no-such-session".into());
        let e = hub
            .attach(&unknown, AttachMode::Resume)
            .await
            .expect_err("attach unknown");
        assert_eq!(agent_code(e), ErrorCode::UnknownSession);
        let e = hub
            .close_session(&unknown, None)
            .await
            .expect_err("close unknown");
        assert_eq!(agent_code(e), ErrorCode::UnknownSession);
        let e = hub
            .write_file(
                "../outside.txt",
                None,
                futures_util::stream::iter(vec![Ok(Bytes::from_static(b"x"))]),
            )
            .await
            .expect_err("write outside home");
        assert_eq!(agent_code(e), ErrorCode::PathOutsideHome);
        let e = hub
            .read_file("/etc/passwd")
            .await
            .expect_err("read outside home");
        assert_eq!(agent_code(e), ErrorCode::PathOutsideHome);
        let e = hub
            .read_file("missing.txt")
            .await
            .expect_err("read missing");
        assert_eq!(agent_code(e), ErrorCode::NotFound);
        let dup = SessionId("dup".into());
        hub.open_session(&dup, Shell::Bash, 80, 24, Default::default())
            .await
            .expect("open");
        let e = hub
            .open_session(&dup, Shell::Bash, 80, 24, Default::default())
            .await
            .expect_err("open twice");
        assert_eq!(agent_code(e), ErrorCode::SessionExists);

        // A second connection replaces this one: the hub reports it closed
        // and fails requests with Closed.
        let newer = {
            let socket = f.rt.agent_socket(&id).expect("socket");
            AgentHub::connect(&socket, id.as_str(), TIMEOUT)
                .await
                .expect("second hub")
        };
        tokio::time::timeout(TIMEOUT, hub.closed())
            .await
            .expect("old hub closes");
        assert!(hub.is_closed());
        assert!(matches!(hub.status().await, Err(HubError::Closed)));
        let status = newer.status().await.expect("the newer connection works");
        assert_eq!(status.sessions.len(), 1);

        // The wrong environment id is refused at the hello.
        let socket = f.rt.agent_socket(&id).expect("socket");
        let e = AgentHub::connect(&socket, "some-other-env", TIMEOUT)
            .await
            .expect_err("wrong environment");
        assert!(
            matches!(
                e,
                HubError::Protocol(_) | HubError::Agent { .. } | HubError::Closed
            ),
            "{e:?}"
        );
    });
}

#[test]
fn a_client_that_does_not_keep_up_overflows_alone() {
    let f = Fixture::new("hubslow");
    // A window far above the hub's queue, so the agent keeps sending to a
    // client that reads nothing until the hub's limit, not the agent's,
    // stops it.
    let window = (64u64 << 20).to_string();
    let (id, _home) = start_with(&f, "slow", &["--window-bytes", &window]);
    tokio_runtime().block_on(async {
        let hub = hub(&f, &id).await;
        let (slow, other) = (SessionId("slow".into()), SessionId("other".into()));
        for s in [&slow, &other] {
            hub.open_session(s, Shell::Bash, 80, 24, Default::default())
                .await
                .expect("open session");
        }
        let mut t = Terminal::attach(&hub, &slow).await;
        let mut o = Terminal::attach(&hub, &other).await;
        // More output than the hub queues for one attachment, while this
        // client reads nothing; `cat` writes in large blocks, so the frames
        // are large too (the agent also holds at most 10 000 of them).
        const N: u32 = 1_500_000;
        t.type_line(&format!(
            "seq 1 {N} > /tmp/numbers; cat /tmp/numbers; echo end-$((3*3))"
        ))
        .await;
        // Meanwhile the connection serves everyone else.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut k = 1000;
        loop {
            hub.status().await.expect("status while a client lags");
            k += 1;
            o.run(
                &format!("echo other-$(({k}+1))"),
                &format!("other-{}", k + 1),
            )
            .await;
            if t.attachment.overflowed() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the attachment never overflowed"
            );
            // The environment has one CPU; leave it to the loop.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // The lagging client drains what was queued, then its attachment
        // ends; it resumes and the agent resends the rest, in order.
        tokio::time::timeout(TIMEOUT, async { while t.step().await {} })
            .await
            .expect("the overflowed attachment ends");
        t.attachment = hub.attach(&slow, AttachMode::Resume).await.expect("resume");
        t.wait_for("end-9").await;
        let numbers: Vec<u32> = t
            .text()
            .split("\r\n")
            .filter_map(|l| l.parse().ok())
            .collect();
        assert_eq!(numbers, (1..=N).collect::<Vec<u32>>());
    });
}
