//! Connection and request limits (docs/security.md §5.1, §5.9, §5.14), on the
//! in-process server: slowloris and idle keep-alive connections are closed
//! by the header read timeout, a socket flood from one address is capped
//! while other addresses are still served and memory stays bounded, pending
//! WebSocket upgrades are capped per address, slowly sent request bodies are
//! cut off while slow steady ones go on, and the sign-in and SSO-OIDC
//! entry points are rate-limited per address before any password is
//! checked or any row is written; behind a trusted proxy the address is the
//! client it names.
//!
//! A second client address is 127.0.0.2 (all of 127.0.0.0/8 is loopback on
//! Linux).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const OTHER: [u8; 4] = [127, 0, 0, 2];

/// The flood test measures this process's memory, which every test here
/// shares: it runs alone (write), the others together (read). Argon2 in
/// the sign-in tests alone grows the process by hundreds of MiB.
static MEMORY_MEASURED: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The SQLite database of a fresh pair (the limits do not depend on the
/// database; the sign-in tests below run on both).
async fn sqlite_db() -> common::TestDb {
    let mut dbs = common::databases().await;
    let pg = dbs.pop().expect("postgres");
    pg.drop_db().await;
    dbs.pop().expect("sqlite")
}

/// A connection from `from` to `to`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Reads until the server closes the connection; how long that took, or
/// `None` if it stayed open for `patience`.
async fn closed_within(stream: &mut tokio::net::tcp::OwnedReadHalf, patience: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(patience, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A slowloris client: the request line, then one header byte every 250 ms,
/// never finishing the head. How long until the server closed it.
async fn dribble(to: SocketAddr) -> Option<Duration> {
    let stream = TcpStream::connect(to).await.ok()?;
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .ok()?;
    let writer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if write.write_all(b"X").await.is_err() {
                return;
            }
        }
    });
    let closed = closed_within(&mut read, Duration::from_secs(15)).await;
    writer.abort();
    closed.then(|| started.elapsed())
}

/// Resident memory of this process (client and server), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let _measured = MEMORY_MEASURED.read().await;
    let db = sqlite_db().await;
    let mut config = common::server_config(&db);
    config.limits.header_read_timeout_secs = 2;
    let running = seashell_server::start(config).await.expect("start");
    let addr = running.local_addr;
    let base = format!("http://{addr}");

    let dribblers: Vec<_> = (0..200).map(|_| tokio::spawn(dribble(addr))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile a normal client is served at once, over and over.
    let client = client_from([127, 0, 0, 1]);
    for _ in 0..8 {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(r.status(), 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a normal request took {:?} during the slowloris",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for d in join_all(dribblers).await {
        let after = d
            .expect("dribbler")
            .expect("the server closed the slow connection");
        assert!(
            after >= Duration::from_millis(1500) && after < Duration::from_secs(6),
            "closed after {after:?}, the timeout is 2 s"
        );
    }

    // An idle keep-alive connection: one request, then silence.
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    read.read_exact(&mut head).await.expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");
    let idle = Instant::now();
    assert!(
        closed_within(&mut read, Duration::from_secs(6)).await,
        "an idle keep-alive connection stayed open"
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        idle.elapsed()
    );

    // The timeout does not cut a slow but complete client short: a request
    // head sent in two halves within the timeout is answered.
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(800)).await;
    write.write_all(b"Host: x\r\n\r\n").await.expect("write");
    read.read_exact(&mut head).await.expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");
}

/// Sends a `POST` head declaring `length` body bytes, then `body` in chunks
/// of `chunk` bytes every `every` until it is sent or the server answers.
/// The answer's status line and when it came, or `None` if nothing came in
/// 20 s.
async fn send_body_slowly(
    to: SocketAddr,
    path: &str,
    length: usize,
    body: Vec<u8>,
    chunk: usize,
    every: Duration,
) -> Option<(String, Duration)> {
    let stream = TcpStream::connect(to).await.ok()?;
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.ok()?;
    let writer = tokio::spawn(async move {
        for piece in body.chunks(chunk) {
            tokio::time::sleep(every).await;
            if write.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the write half open: a half-close is not the test's point.
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let status = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
                return Some(String::from_utf8_lossy(&answer[..end]).into_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let at = started.elapsed();
    // After a 408 the connection is closed, with the body still unsent.
    let closed = closed_within(&mut read, Duration::from_secs(5)).await;
    writer.abort();
    let status = status?;
    if status.contains(" 408 ") {
        assert!(closed, "the connection stayed open after a 408");
    }
    Some((status, at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_are_cut_off_but_slow_steady_uploads_are_not() {
    let _measured = MEMORY_MEASURED.read().await;
    let db = sqlite_db().await;
    let mut config = common::server_config(&db);
    config.limits.body_read_timeout_secs = 2;
    config.limits.body_min_rate_bytes = 1000;
    let running = seashell_server::start(config).await.expect("start");
    let addr = running.local_addr;
    let base = format!("http://{addr}");

    // 100 clients dribble a 100 kB body a byte every 250 ms, to the API and
    // to the console's sign-in form; each gets 408 once the 2 s are up (a
    // byte every 250 ms earns nothing at 1000 bytes a second).
    let dribblers: Vec<_> = (0..100)
        .map(|i| {
            // A few to sign-in: beyond its burst it would refuse before reading.
            let path = if i % 10 == 0 { "/signin" } else { "/sts" };
            tokio::spawn(send_body_slowly(
                addr,
                path,
                100_000,
                vec![b'a'; 100_000],
                1,
                Duration::from_millis(250),
            ))
        })
        .collect();
    // Meanwhile a normal client is served at once.
    let client = client_from([127, 0, 0, 1]);
    for _ in 0..5 {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/sts"))
            .form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
            .send()
            .await
            .expect("sts");
        assert_eq!(
            r.status(),
            403,
            "an unsigned call is refused, not timed out"
        );
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for d in join_all(dribblers).await {
        let (status, at) = d.expect("dribbler").expect("an answer to the dribbler");
        assert_eq!(status, "HTTP/1.1 408 Request Timeout");
        assert!(
            at >= Duration::from_millis(1800) && at < Duration::from_secs(6),
            "answered after {at:?}, the timeout is 2 s"
        );
    }

    // A body that never starts is cut off too.
    let (status, at) = send_body_slowly(addr, "/sts", 10, Vec::new(), 1, Duration::ZERO)
        .await
        .expect("an answer");
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(at < Duration::from_secs(6), "{at:?}");

    // A slow but steady body, 4 kB every 500 ms for 3 s, outlasts the 2 s
    // because it keeps above the rate: it reaches the handler, which
    // answers it as the unsigned request it is.
    let mut form = b"Action=GetCallerIdentity&Version=2011-06-15&Padding=".to_vec();
    form.resize(24_000, b'a');
    let (status, at) = send_body_slowly(
        addr,
        "/sts",
        form.len(),
        form,
        4_000,
        Duration::from_millis(500),
    )
    .await
    .expect("an answer");
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    assert!(at >= Duration::from_millis(2500), "answered after {at:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_flood_from_one_address_is_capped() {
    let _measured = MEMORY_MEASURED.write().await;
    let db = sqlite_db().await;
    // The defaults: 1024 connections per address, 8192 in all.
    let config = common::server_config(&db);
    let cap = config.limits.max_connections_per_address;
    assert!(cap >= 1000, "the per-address default must allow ~1000");
    let running = seashell_server::start(config).await.expect("start");
    let addr = running.local_addr;
    let base = format!("http://{addr}");
    let other = client_from(OTHER);
    other
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("warm up");
    let rss_before = rss_kib();

    // 2,500 connections from 127.0.0.1, each starting a request head and
    // stopping there, as a slowloris would.
    const FLOOD: usize = 2500;
    let mut streams = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let mut s = connect_from([127, 0, 0, 1], addr).await.expect("connect");
        // A refused socket may already be closed: a failed write is fine.
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        streams.push(s);
    }
    // A legitimate client on another address is served during the flood.
    let t = Instant::now();
    let r = other
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("a legitimate request during the flood");
    assert_eq!(r.status(), 200);
    let during = t.elapsed();
    assert!(during < Duration::from_secs(2), "took {during:?}");

    // Those beyond the cap were closed at once; the others are still open.
    let mut halves: Vec<_> = streams.into_iter().map(|s| s.into_split()).collect();
    let closed = join_all(
        halves
            .iter_mut()
            .map(|(read, _)| closed_within(read, Duration::from_millis(1500))),
    )
    .await;
    let refused = closed.iter().filter(|c| **c).count();
    assert_eq!(
        (FLOOD - refused, refused),
        (cap, FLOOD - cap),
        "open and refused connections"
    );
    let growth_kib = rss_kib().saturating_sub(rss_before);
    println!(
        "flood of {FLOOD}: {} open, {refused} refused, RSS grew {} KiB, \
         a request from another address took {during:?}",
        FLOOD - refused,
        growth_kib
    );
    assert!(
        growth_kib < 256 * 1024,
        "memory grew {growth_kib} KiB during the flood"
    );
    // The flooding address itself is refused while it holds its cap.
    let mut more = connect_from([127, 0, 0, 1], addr)
        .await
        .expect("connect")
        .into_split();
    assert!(closed_within(&mut more.0, Duration::from_secs(2)).await);

    // Once the flood lets go, the address is served again.
    drop(halves);
    drop(more);
    let local = client_from([127, 0, 0, 1]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match local.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status() == 200 => break,
            _ if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("127.0.0.1 not served after the flood: {other:?}"),
        }
    }
}

/// Opens a data-channel WebSocket from `from` and keeps it without sending
/// the opening frame; the HTTP status of the upgrade.
async fn pending_upgrade(
    from: [u8; 4],
    to: SocketAddr,
) -> (u16, Option<tokio_tungstenite::WebSocketStream<TcpStream>>) {
    let stream = connect_from(from, to).await.expect("connect");
    let url = format!("ws://{to}/v1/data-channel/s-flood");
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((socket, response)) => (response.status().as_u16(), Some(socket)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("5")
            );
            (response.status().as_u16(), None)
        }
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_upgrades_are_capped_per_address() {
    let _measured = MEMORY_MEASURED.read().await;
    let db = sqlite_db().await;
    let mut config = common::server_config(&db);
    config.limits.max_pending_upgrades_per_address = 100;
    let running = seashell_server::start(config).await.expect("start");
    let addr = running.local_addr;

    // 300 upgrades from one address, none sending its opening frame.
    let results = join_all((0..300).map(|_| pending_upgrade([127, 0, 0, 1], addr))).await;
    let (open, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(|(s, _)| *s == 101);
    assert_eq!(open.len(), 100, "upgrades let in");
    assert!(refused.iter().all(|(s, _)| *s == 429), "refusals are 429");
    // Another address is not affected.
    let (status, _socket) = pending_upgrade(OTHER, addr).await;
    assert_eq!(status, 101);
    // Closing the pending sockets gives their places back.
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, socket) = pending_upgrade([127, 0, 0, 1], addr).await;
        if status == 101 {
            drop(socket);
            break;
        }
        assert!(Instant::now() < deadline, "places not given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(db: &common::TestDb, table: &str) -> i64 {
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    n
}

async fn failures(db: &common::TestDb, table: &str) -> i64 {
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    let row: Option<(i64,)> = sqlx::query_as(&format!("SELECT failures FROM {table}"))
        .fetch_optional(&mut conn)
        .await
        .expect("failures");
    row.map(|r| r.0).unwrap_or(0)
}

fn journal_lines(db: &common::TestDb) -> usize {
    std::fs::read_to_string(db.data_dir.path().join("audit/audit.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    outcome: String,
    took: Duration,
}

async fn post_form(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Answer {
    let t = Instant::now();
    let r = client.post(url).form(form).send().await.expect("post");
    let took = t.elapsed();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Answer {
        status: r.status().as_u16(),
        retry_after: header("retry-after").and_then(|v| v.parse().ok()),
        outcome: header("x-seashell-signin").unwrap_or_default(),
        took,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_is_rate_limited_per_address() {
    let _measured = MEMORY_MEASURED.read().await;
    for db in common::databases().await {
        let backend = db.backend;
        let mut config = common::server_config(&db);
        config.limits.signin.burst = 4;
        config.limits.signin.per_minute = 1;
        let running = seashell_server::start(config).await.expect("start");
        let url = format!("http://{}/signin", running.local_addr);
        let account = running.first_account.account_id.clone();
        let one_time = running
            .first_account
            .new_password
            .clone()
            .expect("one-time password");
        let here = client_from([127, 0, 0, 1]);
        let wrong = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", "not-the-password"),
        ];

        // The burst: real attempts, each verified (Argon2) and counted.
        let mut verified = Vec::new();
        for _ in 0..4 {
            let a = post_form(&here, &url, &wrong).await;
            assert_eq!((a.status, a.outcome.as_str()), (401, "Failed"), "{backend}");
            verified.push(a.took);
        }
        assert_eq!(failures(&db, "signin_failures").await, 4, "{backend}");
        let journal = journal_lines(&db);

        // Beyond it: 429 with Retry-After, even with the right password;
        // no failure counted, no record written, no Argon2 spent.
        let mut throttled = Vec::new();
        for password in ["not-the-password"; 20].iter().chain([&one_time.as_str()]) {
            let form = [
                ("account", account.as_str()),
                ("username", "admin"),
                ("password", password),
            ];
            let a = post_form(&here, &url, &form).await;
            assert_eq!(
                (a.status, a.outcome.as_str()),
                (429, "Throttled"),
                "{backend}"
            );
            let retry = a.retry_after.expect("Retry-After");
            assert!((1..=60).contains(&retry), "{backend}: Retry-After {retry}");
            throttled.push(a.took);
        }
        assert_eq!(failures(&db, "signin_failures").await, 4, "{backend}");
        assert_eq!(
            journal_lines(&db),
            journal,
            "{backend}: throttled attempts audited"
        );
        verified.sort();
        throttled.sort();
        let (verify_median, throttled_median) = (verified[2], throttled[10]);
        println!(
            "{backend}: verified median {verify_median:?}, throttled median {throttled_median:?}"
        );
        assert!(
            throttled_median * 4 < verify_median,
            "{backend}: throttled {throttled_median:?} vs verified {verify_median:?}: Argon2 work on throttled attempts?"
        );

        // Another address is served: the password is checked (and must be
        // changed), then the change signs the administrator in.
        let there = client_from(OTHER);
        let right = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.as_str()),
        ];
        let a = post_form(&there, &url, &right).await;
        assert_eq!(
            (a.status, a.outcome.as_str()),
            (403, "PasswordChangeRequired"),
            "{backend}"
        );
        let change = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.as_str()),
            ("new_password", "Limits-test-2026-admin"),
        ];
        let a = post_form(&there, &format!("{url}/password"), &change).await;
        assert_eq!(a.status, 303, "{backend}: {}", a.outcome);
        // The password change shares the bucket: still throttled here.
        let a = post_form(&here, &format!("{url}/password"), &change).await;
        assert_eq!(a.status, 429, "{backend}");
        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_sign_in_is_rate_limited_per_address() {
    let _measured = MEMORY_MEASURED.read().await;
    for db in common::databases().await {
        let backend = db.backend;
        let mut config = common::server_config(&db);
        config.limits.signin.burst = 3;
        config.limits.signin.per_minute = 1;
        let running = seashell_server::start(config).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();
        let (_, instance) = store
            .create_organization(&account, "management", "admin@example.com")
            .await
            .expect("organization");
        let user = store
            .create_sso_user(&instance.identity_store_id, "frank", "Frank", None)
            .await
            .expect("user");
        let link = seashell_server::portal::invite(store, &user.user_id)
            .await
            .expect("invite");
        let token = link.split("token=").nth(1).expect("token");
        let here = client_from([127, 0, 0, 1]);
        let setup = post_form(
            &here,
            &format!("{base}/start/setup"),
            &[
                ("token", token),
                ("password", "Frank-2026-portal"),
                ("confirm", "Frank-2026-portal"),
            ],
        )
        .await;
        assert!(setup.status < 400, "{backend}: setup {}", setup.status);

        let url = format!("{base}/start/signin");
        let wrong = [("username", "frank"), ("password", "wrong-password")];
        for _ in 0..3 {
            assert_eq!(
                post_form(&here, &url, &wrong).await.status,
                401,
                "{backend}"
            );
        }
        assert_eq!(failures(&db, "sso_signin_failures").await, 3, "{backend}");
        let sessions = count(&db, "sso_portal_sessions").await;
        let right = [("username", "frank"), ("password", "Frank-2026-portal")];
        for form in [&wrong, &wrong, &right] {
            let a = post_form(&here, &url, form).await;
            assert_eq!(a.status, 429, "{backend}");
            assert!(a.retry_after.is_some_and(|s| s >= 1), "{backend}");
        }
        assert_eq!(failures(&db, "sso_signin_failures").await, 3, "{backend}");
        assert_eq!(
            count(&db, "sso_portal_sessions").await,
            sessions,
            "{backend}"
        );
        // From another address, the right password signs in.
        let a = post_form(&client_from(OTHER), &url, &right).await;
        assert_eq!(a.status, 303, "{backend}");
        assert_eq!(
            count(&db, "sso_portal_sessions").await,
            sessions + 1,
            "{backend}"
        );
        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

/// boto3 (the real botocore model): RegisterClient five times, then
/// StartDeviceAuthorization with the first client; one JSON line of what
/// each call gave.
const BOTO3_SCRIPT: &str = r#"
import json, sys
import boto3
from botocore.config import Config
c = boto3.client("sso-oidc", region_name="us-east-1", endpoint_url=sys.argv[1],
                 config=Config(retries={"max_attempts": 1}))
out, first = [], None
for i in range(5):
    try:
        r = c.register_client(clientName="limits-%d" % i, clientType="public")
        first = first or r
        out.append(["ok"])
    except c.exceptions.SlowDownException as e:
        out.append([type(e).__name__, e.response["Error"]["Code"],
                    e.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after")])
try:
    c.start_device_authorization(clientId=first["clientId"], clientSecret=first["clientSecret"],
                                 startUrl=sys.argv[2])
    out.append(["ok"])
except c.exceptions.SlowDownException as e:
    out.append([type(e).__name__, e.response["Error"]["Code"],
                e.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after")])
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_oidc_registration_and_device_authorization_are_rate_limited() {
    let _measured = MEMORY_MEASURED.read().await;
    let bin = std::env::var("SEASHELL_TEST_AWS_BIN").unwrap_or_else(|_| {
        panic!(
            "SEASHELL_TEST_AWS_BIN is not set: export SEASHELL_TEST_AWS_BIN=\"$(scripts/aws-clients.sh)\""
        )
    });
    let python = std::path::Path::new(&bin).join("python3");
    for db in common::databases().await {
        let backend = db.backend;
        let mut config = common::server_config(&db);
        config.limits.sso_oidc.burst = 3;
        config.limits.sso_oidc.per_minute = 1;
        let running = seashell_server::start(config).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let script = python.clone();
        let (endpoint, start_url) = (format!("{base}/sso-oidc"), format!("{base}/start"));
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(script)
                .args(["-c", BOTO3_SCRIPT, &endpoint, &start_url])
                .env("AWS_ACCESS_KEY_ID", "unused")
                .env("AWS_SECRET_ACCESS_KEY", "unused")
                .output()
        })
        .await
        .expect("join")
        .expect("run boto3");
        assert!(
            output.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let calls: Vec<Vec<Value>> =
            serde_json::from_slice(&output.stdout).expect("boto3's answer");
        let refused = |c: &Vec<Value>| {
            c.first().and_then(Value::as_str) == Some("SlowDownException")
                && c.get(1).and_then(Value::as_str) == Some("SlowDownException")
                && c.get(2)
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| s >= 1)
        };
        assert!(
            calls[..3].iter().all(|c| c[0] == "ok"),
            "{backend}: {calls:?}"
        );
        assert!(calls[3..].iter().all(refused), "{backend}: {calls:?}");
        // Only the three within the burst were written.
        assert_eq!(count(&db, "sso_oidc_clients").await, 3, "{backend}");
        assert_eq!(
            count(&db, "sso_device_authorizations").await,
            0,
            "{backend}"
        );
        // Another address still registers.
        let r = client_from(OTHER)
            .post(format!("{base}/sso-oidc/client/register"))
            .json(&serde_json::json!({"clientName": "other", "clientType": "public"}))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 200, "{backend}");
        assert_eq!(count(&db, "sso_oidc_clients").await, 4, "{backend}");
        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

/// The `sourceIPAddress` of every `ConsoleLogin` in the journal.
fn console_login_sources(db: &common::TestDb) -> Vec<String> {
    std::fs::read_to_string(db.data_dir.path().join("audit/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["eventName"] == "ConsoleLogin")
        .filter_map(|r| r["sourceIPAddress"].as_str().map(str::to_string))
        .collect()
}

/// A sign-in form post with `X-Forwarded-For` values.
async fn post_forwarded(
    client: &reqwest::Client,
    url: &str,
    account: &str,
    forwarded: &[&str],
) -> u16 {
    let mut request = client.post(url).form(&[
        ("account", account),
        ("username", "admin"),
        ("password", "not-the-password"),
    ]);
    for value in forwarded {
        request = request.header("X-Forwarded-For", *value);
    }
    request.send().await.expect("post").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted_and_recorded() {
    let _measured = MEMORY_MEASURED.read().await;
    let db = sqlite_db().await;
    let mut config = common::server_config(&db);
    config.limits.signin.burst = 3;
    config.limits.signin.per_minute = 1;
    // 127.0.0.1 plays the proxy; 127.0.0.2 is a client that reaches the
    // server directly and writes the header itself.
    config.trusted_proxies = vec!["127.0.0.1/32".into()];
    let running = seashell_server::start(config.clone()).await.expect("start");
    let url = format!("http://{}/signin", running.local_addr);
    let account = running.first_account.account_id.clone();
    let proxy = client_from([127, 0, 0, 1]);
    let direct = client_from(OTHER);

    // Each step: who sends, the X-Forwarded-For headers, the status.
    let steps: &[(&reqwest::Client, &[&str], u16)] = &[
        // Clients behind the proxy each have their own bucket.
        (&proxy, &["203.0.113.5"], 401),
        (&proxy, &["203.0.113.5"], 401),
        (&proxy, &["203.0.113.5"], 401),
        (&proxy, &["203.0.113.5"], 429),
        (&proxy, &["203.0.113.6"], 401),
        // Only what the proxy appended counts: a client that writes a fresh
        // address to the left is still the throttled one, across headers
        // too.
        (&proxy, &["198.51.100.1, 203.0.113.5"], 429),
        (&proxy, &["198.51.100.2", "203.0.113.5"], 429),
        // A client that is not a proxy is its own address whatever it
        // writes.
        (&direct, &["203.0.113.7"], 401),
        (&direct, &["203.0.113.7"], 401),
        (&direct, &["203.0.113.7"], 401),
        (&direct, &["203.0.113.7"], 429),
        (&proxy, &["203.0.113.7"], 401),
    ];
    for (n, (client, forwarded, status)) in steps.iter().enumerate() {
        assert_eq!(
            post_forwarded(client, &url, &account, forwarded).await,
            *status,
            "step {n}: {forwarded:?}"
        );
    }
    // `/metrics` sees the client too: loopback is let in, a client the
    // proxy forwards is not.
    let metrics = format!("http://{}/metrics", running.local_addr);
    let r = proxy.get(&metrics).send().await.expect("metrics");
    assert_eq!(r.status(), 200);
    let r = proxy
        .get(&metrics)
        .header("X-Forwarded-For", "203.0.113.5")
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 403);
    // An unreadable header from the proxy is refused, not guessed at.
    assert_eq!(
        post_forwarded(&proxy, &url, &account, &["unknown"]).await,
        400
    );

    let mut sources = console_login_sources(&db);
    sources.sort();
    assert_eq!(
        sources,
        [
            "127.0.0.2",
            "127.0.0.2",
            "127.0.0.2",
            "203.0.113.5",
            "203.0.113.5",
            "203.0.113.5",
            "203.0.113.6",
            "203.0.113.7"
        ],
        "the trail records the client behind the proxy"
    );
    running.run_until(async {}).await.expect("stop");

    // Without trusted proxies the header is never read.
    config.trusted_proxies.clear();
    let running = seashell_server::start(config).await.expect("start");
    let url = format!("http://{}/signin", running.local_addr);
    for n in 0..4 {
        let forwarded = format!("203.0.113.{}", 20 + n);
        let status = post_forwarded(&proxy, &url, &account, &[forwarded.as_str()]).await;
        assert_eq!(status, if n < 3 { 401 } else { 429 }, "attempt {n}");
    }
    assert_eq!(
        console_login_sources(&db)
            .iter()
            .filter(|s| *s == "127.0.0.1")
            .count(),
        3
    );
    running.run_until(async {}).await.expect("stop");
}
