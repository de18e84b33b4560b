//! The web console in a real browser: `seashell serve` with real
//! environments (the default image: python3, vim), driven by Playwright
//! (`playwright-core` from npm) in Debian's headless Chromium. The browser
//! side lives in `web/e2e/console.mjs`; this test starts the server,
//! prepares the users, runs the script, and restarts the server (SIGKILL)
//! when the script asks, for the reconnection test. Screenshots and the
//! measurements are left in `target/tmp/console-browser/`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seashell_runtime::image::{self, BuildOptions, ImageKind, NoProgress};

/// The static agent: `SEASHELL_AGENT_BIN`, else `scripts/build-agent.sh`.
fn agent_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return PathBuf::from(bin);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent.sh");
    let out = Command::new(&script).output().expect("run build-agent.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The default image, built once under `target/tmp` and shared with the
/// other tests that use it.
fn default_image() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("seashell-default-image")
        .join("default");
    std::fs::create_dir_all(dir.parent().expect("parent")).expect("cache dir");
    let options = BuildOptions {
        kind: ImageKind::Default,
        output: dir.clone(),
        force: false,
        mirror: None,
    };
    let report = image::build(&options, &mut NoProgress).unwrap_or_else(|e| {
        panic!(
            "building the default image failed (log: {}): {e}",
            image::build_log_path(&dir).display()
        )
    });
    report.path
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// What the server printed at start.
#[derive(Default)]
struct Banner {
    account: String,
    password: Option<String>,
}

/// Starts `seashell serve`; on the first start, reads the account and the
/// administrator's one-time password from what it prints.
fn serve(config: &Path, first: bool) -> (Child, Banner) {
    let mut child = common::seashell()
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seashell serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || lines.next().expect("the server started").expect("stdout");
    let mut banner = Banner::default();
    loop {
        let line = next();
        if let Some((_, rest)) = line.split_once("(account ") {
            banner.account = rest.trim_end_matches(')').to_string();
            break;
        }
    }
    if first {
        let line = next();
        banner.password = line
            .strip_prefix("First sign-in: user admin, one-time password ")
            .map(|p| p.trim().to_string());
    }
    std::thread::spawn(move || for _ in lines {});
    (child, banner)
}

/// Stops and removes the server and the environments of the test, also
/// when it fails.
struct Teardown {
    child: Option<Child>,
    data_dir: PathBuf,
    cgroup_parent: String,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let settings = seashell_server::config::CloudShellSettings {
            cgroup_parent: self.cgroup_parent.clone(),
            ..Default::default()
        };
        let rt = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
            data_dir: settings.runtime_dir(&self.data_dir),
            state_dir: seashell_server::envs::backend::default_state_dir(&self.data_dir),
            cgroup_parent: self.cgroup_parent.clone(),
            network: None,
            ..seashell_runtime::RuntimeConfig::default()
        });
        if let Ok(rt) = rt {
            let _ = rt.reconcile(&|_| false);
            let _ = rt.remove_cgroup_parent();
        }
        let _ = std::fs::remove_dir_all(settings.runtime_dir(&self.data_dir));
    }
}

/// Runs the AWS CLI as the administrator against the server; its output.
fn aws(port: u16, keys: &(String, String), args: &[&str]) -> String {
    let aws = common::aws_bin().join("aws");
    let home = tempfile::tempdir().expect("home");
    let out = Command::new(&aws)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_ACCESS_KEY_ID", &keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &keys.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env(
            "AWS_ENDPOINT_URL_IAM",
            format!("http://127.0.0.1:{port}/iam"),
        )
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .args(args)
        .output()
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_console_in_a_real_browser() {
    let image_dir = default_image();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let web = repo.join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: the server's build installs it (npm ci)"
    );
    let chromium =
        std::env::var("SEASHELL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-runtime-deps.sh (it installs Debian's chromium)"
    );
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("artifacts");

    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let port = free_port();
    let cgroup_parent = format!("seashell-console-{}", std::process::id());
    let config = dir.path().join("seashell.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n\n[cloudshell]\nimage_dir = {image:?}\n\
             agent_binary = {agent:?}\nnetwork = false\ncgroup_parent = {cgroup_parent:?}\n",
            data = data_dir.display().to_string(),
            image = image_dir.display().to_string(),
            agent = agent_binary().display().to_string(),
        ),
    )
    .expect("config");
    let (child, banner) = serve(&config, true);
    let mut teardown = Teardown {
        child: Some(child),
        data_dir: data_dir.clone(),
        cgroup_parent,
    };
    let one_time = banner.password.clone().expect("one-time password");

    // A second user who may use CloudShell but not upload files, nor
    // create an environment in eu-west-1.
    let out = common::seashell()
        .args(["admin", "bootstrap", "--output", "json", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys = (
        keys["AccessKeyId"].as_str().expect("key").to_string(),
        keys["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    );
    let reader_password = "Reader-pass-2026!";
    aws(
        port,
        &keys,
        &["iam", "create-user", "--user-name", "reader"],
    );
    aws(
        port,
        &keys,
        &[
            "iam",
            "create-login-profile",
            "--user-name",
            "reader",
            "--password",
            reader_password,
            "--no-password-reset-required",
        ],
    );
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "cloudshell:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "cloudshell:GetFileUploadUrls", "Resource": "*"},
            {"Effect": "Deny", "Action": "cloudshell:CreateEnvironment",
             "Resource": "arn:aws:cloudshell:eu-west-1:*:environment/*"}
        ]
    })
    .to_string();
    aws(
        port,
        &keys,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "reader",
            "--policy-name",
            "NoUploads",
            "--policy-document",
            &policy,
        ],
    );

    // The reader signs in with an MFA code too: a virtual device, enabled
    // with two consecutive codes; the browser test computes its own codes
    // from the seed.
    let seed_file = dir.path().join("mfa-seed.txt");
    let device: serde_json::Value = serde_json::from_str(&aws(
        port,
        &keys,
        &[
            "iam",
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "reader-mfa",
            "--bootstrap-method",
            "Base32StringSeed",
            "--outfile",
            &seed_file.display().to_string(),
            "--output",
            "json",
        ],
    ))
    .expect("device JSON");
    let serial = device["VirtualMFADevice"]["SerialNumber"]
        .as_str()
        .expect("SerialNumber")
        .to_string();
    let seed = std::fs::read_to_string(&seed_file).expect("seed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let code = |t: u64| seashell_server::mfa::code_at(seed.trim(), t).expect("code");
    aws(
        port,
        &keys,
        &[
            "iam",
            "enable-mfa-device",
            "--user-name",
            "reader",
            "--serial-number",
            &serial,
            "--authentication-code1",
            &code(now - 30),
            "--authentication-code2",
            &code(now),
        ],
    );

    let mut node = Command::new("node")
        .arg(web.join("e2e/console.mjs"))
        .current_dir(&web)
        .env("SEASHELL_URL", format!("http://127.0.0.1:{port}"))
        .env("SEASHELL_ACCOUNT", &banner.account)
        .env("SEASHELL_ADMIN_PASSWORD", &one_time)
        .env("SEASHELL_READER_PASSWORD", reader_password)
        .env("SEASHELL_READER_MFA_SEED", seed.trim())
        .env("SEASHELL_CHROMIUM", &chromium)
        .env("SEASHELL_ARTIFACTS", &artifacts)
        .env("SEASHELL_WEB_DIST", web.join("dist"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node (Node.js 18 or later)");
    let mut stdin = node.stdin.take().expect("stdin");
    let stdout = node.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("node output");
        println!("{line}");
        if line.trim() == "RESTART-SERVER" {
            let mut child = teardown.child.take().expect("server");
            child.kill().expect("SIGKILL");
            child.wait().expect("wait");
            std::thread::sleep(Duration::from_millis(1500));
            let (child, _) = serve(&config, false);
            teardown.child = Some(child);
            writeln!(stdin, "RESTARTED").expect("tell the browser test");
            stdin.flush().expect("flush");
        }
    }
    let status = node.wait().expect("node");
    assert!(
        status.success(),
        "the browser test failed ({status}); its output is above, screenshots in {}",
        artifacts.display()
    );
}
