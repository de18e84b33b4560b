//! The harness the client tests share: a real `seashell serve` process, the
//! real AWS clients from `scripts/aws-clients.sh`, fresh PostgreSQL
//! databases from `scripts/postgres.sh`.

#![allow(dead_code)] // Each test binary uses part of this module.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub mod hosted;
pub mod sso;

use sqlx::{Connection, Executor};

/// A `seashell serve` process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Stops the server the way an operator does (SIGTERM) and waits, so
    /// every audit sink is flushed.
    pub fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "seashell serve exited with {exit}");
    }

    /// Every audit record in every sink: the journal, the delivery files
    /// and the database's history table, as text.
    pub async fn all_audit_text(&self) -> String {
        let mut text = std::fs::read_to_string(self.data_dir.path().join("audit/audit.jsonl"))
            .expect("journal");
        let mut stack = vec![self.data_dir.path().join("audit/cloudtrail")];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    use std::io::Read;
                    let mut gz =
                        flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open"));
                    gz.read_to_string(&mut text).expect("gunzip");
                    files += 1;
                }
            }
        }
        assert!(files > 0, "delivery files were written on shutdown");
        let url = self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.path().join("seashell.db").display()
            )
        });
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
        let rows = sqlx::query("SELECT record FROM audit_events")
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        assert!(!rows.is_empty(), "the history table holds the records");
        for row in rows {
            use sqlx::Row;
            text.push_str(&row.try_get::<String, _>("record").expect("record"));
        }
        text
    }
}

pub fn seashell() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seashell"))
}

impl Server {
    pub fn start(database_url: Option<String>) -> Server {
        Server::start_with(database_url, "127.0.0.1:0", None)
    }

    /// A server on `listen`, with a configuration file if given.
    pub fn start_with(database_url: Option<String>, listen: &str, config: Option<&Path>) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = seashell();
        if let Some(config) = config {
            cmd.arg("serve").arg("--config").arg(config);
        } else {
            cmd.arg("serve");
        }
        cmd.args(["--listen", listen, "--data-dir"])
            .arg(data_dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = &database_url {
            cmd.args(["--database-url", url]);
        }
        let mut child = cmd.spawn().expect("start seashell serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("server printed its address before exiting")
                .expect("read stdout");
            if let Some(addr) = line.strip_prefix("Seashell is listening on ") {
                break addr.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            data_dir,
            database_url,
        }
    }

    pub fn bootstrap(&self) -> serde_json::Value {
        let mut cmd = seashell();
        cmd.args(["admin", "bootstrap", "--output", "json", "--data-dir"])
            .arg(self.data_dir.path());
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        let out = cmd.output().expect("run bootstrap");
        assert!(
            out.status.success(),
            "bootstrap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bootstrap prints JSON")
    }

    pub fn endpoint(&self, service: &str) -> String {
        format!("http://{}/{service}", self.addr)
    }
}

pub fn aws_bin() -> PathBuf {
    let dir = std::env::var("SEASHELL_TEST_AWS_BIN").unwrap_or_else(|_| {
        panic!("SEASHELL_TEST_AWS_BIN is not set: run scripts/test.sh, or export SEASHELL_TEST_AWS_BIN=\"$(scripts/aws-clients.sh)\"")
    });
    PathBuf::from(dir)
}

/// Runs a client with credentials and endpoints in its environment and
/// nothing from the machine's own AWS configuration.
pub fn client(program: &Path, server: &Server, key_id: &str, secret: &str) -> Command {
    let mut cmd = Command::new(program);
    let home = server.data_dir.path().join("client-home");
    let _ = std::fs::create_dir_all(&home);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_STS", server.endpoint("sts"))
        .env("AWS_ENDPOINT_URL_IAM", server.endpoint("iam"))
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", server.endpoint("cloudtrail"))
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
    cmd
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub async fn fresh_postgres_database() -> String {
    let base = std::env::var("SEASHELL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("SEASHELL_TEST_POSTGRES_URL is not set: run scripts/test.sh, or export SEASHELL_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\"")
    });
    sqlx::any::install_default_drivers();
    let name = format!("seashell_cli_{}", std::process::id());
    let mut conn = sqlx::AnyConnection::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create");
    let (prefix, _) = base.rsplit_once('/').expect("database part");
    format!("{prefix}/{name}")
}

/// Runs a command that prints JSON; its parsed output.
pub fn aws_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("run aws");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

impl Server {
    /// The server's database URL (the SQLite file when none was given).
    pub fn database(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.path().join("seashell.db").display()
            )
        })
    }
}
