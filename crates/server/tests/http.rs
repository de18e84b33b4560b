//! The server over real HTTP: health, readiness and metrics; bad input that
//! must change nothing; graceful shutdown; TLS. Each runs on SQLite and on
//! PostgreSQL where state is involved.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use seashell_server::store::Store;
use seashell_server::Config;
use sqlx::{Connection, Row};

fn config(db: &common::TestDb) -> Config {
    common::server_config(db)
}

/// A request signed with the AWS SDK's own SigV4 signer.
fn signed(
    client: &reqwest::Client,
    url: &str,
    service: &str,
    body: &str,
    key: (&str, &str),
) -> reqwest::RequestBuilder {
    common::signed_post(client, url, service, body, key, None)
}

async fn table_counts(url: &str) -> Vec<(String, i64)> {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let mut out = Vec::new();
    for table in [
        "accounts",
        "users",
        "access_keys",
        "user_policy_attachments",
    ] {
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .try_get("n")
            .expect("n");
        out.push((table.to_string(), n));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_bad_input() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(config(&db)).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let client = reqwest::Client::new();

        for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
            let r = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), 200, "{backend} {path}");
            assert_eq!(r.text().await.expect("text"), body);
        }

        let admin = running.first_account.admin.clone();
        let (key_id, secret) = running
            .state()
            .store
            .create_access_key(&admin.user_id)
            .await
            .expect("key");
        let key = (key_id.as_str(), secret.as_str());
        let sts = format!("{base}/sts/");
        let ok = signed(
            &client,
            &sts,
            "sts",
            "Action=GetCallerIdentity&Version=2011-06-15",
            key,
        )
        .send()
        .await
        .expect("send");
        assert_eq!(ok.status(), 200, "{backend}");
        assert!(ok.text().await.expect("text").contains(&admin.arn()));

        let before = table_counts(&db.url).await;
        let long = "x".repeat(2 << 20);
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (
                client
                    .post(&sts)
                    .body("Action=GetCallerIdentity&Version=2011-06-15"),
                403,
                "MissingAuthenticationToken",
            ),
            (
                client.post(&sts).body(vec![0xffu8, 0x00, 0x13, 0x37]),
                403,
                "MissingAuthenticationToken",
            ),
            (
                client
                    .post(&sts)
                    .header("authorization", "AWS4-HMAC-SHA256 Credential=garbage"),
                400,
                "",
            ),
            (
                signed(
                    &client,
                    &sts,
                    "sts",
                    "Action=Explode&Version=2011-06-15",
                    key,
                ),
                400,
                "InvalidAction",
            ),
            (
                signed(
                    &client,
                    &sts,
                    "sts",
                    "Action=GetCallerIdentity&Version=1999-01-01",
                    key,
                ),
                400,
                "ValidationError",
            ),
            (
                signed(&client, &sts, "sts", "Version=2011-06-15", key),
                400,
                "ValidationError",
            ),
            (
                signed(&client, &sts, "sts", "%%%&&&===", key),
                400,
                "ValidationError",
            ),
            (
                signed(
                    &client,
                    &sts,
                    "iam",
                    "Action=GetCallerIdentity&Version=2011-06-15",
                    key,
                ),
                403,
                "",
            ),
            (signed(&client, &sts, "sts", &long, key), 413, ""),
            (
                client
                    .put(&sts)
                    .header("content-type", "application/json")
                    .body("{}"),
                403,
                "MissingAuthenticationToken",
            ),
        ];
        for (i, (req, status, code)) in cases.into_iter().enumerate() {
            let r = req.send().await.expect("send");
            let got = r.status().as_u16();
            let text = r.text().await.expect("text");
            if status == 400 && code.is_empty() {
                assert!(
                    (400..500).contains(&got),
                    "{backend} case {i}: {got} {text}"
                );
            } else {
                assert_eq!(got, status, "{backend} case {i}: {text}");
            }
            if !code.is_empty() {
                assert!(
                    text.contains(&format!("<Code>{code}</Code>")),
                    "{backend} case {i}: {text}"
                );
            }
            assert!(
                !text.contains(&secret),
                "{backend} case {i}: a secret in an error"
            );
        }
        assert_eq!(
            table_counts(&db.url).await,
            before,
            "{backend}: bad input changed the database"
        );

        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics");
        let metrics = metrics.text().await.expect("text");
        assert!(
            metrics.contains(r#"seashell_requests_total{service="sts",operation="GetCallerIdentity",outcome="ok"} 1"#),
            "{metrics}"
        );
        assert!(metrics.contains(
            r#"seashell_auth_failures_total{service="sts",code="MissingAuthenticationToken"}"#
        ));
        assert!(metrics.contains("seashell_request_duration_seconds_bucket"));
        assert!(metrics.contains("seashell_audit_pending_records"));

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_database() {
    let dbs = common::databases().await;
    let Some(db) = dbs.into_iter().find(|d| d.backend == "postgres") else {
        panic!("no PostgreSQL database")
    };
    let running = seashell_server::start(config(&db)).await.expect("start");
    let url = format!("http://{}/readyz", running.local_addr);
    assert_eq!(reqwest::get(&url).await.expect("get").status(), 200);
    // With its database gone the server is alive but not ready.
    running.state().store.close().await;
    assert_eq!(reqwest::get(&url).await.expect("get").status(), 503);
    let health = format!("http://{}/healthz", running.local_addr);
    assert_eq!(reqwest::get(&health).await.expect("get").status(), 200);
    running.run_until(async {}).await.expect("stop");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_requests_in_flight_and_delivers_audit() {
    let dbs = common::databases().await;
    let mut dbs = dbs.into_iter();
    let db = dbs.next().expect("sqlite");
    for other in dbs {
        other.drop_db().await;
    }
    let running = seashell_server::start(config(&db)).await.expect("start");
    let addr = running.local_addr;
    let admin = running.first_account.admin.clone();
    let (key_id, secret) = running
        .state()
        .store
        .create_access_key(&admin.user_id)
        .await
        .expect("key");

    // Sign a request, send all but the last byte of its body, then ask the
    // server to stop: it must still answer that request.
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let client = reqwest::Client::new();
    let prepared = signed(
        &client,
        &format!("http://{addr}/sts/"),
        "sts",
        body,
        (&key_id, &secret),
    )
    .build()
    .expect("build");
    let mut raw = format!(
        "POST /sts/ HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in prepared.headers() {
        if name.as_str() != "content-length" && name.as_str() != "host" {
            raw.push_str(&format!(
                "{name}: {}\r\n",
                value.to_str().expect("ascii header")
            ));
        }
    }
    raw.push_str("\r\n");
    raw.push_str(&body[..body.len() - 1]);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(raw.as_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(200));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(running.run_until(async {
        let _ = stop_rx.await;
    }));
    stop_tx.send(()).expect("signal");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused once shutdown has begun…
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
    // …but the request in flight completes.
    stream
        .write_all(&body.as_bytes()[body.len() - 1..])
        .expect("finish body");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(&admin.arn()));
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("shutdown completes")
        .expect("join")
        .expect("clean stop");

    // Every audit record reached a delivery file on the way out.
    let mut delivered = 0;
    let root = db.data_dir.path().join("audit/cloudtrail");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "gz") {
                let mut text = String::new();
                flate2_read(&path, &mut text);
                let v: serde_json::Value = serde_json::from_str(&text).expect("records");
                delivered += v["Records"].as_array().map_or(0, Vec::len);
            }
        }
    }
    assert_eq!(delivered, 1, "the one call was delivered");
    let store = Store::open(&db.url).await.expect("reopen");
    assert!(store.access_key(&key_id).await.expect("lookup").is_some());
    store.close().await;
}

fn flate2_read(path: &std::path::Path, out: &mut String) {
    let file = std::fs::File::open(path).expect("open");
    let mut gz = flate2::read::GzDecoder::new(file);
    gz.read_to_string(out).expect("gunzip");
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_the_given_certificate() {
    let dbs = common::databases().await;
    let mut dbs = dbs.into_iter();
    let db = dbs.next().expect("sqlite");
    for other in dbs {
        other.drop_db().await;
    }
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_path = db.data_dir.path().join("cert.pem");
    let key_path = db.data_dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let mut cfg = config(&db);
    cfg.tls_cert = Some(cert_path);
    cfg.tls_key = Some(key_path);
    let running = seashell_server::start(cfg).await.expect("start with TLS");
    let port = running.local_addr.port();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("root"),
        )
        .resolve("localhost", running.local_addr)
        .build()
        .expect("client");
    let r = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(r.status(), 200);
    // Under TLS the session cookie is marked Secure.
    let password = running
        .first_account
        .new_password
        .clone()
        .expect("one-time password");
    let account = running.first_account.account_id.clone();
    let form = [
        ("account", account.as_str()),
        ("username", "admin"),
        ("password", password.as_str()),
        ("new_password", "A-good-new-passw0rd"),
    ];
    let r = client
        .post(format!("https://localhost:{port}/signin/password"))
        .form(&form)
        .send()
        .await
        .expect("sign in over https");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("seashell_session="))
        .expect("session cookie");
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
    running.run_until(async {}).await.expect("stop");
}

/// The data directory (database, audit trail, keys, the one-time password)
/// is its owner's alone: created 0700, and tightened to 0700 when it was
/// left open before.
#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = common::sqlite().await;
    let open_before = db.data_dir.path().to_path_buf();
    std::fs::set_permissions(&open_before, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let fresh = db.data_dir.path().join("new/data");
    for dir in [open_before, fresh] {
        let mut config = common::server_config(&db);
        config.data_dir = dir.clone();
        let running = seashell_server::start(config).await.expect("start");
        running.run_until(async {}).await.expect("stop");
        let mode = std::fs::metadata(&dir)
            .expect("data dir")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        let key = std::fs::metadata(dir.join("file-url.key")).expect("key");
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
}
