//! Downloads through `AgentHub` from the real agent, as init of a real
//! environment, to consumers slower than the agent: the per-transfer flow
//! control of the agent channel keeps what waits in the hub within the
//! agent's window, so a slow client still gets every byte.
//!
//! The agent binary comes from `SEASHELL_AGENT_BIN`, or else
//! `scripts/build-agent.sh` (see `agent_environment.rs`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Fixture, Options, TIMEOUT};
use futures_util::StreamExt;
use seashell_protocol::agent_channel::FILE_READ_WINDOW;
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_hub::{AgentHub, FILE_CHUNK};
use seashell_runtime::{EnvironmentId, Limits};

/// Starts an environment whose init is the agent, with a home volume.
fn start(f: &Fixture, name: &str) -> EnvironmentId {
    let id = f.id(name);
    let home = f.home_key(name);
    let mut spec = f.spec(&id, Some(home), Limits::default());
    AgentOptions {
        binary: common::agent_binary(),
        credentials_token_file: None,
    }
    .apply(&mut spec)
    .expect("agent spec");
    f.rt.create(&spec)
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    f.rt.start(&id)
        .unwrap_or_else(|e| panic!("start {id}: {e}"));
    id
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

/// The test file's bytes from `start`: every 8-byte word is derived from
/// its own index, so a lost, repeated or misplaced piece shows.
fn pattern(start: u64, len: usize) -> Vec<u8> {
    (start..start + len as u64)
        .map(|p| (p / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[(p % 8) as usize])
        .collect()
}

const SIZE: u64 = 100 << 20;

/// Uploads the pattern file of [`SIZE`] bytes to `path`.
async fn upload(hub: &AgentHub, path: &str) {
    let pieces = (0..SIZE.div_ceil(FILE_CHUNK as u64)).map(|i| {
        let start = i * FILE_CHUNK as u64;
        let len = (SIZE - start).min(FILE_CHUNK as u64) as usize;
        Ok::<_, std::io::Error>(Bytes::from(pattern(start, len)))
    });
    let written = hub
        .write_file(path, Some(SIZE), futures_util::stream::iter(pieces))
        .await
        .expect("write the test file");
    assert_eq!(written, SIZE);
}

#[test]
fn a_slow_consumer_gets_a_large_file_intact() {
    let f = Fixture::with(
        "hubslowread",
        Options {
            home_bytes: 256 << 20,
            ..Options::default()
        },
    );
    let id = start(&f, "slowread");
    tokio_runtime().block_on(async {
        let hub = hub(&f, &id).await;
        upload(&hub, "big.bin").await;

        let (size, mut stream) = hub.read_file("big.bin").await.expect("read file");
        assert_eq!(size, SIZE);
        let mut received = 0u64;
        let mut most_buffered = 0;
        let mut pieces = 0u64;
        while let Some(piece) = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .expect("the download stalled")
        {
            let piece = piece.unwrap_or_else(|e| panic!("after {received} bytes: {e}"));
            assert!(
                piece[..] == pattern(received, piece.len())[..],
                "bytes at {received}..{} differ",
                received + piece.len() as u64
            );
            received += piece.len() as u64;
            pieces += 1;
            most_buffered = most_buffered.max(stream.buffered_bytes());
            // A client far slower than the agent, which also stalls now
            // and then (some 6 s in all).
            let pause = if pieces % 64 == 0 { 1000 } else { 15 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        assert_eq!(received, SIZE);
        // What waits in the hub stays within the agent's window.
        assert!(
            most_buffered <= FILE_READ_WINDOW as usize,
            "{most_buffered} bytes were waiting in the hub"
        );

        // The connection still serves other requests.
        hub.status().await.expect("status after the download");
    });
}

#[test]
fn a_dropped_download_is_abandoned_at_the_agent() {
    let f = Fixture::with(
        "hubdropread",
        Options {
            home_bytes: 256 << 20,
            ..Options::default()
        },
    );
    let id = start(&f, "dropread");
    tokio_runtime().block_on(async {
        let hub = hub(&f, &id).await;
        upload(&hub, "big.bin").await;

        // Read a little and walk away, several times: each abandoned
        // download must release the agent's file and stop its sending.
        for _ in 0..5 {
            let (_, mut stream) = hub.read_file("big.bin").await.expect("read file");
            let first = stream.next().await.expect("a first piece").expect("bytes");
            assert!(first[..] == pattern(0, first.len())[..]);
            drop(stream);
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            // The agent's descriptors, seen from inside the environment:
            // none still open on the file once the aborts arrived.
            let open = f.ok(
                &id,
                seashell_runtime::ExecUser::Root,
                "ls -l /proc/1/fd | grep -c big.bin || true",
            );
            if open.trim() == "0" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agent still holds {open} descriptors of the file"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A whole download afterwards is unaffected.
        let (size, mut stream) = hub.read_file("big.bin").await.expect("read file");
        let mut received = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece.expect("piece");
            assert!(piece[..] == pattern(received, piece.len())[..]);
            received += piece.len() as u64;
        }
        assert_eq!(received, size);
    });
}
