//! File transfer through pre-signed URLs into and out of a real
//! environment's home: the guide's relative and absolute paths, a 200 MiB
//! file streamed both ways in bounded memory, and every refusal (traversal,
//! symlinks out of home, tampered, expired and misused URLs, a full home)
//! leaving nothing behind.

mod common;

use common::api_client::Api;
use common::cloudshell::{config, sh, Cleanup};
use futures_util::StreamExt as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

/// Deterministic bytes: block `i` of a 1 MiB pseudo-random sequence.
fn block(i: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIB);
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    while out.len() < MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn upload_url(api: &Api, id: &str, path: &str) -> String {
    let v = api
        .call(
            "getFileUploadUrls",
            json!({"EnvironmentId": id, "FileUploadPath": path}),
        )
        .await
        .ok();
    assert_eq!(v["FileUploadPresignedFields"], json!({}));
    v["FileUploadPresignedUrl"]
        .as_str()
        .expect("url")
        .to_string()
}

async fn download_url(api: &Api, id: &str, path: &str) -> String {
    let v = api
        .call(
            "getFileDownloadUrls",
            json!({"EnvironmentId": id, "FileDownloadPath": path}),
        )
        .await
        .ok();
    assert!(v["ExpiresAt"].is_string());
    v["FileDownloadPresignedUrl"]
        .as_str()
        .expect("url")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_through_presigned_urls_confined_to_home() {
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
    let http = reqwest::Client::new();

    // The guide's getting-started file, up, moved, and down again by both
    // of the guide's path forms.
    let program =
        b"import sys\nx=int(sys.argv[1])\ny=int(sys.argv[2])\nsum=x+y\nprint(\"The sum is\",sum)\n";
    let url = upload_url(&api, &id, "add_prog.py").await;
    assert!(url.starts_with(&format!("{base}/v1/files/{id}?")), "{url}");
    let r = http
        .put(&url)
        .body(program.to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(sh(&running, &id, "cat add_prog.py").as_bytes(), program);
    sh(
        &running,
        &id,
        "mkdir subfolder && mv add_prog.py subfolder/mydownloadfile.txt",
    );
    for path in [
        "subfolder/mydownloadfile.txt",
        "/home/cloudshell-user/subfolder/mydownloadfile.txt",
    ] {
        let r = http
            .get(download_url(&api, &id, path).await)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-disposition"],
            "attachment; filename=\"mydownloadfile.txt\""
        );
        assert_eq!(r.bytes().await.expect("body").as_ref(), program, "{path}");
    }
    // The uploaded file belongs to the user.
    assert_eq!(
        sh(&running, &id, "stat -c %u subfolder/mydownloadfile.txt").trim(),
        "1000"
    );

    // 200 MiB up and down, streamed: the process's peak memory hardly moves.
    let before = peak_rss_kib();
    let blocks = 200;
    let mut sent = Sha256::new();
    for i in 0..blocks {
        sent.update(block(i));
    }
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
        (0..blocks).map(|i| Ok::<_, std::io::Error>(block(i))),
    ));
    let r = http
        .put(upload_url(&api, &id, "big.bin").await)
        .header("content-length", (blocks * MIB).to_string())
        .body(body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = http
        .get(download_url(&api, &id, "big.bin").await)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some((blocks * MIB) as u64));
    let mut got = Sha256::new();
    let mut n = 0usize;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        n += chunk.len();
        got.update(&chunk);
    }
    assert_eq!(n, blocks * MIB);
    assert_eq!(
        got.finalize(),
        sent.finalize(),
        "the bytes came back unchanged"
    );
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 100,
        "peak memory grew by {grown_mib} MiB for a 200 MiB transfer"
    );
    sh(&running, &id, "rm big.bin");

    // Paths that leave home are refused before any URL is made.
    for bad in [
        "../etc/passwd",
        "/etc/passwd",
        "/home/cloudshell-user/../root/x",
        "a/../../b",
        "",
    ] {
        let a = api
            .call(
                "getFileUploadUrls",
                json!({"EnvironmentId": id, "FileUploadPath": bad}),
            )
            .await;
        assert_eq!(a.err(), "ValidationException", "{bad:?}");
    }
    // Symlinks out of home are refused by the agent, in either direction.
    sh(
        &running,
        &id,
        "ln -s /etc/passwd passwd-link && ln -s / root-link",
    );
    let r = http
        .get(download_url(&api, &id, "passwd-link").await)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    let r = http
        .put(upload_url(&api, &id, "root-link/tmp/planted").await)
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 403);
    let r = http
        .get(download_url(&api, &id, "no-such-file").await)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);

    // Tampered, misused and expired URLs.
    let good = download_url(&api, &id, "subfolder/mydownloadfile.txt").await;
    let tampered = good.replace("subfolder%2Fmydownloadfile.txt", "subfolder%2Fother.txt");
    assert_ne!(tampered, good);
    assert_eq!(http.get(&tampered).send().await.expect("get").status(), 403);
    assert_eq!(
        http.put(&good)
            .body("overwrite")
            .send()
            .await
            .expect("put")
            .status(),
        403,
        "a download URL does not upload"
    );
    let upload = upload_url(&api, &id, "subfolder/mydownloadfile.txt").await;
    assert_eq!(
        http.get(&upload).send().await.expect("get").status(),
        403,
        "nor the reverse"
    );
    let expired = signed_url(
        &cfg,
        &base,
        &id,
        "download",
        "subfolder/mydownloadfile.txt",
        (&running.first_account.admin.user_id, &key.0),
        -60,
    );
    let r = http.get(&expired).send().await.expect("get");
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("body").contains("expired"));
    let too_long = signed_url(
        &cfg,
        &base,
        &id,
        "download",
        "subfolder/mydownloadfile.txt",
        (&running.first_account.admin.user_id, &key.0),
        3600,
    );
    assert_eq!(http.get(&too_long).send().await.expect("get").status(), 403);
    let control = signed_url(
        &cfg,
        &base,
        &id,
        "download",
        "subfolder/mydownloadfile.txt",
        (&running.first_account.admin.user_id, &key.0),
        60,
    );
    assert_eq!(
        http.get(&control).send().await.expect("get").status(),
        200,
        "the test signs as the server does"
    );

    // A full home: the upload fails, the home keeps nothing partial, and
    // the file system still works.
    sh(
        &running,
        &id,
        "dd if=/dev/zero of=filler bs=1M count=1000 2>/dev/null || true",
    );
    let r = http
        .put(upload_url(&api, &id, "too-big.bin").await)
        .header("content-length", (64 * MIB).to_string())
        .body(vec![7u8; 64 * MIB])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 507);
    let listing = sh(&running, &id, "ls -a");
    assert!(
        !listing.contains("too-big") && !listing.contains("seashell-upload"),
        "{listing}"
    );
    sh(&running, &id, "rm filler && echo ok > after-full.txt");
    let r = http
        .get(download_url(&api, &id, "after-full.txt").await)
        .send()
        .await
        .expect("get");
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"ok\n");

    // After a stop the URLs stop working.
    api.call("stopEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "SUSPENDED").await;
    assert_eq!(http.get(&control).send().await.expect("get").status(), 409);

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Status and body of a GET or PUT of `url`.
async fn fetch(http: &reqwest::Client, method: &str, url: &str, body: &str) -> (u16, String) {
    let request = match method {
        "PUT" => http.put(url).body(body.to_string()),
        _ => http.get(url),
    };
    let r = request.send().await.expect("send");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_urls_end_with_their_credentials_and_uploads_work_once() {
    let db = common::databases().await.remove(0);
    let cfg = config(&db);
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let store = &running.state().store;
    let admin = &running.first_account.admin;
    let key = store.create_access_key(&admin.user_id).await.expect("key");
    let api = Api::new(&base, (&key.0, &key.1));
    let id = api.running_environment().await;
    let http = reqwest::Client::new();

    // An upload URL works once; the second PUT is refused and changes
    // nothing.
    let url = upload_url(&api, &id, "once.txt").await;
    assert_eq!(fetch(&http, "PUT", &url, "first").await.0, 200);
    let (status, body) = fetch(&http, "PUT", &url, "second").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("already used"), "{body}");
    assert_eq!(sh(&running, &id, "cat once.txt"), "first");
    // A download URL may be used again while its credentials are valid.
    let url = download_url(&api, &id, "once.txt").await;
    for _ in 0..2 {
        assert_eq!(fetch(&http, "GET", &url, "").await, (200, "first".into()));
    }

    // A URL asked for with an access key ends when the key is deleted.
    let second = store.create_access_key(&admin.user_id).await.expect("key");
    let api2 = Api::new(&base, (&second.0, &second.1));
    let url = download_url(&api2, &id, "once.txt").await;
    let upload = upload_url(&api2, &id, "later.txt").await;
    assert_eq!(fetch(&http, "GET", &url, "").await.0, 200);
    let deleted = api
        .try_query(
            "iam",
            &format!(
                "Action=DeleteAccessKey&Version=2010-05-08&UserName=admin&AccessKeyId={}",
                second.0
            ),
        )
        .await
        .expect("send");
    assert_eq!(deleted.status, 200, "{deleted:?}");
    for (method, url) in [("GET", &url), ("PUT", &upload)] {
        let (status, body) = fetch(&http, method, url, "x").await;
        assert_eq!(status, 403, "{method}: {body}");
        assert!(body.contains("no longer valid"), "{body}");
    }
    // The unused upload URL was not spent by the refusal, and wrote nothing.
    assert_eq!(
        sh(&running, &id, "test -e later.txt && echo yes || echo no"),
        "no\n"
    );

    // A URL asked for by a console session ends when it signs out.
    let (cookie, csrf) = common::console_sign_in(&running).await;
    let r = http
        .post(format!("{base}/cloudshell/getFileDownloadUrls"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("x-seashell-region", "us-east-1")
        .json(&json!({"EnvironmentId": id, "FileDownloadPath": "once.txt"}))
        .send()
        .await
        .expect("call");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    let url = v["FileDownloadPresignedUrl"]
        .as_str()
        .expect("url")
        .to_string();
    assert_eq!(fetch(&http, "GET", &url, "").await, (200, "first".into()));
    let r = no_redirects()
        .post(format!("{base}/signout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("sign out");
    assert_eq!(r.status(), 303);
    let (status, body) = fetch(&http, "GET", &url, "").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no longer valid"), "{body}");
    // The key that is still there still works.
    let url = download_url(&api, &id, "once.txt").await;
    assert_eq!(fetch(&http, "GET", &url, "").await.0, 200);

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

/// A URL signed with the server's key for (principal ID, access key id),
/// expiring `ttl` seconds from now.
fn signed_url(
    cfg: &seashell_server::Config,
    base: &str,
    id: &str,
    op: &str,
    path: &str,
    (principal, access_key_id): (&str, &str),
    ttl: i64,
) -> String {
    let key = std::fs::read(cfg.data_dir.join("file-url.key")).expect("key");
    let expires = chrono::Utc::now().timestamp() + ttl;
    let url_id = uuid::Uuid::new_v4().simple().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    for part in [
        op,
        id,
        path,
        principal,
        access_key_id,
        &url_id,
        &expires.to_string(),
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    let signature = hex::encode(mac.finalize().into_bytes());
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("op", op)
        .append_pair("path", path)
        .append_pair("principal", principal)
        .append_pair("key", access_key_id)
        .append_pair("id", &url_id)
        .append_pair("expires", &expires.to_string())
        .append_pair("signature", &signature)
        .finish();
    format!("{base}/v1/files/{id}?{query}")
}
