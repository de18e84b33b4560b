//! File transfer through the control channel, confined to the home
//! directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{AgentProcess, Server};
use seashell_protocol::agent_channel::{
    AgentMessage, Binary, ErrorCode, ServerMessage, TransferId,
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
