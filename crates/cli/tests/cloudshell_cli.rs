//! The real AWS CLI (v1, from PyPI) with Seashell's botocore model for
//! `cloudshell` (`docs/cloudshell/service-2.json`, installed with
//! `aws configure add-model`).
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (the bin directory `scripts/aws-clients.sh`
//! prints); `scripts/test.sh` sets it. The tests against a real server run
//! real environments: as root, with the static agent from
//! `SEASHELL_AGENT_BIN` or `scripts/build-agent.sh`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::{aws_bin, seashell, Server};

/// The model file, as committed.
fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cloudshell/service-2.json")
}

/// One request as it arrived on the wire.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A loopback HTTP listener that records every request and answers each with
/// the reply `respond` picks for its path: (status, extra headers, body).
struct CaptureServer {
    addr: String,
    requests: Arc<Mutex<Vec<Captured>>>,
}

type Responder = fn(&str) -> (u16, Vec<(&'static str, &'static str)>, String);

impl CaptureServer {
    fn start(respond: Responder) -> CaptureServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let (status, headers, body) = respond(&request.path);
                log.lock().expect("lock").push(request);
                let mut reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nx-amzn-RequestId: 11111111-2222-3333-4444-555555555555\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    reply.push_str(&format!("{name}: {value}\r\n"));
                }
                reply.push_str("\r\n");
                reply.push_str(&body);
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        CaptureServer { addr, requests }
    }

    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Captured> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Captured {
        method,
        path,
        headers,
        body,
    })
}

/// A client home with the model installed by `aws configure add-model`.
struct CliHome {
    dir: tempfile::TempDir,
}

impl CliHome {
    fn new(model_source: &str) -> CliHome {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = CliHome { dir };
        let out = home
            .aws(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            .args([
                "configure",
                "add-model",
                "--service-model",
                model_source,
                "--service-name",
                "cloudshell",
            ])
            .output()
            .expect("run aws configure add-model");
        assert!(out.status.success(), "add-model: {}", text(&out).1);
        assert!(
            home.dir
                .path()
                .join(".aws/models/cloudshell/2023-10-01/service-2.json")
                .is_file(),
            "add-model installs the model under its apiVersion"
        );
        home
    }

    /// The AWS CLI with this home, the given credentials and nothing from
    /// the machine's own configuration.
    fn aws(&self, key_id: &str, secret: &str) -> Command {
        let home = self.dir.path();
        let mut cmd = Command::new(aws_bin().join("aws"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("PAGER", "cat")
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
        cmd
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every operation of DESIGN §2, as the CLI names them.
const COMMANDS: [&str; 16] = [
    "create-environment",
    "describe-environments",
    "get-environment-status",
    "start-environment",
    "stop-environment",
    "delete-environment",
    "create-session",
    "resume-session",
    "delete-session",
    "send-heart-beat",
    "get-layout",
    "update-layout",
    "put-credentials",
    "get-file-upload-urls",
    "get-file-download-urls",
    "approve-command",
];

fn capture_replies(path: &str) -> (u16, Vec<(&'static str, &'static str)>, String) {
    match path {
        "/cloudshell/describeEnvironments" => (
            200,
            vec![],
            r#"{"Environments":[{"EnvironmentId":"6d3f-public","Status":"RUNNING"},{"EnvironmentId":"91ab-db","EnvironmentName":"db","VpcConfig":{"VpcId":"vpc-1","SubnetIds":["subnet-1","subnet-2"],"SecurityGroupIds":["sg-1"]},"Status":"SUSPENDED"}]}"#.to_string(),
        ),
        "/cloudshell/createEnvironment" => (
            200,
            vec![],
            r#"{"EnvironmentId":"91ab-db","Status":"CREATING"}"#.to_string(),
        ),
        "/cloudshell/createSession" => (
            200,
            vec![],
            r#"{"SessionId":"s-1","TokenValue":"tok","StreamUrl":"ws://127.0.0.1/v1/data-channel/s-1"}"#.to_string(),
        ),
        // The error shape Seashell sends: {code, message} and the code in
        // x-amzn-ErrorType.
        "/cloudshell/startEnvironment" => (
            409,
            vec![("x-amzn-ErrorType", "ConflictException")],
            r#"{"code":"ConflictException","message":"The environment is being deleted."}"#
                .to_string(),
        ),
        "/cloudshell/getEnvironmentStatus" => (
            404,
            vec![("x-amzn-ErrorType", "ResourceNotFoundException")],
            r#"{"code":"ResourceNotFoundException","message":"No environment nope."}"#
                .to_string(),
        ),
        _ => (
            500,
            vec![("x-amzn-ErrorType", "InternalServerException")],
            r#"{"code":"InternalServerException","message":"unexpected path"}"#.to_string(),
        ),
    }
}

/// The model loads in botocore, the CLI lists every operation, and the
/// requests it sends and the replies it understands are the wire shape of
/// DESIGN §2: `POST /cloudshell/<lowerCamelOperation>`, a JSON body with
/// PascalCase members, SigV4 with service `cloudshell`, errors from
/// `x-amzn-ErrorType` and `{code, message}`.
#[test]
fn the_real_aws_cli_speaks_the_model() {
    let model = model_path();
    let model_url = format!("file://{}", model.display());

    // botocore itself loads the model from a search path and finds what the
    // CLI needs: protocol, signing and every operation's HTTP binding.
    let models = tempfile::tempdir().expect("tempdir");
    let dir = models.path().join("cloudshell/2023-10-01");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(&model, dir.join("service-2.json")).expect("copy model");
    let out = Command::new(aws_bin().join("python"))
        .arg("-c")
        .arg(
            r#"
import sys, json, botocore.session
s = botocore.session.get_session()
s.get_component('data_loader').search_paths.insert(0, sys.argv[1])
m = s.get_service_model('cloudshell')
ops = {}
for name in m.operation_names:
    o = m.operation_model(name)
    ops[name] = [o.http['method'], o.http['requestUri'], sorted(e.name for e in o.error_shapes)]
errors = {n: m.shape_for(n).metadata['error']['httpStatusCode'] for n in
          ['AccessDeniedException', 'ValidationException', 'ResourceNotFoundException', 'ConflictException',
           'ServiceQuotaExceededException', 'ThrottlingException', 'InternalServerException']}
print(json.dumps({'meta': [m.protocol, m.signature_version, m.signing_name, m.endpoint_prefix,
                           m.service_id, m.api_version], 'ops': ops, 'errors': errors}))
"#,
        )
        .arg(models.path())
        .output()
        .expect("run python");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "botocore: {stderr}");
    let loaded: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        loaded["meta"],
        serde_json::json!([
            "rest-json",
            "v4",
            "cloudshell",
            "cloudshell",
            "CloudShell",
            "2023-10-01"
        ])
    );
    let ops = loaded["ops"].as_object().expect("operations");
    assert_eq!(ops.len(), COMMANDS.len());
    for (name, binding) in ops {
        let lower_camel = format!("/{}{}", name[..1].to_ascii_lowercase(), &name[1..]);
        assert_eq!(binding[0], "POST", "{name}");
        assert_eq!(binding[1], lower_camel.as_str(), "{name}");
        for common in [
            "AccessDeniedException",
            "ValidationException",
            "ThrottlingException",
            "InternalServerException",
        ] {
            assert!(
                binding[2]
                    .as_array()
                    .expect("errors")
                    .iter()
                    .any(|e| e == common),
                "{name} lists {common}"
            );
        }
    }
    assert_eq!(
        loaded["errors"],
        serde_json::json!({"AccessDeniedException": 403, "ValidationException": 400,
            "ResourceNotFoundException": 404, "ConflictException": 409,
            "ServiceQuotaExceededException": 402, "ThrottlingException": 429,
            "InternalServerException": 500})
    );

    // `aws configure add-model` installs it; `aws cloudshell help` lists
    // every operation.
    let home = CliHome::new(&model_url);
    let key = "AKIAIOSFODNN7EXAMPLE";
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let out = home
        .aws(key, secret)
        .args(["cloudshell", "help"])
        .output()
        .expect("run aws help");
    let (help, stderr) = text(&out);
    assert!(out.status.success(), "help: {stderr}");
    for command in COMMANDS {
        assert!(help.contains(command), "help lists {command}: {help}");
    }

    // describe-environments against a loopback listener that records what
    // the real client sends.
    let capture = CaptureServer::start(capture_replies);
    let endpoint = format!("http://{}/cloudshell", capture.addr);
    let out = home
        .aws(key, secret)
        .args([
            "cloudshell",
            "describe-environments",
            "--endpoint-url",
            &endpoint,
            "--output",
            "json",
            "--debug",
        ])
        .output()
        .expect("run aws");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "describe-environments: {stderr}");
    let reply: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(reply["Environments"][0]["EnvironmentId"], "6d3f-public");
    assert_eq!(
        reply["Environments"][1]["VpcConfig"]["SubnetIds"][1],
        "subnet-2"
    );
    assert_eq!(reply["Environments"][1]["Status"], "SUSPENDED");
    // The signer's own account of what it signed.
    assert!(
        stderr.contains("/us-east-1/cloudshell/aws4_request"),
        "the scope names service cloudshell: {stderr}"
    );
    let requests = capture.take();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/cloudshell/describeEnvironments");
    // An input without members goes out with no body at all (botocore's
    // REST-JSON serializer), which the server reads as `{}`.
    assert!(request.body.is_empty(), "{request:?}");
    let authorization = &request.headers["authorization"];
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key}/"))
            && authorization.contains("/us-east-1/cloudshell/aws4_request, SignedHeaders=")
            && authorization.contains("host")
            && authorization.contains("x-amz-date"),
        "{authorization}"
    );
    assert!(request.headers.contains_key("x-amz-date"));

    // The service-specific endpoint variable works as for AWS's services, and
    // nested members go out as PascalCase JSON.
    let out = home
        .aws(key, secret)
        .env("AWS_ENDPOINT_URL_CLOUDSHELL", &endpoint)
        .args([
            "cloudshell",
            "create-environment",
            "--environment-name",
            "db",
            "--vpc-config",
            "VpcId=vpc-1,SubnetIds=subnet-1,subnet-2,SecurityGroupIds=sg-1",
            "--output",
            "json",
        ])
        .output()
        .expect("run aws");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "create-environment: {stderr}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout).expect("JSON"),
        serde_json::json!({"EnvironmentId": "91ab-db", "Status": "CREATING"})
    );
    let out = home
        .aws(key, secret)
        .env("AWS_ENDPOINT_URL_CLOUDSHELL", &endpoint)
        .args([
            "cloudshell",
            "create-session",
            "--environment-id",
            "91ab-db",
            "--tab-id",
            "tab-7",
            "--shell",
            "zsh",
            "--output",
            "json",
        ])
        .output()
        .expect("run aws");
    assert!(out.status.success(), "create-session: {}", text(&out).1);
    let requests = capture.take();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].path, "/cloudshell/createEnvironment");
    assert_eq!(requests[0].headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&requests[0].body).expect("JSON body"),
        serde_json::json!({"EnvironmentName": "db", "VpcConfig": {"VpcId": "vpc-1",
            "SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}})
    );
    assert_eq!(requests[1].path, "/cloudshell/createSession");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&requests[1].body).expect("JSON body"),
        serde_json::json!({"EnvironmentId": "91ab-db", "TabId": "tab-7", "Shell": "zsh"})
    );

    // Errors: the CLI names the code from x-amzn-ErrorType, prints the
    // message and exits 255 (v1 exits 255 on a service error; v2 uses 254).
    let out = home
        .aws(key, secret)
        .args([
            "cloudshell",
            "start-environment",
            "--environment-id",
            "91ab-db",
            "--endpoint-url",
            &endpoint,
        ])
        .output()
        .expect("run aws");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out).1.contains(
            "An error occurred (ConflictException) when calling the StartEnvironment operation: The environment is being deleted."
        ),
        "{}",
        text(&out).1
    );
    let out = home
        .aws(key, secret)
        .args([
            "cloudshell",
            "get-environment-status",
            "--environment-id",
            "nope",
            "--endpoint-url",
            &endpoint,
        ])
        .output()
        .expect("run aws");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out).1.contains("(ResourceNotFoundException) when calling the GetEnvironmentStatus operation: No environment nope."),
        "{}",
        text(&out).1
    );
    // A required member missing is refused by the CLI (exit 2, a parse error)
    // before any request.
    let out = home
        .aws(key, secret)
        .args([
            "cloudshell",
            "get-environment-status",
            "--endpoint-url",
            &endpoint,
        ])
        .output()
        .expect("run aws");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out).1.contains("--environment-id"),
        "{}",
        text(&out).1
    );
    let requests = capture.take();
    assert_eq!(
        requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [
            "/cloudshell/startEnvironment",
            "/cloudshell/getEnvironmentStatus"
        ]
    );
}

/// The static agent binary, as the server's own tests find it.
fn agent_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return PathBuf::from(bin);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent.sh");
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

/// Where a test server's environments live on the host; removes every
/// container, mount and cgroup they left when dropped, also when the test
/// fails.
struct EnvironmentsOnHost {
    runtime_dir: PathBuf,
    state_dir: PathBuf,
    cgroup_parent: String,
}

impl EnvironmentsOnHost {
    fn new() -> EnvironmentsOnHost {
        let tag = format!("cli-{}", std::process::id());
        EnvironmentsOnHost {
            runtime_dir: PathBuf::from(format!("/var/tmp/seashell-{tag}-runtime")),
            state_dir: PathBuf::from(format!("/run/seashell/runc-{tag}")),
            cgroup_parent: format!("seashell-test-{tag}"),
        }
    }
}

impl Drop for EnvironmentsOnHost {
    fn drop(&mut self) {
        let rt = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
            data_dir: self.runtime_dir.clone(),
            state_dir: self.state_dir.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
            network: None,
            ..seashell_runtime::RuntimeConfig::default()
        });
        if let Ok(rt) = rt {
            match rt.reconcile(&|_| false) {
                Ok(r) if !r.errors.is_empty() => eprintln!("cleanup: {:?}", r.errors),
                Err(e) => eprintln!("cleanup: {e}"),
                _ => {}
            }
            if let Err(e) = rt.remove_cgroup_parent() {
                eprintln!("cleanup: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.runtime_dir.to_string_lossy().to_string();
        let mounted = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| m.starts_with(&prefix));
        if !mounted {
            let _ = std::fs::remove_dir_all(&self.runtime_dir);
        }
    }
}

/// `seashell serve` with environments of the minimal image, no network.
fn start_server(host: &EnvironmentsOnHost) -> Server {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let config = data_dir.path().join("seashell.toml");
    std::fs::write(
        &config,
        format!(
            "[cloudshell]\nimage = \"minimal\"\nagent_binary = {:?}\nnetwork = false\n\
             runtime_dir = {:?}\nstate_dir = {:?}\ncgroup_parent = {:?}\nduty_interval_seconds = 1\n",
            agent_binary(),
            host.runtime_dir,
            host.state_dir,
            host.cgroup_parent
        ),
    )
    .expect("write config");
    let mut cmd = seashell();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
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
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        data_dir,
        database_url: None,
    }
}

/// Runs the CLI against the server's CloudShell endpoint; its exit code,
/// parsed stdout (JSON, or null) and stderr.
fn cloudshell(
    home: &CliHome,
    server: &Server,
    key: (&str, &str),
    args: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let out = home
        .aws(key.0, key.1)
        .env("AWS_ENDPOINT_URL_CLOUDSHELL", server.endpoint("cloudshell"))
        .arg("cloudshell")
        .args(args)
        .args(["--output", "json"])
        .output()
        .expect("run aws");
    let (stdout, stderr) = text(&out);
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json, stderr)
}

/// Polls `get-environment-status` until it says `status`.
fn wait_status(home: &CliHome, server: &Server, key: (&str, &str), id: &str, status: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (code, reply, stderr) = cloudshell(
            home,
            server,
            key,
            &["get-environment-status", "--environment-id", id],
        );
        assert_eq!(code, Some(0), "get-environment-status: {stderr}");
        assert_eq!(reply["EnvironmentId"], id);
        if reply["Status"] == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} never became {status}: {reply}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The environment lifecycle with the real AWS CLI against a real server
/// running real environments, the model installed from the server's own
/// URL, and a user without CloudShell permissions refused.
#[test]
fn the_real_aws_cli_runs_the_environment_lifecycle() {
    let host = EnvironmentsOnHost::new();
    let mut server = start_server(&host);
    let keys = server.bootstrap();
    let admin = (
        keys["AccessKeyId"].as_str().expect("key id").to_string(),
        keys["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    );
    let admin = (admin.0.as_str(), admin.1.as_str());
    let account = keys["AccountId"].as_str().expect("account").to_string();

    // The server serves the model; `add-model` takes it from its URL.
    let home = CliHome::new(&format!(
        "http://{}/cloudshell/model/service-2.json",
        server.addr
    ));
    let installed = std::fs::read(
        home.dir
            .path()
            .join(".aws/models/cloudshell/2023-10-01/service-2.json"),
    )
    .expect("installed model");
    let committed = std::fs::read(model_path()).expect("model");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&installed).expect("JSON"),
        serde_json::from_slice::<serde_json::Value>(&committed).expect("JSON"),
        "the server serves the committed model"
    );

    // create → describe → RUNNING.
    let (code, created, stderr) = cloudshell(&home, &server, admin, &["create-environment"]);
    assert_eq!(code, Some(0), "create-environment: {stderr}");
    let id = created["EnvironmentId"]
        .as_str()
        .expect("EnvironmentId")
        .to_string();
    assert!(
        ["CREATING", "RUNNING"].contains(&created["Status"].as_str().unwrap_or("")),
        "{created}"
    );
    let (code, described, stderr) = cloudshell(&home, &server, admin, &["describe-environments"]);
    assert_eq!(code, Some(0), "describe-environments: {stderr}");
    let listed = described["Environments"].as_array().expect("Environments");
    assert_eq!(listed.len(), 1, "{described}");
    assert_eq!(listed[0]["EnvironmentId"], id.as_str());
    assert!(listed[0].get("EnvironmentName").is_none(), "{described}");
    let (code, _, stderr) = cloudshell(
        &home,
        &server,
        admin,
        &["start-environment", "--environment-id", &id],
    );
    assert_eq!(code, Some(0), "start-environment: {stderr}");
    wait_status(&home, &server, admin, &id, "RUNNING");

    // stop → SUSPENDED; start → RUNNING again.
    let (code, stopped, stderr) = cloudshell(
        &home,
        &server,
        admin,
        &["stop-environment", "--environment-id", &id],
    );
    assert_eq!(code, Some(0), "stop-environment: {stderr}");
    assert!(
        ["SUSPENDING", "SUSPENDED"].contains(&stopped["Status"].as_str().unwrap_or("")),
        "{stopped}"
    );
    wait_status(&home, &server, admin, &id, "SUSPENDED");
    let (code, started, stderr) = cloudshell(
        &home,
        &server,
        admin,
        &["start-environment", "--environment-id", &id],
    );
    assert_eq!(code, Some(0), "start-environment: {stderr}");
    assert!(
        ["RESUMING", "RUNNING"].contains(&started["Status"].as_str().unwrap_or("")),
        "{started}"
    );
    wait_status(&home, &server, admin, &id, "RUNNING");

    // A user without CloudShell permissions is refused with the CLI's
    // service-error exit code and AWS's message.
    let iam = |args: &[&str]| {
        let mut cmd = common::client(&aws_bin().join("aws"), &server, admin.0, admin.1);
        cmd.args(args).args(["--output", "json"]);
        common::aws_json(&mut cmd)
    };
    iam(&["iam", "create-user", "--user-name", "visitor"]);
    let visitor = iam(&["iam", "create-access-key", "--user-name", "visitor"]);
    let visitor = (
        visitor["AccessKey"]["AccessKeyId"]
            .as_str()
            .expect("key")
            .to_string(),
        visitor["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    );
    let visitor = (visitor.0.as_str(), visitor.1.as_str());
    for (command, action) in [
        (
            vec!["describe-environments"],
            "cloudshell:DescribeEnvironments",
        ),
        (vec!["create-environment"], "cloudshell:CreateEnvironment"),
        (
            vec!["get-environment-status", "--environment-id", id.as_str()],
            "cloudshell:GetEnvironmentStatus",
        ),
    ] {
        let (code, _, stderr) = cloudshell(&home, &server, visitor, &command);
        assert_eq!(code, Some(255), "{command:?}: {stderr}");
        assert!(
            stderr.contains("An error occurred (AccessDeniedException) when calling the")
                && stderr.contains(&format!(
                    "User: arn:aws:iam::{account}:user/visitor is not authorized to perform: {action}"
                )),
            "{command:?}: {stderr}"
        );
    }
    // A wrong secret: SigV4's own error, through the model's endpoint.
    let (code, _, stderr) = cloudshell(
        &home,
        &server,
        (admin.0, "wrong-secret-wrong-secret-wrong-secret-00"),
        &["describe-environments"],
    );
    assert_eq!(code, Some(255), "{stderr}");
    assert!(
        stderr.contains("(SignatureDoesNotMatch) when calling the DescribeEnvironments operation"),
        "{stderr}"
    );
    // An id nobody has.
    let (code, _, stderr) = cloudshell(
        &home,
        &server,
        admin,
        &[
            "get-environment-status",
            "--environment-id",
            "no-such-environment",
        ],
    );
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains("(ResourceNotFoundException)"), "{stderr}");

    // delete → gone.
    let (code, deleted, stderr) = cloudshell(
        &home,
        &server,
        admin,
        &["delete-environment", "--environment-id", &id],
    );
    assert_eq!(code, Some(0), "delete-environment: {stderr}");
    assert!(deleted.is_null() || deleted.is_object(), "{deleted}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (code, reply, stderr) = cloudshell(
            &home,
            &server,
            admin,
            &["get-environment-status", "--environment-id", &id],
        );
        if code == Some(255) {
            assert!(stderr.contains("(ResourceNotFoundException)"), "{stderr}");
            break;
        }
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(reply["Status"], "DELETING", "{reply}");
        assert!(std::time::Instant::now() < deadline, "never deleted");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, described, stderr) = cloudshell(&home, &server, admin, &["describe-environments"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(described["Environments"], serde_json::json!([]));

    // Every call is a CloudTrail record of cloudshell.amazonaws.com.
    server.stop();
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    let names: Vec<(String, Option<String>)> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["eventSource"] == "cloudshell.amazonaws.com")
        .map(|r| {
            (
                r["eventName"].as_str().unwrap_or("").to_string(),
                r["errorCode"].as_str().map(str::to_string),
            )
        })
        .collect();
    for expected in [
        ("CreateEnvironment", None),
        ("StopEnvironment", None),
        ("DeleteEnvironment", None),
        (
            "DescribeEnvironments",
            Some("AccessDeniedException".to_string()),
        ),
    ] {
        assert!(
            names.iter().any(|n| n.0 == expected.0 && n.1 == expected.1),
            "{expected:?} in {names:?}"
        );
    }
    drop(server);
    drop(host);
}
