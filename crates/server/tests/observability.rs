//! What the server tells observers: its log at the most verbose level keeps
//! the secrets that travel in query strings out; `/metrics` answers only
//! the addresses and the token of `[metrics]`; callers learn that the host
//! failed, the log says how.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything the log subscriber writes, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of every test of this binary, at TRACE.
fn captured() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_logs_name_the_path_and_never_the_query() {
    let captured = captured();
    let db = common::sqlite().await;
    let running = seashell_server::start(common::server_config(&db))
        .await
        .expect("start");
    let base = format!("http://{}", running.local_addr);
    let client = reqwest::Client::new();
    // Each carries a secret in its query: a pre-signed API call's
    // signature and session token, a file URL's signature, an identity
    // provider's authorization code and state.
    let secrets = [
        "5ec4e7519a7u4e0000000000000000000000000000000000000000000000aa01",
        "FwoGZXIvYXdzSECRETSESSIONTOKEN0002",
        "f11e5ec4e7519a7u4e03",
        "idp-code-5ec4e7-0004",
        "idp-state-5ec4e7-0005",
    ];
    let paths = [
        format!(
            "/sts/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=ASIAEXAMPLEEXAMPLE00%2F20261202%2Fus-east-1%2Fsts%2Faws4_request\
             &X-Amz-Date=20261202T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host\
             &X-Amz-Security-Token={}&X-Amz-Signature={}",
            secrets[1], secrets[0]
        ),
        format!(
            "/v1/files/env-0123456789abcdef?op=download&path=a.txt&principal=x&expires=1&signature={}",
            secrets[2]
        ),
        format!(
            "/start/idp/callback?code={}&state={}",
            secrets[3], secrets[4]
        ),
    ];
    for path in &paths {
        let r = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    running.run_until(async {}).await.expect("stop");
    db.drop_db().await;

    let log = captured.text();
    for path in [
        "/sts/",
        "/v1/files/env-0123456789abcdef",
        "/start/idp/callback",
    ] {
        assert!(
            log.contains(&format!("path={path}")),
            "the request span names {path}:\n{log}"
        );
    }
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_answer_allowed_addresses_and_the_bearer_token_only() {
    for db in common::databases().await {
        let backend = db.backend;
        let token_file = db.data_dir.path().join("metrics-token");
        std::fs::write(&token_file, "scrape-5ec4e7\n").expect("token");
        let mut config = common::server_config(&db);
        config.metrics.allowed_addresses = vec!["127.0.0.1/32".into()];
        config.metrics.token_file = Some(token_file);
        let running = seashell_server::start(config).await.expect("start");
        let url = format!("http://{}/metrics", running.local_addr);
        let from = |addr: [u8; 4]| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from(addr))
                .build()
                .expect("client")
        };
        let get = |client: reqwest::Client, token: Option<&'static str>| {
            let url = url.clone();
            async move {
                let mut req = client.get(url);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = req.send().await.expect("get");
                (r.status().as_u16(), r.text().await.expect("body"))
            }
        };
        let (status, body) = get(from([127, 0, 0, 1]), None).await;
        assert_eq!(status, 200, "{backend}: an allowed address");
        assert!(body.contains("seashell_requests_total"), "{body}");
        let (status, body) = get(from([127, 0, 0, 2]), None).await;
        assert_eq!(status, 403, "{backend}: another address");
        assert!(body.contains("metrics.allowed_addresses"), "{body}");
        assert!(!body.contains("seashell_"), "{body}");
        let (status, _) = get(from([127, 0, 0, 2]), Some("scrape-5ec4e")).await;
        assert_eq!(status, 403, "{backend}: a wrong token");
        let (status, body) = get(from([127, 0, 0, 2]), Some("scrape-5ec4e7")).await;
        assert_eq!(status, 200, "{backend}: the token");
        assert!(body.contains("seashell_requests_total"), "{body}");
        running.run_until(async {}).await.expect("stop");

        // A bad block or an empty token file stops the start with a message.
        let file = db.data_dir.path().join("bad.toml");
        std::fs::write(&file, "[metrics]\nallowed_addresses = [\"localhost\"]\n").expect("file");
        let err = seashell_server::Config::load(Some(&file), Default::default())
            .expect_err("a bad block");
        assert!(err.to_string().contains("\"localhost\""), "{err}");
        let empty = db.data_dir.path().join("empty-token");
        std::fs::write(&empty, "").expect("empty");
        let mut bad = common::server_config(&db);
        bad.metrics.token_file = Some(empty);
        let err = seashell_server::start(bad)
            .await
            .expect_err("empty token file");
        assert!(err.to_string().contains("is empty"), "{err}");
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_failures_reach_callers_as_an_incident_and_the_log_in_full() {
    let log = captured();
    let db = common::sqlite().await;
    let mut config = common::server_config(&db);
    // A runtime that is not there: the host check fails with its path.
    let missing = db.data_dir.path().join("no-oci-runtime-5ec4e7");
    config.cloudshell.oci_runtime = missing.display().to_string();
    let running = seashell_server::start(config).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let (key_id, secret) = common::admin_key(&running).await;
    let api = common::api_client::Api::new(&base, (&key_id, &secret));
    let id = api.create_environment().await;
    // The start fails in the background; the status says why.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refused = loop {
        let status = api
            .call(
                "getEnvironmentStatus",
                serde_json::json!({"EnvironmentId": id}),
            )
            .await
            .ok();
        if status["Status"] == "SUSPENDED" {
            break status.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // A session cannot be had either, and says the same.
    let session = api
        .call("createSession", serde_json::json!({"EnvironmentId": id}))
        .await;
    let session = format!("{:?}", session);
    running.run_until(async {}).await.expect("stop");
    db.drop_db().await;

    assert!(
        !session.contains("no-oci-runtime-5ec4e7") && session.contains("incident"),
        "{session}"
    );
    assert!(
        !refused.contains("no-oci-runtime-5ec4e7") && !refused.contains("/tmp"),
        "no host path in the answer: {refused}"
    );
    let incident = refused
        .split("incident ")
        .nth(1)
        .and_then(|rest| rest.get(..12))
        .unwrap_or_else(|| panic!("the answer names an incident: {refused}"));
    let text = log.text();
    let logged = text
        .lines()
        .find(|l| l.contains(incident))
        .unwrap_or_else(|| panic!("incident {incident} is in the log:\n{text}"));
    assert!(
        logged.contains("no-oci-runtime-5ec4e7"),
        "the log has the details: {logged}"
    );
}
