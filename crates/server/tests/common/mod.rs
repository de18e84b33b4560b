//! Test databases: every server test runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `SEASHELL_TEST_POSTGRES_URL` (`scripts/test.sh` sets
//! it with `scripts/postgres.sh`); each test gets a database of its own,
//! dropped afterwards.

#![allow(dead_code)] // Each test binary uses part of this module.

pub mod api_client;
pub mod cloudshell;
pub mod environments;

use sqlx::{Connection, Executor};

/// A database for one test.
pub struct TestDb {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Its URL.
    pub url: String,
    /// The data directory to use with it.
    pub data_dir: tempfile::TempDir,
    admin_url: Option<(String, String)>,
}

impl TestDb {
    /// Drops the PostgreSQL database (SQLite files go with the temp dir).
    pub async fn drop_db(self) {
        if let Some((admin, name)) = &self.admin_url {
            if let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        }
    }
}

/// The PostgreSQL URL for tests, or a clear failure.
pub fn postgres_url() -> String {
    std::env::var("SEASHELL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "SEASHELL_TEST_POSTGRES_URL is not set: run scripts/test.sh, or \
             export SEASHELL_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\""
        )
    })
}

/// A fresh SQLite and a fresh PostgreSQL database.
pub async fn databases() -> Vec<TestDb> {
    let sqlite = sqlite().await;
    let base = postgres_url();
    let name = format!("seashell_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database part");
    vec![
        sqlite,
        TestDb {
            backend: "postgres",
            url: format!("{prefix}/{name}"),
            data_dir: tempfile::tempdir().expect("tempdir"),
            admin_url: Some((base.clone(), name)),
        },
    ]
}

/// A new access key of the first administrator.
pub async fn admin_key(running: &seashell_server::Running) -> (String, String) {
    running
        .state()
        .store
        .create_access_key(&running.first_account.admin.user_id)
        .await
        .expect("key")
}

/// The first administrator's first console sign-in (the one-time password
/// changed), as the browser gets it: `303` with the cookies.
pub async fn first_console_sign_in(running: &seashell_server::Running) -> reqwest::Response {
    let base = format!("http://{}", running.local_addr);
    let account = running.first_account.account_id.clone();
    let one_time = running
        .first_account
        .new_password
        .clone()
        .expect("one-time password");
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{base}/signin/password"))
        .form(&[
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.as_str()),
            ("new_password", "Seashell-console-2026"),
        ])
        .send()
        .await
        .expect("sign in")
}

/// Signs in to the console as the first administrator and returns the
/// cookie header and the CSRF token.
pub async fn console_sign_in(running: &seashell_server::Running) -> (String, String) {
    let r = first_console_sign_in(running).await;
    assert_eq!(r.status(), 303);
    let mut cookies = Vec::new();
    let mut csrf = String::new();
    for v in r.headers().get_all("set-cookie") {
        let text = v.to_str().expect("cookie");
        let pair = text.split(';').next().unwrap_or_default().to_string();
        if let Some(value) = pair.strip_prefix("seashell_csrf=") {
            csrf = value.to_string();
        }
        cookies.push(pair);
    }
    (cookies.join("; "), csrf)
}

/// A fresh SQLite database alone, for tests about something else.
pub async fn sqlite() -> TestDb {
    sqlx::any::install_default_drivers();
    let data_dir = tempfile::tempdir().expect("tempdir");
    TestDb {
        backend: "sqlite",
        url: format!(
            "sqlite://{}?mode=rwc",
            data_dir.path().join("seashell.db").display()
        ),
        data_dir,
        admin_url: None,
    }
}

/// A server configuration for one test: any free port, the test's data
/// directory and database.
pub fn server_config(db: &TestDb) -> seashell_server::Config {
    seashell_server::Config::load(
        None,
        seashell_server::Overrides {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            data_dir: Some(db.data_dir.path().to_path_buf()),
            database_url: Some(db.url.clone()),
            ..seashell_server::Overrides::default()
        },
    )
    .expect("config")
}

/// A form POST signed with the AWS SDK's own SigV4 signer (region
/// us-east-1), with a session token when `token` is given.
pub fn signed_post(
    client: &reqwest::Client,
    url: &str,
    service: &str,
    body: &str,
    key: (&str, &str),
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = aws_credential_types::Credentials::new(
        key.0,
        key.1,
        token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("content-type", content_type)];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = client
        .post(url)
        .header("content-type", content_type)
        .body(body.to_string());
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    req
}
