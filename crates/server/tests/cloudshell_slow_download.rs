//! A large download through a pre-signed URL to a client much slower than
//! the agent: the agent channel's per-transfer flow control paces the
//! agent to the client, so the file arrives whole instead of being
//! abandoned half-way while it piles up in the server.

mod common;

use std::time::{Duration, Instant};

use common::cloudshell::{config, sh, Api, Cleanup};
use futures_util::StreamExt as _;
use serde_json::json;
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_downloads_200_mib_whole() {
    let db = common::databases().await.remove(0);
    let cfg = config(&db);
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let key = running
        .state()
        .store
        .create_access_key(&running.first_account.admin.user_id)
        .await
        .expect("key");
    let api = Api::new(&base, (&key.0, &key.1));
    let id = api.running_environment().await;

    let blocks = 200;
    let digest = sh(
        &running,
        &id,
        &format!(
            "head -c {} /dev/urandom > big.bin && sha256sum big.bin",
            blocks * MIB
        ),
    );
    let expected = digest.split_whitespace().next().expect("digest").to_owned();

    let v = api
        .call(
            "getFileDownloadUrls",
            json!({"EnvironmentId": id, "FileDownloadPath": "big.bin"}),
        )
        .await
        .ok();
    let url = v["FileDownloadPresignedUrl"].as_str().expect("url");
    let r = reqwest::Client::new().get(url).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some((blocks * MIB) as u64));

    // The client stalls at first, then reads at about 20 MiB/s, far below
    // what the agent and the server can send.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let rate = 20.0 * MIB as f64;
    let mut got = Sha256::new();
    let mut n = 0usize;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("the download broke after {n} bytes: {e}"));
        n += chunk.len();
        got.update(&chunk);
        let due = Duration::from_secs_f64(n as f64 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    assert_eq!(n, blocks * MIB);
    assert_eq!(
        hex::encode(got.finalize()),
        expected,
        "the bytes arrived unchanged"
    );
    sh(&running, &id, "rm big.bin");

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}
