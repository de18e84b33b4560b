//! The local OCI backend: environments as runc containers.
//!
//! Host layout under the data directory (`0711` directories: the runtime's
//! helper processes inside a user namespace must traverse them, nobody may
//! list them):
//!
//! ```text
//! images/<name>/rootfs            prepared (id-shifted) image, read-only lower layer
//! images/<name>/seashell-image.json
//! homes/home-<sha256>.ext4         home volumes
//! templates/root-v1-<bytes>.ext4  empty root disk of each size, copied per environment
//! envs/<id>/root.ext4              root disk (sparse ext4 image, deleted on stop)
//! envs/<id>/root/upper, root/work  overlay upper layer, on the root disk's loop mount
//! envs/<id>/bundle/config.json     OCI bundle; bundle/rootfs is the overlay mount
//! envs/<id>/home                   loop mount of the home volume while running
//! envs/<id>/runc.log            log of the OCI runtime (errors of `runc create`)
//! envs/<id>/hosts, resolv.conf   the environment's /etc/hosts and /etc/resolv.conf
//! envs/<id>/network.json         network lease (address, resolvers; for teardown)
//! ```
//!
//! The OCI runtime's own state lives under `state_dir` (normally on tmpfs).
//! Callers serialise operations on one environment (the server's lifecycle
//! state machine does); different environments may be handled concurrently.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{Error, Result};
use crate::home::{self, HomeKey, DEFAULT_HOME_BYTES};
use crate::host::{self, CgroupLayout, HostReport};
use crate::mounts;
use crate::network::{self, NetTools, NetworkConfig};
use crate::rootdisk;
use crate::rootfs::{self, OverlayPaths, PreparedImage};
use crate::runc::{ExecOutput, Runc};
use crate::spec::{self, IdMap, Limits, SpecInput, USER_HOME, USER_ID};

/// Default of [`RuntimeConfig::min_free_bytes`]: 1 GiB.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 1 << 30;

/// Configuration of the local backend.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// OCI runtime program name or path: `runc` (default) or `crun`.
    pub oci_runtime: String,
    /// Where images, home volumes and per-environment layers live.
    pub data_dir: PathBuf,
    /// The OCI runtime's `--root` state directory.
    pub state_dir: PathBuf,
    /// Parent cgroup (relative to each hierarchy root) of all environments.
    pub cgroup_parent: String,
    /// Size of newly created home volumes, in bytes.
    pub home_bytes: u64,
    /// How long `stop` waits after SIGTERM before killing everything.
    pub stop_timeout: Duration,
    /// Network of environments; `None` leaves each environment with
    /// loopback only (no connectivity at all).
    pub network: Option<NetworkConfig>,
    /// Free space the data directory's file system keeps: `create` refuses
    /// when less than this plus the new environment's root disk is free.
    /// Root disks and homes are sparse, so this is a floor at start, not a
    /// reservation.
    pub min_free_bytes: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            oci_runtime: "runc".into(),
            data_dir: "/var/lib/seashell/runtime".into(),
            state_dir: "/run/seashell/runc".into(),
            cgroup_parent: "seashell".into(),
            home_bytes: DEFAULT_HOME_BYTES,
            stop_timeout: Duration::from_secs(10),
            network: Some(NetworkConfig::default()),
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

/// A validated environment id: 1–64 characters of `a-z`, `0-9` and `-`,
/// starting with a letter or digit. It names the container, its cgroup and
/// its directory, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvironmentId(String);

impl EnvironmentId {
    /// Validates `s`.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(EnvironmentId(s))
        } else {
            Err(Error::Invalid {
                what: "environment id",
                value: s,
                reason: "must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'",
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EnvironmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to run: everything `create` needs.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    /// Environment id.
    pub id: EnvironmentId,
    /// Hostname inside the environment.
    pub hostname: String,
    /// Prepared image (lower layer of the root overlay).
    pub image: PreparedImage,
    /// Host id range; must be the one the image was prepared for.
    pub id_map: IdMap,
    /// Resource limits.
    pub limits: Limits,
    /// Home volume to mount at `/home/cloudshell-user`; `None` gives an
    /// ephemeral home in the overlay (VPC environments).
    pub home: Option<HomeKey>,
    /// Command of the init process, run as root inside.
    pub init: Vec<String>,
    /// Extra read-only bind mounts `(host path, path inside)`, e.g. the agent.
    pub ro_binds: Vec<(PathBuf, PathBuf)>,
}

/// Lifecycle state of an environment's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvironmentStatus {
    /// No container exists (never created, or stopped and cleaned up).
    Stopped,
    /// Created, init not started yet.
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// The init process ended; `stop` cleans up.
    Exited,
}

impl std::fmt::Display for EnvironmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvironmentStatus::Stopped => "stopped",
            EnvironmentStatus::Created => "created",
            EnvironmentStatus::Running => "running",
            EnvironmentStatus::Paused => "paused",
            EnvironmentStatus::Exited => "exited",
        })
    }
}

/// Who runs an [`Runtime::exec`] command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecUser {
    /// Root inside the environment (the mapped host base uid outside).
    Root,
    /// `cloudshell-user` (uid 1000), with no capabilities.
    CloudshellUser,
}

/// The local OCI backend.
#[derive(Debug)]
pub struct Runtime {
    config: RuntimeConfig,
    host: HostReport,
    runc: Runc,
    net_tools: Option<NetTools>,
    /// Serialises address allocation between concurrent creates.
    net_lock: Mutex<()>,
    exec_counter: AtomicU64,
}

/// Writes a file every mapped id may read (`0644`, owned by host root):
/// the environment reads it through a read-only bind.
fn write_public_file(p: &Path, contents: &str) -> Result<()> {
    std::fs::write(p, contents).map_err(|e| Error::io("writing", p, e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io("setting permissions of", p, e))
}

fn create_private_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io("creating directory", p, e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| Error::io("setting permissions of", p, e))
}

impl Runtime {
    /// Checks the host and prepares the directories.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let host = host::check(&config.oci_runtime)?;
        if config.cgroup_parent.is_empty()
            || !config
                .cgroup_parent
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            || config.cgroup_parent.starts_with('.')
        {
            return Err(Error::Invalid {
                what: "cgroup parent",
                value: config.cgroup_parent.clone(),
                reason: "must be one path component of letters, digits, '-', '_' or '.'",
            });
        }
        for d in [
            config.data_dir.clone(),
            config.data_dir.join("images"),
            config.data_dir.join("homes"),
            config.data_dir.join("envs"),
        ] {
            create_private_dir(&d)?;
        }
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| Error::io("creating directory", &config.state_dir, e))?;
        std::fs::set_permissions(&config.state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("setting permissions of", &config.state_dir, e))?;
        tracing::info!(
            runtime = %host.runtime_version,
            cgroups = %host.cgroup_layout,
            idmap = host.runtime_supports_idmap,
            "local OCI backend ready"
        );
        let runc = Runc {
            binary: host.runtime_path.clone(),
            root: config.state_dir.clone(),
        };
        let net_tools = match &config.network {
            Some(_) => Some(NetTools::find()?),
            None => None,
        };
        Ok(Runtime {
            config,
            host,
            runc,
            net_tools,
            net_lock: Mutex::new(()),
            exec_counter: AtomicU64::new(0),
        })
    }

    /// What the host checks found.
    pub fn host(&self) -> &HostReport {
        &self.host
    }

    /// The configuration in use.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    fn image_dir(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !name.starts_with('.');
        if !ok {
            return Err(Error::Invalid {
                what: "image name",
                value: name.to_owned(),
                reason: "must be letters, digits, '-', '_' or '.', not starting with '.'",
            });
        }
        Ok(self.config.data_dir.join("images").join(name))
    }

    /// Copies the root filesystem at `source` into the runtime as image
    /// `name`, owned by `id_map` (see [`crate::rootfs`]). Returns the
    /// existing image if `name` was imported before.
    pub fn import_image(&self, name: &str, source: &Path, id_map: IdMap) -> Result<PreparedImage> {
        let _span =
            tracing::info_span!("image.import", image = name, base = id_map.host_base).entered();
        let img = rootfs::import(source, &self.image_dir(name)?, id_map)?;
        if img.id_map != id_map {
            return Err(Error::ImageMapping {
                image: img.rootfs,
                prepared: img.id_map.host_base,
                requested: id_map.host_base,
            });
        }
        Ok(img)
    }

    /// Opens an image imported earlier.
    pub fn image(&self, name: &str) -> Result<PreparedImage> {
        rootfs::open(&self.image_dir(name)?)
    }

    /// Host path of the home volume for `key` (whether or not it exists).
    pub fn home_path(&self, key: &HomeKey) -> PathBuf {
        self.config.data_dir.join("homes").join(key.file_name())
    }

    fn env_dir(&self, id: &EnvironmentId) -> PathBuf {
        self.config.data_dir.join("envs").join(id.as_str())
    }

    fn cgroups_path(&self, id: &EnvironmentId) -> PathBuf {
        PathBuf::from(format!("/{}/{}", self.config.cgroup_parent, id))
    }

    /// Host directory of the environment's cgroup for `controller` (v1 and
    /// hybrid hosts) or its unified cgroup (v2 hosts; `controller` ignored).
    pub fn cgroup_dir(&self, id: &EnvironmentId, controller: &str) -> PathBuf {
        let base = Path::new("/sys/fs/cgroup");
        let rel = format!("{}/{}", self.config.cgroup_parent, id);
        match self.host.cgroup_layout {
            CgroupLayout::V2 => base.join(rel),
            CgroupLayout::V1 | CgroupLayout::Hybrid => base.join(controller).join(rel),
        }
    }

    /// Current status of environment `id`.
    pub fn status(&self, id: &EnvironmentId) -> Result<EnvironmentStatus> {
        Ok(match self.runc.state(id.as_str())? {
            None => EnvironmentStatus::Stopped,
            Some(s) => match s.status.as_str() {
                "created" => EnvironmentStatus::Created,
                "running" => EnvironmentStatus::Running,
                "paused" => EnvironmentStatus::Paused,
                _ => EnvironmentStatus::Exited,
            },
        })
    }

    /// Ids of all environments that have a container.
    pub fn list(&self) -> Result<Vec<EnvironmentId>> {
        Ok(self
            .runc
            .list()?
            .into_iter()
            .filter_map(|c| EnvironmentId::new(c.id).ok())
            .collect())
    }

    /// Creates the environment: mounts its root overlay and home volume,
    /// writes the OCI bundle and runs `runc create`. The init process is
    /// not running until [`Runtime::start`].
    ///
    /// Fails with [`Error::InvalidTransition`] if a container with this id
    /// already exists. Leftovers of an earlier crash (mounts, an old upper
    /// layer) are cleaned first; on failure everything set up is undone.
    pub fn create(&self, spec: &EnvironmentSpec) -> Result<()> {
        let id = &spec.id;
        let _span = tracing::info_span!("environment.create", env = %id).entered();
        spec::validate_hostname(&spec.hostname)?;
        spec.id_map.validate()?;
        if spec.image.id_map != spec.id_map {
            return Err(Error::ImageMapping {
                image: spec.image.rootfs.clone(),
                prepared: spec.image.id_map.host_base,
                requested: spec.id_map.host_base,
            });
        }
        if spec.init.is_empty() {
            return Err(Error::Invalid {
                what: "init command",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        rootdisk::validate(spec.limits.root_bytes)?;
        let status = self.status(id)?;
        if status != EnvironmentStatus::Stopped {
            return Err(Error::InvalidTransition {
                id: id.to_string(),
                operation: "create",
                state: status.to_string(),
            });
        }
        self.teardown(id)?;
        self.check_free_space(spec.limits.root_bytes)?;
        let result = self.create_inner(spec);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "create failed, cleaning up");
            let _ = self.runc.delete(id.as_str());
            if let Err(e2) = self.teardown(id) {
                tracing::error!(error = %e2, "cleanup after failed create also failed");
            }
        }
        result
    }

    fn create_inner(&self, spec: &EnvironmentSpec) -> Result<()> {
        let id = &spec.id;
        let dir = self.env_dir(id);
        let bundle = dir.join("bundle");
        create_private_dir(&dir)?;
        create_private_dir(&bundle)?;
        // The upper layer goes on the environment's own size-limited file
        // system, never on the data directory's (see `rootdisk`). Making and
        // mounting it is a few external commands and kernel work that does
        // not depend on the home, so it runs beside the home's.
        let root_image = dir.join("root.ext4");
        let root_disk = dir.join("root");
        let span = tracing::Span::current();
        let (root, home_source) = std::thread::scope(|s| {
            let root = s.spawn(|| {
                let _span = span.enter();
                rootdisk::create(
                    &root_image,
                    spec.limits.root_bytes,
                    &self.config.data_dir.join("templates"),
                    &self.host.mkfs_ext4,
                )?;
                rootdisk::mount(&self.host.mount, &root_image, &root_disk)
            });
            let home = self.mount_home(spec, &dir.join("home"));
            let root = root.join().unwrap_or_else(|_| {
                Err(Error::Invalid {
                    what: "root disk",
                    value: root_image.display().to_string(),
                    reason: "its preparation panicked",
                })
            });
            (root, home)
        });
        // Both are finished here; on an error `create` unmounts whichever
        // succeeded.
        root?;
        let home_source = home_source?;
        rootfs::mount_overlay(
            &OverlayPaths {
                lower: spec.image.rootfs.clone(),
                upper: root_disk.join("upper"),
                work: root_disk.join("work"),
                target: bundle.join("rootfs"),
            },
            spec.id_map,
        )?;
        // The address is needed for /etc/hosts and resolv.conf before the
        // bundle is written; the link itself comes after `runc create`.
        let lease = match &self.config.network {
            Some(cfg) => Some(self.lease(id, cfg)?),
            None => None,
        };
        // Name files of this environment, bind-mounted read-only over the
        // image's (before the caller's binds, which may override them).
        let mut binds = Vec::with_capacity(spec.ro_binds.len() + 2);
        let hosts = dir.join("hosts");
        write_public_file(
            &hosts,
            &network::hosts_file(&spec.hostname, lease.as_ref().map(|l| l.env_ip)),
        )?;
        binds.push((hosts, PathBuf::from("/etc/hosts")));
        if let Some(lease) = &lease {
            let resolv = dir.join("resolv.conf");
            write_public_file(&resolv, &lease.resolv_conf())?;
            binds.push((resolv, PathBuf::from("/etc/resolv.conf")));
        }
        binds.extend(spec.ro_binds.iter().cloned());
        let oci = spec::build(&SpecInput {
            hostname: &spec.hostname,
            id_map: spec.id_map,
            limits: spec.limits,
            cgroups_path: self.cgroups_path(id),
            args: &spec.init,
            home_source: home_source.as_deref(),
            extra_ro_binds: &binds,
        })?;
        oci.save(bundle.join("config.json"))?;
        self.runc
            .create(id.as_str(), &bundle, &dir.join("runc.log"))?;
        if let (Some(lease), Some(tools)) = (&lease, &self.net_tools) {
            // The namespace exists once `runc create` returns and the init
            // process waits for `start`: connect it now, so the environment
            // never runs without its network and filters.
            let pid = match self.runc.state(id.as_str())? {
                Some(s) if s.pid > 0 => s.pid,
                _ => {
                    return Err(Error::InvalidTransition {
                        id: id.to_string(),
                        operation: "connect network of",
                        state: "gone".into(),
                    })
                }
            };
            network::setup(tools, lease, pid)?;
        }
        Ok(())
    }

    /// Refuses a start that would leave the data directory's file system
    /// below the floor once the new root disk is full.
    fn check_free_space(&self, root_bytes: u64) -> Result<()> {
        let data = &self.config.data_dir;
        let st = nix::sys::statvfs::statvfs(data.as_path())
            .map_err(|e| Error::sys("checking free space of", data, e))?;
        // `fsblkcnt_t` and `c_ulong` are u64 here, not on every target.
        #[allow(clippy::useless_conversion)]
        let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
        let needed = root_bytes.saturating_add(self.config.min_free_bytes);
        if free < needed {
            return Err(Error::LowDiskSpace {
                path: data.clone(),
                free_mib: free >> 20,
                needed_mib: needed >> 20,
                floor_mib: self.config.min_free_bytes >> 20,
            });
        }
        Ok(())
    }

    /// Creates (on first use) and mounts the home volume of `spec` at
    /// `target`; `None` for an environment without one.
    fn mount_home(&self, spec: &EnvironmentSpec, target: &Path) -> Result<Option<PathBuf>> {
        let Some(key) = &spec.home else {
            return Ok(None);
        };
        let image = self.home_path(key);
        let owner = spec.id_map.to_host(USER_ID).ok_or_else(|| Error::Invalid {
            what: "id map",
            value: format!("{:?}", spec.id_map),
            reason: "does not contain uid 1000",
        })?;
        if home::ensure(&image, self.config.home_bytes, &self.host.mkfs_ext4, owner)? {
            tracing::info!(volume = %image.display(), "created home volume");
        }
        home::mount(&self.host.mount, &self.host.losetup, &image, target)?;
        Ok(Some(target.to_path_buf()))
    }

    /// Allocates and records the environment's /30.
    fn lease(&self, id: &EnvironmentId, cfg: &NetworkConfig) -> Result<network::Lease> {
        let _guard = self.net_lock.lock().unwrap_or_else(|p| p.into_inner());
        let envs = self.envs_dir();
        let mut used = BTreeSet::new();
        if let Ok(rd) = std::fs::read_dir(&envs) {
            for e in rd.flatten() {
                if let Ok(Some(l)) = network::read_lease(&e.path()) {
                    used.insert(l.slot);
                }
            }
        }
        let lease = network::allocate(cfg, &used, &self.config.cgroup_parent, id.as_str())?;
        network::write_lease(&self.env_dir(id), &lease)?;
        Ok(lease)
    }

    /// Starts the init process of a created environment. Starting a running
    /// environment is a no-op.
    pub fn start(&self, id: &EnvironmentId) -> Result<()> {
        let _span = tracing::info_span!("environment.start", env = %id).entered();
        match self.status(id)? {
            EnvironmentStatus::Created => self.runc.start(id.as_str()),
            EnvironmentStatus::Running => Ok(()),
            EnvironmentStatus::Stopped => Err(Error::NotFound { id: id.to_string() }),
            s => Err(Error::InvalidTransition {
                id: id.to_string(),
                operation: "start",
                state: s.to_string(),
            }),
        }
    }

    /// Stops the environment: SIGTERM, then after `stop_timeout` SIGKILL to
    /// every process; removes the container and its cgroups, unmounts the
    /// home volume, the root overlay and the root disk, and deletes the root
    /// disk with the upper layer on it.
    /// Stopping a stopped environment is a no-op.
    pub fn stop(&self, id: &EnvironmentId) -> Result<()> {
        let _span = tracing::info_span!("environment.stop", env = %id).entered();
        if let Some(state) = self.runc.state(id.as_str())? {
            if state.status == "running" {
                self.runc.kill(id.as_str(), "TERM")?;
                let deadline = Instant::now() + self.config.stop_timeout;
                while Instant::now() < deadline {
                    match self.runc.state(id.as_str())? {
                        Some(s) if s.status == "running" => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => break,
                    }
                }
            }
            self.runc.delete(id.as_str())?;
        }
        self.teardown(id)
    }

    /// Stops the environment and, if `home` is given, deletes its home
    /// volume permanently.
    pub fn delete(&self, id: &EnvironmentId, home: Option<&HomeKey>) -> Result<()> {
        let _span = tracing::info_span!("environment.delete", env = %id).entered();
        self.stop(id)?;
        if let Some(key) = home {
            self.delete_home(key)?;
        }
        Ok(())
    }

    /// Deletes a home volume. Returns whether a file was removed; fails with
    /// [`Error::HomeInUse`] while an environment has it mounted.
    pub fn delete_home(&self, key: &HomeKey) -> Result<bool> {
        let path = self.home_path(key);
        let _span = tracing::info_span!("home.delete", volume = %path.display()).entered();
        home::delete(&self.host.losetup, &path)
    }

    /// Removes the host-side state of a container-less environment: unmounts
    /// everything under its directory, then deletes the directory.
    pub(crate) fn teardown(&self, id: &EnvironmentId) -> Result<()> {
        let dir = self.env_dir(id);
        if let Some(lease) = network::read_lease(&dir)? {
            let tools = match &self.net_tools {
                Some(t) => t.clone(),
                None => NetTools::find()?,
            };
            network::teardown(&tools, &lease)?;
        }
        for m in mounts::under(&dir)? {
            tracing::debug!(target = %m.target.display(), fstype = %m.fstype, "unmounting");
            mounts::unmount_all(&m.target)?;
        }
        // Never delete through a mount: that would erase the home volume's
        // or the image's files.
        let left = mounts::under(&dir)?;
        if let Some(m) = left.first() {
            return Err(Error::Sys {
                action: "still mounted after unmount",
                path: m.target.clone(),
                source: nix::errno::Errno::EBUSY,
            });
        }
        // Unmounting released the root disk's auto-clearing loop device; one
        // attached but never mounted (a crash inside `mount -o loop`) would
        // keep the deleted image's blocks, so detach it. Best effort: the
        // kernel may clear a device between the listing and `-d`, and
        // `reconcile` sweeps whatever is left.
        let root_image = dir.join("root.ext4");
        if root_image.exists() {
            for dev in home::attached_loops(&self.host.losetup, &root_image)? {
                tracing::warn!(device = %dev, "detaching unmounted loop device of the root disk");
                if let Err(e) =
                    cmd::run(&mut cmd::command(&self.host.losetup, ["-d", dev.as_str()]))
                {
                    tracing::warn!(device = %dev, error = %e, "detaching failed");
                }
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing", &dir, e)),
        }
    }

    /// Runs `args` inside a running environment and returns its output.
    /// Meant for tests and maintenance; interactive shells go through the
    /// in-environment agent.
    pub fn exec(
        &self,
        id: &EnvironmentId,
        user: ExecUser,
        args: &[&str],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let _span = tracing::debug_span!("environment.exec", env = %id).entered();
        let status = self.status(id)?;
        if status != EnvironmentStatus::Running {
            return Err(Error::InvalidTransition {
                id: id.to_string(),
                operation: "exec in",
                state: status.to_string(),
            });
        }
        let (uid, cwd) = match user {
            ExecUser::Root => (0, "/"),
            ExecUser::CloudshellUser => (USER_ID, USER_HOME),
        };
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let process = spec::process(&args, uid, cwd, &[])?;
        let n = self.exec_counter.fetch_add(1, Ordering::Relaxed);
        let path = self.env_dir(id).join(format!("exec-{n}.json"));
        let json = serde_json::to_vec(&process).map_err(|e| Error::Parse {
            what: "exec process",
            detail: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(|e| Error::io("writing", &path, e))?;
        let out = self.runc.exec(id.as_str(), &path, timeout);
        let _ = std::fs::remove_file(&path);
        out
    }

    pub(crate) fn runc(&self) -> &Runc {
        &self.runc
    }

    pub(crate) fn net_tools(&self) -> Option<&NetTools> {
        self.net_tools.as_ref()
    }

    pub(crate) fn envs_dir(&self) -> PathBuf {
        self.config.data_dir.join("envs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_ids() {
        for ok in ["a", "env-1", "0abc", &"x".repeat(64)] {
            assert!(EnvironmentId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(EnvironmentId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn runtime_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Runtime>();
    }
}
