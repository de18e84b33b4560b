//! `AgentHub` against a hostile agent, played here over a Unix socket with
//! the real frame format: root inside an environment controls the agent,
//! so everything it sends is input from that user. Oversized frame
//! headers, garbage, silence, a flood of frames for sessions, transfers
//! and requests that do not exist, and a connection cut mid-frame each end
//! in an error (or leave the hub working) within a bounded time, without a
//! panic, and the flood without the process's memory growing with it.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use seashell_protocol::agent_channel::{
    encode_frame, encode_message, AgentMessage, AgentStatus, Binary, ErrorCode, FrameDecoder,
    Hello, RequestId, Role, ServerMessage, SessionEndReason, SessionId, TransferId,
    DEFAULT_MAX_FRAME_LEN, PROTOCOL_VERSION,
};
use seashell_runtime::agent_hub::{AgentHub, HubError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

const ENV: &str = "env-hostile";
/// What the hub is given to connect; every failure must come well before
/// it (or, for silence, at it).
const CONNECT: Duration = Duration::from_secs(10);
/// How soon a refusal must come.
const PROMPT: Duration = Duration::from_secs(3);

/// A socket the fake agent listens on, removed with the value.
struct Fake {
    dir: PathBuf,
    socket: PathBuf,
    listener: UnixListener,
}

impl Fake {
    fn new(name: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!(
            "seashell-hub-hostile-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        Fake {
            dir,
            socket,
            listener,
        }
    }

    /// Accepts the hub and reads its hello.
    async fn accept(&self) -> (UnixStream, FrameDecoder) {
        let (mut stream, _) = self.listener.accept().await.unwrap();
        let mut decoder = FrameDecoder::default();
        let hello = read_server_message(&mut stream, &mut decoder).await;
        assert!(matches!(hello, Some(ServerMessage::Hello(_))), "{hello:?}");
        (stream, decoder)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn read_server_message<R: AsyncReadExt + Unpin>(
    stream: &mut R,
    decoder: &mut FrameDecoder,
) -> Option<ServerMessage> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(m) = decoder.next_message::<ServerMessage>().unwrap() {
            return Some(m);
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => decoder.push(&buf[..n]),
        }
    }
}

fn agent_hello() -> Vec<u8> {
    let hello = Hello::new(Role::Agent, "hostile").with_environment(ENV);
    encode_frame(&AgentMessage::Hello(hello), DEFAULT_MAX_FRAME_LEN).unwrap()
}

fn frame(message: &AgentMessage) -> Vec<u8> {
    encode_message(message, PROTOCOL_VERSION, DEFAULT_MAX_FRAME_LEN).unwrap()
}

fn status_answer(request_id: RequestId) -> Vec<u8> {
    frame(&AgentMessage::Status {
        request_id,
        status: AgentStatus {
            agent_version: "hostile".into(),
            uptime_ms: 1,
            sessions: vec![],
            credentials_expiration: None,
            home_used_bytes: None,
        },
    })
}

/// A header announcing one byte more than the limit, as a JSON frame and
/// as a binary one (the top bit marks binary frames).
fn oversized_headers() -> [[u8; 4]; 2] {
    let len = u32::try_from(DEFAULT_MAX_FRAME_LEN).unwrap() + 1;
    [len.to_be_bytes(), (len | 1 << 31).to_be_bytes()]
}

/// Frames whose length is fine and whose body is not a message: the hub
/// consumes them and stays in step.
fn malformed_frames() -> Vec<u8> {
    let mut out = Vec::new();
    for body in [
        &b"\xff\xfe not json"[..],
        b"{\"type\":\"no_such_message\"}",
        b"{\"type\":\"status\",\"request_id\":\"x\"}",
        b"[]",
    ] {
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        out.extend_from_slice(body);
    }
    // A binary frame with a session id longer than its body.
    let body = [0xffu8, 0xff, b'x'];
    out.extend_from_slice(&(u32::try_from(body.len()).unwrap() | 1 << 31).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Connects the hub with the fake playing `agent` on its end; returns the
/// hub's result and how long it took.
async fn connect_against<F, Fut>(fake: Fake, agent: F) -> (Result<AgentHub, HubError>, Duration)
where
    F: FnOnce(Fake) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let socket = fake.socket.clone();
    let agent = tokio::spawn(agent(fake));
    let started = Instant::now();
    let result = AgentHub::connect(&socket, ENV, CONNECT).await;
    let took = started.elapsed();
    agent.abort();
    (result, took)
}

/// Splits a connected fake: a task reads the hub's requests and hands
/// over the ids of `status` requests.
fn serve(
    stream: UnixStream,
    mut decoder: FrameDecoder,
) -> (OwnedWriteHalf, mpsc::UnboundedReceiver<RequestId>) {
    let (mut read, write): (OwnedReadHalf, OwnedWriteHalf) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = read_server_message(&mut read, &mut decoder).await {
            if let ServerMessage::Status { request_id } = m {
                let _ = tx.send(request_id);
            }
        }
    });
    (write, rx)
}

fn vm_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_header_ends_the_connection_without_waiting_for_its_body() {
    for header in oversized_headers() {
        // At the hello.
        let (result, took) = connect_against(Fake::new("big-hello"), move |fake| async move {
            let (mut stream, _) = fake.accept().await;
            stream.write_all(&header).await.unwrap();
            // The body never comes; the connection stays open.
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        let e = result.expect_err("an oversized hello");
        assert!(matches!(e, HubError::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains("exceeds the maximum"), "{e}");
        assert!(took < PROMPT, "took {took:?}");

        // After it, while a request waits.
        let fake = Fake::new("big-later");
        let socket = fake.socket.clone();
        let agent = tokio::spawn(async move {
            let (stream, decoder) = fake.accept().await;
            let (mut write, mut requests) = serve(stream, decoder);
            write.write_all(&agent_hello()).await.unwrap();
            let _ = requests.recv().await;
            write.write_all(&header).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(fake);
        });
        let hub = AgentHub::connect(&socket, ENV, CONNECT).await.unwrap();
        let started = Instant::now();
        let e = hub
            .status()
            .await
            .expect_err("no answer after an oversized frame");
        assert!(matches!(e, HubError::Closed), "{e:?}");
        tokio::time::timeout(PROMPT, hub.closed())
            .await
            .expect("the hub closes");
        assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
        agent.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_refused_at_the_hello_and_skipped_or_fatal_after_it() {
    // A malformed first frame: the hello exchange fails at once.
    let (result, took) = connect_against(Fake::new("garbage-hello"), |fake| async move {
        let (mut stream, _) = fake.accept().await;
        stream.write_all(&malformed_frames()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let e = result.expect_err("garbage for a hello");
    assert!(matches!(e, HubError::Protocol(_)), "{e:?}");
    assert!(took < PROMPT, "took {took:?}");

    // Unframed bytes: read as a length far over the limit.
    let (result, took) = connect_against(Fake::new("noise-hello"), |fake| async move {
        let (mut stream, _) = fake.accept().await;
        stream.write_all(&[0xab; 4096]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let e = result.expect_err("noise for a hello");
    assert!(matches!(e, HubError::Protocol(_)), "{e:?}");
    assert!(took < PROMPT, "took {took:?}");

    // After the hello, framed garbage is consumed: the answer behind it
    // arrives. Unframed noise then ends the connection.
    let fake = Fake::new("garbage-later");
    let socket = fake.socket.clone();
    let agent = tokio::spawn(async move {
        let (stream, decoder) = fake.accept().await;
        let (mut write, mut requests) = serve(stream, decoder);
        write.write_all(&agent_hello()).await.unwrap();
        let id = requests.recv().await.unwrap();
        let mut out = malformed_frames();
        out.extend(status_answer(id));
        write.write_all(&out).await.unwrap();
        let _ = requests.recv().await;
        write.write_all(&[0xab; 4096]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(fake);
    });
    let hub = AgentHub::connect(&socket, ENV, CONNECT).await.unwrap();
    let status = tokio::time::timeout(PROMPT, hub.status())
        .await
        .expect("answered in time")
        .expect("the answer behind the garbage");
    assert_eq!(status.agent_version, "hostile");
    let e = tokio::time::timeout(PROMPT, hub.status())
        .await
        .expect("ended in time")
        .expect_err("noise ends the connection");
    assert!(matches!(e, HubError::Closed), "{e:?}");
    assert!(hub.is_closed());
    agent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_times_out_the_hello() {
    let timeout = Duration::from_secs(1);
    // Accepts and reads, never answers; then one that sends only part of
    // a frame header; then a listener that never even accepts.
    for case in 0..3 {
        let fake = Fake::new(&format!("silent-{case}"));
        let socket = fake.socket.clone();
        let agent = tokio::spawn(async move {
            match case {
                0 => {
                    let (_stream, _) = fake.accept().await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                1 => {
                    let (mut stream, _) = fake.accept().await;
                    stream.write_all(&[0, 0]).await.unwrap();
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                _ => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    drop(fake);
                }
            }
        });
        let started = Instant::now();
        let e = AgentHub::connect(&socket, ENV, timeout)
            .await
            .expect_err("a silent agent");
        let took = started.elapsed();
        assert!(matches!(e, HubError::Timeout { .. }), "case {case}: {e:?}");
        assert!(
            took >= timeout && took < timeout + PROMPT,
            "case {case}: took {took:?}"
        );
        agent.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_for_unknown_sessions_is_dropped_and_the_hub_keeps_answering() {
    let fake = Fake::new("flood");
    let socket = fake.socket.clone();
    const ROUNDS: usize = 16 * 1024;
    let agent = tokio::spawn(async move {
        let (stream, decoder) = fake.accept().await;
        let (mut write, mut requests) = serve(stream, decoder);
        write.write_all(&agent_hello()).await.unwrap();
        let payload = vec![0x5au8; 1024];
        for i in 0..ROUNDS {
            // Frames for sessions nobody attached, chunks of transfers that
            // do not exist, reports of sessions that never were, answers to
            // requests never made, errors about unknown transfers: about
            // 4 KiB a round, 64 MiB in all.
            let mut batch = Vec::with_capacity(8 * 1024);
            for message in [
                AgentMessage::DataChannel {
                    session_id: SessionId(format!("ghost-{}", i % 4096)),
                    frame: Binary::from(payload.clone()),
                },
                AgentMessage::FileReadChunk {
                    transfer_id: TransferId(u64::try_from(i).unwrap()),
                    offset: 0,
                    data: Binary::from(payload.clone()),
                },
                AgentMessage::SessionEnded {
                    session_id: SessionId(format!("ghost-{i}")),
                    reason: SessionEndReason::Exited,
                    exit_code: Some(0),
                },
                AgentMessage::FileReadEnd {
                    transfer_id: TransferId(u64::try_from(i).unwrap()),
                },
                AgentMessage::Error {
                    request_id: None,
                    code: ErrorCode::Io,
                    message: format!("transfer {i}: {}", "x".repeat(900)),
                },
                AgentMessage::Error {
                    request_id: Some(RequestId(1 << 40 | u64::try_from(i).unwrap())),
                    code: ErrorCode::Io,
                    message: "x".repeat(900),
                },
            ] {
                batch.extend(frame(&message));
            }
            batch.extend(status_answer(RequestId(
                1 << 41 | u64::try_from(i).unwrap(),
            )));
            // Real requests are answered in the middle of the flood.
            while let Ok(id) = requests.try_recv() {
                batch.extend(status_answer(id));
            }
            if write.write_all(&batch).await.is_err() {
                return;
            }
        }
        // Then the connection ends mid-frame.
        let _ = write.write_all(&[0, 0, 1, 0, b'{']).await;
        drop(write);
        drop(fake);
    });
    let hub = AgentHub::connect(&socket, ENV, CONNECT).await.unwrap();
    // A subscriber of session reports that never reads them.
    let _events = hub.session_events();
    let before = vm_kib("VmRSS:");
    let mut answered = 0;
    while !hub.is_closed() {
        match tokio::time::timeout(Duration::from_secs(10), hub.status()).await {
            Ok(Ok(status)) => {
                assert_eq!(status.agent_version, "hostile");
                answered += 1;
            }
            Ok(Err(HubError::Closed)) => break,
            Ok(Err(e)) => panic!("during the flood: {e:?}"),
            Err(_) => panic!("no answer within 10 s during the flood"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = vm_kib("VmHWM:");
    agent.await.unwrap();
    tokio::time::timeout(PROMPT, hub.closed())
        .await
        .expect("the hub closes");
    assert!(
        answered >= 3,
        "only {answered} requests answered during the flood"
    );
    // 64 MiB went through; the hub kept none of it.
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 32,
        "memory grew by {growth_mib} MiB during the flood"
    );
    eprintln!("flood: {answered} requests answered, RSS {before} kB before, peak {peak} kB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_frame_ends_promptly() {
    // In the hello: a header announcing 100 bytes, ten of them, then EOF.
    let (result, took) = connect_against(Fake::new("cut-hello"), |fake| async move {
        let (mut stream, _) = fake.accept().await;
        let mut partial = 100u32.to_be_bytes().to_vec();
        partial.extend_from_slice(b"{\"type\":\"h");
        stream.write_all(&partial).await.unwrap();
        drop(stream);
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let e = result.expect_err("a cut hello");
    assert!(matches!(e, HubError::Closed), "{e:?}");
    assert!(took < PROMPT, "took {took:?}");

    // Later, in the middle of an answer while a request waits.
    let fake = Fake::new("cut-later");
    let socket = fake.socket.clone();
    let agent = tokio::spawn(async move {
        let (stream, decoder) = fake.accept().await;
        let (mut write, mut requests) = serve(stream, decoder);
        write.write_all(&agent_hello()).await.unwrap();
        let id = requests.recv().await.unwrap();
        let answer = status_answer(id);
        write.write_all(&answer[..answer.len() / 2]).await.unwrap();
        drop(write);
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(fake);
    });
    let hub = AgentHub::connect(&socket, ENV, CONNECT).await.unwrap();
    let started = Instant::now();
    let e = hub.status().await.expect_err("a cut answer");
    assert!(matches!(e, HubError::Closed), "{e:?}");
    tokio::time::timeout(PROMPT, hub.closed())
        .await
        .expect("the hub closes");
    assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
    agent.abort();

    // The process is fine: a well-behaved agent is served as ever.
    let fake = Fake::new("after");
    let socket = fake.socket.clone();
    let agent = tokio::spawn(async move {
        let (stream, decoder) = fake.accept().await;
        let (mut write, mut requests) = serve(stream, decoder);
        write.write_all(&agent_hello()).await.unwrap();
        while let Some(id) = requests.recv().await {
            write.write_all(&status_answer(id)).await.unwrap();
        }
        drop(fake);
    });
    let hub = AgentHub::connect(&socket, ENV, CONNECT).await.unwrap();
    hub.status().await.expect("a well-behaved agent answers");
    drop(hub);
    agent.abort();
}
