//! The local runtime behind every region: the OCI runtime and the agent
//! binary, checked at start, and the image, prepared when the first
//! environment needs it (building the default image takes minutes, so a
//! server that never runs an environment never builds it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seashell_runtime::agent::AgentOptions;
use seashell_runtime::image::{self, BuildOptions, ImageKind, NoProgress};
use seashell_runtime::{
    ApiForward, IdMap, Limits, NetworkConfig, PreparedImage, Runtime, RuntimeConfig,
};

use super::settings::CloudShellSettings;

/// What runs environments.
#[derive(Debug)]
pub struct Backend {
    /// The local OCI runtime.
    pub runtime: Arc<Runtime>,
    /// The image every environment starts from, once prepared.
    image: tokio::sync::OnceCell<PreparedImage>,
    settings: CloudShellSettings,
    data_dir: PathBuf,
    /// How the agent is run as init.
    pub agent: AgentOptions,
    /// Resource limits of each environment.
    pub limits: Limits,
    /// The URL at which the tools inside an environment reach the API.
    pub api_url: Option<String>,
}

/// Why environments cannot run, in words for the API's callers and the log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Prepares the backend: checks the host and finds the agent; opens the
/// image if it was imported before. Blocking: run it on a blocking thread.
///
/// `api` is the server's bound address and whether it speaks TLS: the
/// environments reach it at a fixed address of their own.
pub fn prepare(
    settings: &CloudShellSettings,
    data_dir: &Path,
    api: Option<(std::net::SocketAddr, bool)>,
) -> Result<Backend, Unavailable> {
    let _span = tracing::info_span!("environments.prepare").entered();
    if !settings.enabled {
        return Err(Unavailable(
            "environments are turned off in this installation (cloudshell.enabled = false)".into(),
        ));
    }
    let agent = AgentOptions::new(agent_binary(settings)?);
    let (pool, prefix_len) = settings.pool().map_err(Unavailable)?;
    let config = RuntimeConfig {
        oci_runtime: settings.oci_runtime.clone(),
        data_dir: settings.runtime_dir(data_dir),
        state_dir: settings
            .state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(data_dir)),
        cgroup_parent: settings.cgroup_parent.clone(),
        home_bytes: settings.home_mib << 20,
        min_free_bytes: settings.min_free_mib.saturating_mul(1 << 20),
        network: settings.network.then(|| NetworkConfig {
            pool,
            prefix_len,
            api: api.map(|(target, tls)| ApiForward::new(target, tls)),
            blocked: settings.blocked_destinations.clone(),
            ..NetworkConfig::default()
        }),
        ..RuntimeConfig::default()
    };
    let api_url = config.network.as_ref().and_then(NetworkConfig::api_url);
    let runtime = Runtime::new(config)
        .map_err(|e| Unavailable(format!("this host cannot run environments: {e}")))?;
    let image = tokio::sync::OnceCell::new();
    if let Ok(prepared) = runtime.image(&settings.image) {
        let _ = image.set(prepared);
    }
    let cpus = settings.cpus;
    let period: u64 = 100_000;
    let limits = Limits {
        // Whole microseconds of CPU per period; at least 1 ms.
        cpu_quota_us: ((cpus * period as f64) as i64).max(1_000),
        cpu_period_us: period,
        memory_bytes: i64::try_from(settings.memory_mib << 20).unwrap_or(i64::MAX),
        pids: i64::try_from(settings.pids).unwrap_or(i64::MAX),
        root_bytes: settings.root_mib.saturating_mul(1 << 20),
    };
    tracing::info!(image = %settings.image, agent = %agent.binary.display(), "environments ready");
    Ok(Backend {
        runtime: Arc::new(runtime),
        image,
        settings: settings.clone(),
        data_dir: data_dir.to_path_buf(),
        agent,
        limits,
        api_url,
    })
}

impl Backend {
    /// The image, built (if allowed and missing) and imported on first
    /// use; an error is not remembered, so the next use tries again.
    pub async fn image(&self) -> Result<PreparedImage, Unavailable> {
        self.image
            .get_or_try_init(|| async {
                let runtime = self.runtime.clone();
                let settings = self.settings.clone();
                let data_dir = self.data_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let source = image_source(&settings, &data_dir)?;
                    runtime
                        .import_image(&settings.image, &source, IdMap::default())
                        .map_err(|e| {
                            Unavailable(format!("cannot import the image {}: {e}", settings.image))
                        })
                })
                .await
                .map_err(|e| Unavailable(format!("preparing the image failed: {e}")))?
            })
            .await
            .cloned()
    }
}

/// The OCI runtime's state directory of an installation: under `/run`
/// (a tmpfs, emptied by a reboot, as the containers are), one per data
/// directory, so two installations on one host never touch each other's
/// containers.
pub fn default_state_dir(data_dir: &Path) -> PathBuf {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    PathBuf::from(format!("/run/seashell/runc-{}", &hex::encode(digest)[..12]))
}

/// The root filesystem to import: the configured directory, or the one
/// `seashell image build` makes in the data directory (built now if it is
/// missing and building is allowed).
fn image_source(settings: &CloudShellSettings, data_dir: &Path) -> Result<PathBuf, Unavailable> {
    if let Some(dir) = &settings.image_dir {
        return Ok(dir.clone());
    }
    let output = data_dir.join("images").join(&settings.image);
    let kind = match settings.image.as_str() {
        "default" => ImageKind::Default,
        "minimal" => ImageKind::Minimal,
        other => {
            if output.is_dir() {
                return Ok(output);
            }
            return Err(Unavailable(format!(
                "the image {other} is not at {}; build it or set cloudshell.image_dir",
                output.display()
            )));
        }
    };
    if !settings.build_image {
        if output.is_dir() {
            return Ok(output);
        }
        return Err(Unavailable(format!(
            "the image {} is missing at {} and cloudshell.build_image is off; \
             run `seashell image build`",
            settings.image,
            output.display()
        )));
    }
    tracing::info!(output = %output.display(), "building the environment image (first use)");
    let options = BuildOptions {
        kind,
        output: output.clone(),
        force: false,
        mirror: None,
    };
    // `build` reuses a complete image and builds a missing or partial one.
    let report = image::build(&options, &mut NoProgress).map_err(|e| {
        Unavailable(format!(
            "cannot build the image {} (log: {}): {e}",
            settings.image,
            image::build_log_path(&output).display()
        ))
    })?;
    Ok(report.path)
}

/// The agent binary: configured, `SEASHELL_AGENT_BIN`, beside the running
/// executable, or where `scripts/build-agent.sh` puts it.
fn agent_binary(settings: &CloudShellSettings) -> Result<PathBuf, Unavailable> {
    if let Some(path) = &settings.agent_binary {
        return Ok(path.clone());
    }
    if let Some(path) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return Ok(PathBuf::from(path));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("seashell-agent"));
            // target/<profile>/seashell → target/<triple>/release/seashell-agent
            if let Some(target) = dir.parent() {
                candidates.push(target.join("x86_64-unknown-linux-gnu/release/seashell-agent"));
                if let Some(up) = target.parent() {
                    candidates.push(up.join("x86_64-unknown-linux-gnu/release/seashell-agent"));
                }
            }
        }
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Unavailable(
            "the static seashell-agent binary was not found; build it with \
                 scripts/build-agent.sh and set cloudshell.agent_binary or SEASHELL_AGENT_BIN"
                .into(),
        )
    })
}
