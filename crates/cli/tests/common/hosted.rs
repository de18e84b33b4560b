//! A `seashell serve` that runs real environments (the minimal image, the
//! static agent, runc as root) on a fixed loopback port, so that it can be
//! killed and started again; everything it made is removed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The static agent: `SEASHELL_AGENT_BIN`, else `scripts/build-agent.sh`.
pub fn agent_binary() -> PathBuf {
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

/// A server with environments, and its teardown.
pub struct Hosted {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    /// The self-signed certificate (PEM) when it serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    cgroup_parent: String,
}

fn serve(config: &Path) -> Child {
    let mut child = super::seashell()
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seashell serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("the server started").expect("stdout");
        if line.starts_with("Seashell is listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

impl Hosted {
    /// Starts the server.
    pub fn start(tag: &str) -> Hosted {
        Self::start_with(tag, false)
    }

    /// Starts the server on HTTPS with a fresh self-signed certificate for
    /// 127.0.0.1 (in [`Hosted::tls_cert`]).
    pub fn start_tls(tag: &str) -> Hosted {
        Self::start_with(tag, true)
    }

    fn start_with(tag: &str, tls: bool) -> Hosted {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let cgroup_parent = format!("seashell-{tag}-{}", std::process::id());
        let config = dir.path().join("seashell.toml");
        let mut tls_lines = String::new();
        let mut tls_cert = None;
        if tls {
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
                .expect("certificate");
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
            tls_lines = format!(
                "tls_cert = {:?}\ntls_key = {:?}\n",
                cert_path.display().to_string(),
                key_path.display().to_string()
            );
            tls_cert = Some(cert_path);
        }
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{tls_lines}\n[cloudshell]\nimage = \"minimal\"\n\
                 agent_binary = {agent:?}\nnetwork = false\ncgroup_parent = {cgroup_parent:?}\n",
                data = data_dir.display().to_string(),
                agent = agent_binary().display().to_string(),
            ),
        )
        .expect("config");
        let mut hosted = Hosted {
            child: None,
            dir,
            data_dir,
            config,
            port,
            tls_cert,
            cgroup_parent,
        };
        hosted.child = Some(serve(&hosted.config));
        hosted
    }

    /// `http://127.0.0.1:<port>` (`https` when it serves TLS).
    pub fn base(&self) -> String {
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The administrator's access key from `admin bootstrap`.
    pub fn bootstrap(&self) -> (String, String) {
        let out = super::seashell()
            .args(["admin", "bootstrap", "--output", "json", "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .expect("bootstrap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (
            keys["AccessKeyId"]
                .as_str()
                .expect("AccessKeyId")
                .to_string(),
            keys["SecretAccessKey"]
                .as_str()
                .expect("SecretAccessKey")
                .to_string(),
        )
    }

    /// SIGKILL: nothing flushed, the environments run on.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("wait");
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.child = Some(serve(&self.config));
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        self.kill();
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
