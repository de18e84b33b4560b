//! Shells outlive the server: `seashell serve` is killed with SIGKILL while
//! a shell floods its terminal (`yes | head -c 50M`, then a counter), and
//! started again; the client resumes with a new token and receives every
//! byte exactly once, in order.

mod common;

#[path = "../../server/tests/common/api_client.rs"]
mod api_client;
#[path = "../../server/tests/common/data_channel.rs"]
mod data_channel;

use std::time::Duration;

use api_client::Api;
use common::hosted::Hosted;
use data_channel::DataChannelClient;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shells_and_their_output_survive_a_killed_server() {
    let mut hosted = Hosted::start("restart");
    let (key_id, secret) = hosted.bootstrap();
    let api = Api::new(&hosted.base(), (&key_id, &secret));
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
    hosted.kill();
    let before = sh.output().len() - start;
    assert!(
        before < 50_000_000,
        "the kill came mid-flood ({before} bytes)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    hosted.restart();

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
}
