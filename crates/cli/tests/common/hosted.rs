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
    /// The parent cgroup of its environments.
    pub cgroup_parent: String,
    /// Its database when not SQLite.
    pub database_url: Option<String>,
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

/// How a [`Hosted`] server is set up, beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve HTTPS with a fresh self-signed certificate.
    pub tls: bool,
    /// Give environments their own network (veth, NAT, firewall rules)
    /// from this pool (CIDR); none: `network = false`.
    pub network_pool: Option<String>,
    /// `database_url`; none: SQLite in the data directory.
    pub database_url: Option<String>,
    /// The directory that holds the data directory (and the runtime
    /// directory beside it); none: the test's temporary directory.
    pub data_parent: Option<PathBuf>,
    /// More lines for the top of the file.
    pub top: String,
    /// More lines for the `[cloudshell]` section.
    pub cloudshell: String,
}

impl Hosted {
    /// Starts the server.
    pub fn start(tag: &str) -> Hosted {
        Self::start_with(tag, Options::default())
    }

    /// Starts the server on HTTPS with a fresh self-signed certificate for
    /// 127.0.0.1 (in [`Hosted::tls_cert`]).
    pub fn start_tls(tag: &str) -> Hosted {
        Self::start_with(
            tag,
            Options {
                tls: true,
                ..Options::default()
            },
        )
    }

    /// Starts the server set up as `options` say.
    pub fn start_with(tag: &str, options: Options) -> Hosted {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = options
            .data_parent
            .clone()
            .unwrap_or_else(|| dir.path().to_path_buf())
            .join("data");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let cgroup_parent = format!("seashell-{tag}-{}", std::process::id());
        let config = dir.path().join("seashell.toml");
        let mut top = options.top.clone();
        let mut tls_cert = None;
        if options.tls {
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
                .expect("certificate");
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
            top.push_str(&format!(
                "tls_cert = {:?}\ntls_key = {:?}\n",
                cert_path.display().to_string(),
                key_path.display().to_string()
            ));
            tls_cert = Some(cert_path);
        }
        if let Some(url) = &options.database_url {
            top.push_str(&format!("database_url = {url:?}\n"));
        }
        let network = match &options.network_pool {
            Some(pool) => format!("network = true\nnetwork_pool = {pool:?}\n"),
            None => "network = false\n".to_string(),
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{top}\n[cloudshell]\nimage = \"minimal\"\n\
                 agent_binary = {agent:?}\n{network}cgroup_parent = {cgroup_parent:?}\n{more}",
                data = data_dir.display().to_string(),
                agent = agent_binary().display().to_string(),
                more = options.cloudshell,
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
            database_url: options.database_url,
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
        let mut cmd = super::seashell();
        cmd.args(["admin", "bootstrap", "--output", "json", "--data-dir"])
            .arg(&self.data_dir);
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        let out = cmd.output().expect("bootstrap");
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

    /// SIGTERM, as an operator stops it: pending audit records are
    /// delivered; it must exit successfully.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            let exit = c.wait().expect("wait");
            assert!(exit.success(), "seashell serve exited with {exit}");
        }
    }

    /// Whether the server process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.child = Some(serve(&self.config));
    }
}

impl Hosted {
    /// The runtime the server runs its environments with, for looking at
    /// (and cleaning up) what it left on the host.
    pub fn runtime(&self) -> seashell_runtime::Runtime {
        seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
            data_dir: self.runtime_dir(),
            state_dir: seashell_server::envs::backend::default_state_dir(&self.data_dir),
            cgroup_parent: self.cgroup_parent.clone(),
            network: None,
            ..seashell_runtime::RuntimeConfig::default()
        })
        .expect("runtime")
    }

    /// `<data_dir>-runtime`: images, homes, environments' layers.
    pub fn runtime_dir(&self) -> PathBuf {
        seashell_server::config::CloudShellSettings::default().runtime_dir(&self.data_dir)
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        self.kill();
        let rt = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
            data_dir: self.runtime_dir(),
            state_dir: seashell_server::envs::backend::default_state_dir(&self.data_dir),
            cgroup_parent: self.cgroup_parent.clone(),
            network: None,
            ..seashell_runtime::RuntimeConfig::default()
        });
        if let Ok(rt) = rt {
            let _ = rt.reconcile(&|_| false);
            let _ = rt.remove_cgroup_parent();
        }
        let _ = std::fs::remove_dir_all(self.runtime_dir());
    }
}
