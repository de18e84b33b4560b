//! What a newcomer does after the README's run command: start `seashell
//! serve` on its defaults (here on a free port and a temporary data
//! directory), read the printed console URL and one-time password, change
//! it at first sign-in, and be signed in as the administrator.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn first_start_prints_a_password_that_signs_in_once_changed() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seashell"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut addr = String::new();
    let mut account = String::new();
    let mut password = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(a) = line.strip_prefix("Seashell is listening on ") {
            addr = a.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("Console: ") {
            account = rest
                .split("account ")
                .nth(1)
                .map(|a| a.trim_end_matches(')').to_string())
                .expect("account in the console line");
        }
        if let Some(p) = line.strip_prefix("First sign-in: user admin, one-time password ") {
            password = p.trim().to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(!addr.is_empty() && account.len() == 12 && !password.is_empty());
    let file =
        std::fs::read_to_string(data_dir.path().join("initial-admin-password")).expect("file");
    assert_eq!(file.trim(), password);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let form = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", password.as_str()),
        ];
        let r = client
            .post(format!("http://{addr}/signin"))
            .form(&form)
            .send()
            .await
            .expect("sign in");
        assert_eq!(
            r.status(),
            403,
            "the one-time password must be changed first"
        );
        let change = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", password.as_str()),
            ("new_password", "A-much-better-passw0rd"),
        ];
        let r = client
            .post(format!("http://{addr}/signin/password"))
            .form(&change)
            .send()
            .await
            .expect("change");
        assert_eq!(r.status(), 303);
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("seashell_session="))
            .and_then(|c| c.split(';').next())
            .expect("session cookie")
            .to_string();
        let who: serde_json::Value = client
            .get(format!("http://{addr}/whoami"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("whoami")
            .json()
            .await
            .expect("json");
        assert_eq!(who["Arn"], format!("arn:aws:iam::{account}:user/admin"));
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// `seashell admin bootstrap` before the first `seashell serve`: the server
/// then finds the account and administrator already there, creates no
/// other, and points at the one-time password still on disk.
#[test]
fn bootstrap_before_the_first_start() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_seashell"))
        .args(["admin", "bootstrap", "--output", "json", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .expect("bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let account = keys["AccountId"].as_str().expect("account").to_string();
    assert!(keys["AccessKeyId"]
        .as_str()
        .is_some_and(|k| k.starts_with("AKIA")));
    assert!(data_dir.path().join("initial-admin-password").is_file());

    let mut child = Command::new(env!("CARGO_BIN_EXE_seashell"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut console_line = String::new();
    let mut password_line = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.starts_with("Console: ") {
            console_line = line;
        } else if line.contains("one-time password") {
            password_line = line;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        console_line.contains(&format!("account {account}")),
        "{console_line}"
    );
    assert!(
        password_line.starts_with("The administrator's one-time password is in "),
        "no new password is made: {password_line}"
    );
}

/// `--log-format json` writes one JSON object per log line.
#[test]
fn json_logs() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seashell"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = lines.next().expect("a log line").expect("read");
    let _ = child.kill();
    let _ = child.wait();
    let entry: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["message"], "listening");
    assert!(entry["fields"]["local_addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
}
