//! The data-channel gateway against a real environment whose init is the
//! agent: the gateway's own `accept` and `relay` and its origin check,
//! served on a loopback listener, with a token table standing in for the
//! CloudShell API's, and driven by the Rust data-channel client.
//!
//! The last test goes through the whole server instead: the CloudShell API
//! creates and starts the environment and the session, and the client
//! follows `StreamUrl` with `TokenValue`, then resumes with
//! `resumeSession`'s token.
//!
//! Runs as root (it starts containers). The agent binary comes from
//! `SEASHELL_AGENT_BIN`, or else `scripts/build-agent.sh`.

mod common;

#[path = "../../runtime/tests/common/mod.rs"]
mod rt_common;

#[path = "common/data_channel.rs"]
mod data_channel;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use data_channel::{upgrade_status, DataChannelClient};
use rt_common::Fixture;
use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
use seashell_protocol::data_channel::PayloadType;
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_hub::AgentHub;
use seashell_runtime::{EnvironmentId, Limits};
use seashell_server::envs::StreamGrant;
use seashell_server::error::ApiError;
use seashell_server::gateway;

const WAIT: Duration = Duration::from_secs(30);

/// One-time tokens, as the API would issue them.
type Tokens = Arc<Mutex<HashMap<String, StreamGrant>>>;

/// A running environment, its hub, and a gateway on loopback.
struct Harness {
    id: EnvironmentId,
    hub: Mutex<AgentHub>,
    tokens: Tokens,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

fn start_environment(f: &Fixture, name: &str) -> EnvironmentId {
    let id = f.id(name);
    let mut spec = f.spec(&id, Some(f.home_key(name)), Limits::default());
    AgentOptions {
        binary: rt_common::agent_binary(),
        credentials_token_file: None,
    }
    .apply(&mut spec)
    .expect("agent spec");
    f.rt.create(&spec)
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    f.rt.start(&id)
        .unwrap_or_else(|e| panic!("start {id}: {e}"));
    id
}

async fn connect_hub(f: &Fixture, id: &EnvironmentId) -> AgentHub {
    let socket = f.rt.agent_socket(id).expect("agent socket");
    AgentHub::connect(&socket, id.as_str(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("connecting the hub: {e}"))
}

/// The public URL the gateway's origin check compares with.
const PUBLIC_URL: &str = "http://console.seashell.test:8080";

impl Harness {
    async fn new(f: &Fixture, name: &str) -> Harness {
        let id = start_environment(f, name);
        let hub = connect_hub(f, &id).await;
        let tokens = Tokens::default();
        let table = tokens.clone();
        let app = Router::new().route(
            "/v1/data-channel/{session_id}",
            get(
                move |Path(session_id): Path<String>, headers: HeaderMap, ws: WebSocketUpgrade| {
                    let table = table.clone();
                    async move { upgrade(session_id, headers, ws, table) }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Harness {
            id,
            hub: Mutex::new(hub),
            tokens,
            addr,
            server,
        }
    }

    fn hub(&self) -> AgentHub {
        self.hub.lock().expect("hub lock").clone()
    }

    async fn open_session(&self, name: &str) -> SessionId {
        let session = SessionId(name.into());
        self.hub()
            .open_session(&session, Shell::Bash, 80, 24, Default::default())
            .await
            .expect("open session");
        session
    }

    /// A stream URL and a fresh one-time token for `session`.
    fn issue(&self, session: &SessionId, mode: AttachMode) -> (String, String) {
        let token = uuid::Uuid::new_v4().to_string();
        self.tokens.lock().expect("token table").insert(
            token.clone(),
            StreamGrant {
                hub: self.hub(),
                session: session.clone(),
                mode,
                environment_id: self.id.to_string(),
                principal_arn: "arn:aws:iam::123456789012:user/alice".into(),
            },
        );
        (self.url(session), token)
    }

    fn url(&self, session: &SessionId) -> String {
        format!("ws://{}/v1/data-channel/{}", self.addr, session.0)
    }

    async fn client(&self, session: &SessionId, mode: AttachMode) -> DataChannelClient {
        let (url, token) = self.issue(session, mode);
        DataChannelClient::connect(&url, &token)
            .await
            .unwrap_or_else(|e| panic!("data channel: {e}"))
    }

    async fn resume(&self, client: &mut DataChannelClient, session: &SessionId) {
        let (url, token) = self.issue(session, AttachMode::Resume);
        client
            .resume(&url, &token)
            .await
            .unwrap_or_else(|e| panic!("resume: {e}"));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the server's route does, with the token table as the redeemer.
fn upgrade(
    session_id: String,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
    tokens: Tokens,
) -> Response {
    if let Err(refused) = gateway::check_origin(&headers, PUBLIC_URL) {
        return refused;
    }
    ws.on_upgrade(move |socket| async move {
        gateway::accept(socket, move |token| async move {
            let grant = tokens.lock().expect("token table").remove(&token);
            grant.filter(|g| g.session.0 == session_id).ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "AccessDeniedException",
                    "The token is invalid, expired or already used.",
                )
            })
        })
        .await;
    })
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Types `line` and waits for `expect`, which the shell computes so the
/// echo of the typed line never matches it.
async fn run(client: &mut DataChannelClient, line: &str, expect: &str) -> String {
    client.type_line(line).await.expect("typing");
    client
        .wait_for(expect, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn keystrokes_and_resize_round_trip() {
    let f = Fixture::new("gwkeys");
    tokio_runtime().block_on(async {
        let h = Harness::new(&f, "keys").await;
        let s = h.open_session("keys").await;
        let mut c = h.client(&s, AttachMode::Fresh).await;
        run(&mut c, "echo typed-$((6*7))", "typed-42").await;
        c.resize(132, 43).await.expect("resize");
        run(&mut c, "echo size=$(stty size):$((1+1))", "size=43 132:2").await;
        // Every keystroke was acknowledged by the agent, through the relay.
        c.pump_until(WAIT, |c| c.unacknowledged_input() == 0)
            .await
            .expect("input acknowledged");

        // `exit`: the agent's channel_closed reaches the client, and the
        // gateway closes the socket normally.
        c.type_line("exit").await.expect("typing");
        let closed = c.wait_closed(WAIT).await.expect("closed");
        assert!(c.channel_closed().is_some(), "no channel_closed");
        assert_eq!(closed.code, 1000, "{closed:?}");
        assert!(closed.reason.contains("ended"), "{closed:?}");
    });
}

#[test]
fn resume_after_a_dropped_socket_loses_and_repeats_nothing() {
    let f = Fixture::new("gwresume");
    tokio_runtime().block_on(async {
        let h = Harness::new(&f, "resume").await;
        let s = h.open_session("resume").await;
        let mut c = h.client(&s, AttachMode::Fresh).await;
        const N: u32 = 3000;
        c.type_line(&format!(
            "i=0; while [ $i -lt {N} ]; do i=$((i+1)); echo n=$i; done; echo fin-$((7*6))"
        ))
        .await
        .expect("typing");
        // Drop the socket mid-stream, twice, and resume each time with a
        // new token; the loop keeps printing (paused by the agent's window
        // while nobody acknowledges).
        for mark in ["n=200\r", "n=1500\r"] {
            c.wait_for(mark, WAIT)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            c.drop_socket();
            tokio::time::sleep(Duration::from_millis(300)).await;
            h.resume(&mut c, &s).await;
        }
        c.wait_for("fin-42", WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        // Sequence: every output message delivered once, in order.
        let delivered = c.delivered();
        let expected: Vec<i64> = (0..delivered.len() as i64).collect();
        assert_eq!(delivered, expected.as_slice(), "delivery out of sequence");
        // Content: each counter line exactly once, in order.
        let text = c.text();
        let numbers: Vec<u32> = text
            .split("\r\n")
            .filter_map(|l| l.strip_prefix("n="))
            .filter_map(|n| n.parse().ok())
            .collect();
        let want: Vec<u32> = (1..=N).collect();
        assert_eq!(numbers.len(), want.len(), "counter lines lost or repeated");
        assert_eq!(numbers, want);
        // The resumes did make the agent resend frames the client had.
        eprintln!(
            "duplicates dropped by the reorder buffer: {}",
            c.duplicates()
        );
    });
}

#[test]
fn ctrl_c_interrupts_a_flood() {
    let f = Fixture::new("gwctrlc");
    tokio_runtime().block_on(async {
        let h = Harness::new(&f, "ctrlc").await;
        let s = h.open_session("ctrlc").await;
        let mut c = h.client(&s, AttachMode::Fresh).await;
        c.type_line("yes flooding").await.expect("typing");
        c.wait_for("flooding\r\nflooding\r\nflooding", WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        c.send_keys(b"\x03").await.expect("ctrl-c");
        // The shell answers again: yes has stopped.
        run(&mut c, "echo stopped-$((2+3))", "stopped-5").await;
        // And nothing of it follows.
        let after = run(&mut c, "echo again-$((3+4))", "again-7").await;
        assert!(
            !after.contains("flooding\r\n"),
            "the flood went on: {after:?}"
        );
    });
}

#[test]
fn oversize_input_is_refused_without_a_retransmission_loop() {
    let f = Fixture::new("gwbig");
    tokio_runtime().block_on(async {
        let h = Harness::new(&f, "big").await;
        let s = h.open_session("big").await;
        let mut c = h.client(&s, AttachMode::Fresh).await;
        run(&mut c, "echo before-$((1+1))", "before-2").await;
        c.send_input(
            PayloadType::Output,
            vec![b'Z'; gateway::MAX_INPUT_PAYLOAD + 1],
        )
        .await
        .expect("send big input");
        let closed = c.wait_closed(WAIT).await.expect("closed");
        assert_eq!(closed.code, 1009, "{closed:?}");
        assert!(closed.reason.contains("65412"), "{closed:?}");
        // The agent acknowledged the stand-in before the close: nothing is
        // left to retransmit.
        assert_eq!(c.unacknowledged_input(), 0);

        // The session carries on after a resume; the refused bytes never
        // reached the shell, and later keystrokes are not held back.
        h.resume(&mut c, &s).await;
        let out = run(&mut c, "echo after-$((2+2))", "after-4").await;
        assert!(!c.text().contains("ZZZZ"), "refused input was relayed");
        assert!(!out.is_empty());
        // At the limit itself, input is relayed.
        c.send_input(PayloadType::Output, vec![b'#'; gateway::MAX_INPUT_PAYLOAD])
            .await
            .expect("send input at the limit");
        c.send_keys(b"\x15").await.expect("ctrl-u");
        run(&mut c, "echo still-$((3+3))", "still-6").await;
        assert!(c.closed().is_none());
    });
}

#[test]
fn refusals_origin_tokens_and_a_lost_agent() {
    let f = Fixture::new("gwrefuse");
    tokio_runtime().block_on(async {
        let h = Harness::new(&f, "refuse").await;
        let s = h.open_session("refuse").await;

        // A browser on another origin is refused before the upgrade; the
        // console's own origin and non-browser clients are not.
        let url = h.url(&s);
        assert_eq!(
            upgrade_status(&url, Some("http://evil.example"))
                .await
                .expect("upgrade"),
            403
        );
        assert_eq!(
            upgrade_status(&url, Some("http://console.seashell.test:8081"))
                .await
                .expect("upgrade"),
            403
        );
        assert_eq!(
            upgrade_status(&url, Some("null")).await.expect("upgrade"),
            403
        );
        assert_eq!(
            upgrade_status(&url, Some(PUBLIC_URL))
                .await
                .expect("upgrade"),
            101
        );
        assert_eq!(upgrade_status(&url, None).await.expect("upgrade"), 101);

        // An unknown token: closed with the reason, nothing relayed.
        assert!(
            DataChannelClient::connect(&url, "not-a-token")
                .await
                .is_err(),
            "connected with a bad token"
        );
        let (url, token) = h.issue(&s, AttachMode::Fresh);
        let mut bad = data_channel_open(&url, "wrong-token").await;
        let closed = bad.wait_closed(WAIT).await.expect("closed");
        assert_eq!(closed.code, 1008, "{closed:?}");
        assert!(
            closed.reason.contains("invalid, expired or already used"),
            "{closed:?}"
        );
        assert!(!bad.handshake_complete() && bad.delivered().is_empty());

        // A token works once.
        let mut c = DataChannelClient::connect(&url, &token)
            .await
            .expect("first use");
        run(&mut c, "echo first-$((4+4))", "first-8").await;
        let mut reused = data_channel_open(&url, &token).await;
        let closed = reused.wait_closed(WAIT).await.expect("closed");
        assert_eq!(closed.code, 1008, "{closed:?}");
        assert!(reused.delivered().is_empty());
        // ... and the reuse attempt did not disturb the client.
        run(&mut c, "echo second-$((4+5))", "second-9").await;

        // The agent connection is lost (another connection replaces it):
        // the socket closes so the client resumes, here through a new hub.
        let newer = connect_hub(&f, &h.id).await;
        let closed = c.wait_closed(WAIT).await.expect("closed on agent loss");
        assert_eq!(closed.code, 1011, "{closed:?}");
        *h.hub.lock().expect("hub lock") = newer;
        h.resume(&mut c, &s).await;
        run(&mut c, "echo resumed-$((5+5))", "resumed-10").await;
        let delivered = c.delivered();
        let expected: Vec<i64> = (0..delivered.len() as i64).collect();
        assert_eq!(delivered, expected.as_slice());
    });
}

/// Opens a socket and sends the opening frame, without waiting for the
/// handshake.
async fn data_channel_open(url: &str, token: &str) -> DataChannelClient {
    DataChannelClient::open_only(url, token)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_cloudshell_api() {
    for db in common::databases().await {
        through_the_api_on(db).await;
    }
}

async fn through_the_api_on(db: common::TestDb) {
    use common::cloudshell::{cleanup, config, Api};
    use serde_json::json;

    let cfg = config(&db);
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let key = running
        .state()
        .store
        .create_access_key(&running.first_account.admin.user_id)
        .await
        .expect("key");
    let api = Api::new(&format!("http://{}", running.local_addr), (&key.0, &key.1));
    let id = api.running_environment().await;

    let created = api
        .call(
            "createSession",
            json!({"EnvironmentId": id, "TabId": "gateway-tab"}),
        )
        .await
        .ok();
    let session = created["SessionId"]
        .as_str()
        .expect("SessionId")
        .to_string();
    let url = created["StreamUrl"]
        .as_str()
        .expect("StreamUrl")
        .to_string();
    let token = created["TokenValue"]
        .as_str()
        .expect("TokenValue")
        .to_string();
    assert!(
        url.ends_with(&format!("/v1/data-channel/{session}")),
        "{url}"
    );

    let mut c = DataChannelClient::connect(&url, &token)
        .await
        .unwrap_or_else(|e| panic!("data channel: {e}"));
    run(&mut c, "echo api-$((11*11))", "api-121").await;
    c.resize(90, 33).await.expect("resize");
    run(&mut c, "echo size=$(stty size):$((2*2))", "size=33 90:4").await;
    // The token was spent.
    let mut reused = DataChannelClient::open_only(&url, &token)
        .await
        .expect("open");
    let closed = reused.wait_closed(WAIT).await.expect("closed");
    assert_eq!(closed.code, 1008, "{closed:?}");

    // A dropped socket, then resumeSession's token: the output continues
    // without loss or repetition.
    c.type_line("i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo k=$i; done; echo done-$((8*8))")
        .await
        .expect("typing");
    c.wait_for("k=100\r", WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.drop_socket();
    let resumed = api
        .call(
            "resumeSession",
            json!({"EnvironmentId": id, "SessionId": session}),
        )
        .await
        .ok();
    let url = resumed["StreamUrl"]
        .as_str()
        .expect("StreamUrl")
        .to_string();
    let token = resumed["TokenValue"]
        .as_str()
        .expect("TokenValue")
        .to_string();
    c.resume(&url, &token)
        .await
        .unwrap_or_else(|e| panic!("resume: {e}"));
    c.wait_for("done-64", WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let numbers: Vec<u32> = c
        .text()
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("k="))
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers, (1..=500).collect::<Vec<u32>>());
    let delivered = c.delivered();
    let expected: Vec<i64> = (0..delivered.len() as i64).collect();
    assert_eq!(delivered, expected.as_slice());

    // A reloaded tab (createSession with the same TabId) gets the same
    // shell on a fresh terminal: a repaint of the screen, then live
    // output; the older socket is told another connection took over.
    let again = api
        .call(
            "createSession",
            json!({"EnvironmentId": id, "TabId": "gateway-tab"}),
        )
        .await
        .ok();
    assert_eq!(again["SessionId"], session.as_str());
    let mut fresh = DataChannelClient::connect(
        again["StreamUrl"].as_str().expect("StreamUrl"),
        again["TokenValue"].as_str().expect("TokenValue"),
    )
    .await
    .unwrap_or_else(|e| panic!("fresh data channel: {e}"));
    let closed = c.wait_closed(WAIT).await.expect("older socket closed");
    assert_eq!(closed.code, 1000, "{closed:?}");
    assert!(closed.reason.contains("Another connection"), "{closed:?}");
    fresh
        .wait_for("done-64", WAIT)
        .await
        .unwrap_or_else(|e| panic!("repaint: {e}"));
    run(&mut fresh, "echo fresh-$((9*9))", "fresh-81").await;

    // `exit` ends the session: channel_closed, then a normal close.
    fresh.type_line("exit").await.expect("typing");
    let closed = fresh.wait_closed(WAIT).await.expect("closed after exit");
    assert!(fresh.channel_closed().is_some());
    assert_eq!(closed.code, 1000, "{closed:?}");

    running.run_until(async {}).await.expect("stop");
    cleanup(&cfg);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_tokens_expire_and_belong_to_their_session() {
    for db in common::databases().await {
        stream_tokens_on(db).await;
    }
}

/// Asks `operation` (createSession or resumeSession) for a stream URL and
/// token.
async fn stream_token(
    api: &common::api_client::Api,
    operation: &str,
    body: serde_json::Value,
) -> (String, String, String) {
    let answer = api.call(operation, body).await.ok();
    let field = |name: &str| answer[name].as_str().expect(name).to_string();
    (field("SessionId"), field("StreamUrl"), field("TokenValue"))
}

/// Opens a socket with `token` and expects the close that refuses it,
/// before anything of the shell is relayed.
async fn refused(url: &str, token: &str, what: &str) {
    let mut socket = data_channel_open(url, token).await;
    let closed = socket
        .wait_closed(WAIT)
        .await
        .unwrap_or_else(|e| panic!("{what} was not refused: {e}"));
    assert_eq!(closed.code, 1008, "{what}: {closed:?}");
    assert!(
        closed.reason.contains("invalid, expired or already used"),
        "{what}: {closed:?}"
    );
    assert!(
        !socket.handshake_complete() && socket.delivered().is_empty(),
        "{what}: something was relayed"
    );
}

async fn stream_tokens_on(db: common::TestDb) {
    use common::cloudshell::{cleanup, config, Api};
    use serde_json::json;

    let ttl = Duration::from_secs(2);
    let mut cfg = config(&db);
    cfg.cloudshell.stream_token_seconds = ttl.as_secs();
    // The background purge of expired tokens never runs during the test, so
    // only the check at redemption can refuse them.
    cfg.cloudshell.duty_interval_seconds = 3600;
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let key = running
        .state()
        .store
        .create_access_key(&running.first_account.admin.user_id)
        .await
        .expect("key");
    let api = Api::new(&format!("http://{}", running.local_addr), (&key.0, &key.1));
    let id = api.running_environment().await;
    let (first, first_url, _) = stream_token(
        &api,
        "createSession",
        json!({"EnvironmentId": id, "TabId": "tab-1"}),
    )
    .await;
    let (_, second_url, _) = stream_token(
        &api,
        "createSession",
        json!({"EnvironmentId": id, "TabId": "tab-2"}),
    )
    .await;
    let resume = json!({"EnvironmentId": id, "SessionId": first});

    // A token is for its own session only: on another session's URL it is
    // refused (and not spent), on its own it works.
    let (_, url, token) = stream_token(&api, "resumeSession", resume.clone()).await;
    assert_eq!(url, first_url);
    refused(&second_url, &token, "another session's URL").await;
    let mut c = DataChannelClient::connect(&url, &token)
        .await
        .unwrap_or_else(|e| panic!("a fresh token on its own session: {e}"));
    run(&mut c, "echo live-$((6*7))", "live-42").await;

    // Tokens from resumeSession and from createSession (the same tab
    // again) stop working once their time is up, though never used.
    let (_, url, resume_token) = stream_token(&api, "resumeSession", resume.clone()).await;
    let (_, _, create_token) = stream_token(
        &api,
        "createSession",
        json!({"EnvironmentId": id, "TabId": "tab-1"}),
    )
    .await;
    tokio::time::sleep(ttl + Duration::from_secs(1)).await;
    refused(&url, &resume_token, "an expired resumeSession token").await;
    refused(&url, &create_token, "an expired createSession token").await;

    // The refusals disturbed neither the attached client nor the session:
    // a new token, used in time, resumes it.
    run(&mut c, "echo still-$((6*8))", "still-48").await;
    let (_, url, token) = stream_token(&api, "resumeSession", resume).await;
    c.resume(&url, &token)
        .await
        .unwrap_or_else(|e| panic!("resume with a fresh token: {e}"));
    run(&mut c, "echo resumed-$((7*7))", "resumed-49").await;

    running.run_until(async {}).await.expect("stop");
    cleanup(&cfg);
    db.drop_db().await;
}
