//! File transfer through the control channel, confined to the home
//! directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{AgentProcess, Server};
use seashell_agent::control::FILE_CHUNK;
use seashell_protocol::agent_channel::{
    AgentMessage, Binary, ErrorCode, Hello, Role, ServerMessage, TransferId, FILE_READ_WINDOW,
};

/// Uploads `data` to `path` in chunks; returns the answer to the end (or
/// to the beginning, if that failed) and any error reported on the way.
async fn upload(
    server: &mut Server,
    transfer: u64,
    path: &str,
    size: Option<u64>,
    data: &[u8],
) -> (AgentMessage, Vec<AgentMessage>) {
    let transfer_id = TransferId(transfer);
    let begin = server
        .request(|request_id| ServerMessage::FileWriteBegin {
            request_id,
            transfer_id,
            path: path.to_owned(),
            size,
        })
        .await;
    if !matches!(begin, AgentMessage::Ok { .. }) {
        return (begin, vec![]);
    }
    for (i, chunk) in data.chunks(256 * 1024).enumerate() {
        server
            .send(&ServerMessage::FileWriteChunk {
                transfer_id,
                offset: (i * 256 * 1024) as u64,
                data: Binary(chunk.to_vec()),
            })
            .await;
    }
    let end = server
        .request(|request_id| ServerMessage::FileWriteEnd {
            request_id,
            transfer_id,
        })
        .await;
    let mut errors = vec![];
    server.pump_for(std::time::Duration::from_millis(50)).await;
    while let Some(e) = server.take_unsolicited_error() {
        errors.push(e);
    }
    (end, errors)
}

async fn download(server: &mut Server, transfer: u64, path: &str) -> Result<Vec<u8>, AgentMessage> {
    let transfer_id = TransferId(transfer);
    let begin = server
        .request(|request_id| ServerMessage::FileRead {
            request_id,
            transfer_id,
            path: path.to_owned(),
        })
        .await;
    let AgentMessage::FileReadBegin { size, .. } = begin else {
        return Err(begin);
    };
    let mine = |m: &AgentMessage| match m {
        AgentMessage::FileReadChunk { transfer_id: t, .. }
        | AgentMessage::FileReadEnd { transfer_id: t } => *t == transfer_id,
        _ => false,
    };
    let mut data = Vec::new();
    while let AgentMessage::FileReadChunk {
        offset,
        data: chunk,
        ..
    } = server.wait_for(mine).await
    {
        assert_eq!(offset, data.len() as u64, "chunks arrive in order");
        data.extend_from_slice(chunk.as_slice());
    }
    assert_eq!(data.len() as u64, size);
    Ok(data)
}

fn code(m: &AgentMessage) -> Option<ErrorCode> {
    match m {
        AgentMessage::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_round_trip() {
    let agent = AgentProcess::start();
    let mut server = Server::connect(&agent).await;
    let data: Vec<u8> = (0..1_300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (end, errors) = upload(&mut server, 1, "upload.bin", Some(data.len() as u64), &data).await;
    assert!(matches!(end, AgentMessage::Ok { .. }), "{end:?}");
    assert!(errors.is_empty(), "{errors:?}");
    let on_disk = agent.home.join("upload.bin");
    assert_eq!(std::fs::read(&on_disk).unwrap(), data);
    assert_eq!(
        entries(&agent.home),
        vec!["upload.bin"],
        "no temporary file left"
    );
    if common::is_root() {
        let meta = std::fs::metadata(&on_disk).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "owned by the user");
    }

    // An absolute path under home names the same file.
    let absolute = on_disk.to_str().unwrap().to_owned();
    assert_eq!(download(&mut server, 2, &absolute).await.unwrap(), data);
    assert_eq!(download(&mut server, 3, "upload.bin").await.unwrap(), data);

    let missing = download(&mut server, 4, "missing.txt").await.unwrap_err();
    assert_eq!(code(&missing), Some(ErrorCode::NotFound), "{missing:?}");

    // An abandoned upload leaves nothing.
    let transfer_id = TransferId(5);
    let begin = server
        .request(|request_id| ServerMessage::FileWriteBegin {
            request_id,
            transfer_id,
            path: "abandoned.bin".into(),
            size: None,
        })
        .await;
    assert!(matches!(begin, AgentMessage::Ok { .. }));
    server
        .send(&ServerMessage::FileWriteChunk {
            transfer_id,
            offset: 0,
            data: Binary(b"partial".to_vec()),
        })
        .await;
    server
        .send(&ServerMessage::FileWriteAbort { transfer_id })
        .await;
    // The status request is answered after the abort is handled.
    server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    assert_eq!(entries(&agent.home), vec!["upload.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_from_home_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "outside").unwrap();
    let agent = AgentProcess::start();
    std::os::unix::fs::symlink(outside.path(), agent.home.join("link")).unwrap();
    std::os::unix::fs::symlink("..", agent.home.join("up")).unwrap();
    let mut server = Server::connect(&agent).await;
    let parent = agent.home.parent().unwrap().to_path_buf();

    let outside_abs = outside.path().join("new.txt");
    for (i, path) in [
        "../escape.txt",
        "link/new.txt",
        "up/escape.txt",
        outside_abs.to_str().unwrap(),
        "/etc/seashell-escape",
    ]
    .into_iter()
    .enumerate()
    {
        let (end, _) = upload(&mut server, 10 + i as u64, path, None, b"x").await;
        assert_eq!(
            code(&end),
            Some(ErrorCode::PathOutsideHome),
            "{path}: {end:?}"
        );
    }
    for (i, path) in [
        "link/secret",
        "../etc/passwd",
        "up/etc/passwd",
        "/etc/passwd",
    ]
    .into_iter()
    .enumerate()
    {
        let e = download(&mut server, 20 + i as u64, path)
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::PathOutsideHome), "{path}: {e:?}");
    }
    assert_eq!(
        entries(outside.path()),
        vec!["secret"],
        "nothing written outside"
    );
    assert!(
        !parent.join("escape.txt").exists(),
        "nothing written next to home"
    );
    assert!(!Path::new("/etc/seashell-escape").exists());
    assert_eq!(entries(&agent.home), vec!["link", "up"]);
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Mount(tempfile::TempDir);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_home_fails_cleanly() {
    assert!(
        common::is_root(),
        "this test mounts a small home and must run as root (as scripts/test.sh does)"
    );
    let dir = tempfile::Builder::new()
        .prefix("seashell-agent-small-home")
        .tempdir()
        .unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a 1 MiB tmpfs as the home failed"
    );
    let mount = Mount(dir);
    let home = mount.0.path().to_path_buf();
    common::prepare_home(&home);
    let agent = AgentProcess::start_with_home(&home, None);
    let mut server = Server::connect(&agent).await;
    let big = vec![b'z'; 3 * 1024 * 1024];

    // Without a size, the volume fills while writing.
    let (end, errors) = upload(&mut server, 1, "big.bin", None, &big).await;
    assert_eq!(code(&end), Some(ErrorCode::NoSpace), "{end:?}");
    assert!(
        errors.iter().any(|e| code(e) == Some(ErrorCode::NoSpace)),
        "reported as soon as it happened: {errors:?}"
    );
    assert!(
        entries(&home).is_empty(),
        "nothing partial left: {:?}",
        entries(&home)
    );

    // With a size, it fails before any data is sent.
    let (begin, _) = upload(&mut server, 2, "big.bin", Some(big.len() as u64), &big).await;
    assert_eq!(code(&begin), Some(ErrorCode::NoSpace), "{begin:?}");
    assert!(entries(&home).is_empty());

    // A file that fits still goes through.
    let (end, _) = upload(&mut server, 3, "small.txt", Some(5), b"fits!").await;
    assert!(matches!(end, AgentMessage::Ok { .. }), "{end:?}");
    assert_eq!(std::fs::read(home.join("small.txt")).unwrap(), b"fits!");
    drop(agent);
    drop(mount);
}

/// A file of `len` bytes in which every 8-byte word derives from its index,
/// so lost, repeated or misplaced pieces show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|p| (p / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[(p % 8) as usize])
        .collect()
}

fn is_piece_of(transfer_id: TransferId) -> impl Fn(&AgentMessage) -> bool {
    move |m| match m {
        AgentMessage::FileReadChunk { transfer_id: t, .. }
        | AgentMessage::FileReadEnd { transfer_id: t } => *t == transfer_id,
        _ => false,
    }
}

/// Starts downloading `path` as transfer `transfer`; returns its size.
async fn begin_download(server: &mut Server, transfer: u64, path: &str) -> u64 {
    let begin = server
        .request(|request_id| ServerMessage::FileRead {
            request_id,
            transfer_id: TransferId(transfer),
            path: path.to_owned(),
        })
        .await;
    match begin {
        AgentMessage::FileReadBegin { size, .. } => size,
        other => panic!("download refused: {other:?}"),
    }
}

/// Descriptors the agent holds open on `path`.
fn open_descriptors(agent: &AgentProcess, path: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

/// Waits until the agent holds no descriptor on `path`.
async fn wait_closed(agent: &AgentProcess, path: &Path) {
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    while open_descriptors(agent, path) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent still holds {} open",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_a_large_file_within_the_window() {
    let agent = AgentProcess::start();
    let data = pattern(48 << 20);
    std::fs::write(agent.home.join("big.bin"), &data).unwrap();
    let mut server = Server::connect(&agent).await;
    let transfer_id = TransferId(1);
    let size = begin_download(&mut server, 1, "big.bin").await;
    assert_eq!(size, data.len() as u64);

    let window = FILE_READ_WINDOW;
    let mut received = Vec::with_capacity(data.len());
    let mut acked = 0u64;
    let mut stalls = 0;
    loop {
        let m = server.wait_for(is_piece_of(transfer_id)).await;
        let AgentMessage::FileReadChunk {
            offset,
            data: chunk,
            ..
        } = m
        else {
            break;
        };
        assert_eq!(offset, received.len() as u64, "chunks arrive in order");
        let end = offset + chunk.len() as u64;
        assert!(
            end <= acked + window,
            "the agent sent up to {end} with only {acked} acknowledged"
        );
        received.extend_from_slice(chunk.as_slice());
        let at = received.len() as u64;
        if at == acked + window && stalls < 3 {
            // The window is full: nothing more comes until an
            // acknowledgement does.
            server.pump_for(std::time::Duration::from_millis(300)).await;
            assert!(
                server.take_received(is_piece_of(transfer_id)).is_none(),
                "the agent sent beyond its window"
            );
            stalls += 1;
        }
        // A slow reader: acknowledges every 2 MiB, after a pause, and
        // sometimes only once the window is full.
        let every = if stalls < 3 { window } else { 2 << 20 };
        if at - acked >= every {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            acked = at;
            server
                .send(&ServerMessage::FileReadAck {
                    transfer_id,
                    offset: acked,
                })
                .await;
        }
    }
    assert_eq!(stalls, 3, "the window filled and held three times");
    assert!(
        received == data,
        "{} bytes arrived, not the file",
        received.len()
    );
    wait_closed(&agent, &agent.home.join("big.bin")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_download_stops_and_closes_the_file() {
    let agent = AgentProcess::start();
    let path = agent.home.join("big.bin");
    std::fs::write(&path, pattern(32 << 20)).unwrap();
    let mut server = Server::connect(&agent).await;
    let transfer_id = TransferId(7);
    begin_download(&mut server, 7, "big.bin").await;
    let first = server.wait_for(is_piece_of(transfer_id)).await;
    assert!(matches!(
        first,
        AgentMessage::FileReadChunk { offset: 0, .. }
    ));
    // Acknowledge a little, so the agent is sending when the abort comes.
    server
        .send(&ServerMessage::FileReadAck {
            transfer_id,
            offset: FILE_CHUNK as u64,
        })
        .await;
    server
        .send(&ServerMessage::FileReadAbort { transfer_id })
        .await;
    wait_closed(&agent, &path).await;
    // The download's task has ended, so whatever it queued comes before
    // this answer: what was in flight, but never the end, and never more
    // than the window allowed.
    let status = server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    assert!(matches!(status, AgentMessage::Status { .. }), "{status:?}");
    let mut last_end = FILE_CHUNK as u64;
    while let Some(m) = server.take_received(is_piece_of(transfer_id)) {
        match m {
            AgentMessage::FileReadChunk { offset, data, .. } => {
                last_end = offset + data.len() as u64
            }
            other => panic!("an aborted download went on to {other:?}"),
        }
    }
    assert!(
        last_end <= FILE_CHUNK as u64 + FILE_READ_WINDOW,
        "{last_end}"
    );
    // Late acknowledgements and aborts are ignored, and the connection
    // serves on.
    server
        .send(&ServerMessage::FileReadAck {
            transfer_id,
            offset: 4 << 20,
        })
        .await;
    server
        .send(&ServerMessage::FileReadAbort { transfer_id })
        .await;
    let status = server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    assert!(matches!(status, AgentMessage::Status { .. }), "{status:?}");
    assert!(server.take_unsolicited_error().is_none());
    let small = pattern(100_000);
    std::fs::write(agent.home.join("small.bin"), &small).unwrap();
    assert_eq!(download(&mut server, 8, "small.bin").await.unwrap(), small);
    assert!(server.take_received(is_piece_of(transfer_id)).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_stops_its_downloads() {
    let agent = AgentProcess::start();
    let path = agent.home.join("big.bin");
    std::fs::write(&path, pattern(32 << 20)).unwrap();
    let mut server = Server::connect(&agent).await;
    begin_download(&mut server, 1, "big.bin").await;
    server.wait_for(is_piece_of(TransferId(1))).await;
    assert_eq!(
        open_descriptors(&agent, &path),
        1,
        "the download holds the file"
    );
    // The window is full and nobody will acknowledge: only the end of the
    // connection releases the file.
    drop(server);
    wait_closed(&agent, &path).await;

    // A newer connection is unaffected and sees nothing of the old one.
    let mut server = Server::connect(&agent).await;
    let small = pattern(10_000);
    std::fs::write(agent.home.join("small.bin"), &small).unwrap();
    assert_eq!(download(&mut server, 1, "small.bin").await.unwrap(), small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_server_gets_files_without_acknowledging() {
    let agent = AgentProcess::start();
    let data = pattern(3 * FILE_READ_WINDOW as usize);
    std::fs::write(agent.home.join("big.bin"), &data).unwrap();
    let hello = Hello {
        max_version: 1,
        ..Hello::new(Role::Server, "test").with_environment("env-test")
    };
    let mut server = Server::connect_with(&agent, hello).await;
    assert_eq!(download(&mut server, 1, "big.bin").await.unwrap(), data);
}
