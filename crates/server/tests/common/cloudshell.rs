//! A server that runs real environments (the minimal busybox image, the
//! static agent as init, runc as root) and a client for the CloudShell API
//! signed with the AWS SDK's SigV4 signer.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::TestDb;

/// The static agent binary: `SEASHELL_AGENT_BIN`, else built by
/// `scripts/build-agent.sh` (quick once the static build exists).
pub fn agent_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return PathBuf::from(bin);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/build-agent.sh failed (or set SEASHELL_AGENT_BIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A configuration whose environments run the minimal image without
/// network, under a cgroup parent of the test's own.
pub fn config(db: &TestDb) -> seashell_server::Config {
    let mut config = super::server_config(db);
    let s = &mut config.cloudshell;
    s.image = "minimal".into();
    s.agent_binary = Some(agent_binary());
    s.network = false;
    s.cgroup_parent = format!(
        "seashell-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    s.duty_interval_seconds = 1;
    config
}

/// Cleans up after a test server when dropped, also when the test fails.
pub struct Cleanup(pub seashell_server::Config);

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(&self.0);
    }
}

/// Removes what a test server's environments left on the host: containers
/// (through the runtime's reconciliation with nothing to keep), mounts and
/// cgroups. Call at the end of a test, after the server stopped.
pub fn cleanup(config: &seashell_server::Config) {
    let s = &config.cloudshell;
    let state_dir = s
        .state_dir
        .clone()
        .unwrap_or_else(|| seashell_server::envs::backend::default_state_dir(&config.data_dir));
    let rt = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
        data_dir: s.runtime_dir(&config.data_dir),
        state_dir: state_dir.clone(),
        cgroup_parent: s.cgroup_parent.clone(),
        network: None,
        ..seashell_runtime::RuntimeConfig::default()
    });
    if let Ok(rt) = rt {
        match rt.reconcile(&|_| false) {
            Ok(r) if !r.errors.is_empty() => eprintln!("cleanup reported errors: {:?}", r.errors),
            Err(e) => eprintln!("cleanup: {e}"),
            _ => {}
        }
        if let Err(e) = rt.remove_cgroup_parent() {
            eprintln!("cleanup: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    let runtime_dir = s.runtime_dir(&config.data_dir);
    if nothing_mounted_under(&runtime_dir) {
        let _ = std::fs::remove_dir_all(&runtime_dir);
    }
}

/// Whether no mount point lies under `dir` (so removing it cannot reach
/// through a mount).
pub fn nothing_mounted_under(dir: &std::path::Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().to_string();
    !mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m.starts_with(&prefix))
}

/// A SigV4-signing client of one server's CloudShell API.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:port`.
    pub base: String,
    key: (String, String, Option<String>),
    region: String,
    http: reqwest::Client,
}

/// An answer: status, error code (from `x-amzn-ErrorType`) and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The error code, for errors.
    pub code: Option<String>,
    /// The JSON body.
    pub body: Value,
}

impl Answer {
    /// The body, or a panic naming the error.
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        self.body
    }

    /// The error code, or a panic if the call succeeded.
    pub fn err(&self) -> &str {
        assert_ne!(self.status, 200, "expected an error: {self:?}");
        self.code.as_deref().unwrap_or_default()
    }
}

impl Api {
    /// A client with a long-term access key, in us-east-1.
    pub fn new(base: &str, key: (&str, &str)) -> Api {
        Api {
            base: base.to_string(),
            key: (key.0.to_string(), key.1.to_string(), None),
            region: "us-east-1".into(),
            http: reqwest::Client::new(),
        }
    }

    /// The same caller in another region.
    pub fn in_region(&self, region: &str) -> Api {
        Api {
            region: region.to_string(),
            ..self.clone()
        }
    }

    /// Calls `operation` (lowerCamel) with `body`.
    pub async fn call(&self, operation: &str, body: Value) -> Answer {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let url = format!("{}/cloudshell/{operation}", self.base);
        let text = body.to_string();
        let identity = aws_credential_types::Credentials::new(
            &self.key.0,
            &self.key.1,
            self.key.2.clone(),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("cloudshell")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(text.as_bytes()),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(text);
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let reply = req.send().await.expect("send");
        let status = reply.status().as_u16();
        let code = reply
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = reply.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, code, body }
    }

    /// createEnvironment (public) and its id.
    pub async fn create_environment(&self) -> String {
        let v = self.call("createEnvironment", json!({})).await.ok();
        v["EnvironmentId"]
            .as_str()
            .expect("EnvironmentId")
            .to_string()
    }

    /// Polls getEnvironmentStatus until `status` (or panics after 60 s).
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self
                .call("getEnvironmentStatus", json!({"EnvironmentId": id}))
                .await
                .ok();
            if v["Status"] == status {
                return v;
            }
            assert!(Instant::now() < deadline, "{id} never became {status}: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A running environment's id.
    pub async fn running_environment(&self) -> String {
        let id = self.create_environment().await;
        self.call("startEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        self.wait_status(&id, "RUNNING").await;
        id
    }
}
