//! Shells outlive the server: `seashell serve` is killed with SIGKILL while
//! a shell floods its terminal (`yes | head -c 50M`, then a counter), and
//! started again; the client resumes with a new token and receives every
//! byte exactly once, in order.

mod common;

#[path = "../../server/tests/common/api_client.rs"]
mod api_client;
#[path = "../../server/tests/common/data_channel.rs"]
mod data_channel;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use api_client::Api;
use data_channel::DataChannelClient;
use serde_json::json;

/// The static agent: `SEASHELL_AGENT_BIN`, else `scripts/build-agent.sh`.
fn agent_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return PathBuf::from(bin);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent.sh");
    let out = Command::new(&script).output().expect("run build-agent.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A free loopback port for the server to listen on across its restart.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn serve(config: &Path) -> Child {
    let mut child = common::seashell()
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seashell serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("the server started").expect("stdout");
        if line.starts_with("Seashell is listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Stops and removes the environments and the server of the test, also
/// when it fails.
struct Teardown {
    child: Option<Child>,
    data_dir: PathBuf,
    cgroup_parent: String,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let settings = seashell_server::config::CloudShellSettings {
            cgroup_parent: self.cgroup_parent.clone(),
            ..Default::default()
        };
        let rt = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
            data_dir: settings.runtime_dir(&self.data_dir),
            state_dir: seashell_server::envs::backend::default_state_dir(&self.data_dir),
            cgroup_parent: self.cgroup_parent.clone(),
            network: None,
            ..seashell_runtime::RuntimeConfig::default()
        });
        if let Ok(rt) = rt {
            let _ = rt.reconcile(&|_| false);
            let _ = rt.remove_cgroup_parent();
        }
        let _ = std::fs::remove_dir_all(settings.runtime_dir(&self.data_dir));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shells_and_their_output_survive_a_killed_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let port = free_port();
    let cgroup_parent = format!("seashell-restart-{}", std::process::id());
    let config = dir.path().join("seashell.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n\n[cloudshell]\nimage = \"minimal\"\n\
             agent_binary = {agent:?}\nnetwork = false\ncgroup_parent = {cgroup_parent:?}\n",
            data = data_dir.display().to_string(),
            agent = agent_binary().display().to_string(),
        ),
    )
    .expect("config");
    let mut teardown = Teardown {
        child: Some(serve(&config)),
        data_dir: data_dir.clone(),
        cgroup_parent,
    };
    let out = common::seashell()
        .args(["admin", "bootstrap", "--output", "json", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let key_id = keys["AccessKeyId"]
        .as_str()
        .expect("AccessKeyId")
        .to_string();
    let secret = keys["SecretAccessKey"]
        .as_str()
        .expect("SecretAccessKey")
        .to_string();
    let api = Api::new(&format!("http://127.0.0.1:{port}"), (&key_id, &secret));
    let id = api.running_environment().await;
    let created = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let session = created["SessionId"]
        .as_str()
        .expect("SessionId")
        .to_string();
    let mut sh = DataChannelClient::connect(
        created["StreamUrl"].as_str().expect("url"),
        created["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    sh.type_line("stty -echo; echo BEGIN-$((1+1))")
        .await
        .expect("type");
    sh.wait_for("BEGIN-2", Duration::from_secs(30))
        .await
        .expect("prompt");
    let start = sh.output().len();

    // 50 MB of "y", then a counter, then a marker.
    sh.type_line("yes | head -c 50000000; i=0; while [ $i -lt 20000 ]; do echo c$i; i=$((i+1)); done; echo END-$((3+4))")
        .await
        .expect("type");
    sh.wait_for("y\r\ny\r\n", Duration::from_secs(30))
        .await
        .expect("flood");
    sh.pump_for(Duration::from_millis(300)).await.expect("pump");

    // SIGKILL: no shutdown, nothing flushed; the environment runs on.
    let mut child = teardown.child.take().expect("server");
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let before = sh.output().len() - start;
    assert!(
        before < 50_000_000,
        "the kill came mid-flood ({before} bytes)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    teardown.child = Some(serve(&config));

    // Resume the same session with a new token.
    let resumed = api
        .call(
            "resumeSession",
            json!({"EnvironmentId": id, "SessionId": session}),
        )
        .await
        .ok();
    sh.resume(
        resumed["StreamUrl"].as_str().expect("url"),
        resumed["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("resume");
    sh.wait_for("END-7", Duration::from_secs(300))
        .await
        .expect("the rest");
    // Frames the agent resent on resume arrive twice on the wire and are
    // dropped by the client; what it delivered is every sequence number
    // once, in order.
    let delivered = sh.delivered();
    assert!(
        delivered.windows(2).all(|w| w[1] == w[0] + 1),
        "output frames delivered in order, each once"
    );

    let text = &sh.output()[start..];
    let end = text.windows(5).position(|w| w == b"END-7").expect("marker");
    let body = &text[..end];
    let ys = body.windows(3).filter(|w| w == b"y\r\n").count();
    assert_eq!(ys, 25_000_000, "every line of yes arrived once");
    let counter: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| l.first() == Some(&b'c'))
        .collect();
    assert_eq!(counter.len(), 20_000);
    for (i, line) in counter.iter().enumerate() {
        assert_eq!(
            *line,
            format!("c{i}\r").as_bytes(),
            "counter line {i} in order"
        );
    }
    drop(teardown);
}
