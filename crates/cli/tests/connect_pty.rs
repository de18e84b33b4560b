//! `seashell connect` in a pseudo-terminal (under `script`): an interactive
//! shell whose output keeps flowing, with nothing lost or repeated, across
//! a server killed with SIGKILL and started again; the same shell is what
//! another client (a console tab) gets with the same tab id.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hosted::Hosted;
use seashell_client::data_channel::{self, Event, Input, SessionTarget};
use serde_json::json;

const LOST: &str = "\r\n[seashell: connection lost; resuming…]\r\n";
const RESUMED: &str = "\r\n[seashell: resumed]\r\n";

/// `seashell connect` on a pty, its output collected.
struct Terminal {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("lock")).into_owned()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in {:?}",
                tail(&self.text())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\r").as_bytes())
            .expect("type");
        self.stdin.flush().expect("flush");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str) -> &str {
    let mut from = text.len().saturating_sub(600);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_survives_a_killed_server_and_shares_the_tab() {
    let mut hosted = Hosted::start("connect");
    let (key_id, secret) = hosted.bootstrap();
    let home = tempfile::tempdir().expect("home");
    let seashell = env!("CARGO_BIN_EXE_seashell");
    let mut child = Command::new("script")
        .args([
            "-q",
            "-f",
            "-e",
            "-c",
            &format!("stty cols 120 rows 40; exec {seashell} connect --tab t1"),
            "/dev/null",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("TERM", "xterm")
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_ACCESS_KEY_ID", &key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_REGION", "us-east-1")
        .env(
            "AWS_ENDPOINT_URL_CLOUDSHELL",
            format!("{}/cloudshell", hosted.base()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script");
    let stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let output = Arc::new(Mutex::new(Vec::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    let mut term = Terminal {
        child,
        stdin,
        output,
    };

    // The shell answers, with the terminal's line discipline in raw mode
    // locally (keys pass through as typed) and a real terminal remotely.
    // Typed once the prompt is there, as a person would.
    term.wait_for("$ ", Duration::from_secs(120));
    term.type_line("export MARK=cli-$((6*7)); echo READY-$((1+1)); echo SIZE-$(stty size)");
    term.wait_for("READY-2", Duration::from_secs(120));
    // The local terminal's size reached the remote one.
    term.wait_for("SIZE-40 120", Duration::from_secs(10));

    // A counter that outlasts a killed and restarted server.
    term.type_line("i=0; while [ $i -lt 3000 ]; do echo n$i; i=$((i+1)); sleep 0.001; done; echo DONE-$((2+3))");
    term.wait_for("\nn200\r", Duration::from_secs(60));
    hosted.kill();
    let cut = term.text().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    hosted.restart();
    term.wait_for("DONE-5", Duration::from_secs(180));
    let text = term.text();
    assert!(
        text.contains(LOST),
        "the drop was noticed: {:?}",
        tail(&text)
    );
    assert!(text[cut..].contains(RESUMED), "and the session resumed");
    let cleaned = text.replace(LOST, "").replace(RESUMED, "");
    let counter: Vec<&str> = cleaned
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.len() > 1 && l.starts_with('n') && l[1..].bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let expected: Vec<String> = (0..3000).map(|i| format!("n{i}")).collect();
    assert_eq!(counter, expected, "every line once, in order");

    // A console tab with the same tab id gets the same shell; the terminal
    // hands it over and ends.
    let credentials = aws_credential_types::Credentials::from_keys(&key_id, &secret, None);
    let api = seashell_client::CloudShell::new(
        &format!("{}/cloudshell", hosted.base()),
        "us-east-1",
        aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        seashell_client::api::http_client(
            Default::default(),
            &seashell_client::tls::client_config(None).expect("tls"),
        )
        .expect("http"),
    );
    let listed = api
        .call("describeEnvironments", &json!({}))
        .await
        .expect("describe");
    let env = listed["Environments"][0]["EnvironmentId"]
        .as_str()
        .expect("id")
        .to_string();
    let created = api
        .call(
            "createSession",
            &json!({"EnvironmentId": env, "TabId": "t1"}),
        )
        .await
        .expect("createSession");
    let target = SessionTarget {
        api: api.clone(),
        environment_id: env.clone(),
        session_id: created["SessionId"]
            .as_str()
            .expect("SessionId")
            .to_string(),
    };
    let mut tab = data_channel::spawn(
        target,
        created["StreamUrl"].as_str().expect("url").to_string(),
        created["TokenValue"].as_str().expect("token").to_string(),
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut typed = false;
    while !String::from_utf8_lossy(&seen).contains("SAME-cli-42") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tab.events.recv())
            .await
            .expect("the tab answers")
        {
            Some(Event::Ready) if !typed => {
                typed = true;
                tab.input
                    .send(Input::Keys(b"echo SAME-$MARK\r".to_vec()))
                    .await
                    .expect("keys");
            }
            Some(Event::Output(bytes)) => seen.extend_from_slice(&bytes),
            Some(Event::Ended(t)) | Some(Event::Failed(t)) => panic!("the tab ended: {t}"),
            Some(_) => {}
            None => panic!("the tab's session stopped"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = term.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the terminal ended when the tab took over"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {:?}", tail(&term.text()));
    drop(tab);
    drop(term);
    drop(hosted);
}
