//! The real AWS CLI (v1, from PyPI) and boto3 against a running `seashell
//! serve`, on SQLite and on PostgreSQL.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (the bin directory `scripts/aws-clients.sh`
//! prints) and `SEASHELL_TEST_POSTGRES_URL` (`scripts/postgres.sh`);
//! `scripts/test.sh` sets both.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use sqlx::{Connection, Executor};

/// A `seashell serve` process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    data_dir: tempfile::TempDir,
    database_url: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seashell() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seashell"))
}

impl Server {
    fn start(database_url: Option<String>) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = seashell();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
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

    fn bootstrap(&self) -> serde_json::Value {
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

    fn endpoint(&self, service: &str) -> String {
        format!("http://{}/{service}", self.addr)
    }
}

fn aws_bin() -> PathBuf {
    let dir = std::env::var("SEASHELL_TEST_AWS_BIN").unwrap_or_else(|_| {
        panic!("SEASHELL_TEST_AWS_BIN is not set: run scripts/test.sh, or export SEASHELL_TEST_AWS_BIN=\"$(scripts/aws-clients.sh)\"")
    });
    PathBuf::from(dir)
}

/// Runs a client with credentials and endpoints in its environment and
/// nothing from the machine's own AWS configuration.
fn client(program: &Path, server: &Server, key_id: &str, secret: &str) -> Command {
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
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn fresh_postgres_database() -> String {
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

fn check_get_caller_identity(server: &Server) {
    let keys = server.bootstrap();
    let key_id = keys["AccessKeyId"].as_str().expect("key id");
    let secret = keys["SecretAccessKey"].as_str().expect("secret");
    let account = keys["AccountId"].as_str().expect("account");
    let arn = format!("arn:aws:iam::{account}:user/admin");
    let aws = aws_bin().join("aws");
    let python = aws_bin().join("python");

    // The AWS CLI signs with SigV4 and reads the Query protocol's XML.
    let out = client(&aws, server, key_id, secret)
        .args(["sts", "get-caller-identity", "--output", "json"])
        .output()
        .expect("run aws");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "aws sts get-caller-identity failed: {stderr}"
    );
    let reply: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(reply["Arn"], arn.as_str());
    assert_eq!(reply["Account"], account);
    assert!(reply["UserId"]
        .as_str()
        .is_some_and(|u| u.starts_with("AIDA")));

    // boto3 likewise.
    let out = client(&python, server, key_id, secret)
        .args([
            "-c",
            "import boto3, json; print(json.dumps(boto3.client('sts').get_caller_identity()['Arn']))",
        ])
        .output()
        .expect("run python");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "boto3 failed: {stderr}");
    assert_eq!(stdout.trim(), format!("\"{arn}\""));

    // A wrong secret and an unknown key get AWS's own errors.
    let out = client(
        &aws,
        server,
        key_id,
        "wrong-secret-wrong-secret-wrong-secret-00",
    )
    .args(["sts", "get-caller-identity"])
    .output()
    .expect("run aws");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("An error occurred (SignatureDoesNotMatch) when calling the GetCallerIdentity operation"),
        "{stderr}"
    );
    let out = client(&aws, server, "AKIAAAAAAAAAAAAAAAAA", secret)
        .args(["sts", "get-caller-identity"])
        .output()
        .expect("run aws");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("(InvalidClientTokenId)")
            && stderr.contains("The security token included in the request is invalid"),
        "{stderr}"
    );

    // Every call is in the audit journal, and no secret is.
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    let records: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let calls: Vec<_> = records
        .iter()
        .filter(|r| {
            r["eventName"] == "GetCallerIdentity" && r["eventSource"] == "sts.amazonaws.com"
        })
        .collect();
    assert_eq!(calls.len(), 4, "{journal}");
    assert_eq!(
        calls
            .iter()
            .filter(|r| r.get("errorCode").is_none())
            .count(),
        2
    );
    assert!(calls
        .iter()
        .any(|r| r["errorCode"] == "SignatureDoesNotMatch"
            && r["userIdentity"]["accessKeyId"] == key_id));
    assert!(calls
        .iter()
        .any(|r| r["userIdentity"]["arn"] == arn.as_str()
            && r["readOnly"] == true
            && r["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.contains("aws-cli/"))));
    for secret_text in [secret, "wrong-secret-wrong-secret-wrong-secret-00"] {
        assert!(
            !journal.contains(secret_text),
            "a secret reached the audit journal"
        );
    }
}

#[test]
fn aws_cli_and_boto3_on_sqlite() {
    let server = Server::start(None);
    check_get_caller_identity(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_and_boto3_on_postgres() {
    let url = fresh_postgres_database().await;
    let server = tokio::task::block_in_place(|| Server::start(Some(url)));
    tokio::task::block_in_place(|| check_get_caller_identity(&server));
}
