//! Console sign-in over HTTP, on SQLite and PostgreSQL: the forced password
//! change, generic failures, lockout, MFA with replay protection, session
//! cookies and CSRF, the session's temporary credentials, sign-out.

mod common;

use std::time::{Duration, SystemTime};

use seashell_server::store::console::SigninKind;
use seashell_server::{mfa, signin, Config};

fn config(db: &common::TestDb) -> Config {
    common::server_config(db)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Reply {
    status: u16,
    cookies: Vec<String>,
    outcome: String,
    body: String,
}

async fn post_form(base: &str, path: &str, form: &[(&str, &str)], cookie: Option<&str>) -> Reply {
    let mut req = client().post(format!("{base}{path}")).form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.expect("post");
    let status = r.status().as_u16();
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let outcome = r
        .headers()
        .get("x-seashell-signin")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    let body = r.text().await.expect("body");
    Reply {
        status,
        cookies,
        outcome,
        body,
    }
}

fn cookie_value(reply: &Reply, name: &str) -> String {
    reply
        .cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", reply.cookies))
        .to_string()
}

async fn get_caller_arn(base: &str, creds: (&str, &str, &str)) -> (u16, String) {
    let url = format!("{base}/sts/");
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let r = common::signed_post(
        &client(),
        &url,
        "sts",
        body,
        (creds.0, creds.1),
        Some(creds.2),
    )
    .send()
    .await
    .expect("send");
    (r.status().as_u16(), r.text().await.expect("text"))
}

fn journal(db: &common::TestDb) -> Vec<serde_json::Value> {
    std::fs::read_to_string(db.data_dir.path().join("audit/audit.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn console_sign_in_end_to_end() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(config(&db)).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let account = running.first_account.account_id.clone();
        let one_time = running
            .first_account
            .new_password
            .clone()
            .expect("one-time password");
        let admin = running.first_account.admin.clone();

        // The one-time password must be changed before anything else.
        let creds = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.as_str()),
        ];
        let r = post_form(&base, "/signin", &creds, None).await;
        assert_eq!(
            (r.status, r.outcome.as_str()),
            (403, "PasswordChangeRequired"),
            "{backend}"
        );
        assert!(r.cookies.is_empty());
        let weak = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.as_str()),
            ("new_password", "short"),
        ];
        let r = post_form(&base, "/signin/password", &weak, None).await;
        assert_eq!(
            (r.status, r.outcome.as_str()),
            (400, "PasswordPolicy"),
            "{backend}"
        );
        let new_password = "Seashell-admin-2026";
        let change = [
            ("account", account.as_str()),
            ("username", "ADMIN"),
            ("password", one_time.as_str()),
            ("new_password", new_password),
        ];
        // A session cookie planted before sign-in is never adopted.
        let r = post_form(
            &base,
            "/signin/password",
            &change,
            Some("seashell_session=planted-by-attacker"),
        )
        .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);
        let session = cookie_value(&r, signin::SESSION_COOKIE);
        let csrf = cookie_value(&r, signin::CSRF_COOKIE);
        assert_ne!(session, "planted-by-attacker");
        let session_cookie = r
            .cookies
            .iter()
            .find(|c| c.starts_with("seashell_session="))
            .expect("cookie");
        assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"));
        assert!(
            !session_cookie.contains("Secure"),
            "no Secure flag over plain HTTP"
        );
        assert!(
            !db.data_dir.path().join("initial-admin-password").exists(),
            "spent password removed"
        );
        let who = client()
            .get(format!("{base}/whoami"))
            .header("cookie", format!("seashell_session={session}"))
            .send()
            .await
            .expect("whoami");
        assert_eq!(who.status(), 200);
        let who: serde_json::Value = who.json().await.expect("json");
        assert_eq!(who["Arn"], admin.arn().as_str());
        let planted = client()
            .get(format!("{base}/whoami"))
            .header("cookie", "seashell_session=planted-by-attacker")
            .send()
            .await
            .expect("whoami");
        assert_eq!(planted.status(), 401);

        // The old password no longer works; the new one does, and wrong
        // account, user or password all get the same answer.
        let good = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", new_password),
        ];
        let r = post_form(&base, "/signin", &good, None).await;
        assert_eq!(r.status, 303, "{backend}");
        let mut failures = Vec::new();
        for form in [
            [
                ("account", account.as_str()),
                ("username", "admin"),
                ("password", one_time.as_str()),
            ],
            [
                ("account", account.as_str()),
                ("username", "nobody"),
                ("password", new_password),
            ],
            [
                ("account", "999999999999"),
                ("username", "admin"),
                ("password", new_password),
            ],
        ] {
            let r = post_form(&base, "/signin", &form, None).await;
            assert_eq!(r.status, 401);
            assert!(r.body.contains(signin::GENERIC_FAILURE));
            failures.push(r.body);
        }
        assert!(
            failures.windows(2).all(|w| w[0] == w[1]),
            "failures are indistinguishable"
        );

        // The session's temporary credentials work on the APIs.
        let hash = signin::token_hash(&session);
        let (key, secret, token, _) = running
            .state()
            .store
            .session_credentials(&hash)
            .await
            .expect("read")
            .expect("session has credentials");
        assert!(key.starts_with("ASIA"));
        let (status, body) = get_caller_arn(&base, (&key, &secret, &token)).await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert!(body.contains(&admin.arn()));
        // A wrong session token is refused.
        let (status, body) = get_caller_arn(&base, (&key, &secret, "forged-token")).await;
        assert_eq!(status, 403);
        assert!(body.contains("InvalidClientTokenId"));

        // Sign-out needs the CSRF token, then revokes session and credentials.
        let cookie = format!("seashell_session={session}");
        let no_csrf = client()
            .post(format!("{base}/signout"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("post");
        assert_eq!(no_csrf.status(), 403);
        let wrong_csrf = client()
            .post(format!("{base}/signout"))
            .header("cookie", &cookie)
            .header(signin::CSRF_HEADER, "nope")
            .send()
            .await
            .expect("post");
        assert_eq!(wrong_csrf.status(), 403);
        let out = client()
            .post(format!("{base}/signout"))
            .header("cookie", &cookie)
            .header(signin::CSRF_HEADER, &csrf)
            .send()
            .await
            .expect("post");
        assert_eq!(out.status(), 303);
        let who = client()
            .get(format!("{base}/whoami"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("get");
        assert_eq!(who.status(), 401);
        let (status, body) = get_caller_arn(&base, (&key, &secret, &token)).await;
        assert_eq!(status, 403, "{backend}: revoked credentials refused");
        assert!(body.contains("InvalidClientTokenId"));

        // The audit trail has every attempt, as ConsoleLogin records.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let logins: Vec<_> = journal(&db)
            .into_iter()
            .filter(|r| r["eventName"] == "ConsoleLogin")
            .collect();
        let ok = logins
            .iter()
            .filter(|r| r["responseElements"]["ConsoleLogin"] == "Success")
            .count();
        let failed: Vec<_> = logins
            .iter()
            .filter(|r| r["responseElements"]["ConsoleLogin"] == "Failure")
            .collect();
        assert_eq!(ok, 2, "{backend}");
        assert_eq!(failed.len(), 3, "{backend}");
        for r in &logins {
            assert_eq!(r["eventSource"], "signin.amazonaws.com");
            assert_eq!(r["eventType"], "AwsConsoleSignIn");
            assert_eq!(r["additionalEventData"]["MFAUsed"], "No");
        }
        assert!(failed
            .iter()
            .all(|r| r["errorMessage"] == "Failed authentication"));
        let text =
            std::fs::read_to_string(db.data_dir.path().join("audit/audit.jsonl")).expect("journal");
        for secret_text in [
            one_time.as_str(),
            new_password,
            session.as_str(),
            secret.as_str(),
            token.as_str(),
        ] {
            assert!(
                !text.contains(secret_text),
                "{backend}: a secret reached the audit journal"
            );
        }

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lockout_and_mfa() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(config(&db)).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();
        let password = "Bob-password-1";
        let bob = console_user(store, &account, "bob", password).await;
        let good = [
            ("account", account.as_str()),
            ("username", "bob"),
            ("password", password),
        ];
        let bad = [
            ("account", account.as_str()),
            ("username", "bob"),
            ("password", "wrong-Password-1"),
        ];

        // Five failures are free; the sixth locks the user for a second, during
        // which even the right password is refused.
        for _ in 0..6 {
            assert_eq!(post_form(&base, "/signin", &bad, None).await.status, 401);
        }
        let locked = post_form(&base, "/signin", &good, None).await;
        assert_eq!(locked.status, 401, "{backend}: locked out");
        assert!(locked.body.contains(signin::GENERIC_FAILURE));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            post_form(&base, "/signin", &good, None).await.status,
            303,
            "{backend}: lock expired"
        );

        // Guesses sent in parallel are all counted: they lock the user too.
        let guesses: Vec<_> = (0..12)
            .map(|_| {
                let base = base.clone();
                let bad: Vec<(String, String)> = bad
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                tokio::spawn(async move {
                    let pairs: Vec<(&str, &str)> =
                        bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    post_form(&base, "/signin", &pairs, None).await.status
                })
            })
            .collect();
        for guess in guesses {
            assert_eq!(guess.await.expect("guess"), 401);
        }
        let failures = store
            .signin_failures(SigninKind::Console, &bob.user_id, "127.0.0.1")
            .await
            .expect("failures");
        assert!(failures.failures > 5, "{backend}: {failures:?}");
        assert!(
            failures.locked_until > now_ms(),
            "{backend}: parallel guesses lock the user: {failures:?}"
        );
        store
            .clear_signin_failures(SigninKind::Console, &bob.user_id, "127.0.0.1")
            .await
            .expect("clear");

        // With an MFA device, a code is required, checked, and single-use.
        let secret = mfa::new_secret();
        let serial = format!("arn:aws:iam::{account}:mfa/bob");
        store
            .create_mfa_device(&account, &serial, &secret)
            .await
            .expect("device");
        assert!(store
            .enable_mfa_device(&serial, &bob.user_id, 0)
            .await
            .expect("enable"));
        let r = post_form(&base, "/signin", &good, None).await;
        assert_eq!(
            (r.status, r.outcome.as_str()),
            (401, "MfaRequired"),
            "{backend}"
        );
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let code = mfa::code_at(&secret, now).expect("code");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let with = |c: &str| {
            [
                ("account", account.clone()),
                ("username", "bob".to_string()),
                ("password", password.to_string()),
                ("mfa_code", c.to_string()),
            ]
        };
        let form = with(wrong);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(post_form(&base, "/signin", &pairs, None).await.status, 401);
        let form = with(&code);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_form(&base, "/signin", &pairs, None).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);
        let replay = post_form(&base, "/signin", &pairs, None).await;
        assert_eq!(replay.status, 401, "{backend}: a code works once");

        // Wrong codes count like wrong passwords: after five free ones the
        // user is locked out, and the right password then gets the generic
        // refusal instead of being asked for a code.
        let form = with(wrong);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for _ in 0..6 {
            assert_eq!(post_form(&base, "/signin", &pairs, None).await.status, 401);
        }
        let locked = post_form(&base, "/signin", &good, None).await;
        assert_eq!(
            (locked.status, locked.outcome.as_str()),
            (401, "Failed"),
            "{backend}: wrong codes lock the user"
        );
        assert!(
            store
                .signin_failures(SigninKind::Console, &bob.user_id, "127.0.0.1")
                .await
                .expect("failures")
                .locked_until
                > now_ms()
        );
        store
            .clear_signin_failures(SigninKind::Console, &bob.user_id, "127.0.0.1")
            .await
            .expect("clear");

        // The session records MFA, and so does its sign-in record.
        let session = cookie_value(&r, signin::SESSION_COOKIE);
        let who: serde_json::Value = client()
            .get(format!("{base}/whoami"))
            .header("cookie", format!("seashell_session={session}"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(who["MFAUsed"], true);
        let records = journal(&db);
        assert!(records.iter().any(|r| r["eventName"] == "ConsoleLogin"
            && r["userIdentity"]["userName"] == "bob"
            && r["additionalEventData"]["MFAUsed"] == "Yes"
            && r["responseElements"]["ConsoleLogin"] == "Success"));

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

/// A form POST from the client address `from` (all of 127.0.0.0/8 is
/// loopback on Linux), without following redirects: (status, outcome).
async fn post_from(from: [u8; 4], url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(from))
        .build()
        .expect("client");
    let r = client.post(url).form(form).send().await.expect("post");
    let outcome = r
        .headers()
        .get("x-seashell-signin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (r.status().as_u16(), outcome)
}

const HERE: [u8; 4] = [127, 0, 0, 1];
const THERE: [u8; 4] = [127, 0, 0, 2];

/// Failures count per (user, client address): an address that guessed
/// wrong is locked out for that user, while the right password from
/// another address still signs in, at the console and at the portal.
#[tokio::test(flavor = "multi_thread")]
async fn lockout_is_per_client_address() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(config(&db)).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();

        // The console.
        let password = "Carol-password-1";
        let carol = console_user(store, &account, "carol", password).await;
        let url = format!("{base}/signin");
        let good = [
            ("account", account.as_str()),
            ("username", "carol"),
            ("password", password),
        ];
        let bad = [
            ("account", account.as_str()),
            ("username", "carol"),
            ("password", "wrong-Password-1"),
        ];
        for _ in 0..6 {
            assert_eq!(post_from(HERE, &url, &bad).await.0, 401, "{backend}");
        }
        assert_eq!(
            post_from(HERE, &url, &good).await,
            (401, "Failed".to_string()),
            "{backend}: the guessing address is locked out"
        );
        assert_eq!(
            post_from(THERE, &url, &good).await.0,
            303,
            "{backend}: another address signs in"
        );
        // That success does not lift the guessing address's lock.
        let here = store
            .signin_failures(SigninKind::Console, &carol.user_id, "127.0.0.1")
            .await
            .expect("failures");
        assert_eq!(here.failures, 6, "{backend}");
        assert!(here.locked_until > now_ms() - 1000, "{backend}: {here:?}");
        let there = store
            .signin_failures(SigninKind::Console, &carol.user_id, "127.0.0.2")
            .await
            .expect("failures");
        assert!(there.known && there.failures == 0, "{backend}: {there:?}");

        // The portal shares the code.
        let user = portal_user(store, &base, &account, "frank", "Frank-2026-portal").await;
        let url = format!("{base}/start/signin");
        let wrong = [("username", "frank"), ("password", "wrong-password")];
        let right = [("username", "frank"), ("password", "Frank-2026-portal")];
        for _ in 0..6 {
            assert_eq!(post_from(HERE, &url, &wrong).await.0, 401, "{backend}");
        }
        assert_eq!(
            post_from(HERE, &url, &right).await.0,
            401,
            "{backend}: the guessing address is locked out of the portal"
        );
        assert_eq!(
            post_from(THERE, &url, &right).await.0,
            303,
            "{backend}: another address signs in to the portal"
        );
        let here = store
            .signin_failures(SigninKind::Portal, &user.user_id, "127.0.0.1")
            .await
            .expect("failures");
        assert_eq!(here.failures, 6, "{backend}: {here:?}");

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

/// The per-user backstop: failures spread over many addresses (each
/// within its own free five) lock out addresses the user never signed in
/// from, and spare the one the user signs in from.
#[tokio::test(flavor = "multi_thread")]
async fn the_backstop_locks_unfamiliar_addresses_only() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(config(&db)).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();
        let password = "Dave-password-1";
        let dave = console_user(store, &account, "dave", password).await;
        let url = format!("{base}/signin");
        let good = [
            ("account", account.as_str()),
            ("username", "dave"),
            ("password", password),
        ];
        // dave signs in from 127.0.0.2, as every day.
        assert_eq!(post_from(THERE, &url, &good).await.0, 303, "{backend}");

        // 21 addresses guess 5 times each: 105 failures, none locked alone.
        let guessers: Vec<_> = (1..=21u8)
            .map(|i| {
                let url = url.clone();
                let account = account.clone();
                tokio::spawn(async move {
                    let bad = [
                        ("account", account.as_str()),
                        ("username", "dave"),
                        ("password", "wrong-Password-1"),
                    ];
                    for _ in 0..5 {
                        assert_eq!(post_from([127, 0, 1, i], &url, &bad).await.0, 401);
                    }
                })
            })
            .collect();
        for g in guessers {
            g.await.expect("guesser");
        }
        let all = store
            .signin_failures(SigninKind::Console, &dave.user_id, "*")
            .await
            .expect("failures");
        assert!(all.failures > 100, "{backend}: {all:?}");
        assert!(all.locked_until > now_ms(), "{backend}: {all:?}");

        // A fresh address is refused even with the right password; dave's
        // own still signs in.
        assert_eq!(
            post_from([127, 0, 2, 1], &url, &good).await,
            (401, "Failed".to_string()),
            "{backend}: the backstop locks out unfamiliar addresses"
        );
        assert_eq!(
            post_from(THERE, &url, &good).await.0,
            303,
            "{backend}: a known address is spared"
        );

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `sts:GetSessionToken` counts wrong MFA codes in the same per-address
/// lockout: the guessing address is refused even the right code, another
/// address gets a session.
#[tokio::test(flavor = "multi_thread")]
async fn session_token_mfa_lockout_is_per_client_address() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(config(&db)).await.expect("start");
        let url = format!("http://{}/sts/", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();
        let gwen = console_user(store, &account, "gwen", "Gwen-password-1").await;
        let (key_id, secret) = store.create_access_key(&gwen.user_id).await.expect("key");
        let seed = mfa::new_secret();
        let serial = format!("arn:aws:iam::{account}:mfa/gwen");
        store
            .create_mfa_device(&account, &serial, &seed)
            .await
            .expect("device");
        assert!(store
            .enable_mfa_device(&serial, &gwen.user_id, 0)
            .await
            .expect("enable"));
        let ask = |from: [u8; 4], code: String| {
            let (url, serial, key_id, secret) =
                (url.clone(), serial.clone(), key_id.clone(), secret.clone());
            async move {
                let client = reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from(from))
                    .build()
                    .expect("client");
                let body = format!(
                    "Action=GetSessionToken&Version=2011-06-15&SerialNumber={}&TokenCode={code}",
                    serial.replace(':', "%3A").replace('/', "%2F")
                );
                let r = common::signed_post(&client, &url, "sts", &body, (&key_id, &secret), None)
                    .send()
                    .await
                    .expect("post");
                (r.status().as_u16(), r.text().await.expect("body"))
            }
        };
        let now = || {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock")
                .as_secs()
        };
        let right = || mfa::code_at(&seed, now()).expect("code");
        let wrong = || {
            let code = right();
            if code == "000000" { "111111" } else { "000000" }.to_string()
        };
        for _ in 0..6 {
            let (status, body) = ask(HERE, wrong()).await;
            assert_eq!(status, 403, "{backend}: {body}");
        }
        let (status, body) = ask(HERE, right()).await;
        assert_eq!(
            status, 403,
            "{backend}: the guessing address is locked: {body}"
        );
        let (status, body) = ask(THERE, right()).await;
        assert_eq!(
            status, 200,
            "{backend}: another address gets a session: {body}"
        );
        assert!(body.contains("<SessionToken>"), "{body}");
        let here = store
            .signin_failures(SigninKind::Console, &gwen.user_id, "127.0.0.1")
            .await
            .expect("failures");
        assert!(
            here.failures >= 6 && here.locked_until > now_ms() - 1000,
            "{backend}: {here:?}"
        );

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

/// A small tmpfs mounted over a directory, unmounted when dropped.
struct SmallMount(std::path::PathBuf);

impl SmallMount {
    fn new(dir: &std::path::Path, kib: u32) -> SmallMount {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount (the test runs as root)");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallMount(dir.to_path_buf())
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A sign-in whose record cannot be written does not happen: the console
/// and the portal answer that the trail cannot be written, start no
/// session, and sign in again once it can.
#[tokio::test(flavor = "multi_thread")]
async fn sign_in_fails_closed_when_its_record_cannot_be_written() {
    for db in common::databases().await {
        let backend = db.backend;
        // The audit trail on a small file system of its own; the database
        // elsewhere (PostgreSQL, or SQLite beside it), so only the trail
        // fails.
        let audit = SmallMount::new(&db.data_dir.path().join("audit"), 1024);
        let running = seashell_server::start(config(&db)).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();
        let password = "Dave-password-1";
        console_user(store, &account, "dave", password).await;
        portal_user(store, &base, &account, "erin", "Erin-2026-portal").await;
        let console = [
            ("account", account.as_str()),
            ("username", "dave"),
            ("password", password),
        ];
        let portal = [("username", "erin"), ("password", "Erin-2026-portal")];
        let sessions = |r: &Reply, name: &str| {
            r.cookies
                .iter()
                .filter(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
                .count()
        };

        let filler = audit.fill();
        let refused = post_form(&base, "/signin", &console, None).await;
        assert_eq!(refused.status, 503, "{backend}: {}", refused.body);
        assert_eq!(refused.outcome, "Unavailable", "{backend}");
        assert!(refused.body.contains("audit trail"), "{}", refused.body);
        assert_eq!(sessions(&refused, "seashell_session"), 0, "{backend}");
        let refused = post_form(&base, "/start/signin", &portal, None).await;
        assert!(
            refused.status >= 400,
            "{backend}: portal {}",
            refused.status
        );
        assert_eq!(sessions(&refused, "seashell_portal"), 0, "{backend}");

        std::fs::remove_file(&filler).expect("free the trail's space");
        let console_in = post_form(&base, "/signin", &console, None).await;
        assert_eq!(console_in.status, 303, "{backend}: {}", console_in.body);
        assert_eq!(sessions(&console_in, "seashell_session"), 1, "{backend}");
        let portal_in = post_form(&base, "/start/signin", &portal, None).await;
        assert_eq!(portal_in.status, 303, "{backend}: {}", portal_in.body);
        // Only the sessions whose records were written are in the trail.
        running.state().indexer.flush().await;
        let records = journal(&db);
        let logins: Vec<_> = records
            .iter()
            .filter(|r| r["eventName"] == "ConsoleLogin" || r["eventName"] == "UserAuthentication")
            .collect();
        assert_eq!(logins.len(), 2, "{backend}: {logins:?}");

        running.run_until(async {}).await.expect("stop");
        drop(audit);
        db.drop_db().await;
    }
}

/// An IAM user of `account` who signs in to the console with `password`.
async fn console_user(
    store: &seashell_server::store::Store,
    account: &str,
    name: &str,
    password: &str,
) -> seashell_server::store::User {
    let user = store.create_user(account, name, "/").await.expect("user");
    store
        .set_password(
            &user.user_id,
            &seashell_server::password::hash(password).expect("hash"),
            false,
        )
        .await
        .expect("password");
    user
}

/// An Identity Center user of a new organization of `account`, who set
/// `password` through the invitation's page and signs in to the portal.
async fn portal_user(
    store: &seashell_server::store::Store,
    base: &str,
    account: &str,
    name: &str,
    password: &str,
) -> seashell_server::store::identity_center::SsoUser {
    let (_, instance) = store
        .create_organization(account, "management", "admin@example.com")
        .await
        .expect("organization");
    let user = store
        .create_sso_user(&instance.identity_store_id, name, name, None)
        .await
        .expect("user");
    let link = seashell_server::portal::invite(store, &user.user_id)
        .await
        .expect("invite");
    let token = link.split("token=").nth(1).expect("token");
    let setup = post_form(
        base,
        "/start/setup",
        &[
            ("token", token),
            ("password", password),
            ("confirm", password),
        ],
        None,
    )
    .await;
    assert!(setup.status < 400, "setup {}", setup.status);
    user
}
