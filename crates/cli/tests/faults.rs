//! Faults, each scripted against a real `seashell serve` process with real
//! runc environments (docs/security.md, "Faults"):
//!
//! 1. the server killed with SIGKILL in the middle of a stream of API
//!    calls: every call that was answered 2xx has its CloudTrail record,
//!    once (the shells' side of the same kill: `server_restart.rs`);
//! 2. an environment's agent killed with SIGKILL from the host;
//! 3. PostgreSQL unreachable for 30 s (a proxy of the test's own in
//!    between);
//! 4. the data volume full;
//! 5. a host "reboot": server and every container killed, their mounts,
//!    loop devices, cgroups and firewall rules left behind.

mod common;

#[path = "../../server/tests/common/api_client.rs"]
mod api_client;
#[path = "../../server/tests/common/data_channel.rs"]
mod data_channel;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_client::{Answer, Api};
use common::hosted::{Hosted, Options};
use data_channel::DataChannelClient;
use seashell_runtime::{EnvironmentId, ExecUser};
use serde_json::{json, Value};

const LOOKUP_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns `Some`, or panics with `what` after
/// `within`.
async fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} (after {within:?})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a command in the environment as cloudshell-user; its stdout.
fn exec(hosted: &Hosted, id: &str, script: &str) -> String {
    let rid = EnvironmentId::new(id).expect("id");
    let out = hosted
        .runtime()
        .exec(
            &rid,
            ExecUser::CloudshellUser,
            &["/bin/sh", "-c", script],
            Duration::from_secs(20),
        )
        .expect("exec");
    assert!(out.success(), "{script}: {}", out.stderr);
    out.stdout
}

/// The host pid of an environment's init (its agent), from runc.
fn agent_pid(hosted: &Hosted, id: &str) -> i32 {
    let state_dir = seashell_server::envs::backend::default_state_dir(&hosted.data_dir);
    let out = run(
        "runc",
        &["--root", &state_dir.display().to_string(), "state", id],
    );
    let state: Value = serde_json::from_str(&out).expect("runc state");
    assert_eq!(state["status"], "running", "{state}");
    i32::try_from(state["pid"].as_i64().expect("pid")).expect("pid")
}

async fn status(api: &Api, id: &str) -> Value {
    api.call("getEnvironmentStatus", json!({"EnvironmentId": id}))
        .await
        .ok()
}

/// Every CloudTrail record LookupEvents returns for `event_name`,
/// following NextToken.
async fn lookup_all(api: &Api, event_name: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
            "MaxResults": 50,
        });
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = api
            .try_json11("cloudtrail", LOOKUP_TARGET, body)
            .await
            .expect("LookupEvents")
            .ok();
        for e in page["Events"].as_array().expect("Events") {
            let record: Value =
                serde_json::from_str(e["CloudTrailEvent"].as_str().expect("event")).expect("json");
            out.push(record);
        }
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// The records of every delivery file under the data directory.
fn delivered_records(data_dir: &Path) -> Vec<Value> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![data_dir.join("audit/cloudtrail")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let mut text = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open"))
                    .read_to_string(&mut text)
                    .expect("gunzip");
                let file: Value = serde_json::from_str(&text).expect("delivery file");
                out.extend(file["Records"].as_array().expect("Records").iter().cloned());
            }
        }
    }
    out
}

/// Counts records by `requestID`.
fn by_request_id(records: &[Value]) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for r in records {
        if let Some(id) = r["requestID"].as_str() {
            *n.entry(id.to_string()).or_default() += 1;
        }
    }
    n
}

/// One answered call of fault 1.
#[derive(Debug, Clone)]
struct Answered {
    event_name: &'static str,
    request_id: String,
    user: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_loses_no_record_of_an_answered_call() {
    let mut hosted = Hosted::start("fault-audit");
    let key = hosted.bootstrap();
    let api = Api::new(&hosted.base(), (&key.0, &key.1));

    // Four callers, each making CloudShell, IAM and STS calls one after
    // another until the server is gone; what was answered 2xx is kept.
    let answered: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (api, answered, stop) = (api.clone(), answered.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = 0;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) && failures >= 3 {
                    break;
                }
                let user = format!("fault-{worker}-{n}");
                let (event_name, reply, user) = match n % 3 {
                    0 => (
                        "CreateUser",
                        api.try_query(
                            "iam",
                            &format!("Action=CreateUser&Version=2010-05-08&UserName={user}"),
                        )
                        .await,
                        Some(user),
                    ),
                    1 => (
                        "DescribeEnvironments",
                        api.try_call("describeEnvironments", json!({})).await,
                        None,
                    ),
                    _ => (
                        "GetCallerIdentity",
                        api.try_query("sts", "Action=GetCallerIdentity&Version=2011-06-15")
                            .await,
                        None,
                    ),
                };
                match reply {
                    Ok(Answer {
                        status: 200,
                        request_id: Some(request_id),
                        ..
                    }) => answered.lock().expect("lock").push(Answered {
                        event_name,
                        request_id,
                        user,
                    }),
                    Ok(a) => panic!("{event_name} answered with an error: {a:?}"),
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hosted.kill();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("caller");
    }
    let answered = answered.lock().expect("lock").clone();
    assert!(
        answered.len() > 50,
        "calls were answered before the kill ({})",
        answered.len()
    );

    // How many answered calls the index had not stored when the process
    // died (what the start-up catch-up must make good).
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let db = format!("sqlite://{}", hosted.data_dir.join("seashell.db").display());
        let mut conn = sqlx::AnyConnection::connect(&db).await.expect("database");
        let rows: Vec<(String,)> = sqlx::query_as("SELECT record FROM audit_events")
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        let indexed: Vec<Value> = rows
            .iter()
            .filter_map(|(r,)| serde_json::from_str(r).ok())
            .collect();
        let indexed = by_request_id(&indexed);
        let missing = answered
            .iter()
            .filter(|a| !indexed.contains_key(&a.request_id))
            .count();
        eprintln!(
            "{} calls answered before the kill, {missing} not yet indexed",
            answered.len()
        );
    }
    hosted.restart();
    // The history (LookupEvents) has every answered call, once.
    for event_name in ["CreateUser", "DescribeEnvironments", "GetCallerIdentity"] {
        let want: Vec<&Answered> = answered
            .iter()
            .filter(|a| a.event_name == event_name)
            .collect();
        let found = by_request_id(&lookup_all(&api, event_name).await);
        for a in &want {
            assert_eq!(
                found.get(&a.request_id).copied().unwrap_or(0),
                1,
                "LookupEvents has the {event_name} answered as {} once",
                a.request_id
            );
        }
    }
    // Every user whose creation was answered exists.
    let users = api
        .try_query("iam", "Action=ListUsers&Version=2010-05-08&MaxItems=1000")
        .await
        .expect("ListUsers")
        .ok();
    let users = users.as_str().expect("XML").to_string();
    for a in answered.iter().filter(|a| a.user.is_some()) {
        let name = a.user.as_deref().expect("user");
        assert!(
            users.contains(&format!("<UserName>{name}</UserName>")),
            "{name} was created"
        );
    }

    // The delivery files, once everything is delivered, hold each answered
    // call exactly once, and the journal too.
    hosted.stop();
    let delivered = by_request_id(&delivered_records(&hosted.data_dir));
    let journal: Vec<Value> = std::fs::read_to_string(hosted.data_dir.join("audit/audit.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect();
    let journal = by_request_id(&journal);
    for a in &answered {
        assert_eq!(
            delivered.get(&a.request_id).copied().unwrap_or(0),
            1,
            "{} ({}) delivered once",
            a.event_name,
            a.request_id
        );
        assert_eq!(journal.get(&a.request_id).copied().unwrap_or(0), 1);
    }
    assert!(
        delivered.values().all(|n| *n == 1),
        "no record is delivered twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_is_reported_and_restarted_with_the_home_intact() {
    let hosted = Hosted::start("fault-agent");
    let key = hosted.bootstrap();
    let api = Api::new(&hosted.base(), (&key.0, &key.1));
    let id = api.running_environment().await;
    exec(
        &hosted,
        &id,
        "echo kept-$((6*7)) > ~/before-kill.txt && sync",
    );

    let pid = agent_pid(&hosted, &id);
    run("kill", &["-KILL", &pid.to_string()]);
    let killed = Instant::now();

    // Reported: no longer RUNNING, with a reason that says what happened.
    let reported = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = status(&api, &id).await;
            if s["Status"] != "RUNNING" && s["Status"] != "SUSPENDING" {
                break s;
            }
            assert!(Instant::now() < deadline, "still {s} after the kill");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(reported["Status"], "SUSPENDED", "{reported}");
    let reason = reported["StatusReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("stopped unexpectedly") && reason.contains("home is kept"),
        "a clear reason: {reported}"
    );
    eprintln!("reported after {:?}", killed.elapsed());

    // A session cannot be opened on the dead environment without starting
    // it; startEnvironment brings it back with the home.
    api.call("startEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "RUNNING").await;
    assert_ne!(agent_pid(&hosted, &id), pid, "a new agent");
    assert_eq!(exec(&hosted, &id, "cat ~/before-kill.txt"), "kept-42\n");
    let after = status(&api, &id).await;
    assert!(after.get("StatusReason").is_none(), "{after}");

    // And shells work again.
    let created = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let mut sh = DataChannelClient::connect(
        created["StreamUrl"].as_str().expect("url"),
        created["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    sh.type_line("cat ~/before-kill.txt").await.expect("type");
    sh.wait_for("kept-42", Duration::from_secs(20))
        .await
        .expect("the file in a new shell");
}

/// A loopback TCP proxy in front of PostgreSQL that the test can take
/// down: while down its port refuses connections and the connections it
/// relayed are reset.
struct Proxy {
    port: u16,
    target: std::net::SocketAddr,
    relays: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let mut p = Proxy {
            port: 0,
            target,
            relays: Arc::default(),
            listener: None,
        };
        p.up().await;
        p
    }

    /// Listens (again, on the same port) and relays.
    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the proxy");
        self.port = listener.local_addr().expect("addr").port();
        let (target, relays) = (self.target, self.relays.clone());
        self.listener = Some(tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let relay = tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    // A zero linger resets the connections when the relay
                    // is aborted (a cut, not a clean close) and never blocks.
                    #[allow(deprecated)]
                    {
                        let _ = inbound.set_linger(Some(Duration::ZERO));
                        let _ = outbound.set_linger(Some(Duration::ZERO));
                    }
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                relays.lock().expect("lock").push(relay);
            }
        }));
    }

    /// Closes the port and resets every relayed connection.
    async fn down(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
            let _ = l.await;
        }
        for r in self.relays.lock().expect("lock").drain(..) {
            r.abort();
        }
    }
}

/// Whether an error message gives away internals: the database, its
/// address, driver or system error text.
fn leaks_internals(message: &str, port: u16) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "sqlx",
        "postgres",
        "127.0.0.1",
        "os error",
        "refused",
        "pool",
        "timed out",
    ]
    .iter()
    .any(|w| m.contains(w))
        || m.contains(&port.to_string())
}

/// The error code and message of an answer in either protocol.
fn error_of(a: &Answer) -> (String, String) {
    match &a.body {
        Value::String(xml) => {
            let field = |tag: &str| {
                xml.split(&format!("<{tag}>"))
                    .nth(1)
                    .and_then(|r| r.split(&format!("</{tag}>")).next())
                    .unwrap_or_default()
                    .to_string()
            };
            (field("Code"), field("Message"))
        }
        body => (
            a.code.clone().unwrap_or_default(),
            body["message"]
                .as_str()
                .or(body["Message"].as_str())
                .unwrap_or_default()
                .to_string(),
        ),
    }
}

/// The bound on an API call's answer while the database is unreachable:
/// the pool's connect timeout (5 s, `store::Store::open`) plus slack for a
/// busy 2-core machine.
const OUTAGE_ANSWER_BOUND: Duration = Duration::from_secs(9);
/// How soon after the database is back calls succeed again.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_unavailable_and_recovers_without_restart() {
    let url = common::fresh_postgres_database().await;
    let (prefix, rest) = url.split_once('@').expect("user@host");
    let (hostport, db) = rest.split_once('/').expect("host/db");
    let target = tokio::net::lookup_host(hostport)
        .await
        .expect("resolve")
        .next()
        .expect("address");
    let mut proxy = Proxy::start(target).await;
    let proxied = format!("{prefix}@127.0.0.1:{}/{db}", proxy.port);
    let mut hosted = Hosted::start_with(
        "fault-db",
        Options {
            database_url: Some(proxied),
            ..Options::default()
        },
    );
    let key = hosted.bootstrap();
    let api = Api::new(&hosted.base(), (&key.0, &key.1));
    let id = api.running_environment().await;
    let created = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let mut sh = DataChannelClient::connect(
        created["StreamUrl"].as_str().expect("url"),
        created["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    sh.type_line("stty -echo; echo up-$((1+1))")
        .await
        .expect("type");
    sh.wait_for("up-2", Duration::from_secs(20))
        .await
        .expect("shell");

    proxy.down().await;
    let outage = Instant::now();
    let mut calls = 0;
    let mut n = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        n += 1;
        let started = Instant::now();
        let answer = match n % 3 {
            0 => api.try_call("describeEnvironments", json!({})).await,
            1 => {
                api.try_query("iam", "Action=ListUsers&Version=2010-05-08")
                    .await
            }
            _ => {
                api.try_query("sts", "Action=GetCallerIdentity&Version=2011-06-15")
                    .await
            }
        }
        .expect("an answer, not a dropped connection");
        let took = started.elapsed();
        assert!(
            took <= OUTAGE_ANSWER_BOUND,
            "answered within {OUTAGE_ANSWER_BOUND:?} (took {took:?})"
        );
        assert_eq!(answer.status, 503, "{answer:?}");
        let (code, message) = error_of(&answer);
        assert!(code.starts_with("ServiceUnavailable"), "{answer:?}");
        assert!(!message.is_empty(), "{answer:?}");
        assert!(!leaks_internals(&message, proxy.port), "{message}");
        calls += 1;
        // The open shell keeps relaying.
        let marker = format!("during-{n}-$((40+2))");
        sh.type_line(&format!("echo {marker}")).await.expect("type");
        sh.wait_for(&format!("during-{n}-42"), Duration::from_secs(10))
            .await
            .expect("the shell relays while the database is down");
    }
    let ready = reqwest::get(format!("{}/readyz", hosted.base()))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    assert!(calls >= 3, "{calls} calls during the outage");

    proxy.up().await;
    let back = Instant::now();
    loop {
        let a = api
            .try_call("describeEnvironments", json!({}))
            .await
            .expect("answer");
        if a.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < RECOVERY_BOUND,
            "calls succeed within {RECOVERY_BOUND:?} of the database's return: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("recovered after {:?}", back.elapsed());
    assert!(hosted.running(), "the server was not restarted");
    for form in [
        "Action=ListUsers&Version=2010-05-08",
        "Action=CreateUser&Version=2010-05-08&UserName=after-outage",
    ] {
        api.try_query("iam", form).await.expect("answer").ok();
    }
    api.try_query("sts", "Action=GetCallerIdentity&Version=2011-06-15")
        .await
        .expect("answer")
        .ok();
    // The records of the refused calls reached the history table too, once
    // the database was back (their callers could not be identified without
    // it, so they are kept under no account; the table is read directly).
    sqlx::any::install_default_drivers();
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
        let rows: Vec<(String,)> = sqlx::query_as("SELECT record FROM audit_events")
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        let unavailable = rows
            .iter()
            .filter_map(|(r,)| serde_json::from_str::<Value>(r).ok())
            .filter(|r| {
                r["errorCode"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("ServiceUnavailable"))
            })
            .count();
        if unavailable >= calls {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the history table holds the {calls} calls refused during the outage ({unavailable})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sh.type_line("echo after-$((5+5))").await.expect("type");
    sh.wait_for("after-10", Duration::from_secs(10))
        .await
        .expect("shell after");
}

/// A tmpfs of `mib` MiB mounted for the test, unmounted when dropped.
struct SmallVolume {
    dir: tempfile::TempDir,
}

impl SmallVolume {
    fn new(mib: u64) -> SmallVolume {
        let dir = tempfile::tempdir().expect("tempdir");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "seashell-fault-disk",
                &dir.path().display().to_string(),
            ],
        );
        SmallVolume { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_mib(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(self.path()).expect("statvfs");
        (st.blocks_available() * st.fragment_size()) >> 20
    }

    /// Writes `file` until at most `leave_mib` MiB are free (0: until the
    /// volume is full).
    fn fill(&self, file: &Path, leave_mib: u64) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .expect("filler");
        let chunk = vec![0x5a_u8; 1 << 20];
        while leave_mib == 0 || self.free_mib() > leave_mib {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        if leave_mib == 0 {
            // The last partial MiB.
            for _ in 0..1024 {
                if f.write_all(&chunk[..1024]).is_err() {
                    break;
                }
            }
        }
        let _ = f.sync_all();
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_data_volume_refuses_new_work_and_recovers_intact() {
    let volume = SmallVolume::new(256);
    let mut hosted = Hosted::start_with(
        "fault-disk",
        Options {
            data_parent: Some(volume.path().to_path_buf()),
            cloudshell: "home_mib = 32\nroot_mib = 32\nmin_free_mib = 64\n".into(),
            ..Options::default()
        },
    );
    let key = hosted.bootstrap();
    let api = Api::new(&hosted.base(), (&key.0, &key.1));
    let id = api.running_environment().await;
    exec(&hosted, &id, "echo home-$((2*21)) > ~/kept.txt && sync");
    let created = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let mut sh = DataChannelClient::connect(
        created["StreamUrl"].as_str().expect("url"),
        created["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    sh.type_line("stty -echo; echo up-$((1+1))")
        .await
        .expect("type");
    sh.wait_for("up-2", Duration::from_secs(20))
        .await
        .expect("shell");

    // Nearly full: below the floor, new environments are refused with a
    // clear reason; the API itself still answers.
    let filler = volume.path().join("filler");
    volume.fill(&filler, 32);
    let europe = api.in_region("eu-west-1");
    let refused = europe.call("createEnvironment", json!({})).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.err(), "ServiceUnavailableException");
    let (_, message) = error_of(&refused);
    assert!(
        message.contains("free") && message.contains("min_free_mib"),
        "{message}"
    );
    assert!(
        !message.contains(&volume.path().display().to_string()),
        "{message}"
    );
    assert_eq!(
        europe.call("describeEnvironments", json!({})).await.ok()["Environments"],
        json!([]),
        "nothing was created"
    );

    // Full: calls whose record cannot be written are refused (503), the
    // server stays up, the open shell keeps relaying.
    volume.fill(&filler, 0);
    // The journal's last page may still hold a record or two.
    let mut tries = 0;
    loop {
        let a = api
            .try_call("describeEnvironments", json!({}))
            .await
            .expect("answer");
        if a.status == 503 {
            break;
        }
        tries += 1;
        assert!(tries < 32, "calls are refused once the disk is full: {a:?}");
    }
    for _ in 0..3 {
        let a = api
            .try_call("describeEnvironments", json!({}))
            .await
            .expect("answer");
        assert_eq!(a.status, 503, "{a:?}");
        let a = api
            .try_query(
                "iam",
                "Action=CreateUser&Version=2010-05-08&UserName=during-full",
            )
            .await
            .expect("answer");
        assert_eq!(a.status, 503, "{a:?}");
        let (code, message) = error_of(&a);
        assert_eq!(code, "ServiceUnavailable", "{a:?}");
        assert!(message.contains("audit trail"), "{message}");
    }
    let a = api
        .try_call("createSession", json!({"EnvironmentId": id, "TabId": "u"}))
        .await
        .expect("answer");
    assert_eq!(a.status, 503, "{a:?}");
    sh.type_line("echo full-$((1+2))").await.expect("type");
    sh.wait_for("full-3", Duration::from_secs(10))
        .await
        .expect("the shell relays on a full disk");
    assert!(hosted.running(), "the server survived the full disk");

    // Space again: everything works without a restart.
    std::fs::remove_file(&filler).expect("remove the filler");
    let back = Instant::now();
    loop {
        let a = api
            .try_call("describeEnvironments", json!({}))
            .await
            .expect("answer");
        if a.status == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "{a:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.try_query(
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=after-full",
    )
    .await
    .expect("answer")
    .ok();
    let users = api
        .try_query("iam", "Action=ListUsers&Version=2010-05-08")
        .await
        .expect("answer")
        .ok();
    let users = users.as_str().expect("xml");
    assert!(users.contains("<UserName>after-full</UserName>"));
    assert!(
        !users.contains("<UserName>during-full</UserName>"),
        "a refused call did nothing"
    );
    let second = europe.running_environment().await;
    assert_eq!(exec(&hosted, &id, "cat ~/kept.txt"), "home-42\n");
    api.call("createSession", json!({"EnvironmentId": id, "TabId": "v"}))
        .await
        .ok();
    sh.type_line("echo after-$((3+4))").await.expect("type");
    sh.wait_for("after-7", Duration::from_secs(10))
        .await
        .expect("shell after");

    // Nothing is corrupt: the database passes its integrity check, the
    // journal opens and every line is a record, and the server starts
    // again on the same data.
    hosted.stop();
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let db = format!("sqlite://{}", hosted.data_dir.join("seashell.db").display());
        let mut conn = sqlx::AnyConnection::connect(&db)
            .await
            .expect("open the database");
        let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .expect("integrity_check");
        assert_eq!(check, "ok");
    }
    let journal =
        std::fs::read_to_string(hosted.data_dir.join("audit/audit.jsonl")).expect("journal");
    for line in journal.lines() {
        let r: Value = serde_json::from_str(line).expect("every journal line is a record");
        assert!(r["eventID"].is_string());
    }
    seashell_audit::DeliverySink::open(seashell_audit::DeliveryConfig::new(
        hosted.data_dir.join("audit"),
    ))
    .await
    .expect("the audit trail opens");
    hosted.restart();
    let envs = api.call("describeEnvironments", json!({})).await.ok();
    assert_eq!(envs["Environments"].as_array().map(Vec::len), Some(1));
    europe
        .call("getEnvironmentStatus", json!({"EnvironmentId": second}))
        .await
        .ok();
    drop(hosted);
    drop(volume);
}

/// What an environment has on the host: its container, mounts, home loop
/// device, cgroups, host-side veth and firewall rules.
#[derive(Debug, Default, PartialEq, Eq)]
struct Leftovers {
    container: bool,
    mounts: Vec<String>,
    loops: Vec<String>,
    cgroups: Vec<PathBuf>,
    veth: bool,
    rules: Vec<String>,
}

impl Leftovers {
    fn of(hosted: &Hosted, id: &str, host_if: &str) -> Leftovers {
        let state_dir = seashell_server::envs::backend::default_state_dir(&hosted.data_dir);
        let container = Command::new("runc")
            .args(["--root", &state_dir.display().to_string(), "state", id])
            .output()
            .expect("runc")
            .status
            .success();
        let env_dir = hosted.runtime_dir().join("envs").join(id);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|target| Path::new(target).starts_with(&env_dir))
            .collect();
        let homes = hosted.runtime_dir().join("homes");
        let loops = run(
            "losetup",
            &["--list", "--noheadings", "--output", "NAME,BACK-FILE"],
        )
        .lines()
        .filter(|l| l.contains(&homes.display().to_string()))
        .map(str::to_string)
        .collect();
        let mut cgroups = Vec::new();
        for dir in std::fs::read_dir("/sys/fs/cgroup")
            .expect("cgroups")
            .flatten()
        {
            for p in [
                dir.path().join(&hosted.cgroup_parent).join(id),
                PathBuf::from("/sys/fs/cgroup")
                    .join(&hosted.cgroup_parent)
                    .join(id),
            ] {
                if p.is_dir() && !cgroups.contains(&p) {
                    cgroups.push(p);
                }
            }
        }
        let veth = Command::new("ip")
            .args(["link", "show", host_if])
            .output()
            .expect("ip")
            .status
            .success();
        let tag = format!("seashell:{}:{id}", hosted.cgroup_parent);
        let rules = run("iptables-save", &[])
            .lines()
            .filter(|l| l.contains(&tag))
            .map(str::to_string)
            .collect();
        Leftovers {
            container,
            mounts,
            loops,
            cgroups,
            veth,
            rules,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_reboot_keeps_accounts_and_homes_and_cleans_every_leftover() {
    let mut hosted = Hosted::start_with(
        "fault-reboot",
        Options {
            network_pool: Some("10.231.0.0/24".into()),
            ..Options::default()
        },
    );
    let admin = hosted.bootstrap();
    let api = Api::new(&hosted.base(), (&admin.0, &admin.1));
    // A second user with a key of its own.
    api.try_query(
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=rebooted",
    )
    .await
    .expect("answer")
    .ok();
    let made = api
        .try_query(
            "iam",
            "Action=CreateAccessKey&Version=2010-05-08&UserName=rebooted",
        )
        .await
        .expect("answer")
        .ok();
    let xml = made.as_str().expect("xml");
    let field = |tag: &str| {
        xml.split(&format!("<{tag}>"))
            .nth(1)
            .and_then(|r| r.split(&format!("</{tag}>")).next())
            .expect("field")
            .to_string()
    };
    let user_key = (field("AccessKeyId"), field("SecretAccessKey"));

    let id = api.running_environment().await;
    exec(
        &hosted,
        &id,
        "echo before-reboot-$((9*9)) > ~/reboot.txt && sync",
    );
    let lease: Value = serde_json::from_slice(
        &std::fs::read(
            hosted
                .runtime_dir()
                .join("envs")
                .join(&id)
                .join("network.json"),
        )
        .expect("the environment's network lease"),
    )
    .expect("lease");
    let host_if = lease["host_if"].as_str().expect("host_if").to_string();
    let before = Leftovers::of(&hosted, &id, &host_if);
    assert!(before.container, "{before:?}");
    assert!(!before.mounts.is_empty(), "{before:?}");
    assert_eq!(before.loops.len(), 1, "{before:?}");
    assert!(!before.cgroups.is_empty(), "{before:?}");
    assert!(before.veth, "{before:?}");
    assert!(!before.rules.is_empty(), "{before:?}");

    // The crash: the server and every process of the environment die at
    // once; runc's state, the mounts, the loop device, the cgroups and the
    // firewall rules stay.
    hosted.kill();
    let state_dir = seashell_server::envs::backend::default_state_dir(&hosted.data_dir);
    run(
        "runc",
        &[
            "--root",
            &state_dir.display().to_string(),
            "kill",
            "--all",
            &id,
            "KILL",
        ],
    );
    eventually(Duration::from_secs(10), "the container died", || {
        let out = run(
            "runc",
            &["--root", &state_dir.display().to_string(), "state", &id],
        );
        out.contains("\"stopped\"").then_some(())
    })
    .await;
    let crashed = Leftovers::of(&hosted, &id, &host_if);
    assert!(crashed.container && !crashed.mounts.is_empty() && !crashed.rules.is_empty());

    hosted.restart();
    let started = Instant::now();
    let s = api.wait_status(&id, "SUSPENDED").await;
    assert!(
        s["StatusReason"]
            .as_str()
            .is_some_and(|r| r.contains("stopped while the server was down")),
        "{s}"
    );
    let gone = eventually(Duration::from_secs(30), "every leftover removed", || {
        let now = Leftovers::of(&hosted, &id, &host_if);
        (now == Leftovers::default()).then_some(now)
    })
    .await;
    eprintln!("cleaned after {:?}: {gone:?}", started.elapsed());

    // Accounts and credentials: both keys still work.
    for key in [&admin, &user_key] {
        let who = Api::new(&hosted.base(), (&key.0, &key.1))
            .try_query("sts", "Action=GetCallerIdentity&Version=2011-06-15")
            .await
            .expect("answer")
            .ok();
        assert!(who.as_str().expect("xml").contains("<Account>"), "{who}");
    }
    let who = Api::new(&hosted.base(), (&user_key.0, &user_key.1))
        .try_query("sts", "Action=GetCallerIdentity&Version=2011-06-15")
        .await
        .expect("answer")
        .ok();
    assert!(
        who.as_str().expect("xml").contains(":user/rebooted</Arn>"),
        "{who}"
    );

    // The home: the environment starts again with the file.
    api.call("startEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "RUNNING").await;
    assert_eq!(exec(&hosted, &id, "cat ~/reboot.txt"), "before-reboot-81\n");
}
