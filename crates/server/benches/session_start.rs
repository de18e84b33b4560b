//! How long a shell takes to show, through the whole service: createSession
//! (SigV4, policy, audit, the agent opening a PTY), the WebSocket, the token,
//! the data-channel handshake, and the first output byte. Two cases on a
//! running environment (the minimal image):
//!
//! * a new tab: a new shell, until the first byte of its prompt;
//! * a reattached tab (createSession with the TabId of a live shell, as a
//!   reloaded browser tab does): until the first byte of the repaint.
//!
//! `cargo bench -p seashell-server --bench session_start` (as root) runs 20
//! of each; without `--bench` (the test suite) a few, to check it works.

#[path = "../tests/common/api_client.rs"]
mod api_client;
#[path = "../tests/common/data_channel.rs"]
mod data_channel;
#[path = "../tests/common/environments.rs"]
mod environments;

use std::time::{Duration, Instant};

use api_client::Api;
use data_channel::DataChannelClient;
use serde_json::json;

/// createSession to the first output byte of the shell behind it.
async fn first_byte(api: &Api, id: &str, tab: &str) -> (Duration, String) {
    let started = Instant::now();
    let created = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": tab}))
        .await
        .ok();
    let mut client = DataChannelClient::connect(
        created["StreamUrl"].as_str().expect("url"),
        created["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    client
        .pump_until(Duration::from_secs(10), |c| !c.output().is_empty())
        .await
        .expect("first byte");
    let elapsed = started.elapsed();
    (
        elapsed,
        created["SessionId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 20 } else { 3 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = seashell_server::Config::load(
        None,
        seashell_server::Overrides {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            data_dir: Some(dir.path().join("data")),
            ..seashell_server::Overrides::default()
        },
    )
    .expect("config");
    let config = environments::minimal(config);
    let _cleanup = environments::Cleanup(config.clone());
    rt.block_on(async {
        let running = seashell_server::start(config).await.expect("start");
        let key = running
            .state()
            .store
            .create_access_key(&running.first_account.admin.user_id)
            .await
            .expect("key");
        let api = Api::new(&format!("http://{}", running.local_addr), (&key.0, &key.1));
        let id = api.running_environment().await;

        let mut fresh = Vec::new();
        for i in 0..runs {
            let (t, session) = first_byte(&api, &id, &format!("tab-{i}")).await;
            fresh.push(t);
            // Stay under the concurrent-shell quota.
            api.call(
                "deleteSession",
                json!({"EnvironmentId": id, "SessionId": session}),
            )
            .await
            .ok();
        }
        let mut repaint = Vec::new();
        let (_, _kept) = first_byte(&api, &id, "kept").await;
        for _ in 0..runs {
            repaint.push(first_byte(&api, &id, "kept").await.0);
        }
        fresh.sort();
        repaint.sort();
        println!("| measure | p50 | p95 | max | target |");
        println!("|---|---|---|---|---|");
        for (name, v, target) in [
            ("createSession → first prompt byte, new tab", &fresh, "—"),
            (
                "createSession → first repaint byte, reattached tab",
                &repaint,
                "< 50 ms (p50)",
            ),
        ] {
            println!(
                "| {name} ({} runs) | {} | {} | {} | {target} |",
                v.len(),
                ms(percentile(v, 0.5)),
                ms(percentile(v, 0.95)),
                ms(*v.last().expect("runs"))
            );
        }
        running.run_until(async {}).await.expect("stop");
    });
}
