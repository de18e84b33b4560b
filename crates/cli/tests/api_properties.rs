//! Property-based testing of the CloudShell API with schemathesis (PyPI),
//! from the OpenAPI description the server publishes at
//! `/cloudshell/openapi.json`: generated valid and invalid requests to
//! every operation, as the signed-in administrator of a server that runs
//! real environments, must never get a 5xx answer or hang.
//!
//! Needs `SEASHELL_TEST_SCHEMATHESIS` (`scripts/schemathesis.sh`), root,
//! runc and `SEASHELL_AGENT_BIN`; `scripts/test.sh` provides them.

mod common;

use std::process::Command;

use common::hosted::Hosted;

fn schemathesis() -> String {
    std::env::var("SEASHELL_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!("SEASHELL_TEST_SCHEMATHESIS is not set: run scripts/test.sh, or export SEASHELL_TEST_SCHEMATHESIS=\"$(scripts/schemathesis.sh)\"")
    })
}

/// Signs in to the console as the first administrator, changing the
/// one-time password; the cookie header and the CSRF token.
async fn console_session(hosted: &Hosted) -> (String, String) {
    let out = common::seashell()
        .args(["admin", "bootstrap", "--output", "json", "--data-dir"])
        .arg(&hosted.data_dir)
        .output()
        .expect("bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let account = first["AccountId"].as_str().expect("account").to_string();
    let one_time = std::fs::read_to_string(
        hosted
            .data_dir
            .join(seashell_server::bootstrap::PASSWORD_FILE),
    )
    .expect("one-time password");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/signin/password", hosted.base()))
        .form(&[
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.trim()),
            ("new_password", "Schemathesis-admin-2026"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let mut cookies = Vec::new();
    let mut csrf = String::new();
    for v in r.headers().get_all("set-cookie") {
        let pair = v
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if let Some(value) = pair.strip_prefix("seashell_csrf=") {
            csrf = value.to_string();
        }
        cookies.push(pair);
    }
    (cookies.join("; "), csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_never_get_a_server_error() {
    let hosted = Hosted::start("props");
    let (cookie, csrf) = console_session(&hosted).await;
    let base = hosted.base();
    let reports = tempfile::tempdir().expect("tempdir");
    let out = Command::new(schemathesis())
        .arg("run")
        .arg(format!("{base}/cloudshell/openapi.json"))
        .args(["--url", &format!("{base}/cloudshell")])
        .args(["--header", &format!("Cookie: {cookie}")])
        .args(["--header", &format!("X-CSRF-Token: {csrf}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "30"])
        .args(["--max-response-time", "30"])
        .args(["--request-timeout", "60"])
        .args(["--workers", "2"])
        .args(["--seed", "20261202"])
        .arg("--report-dir")
        .arg(reports.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    // It did test every operation.
    for operation in [
        "/createEnvironment",
        "/createSession",
        "/getFileUploadUrls",
        "/updateLayout",
    ] {
        assert!(stdout.contains(operation), "{operation} tested:\n{stdout}");
    }
}
