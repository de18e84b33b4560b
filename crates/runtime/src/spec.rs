//! Generation of the OCI runtime configuration (`config.json`) of an
//! environment, with the `oci-spec` crate.
//!
//! Each choice below is an isolation decision; the comments say why.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::{Error, Result};
use crate::seccomp;

/// Uid and gid of `cloudshell-user` inside every environment.
pub const USER_ID: u32 = 1000;
/// Login name of the environment user.
pub const USER_NAME: &str = "cloudshell-user";
/// Home directory of the environment user, inside the environment.
pub const USER_HOME: &str = "/home/cloudshell-user";

/// How container ids map to host ids. Container ids `0..size` become host
/// ids `host_base..host_base + size`, for users and groups alike.
///
/// Root inside an environment is then an unprivileged, otherwise unused host
/// uid: whatever escapes the namespaces owns nothing on the host. Every
/// environment may get its own base (strongest separation: environments
/// cannot signal or read each other's files even after an escape) or share
/// one (an image only needs to be prepared once per base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// First host id of the range; must be at least 65536 so the range never
    /// contains host system users.
    pub host_base: u32,
    /// Number of ids mapped; 65536 covers every id a Debian system uses
    /// (including `nobody` = 65534).
    pub size: u32,
}

impl Default for IdMap {
    fn default() -> Self {
        IdMap {
            host_base: 100_000,
            size: 65_536,
        }
    }
}

impl IdMap {
    /// Host uid/gid for container id `id`, if it is inside the range.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        (id < self.size)
            .then(|| self.host_base.checked_add(id))
            .flatten()
    }

    /// Checks the range is sane for an environment.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason| {
            Err(Error::Invalid {
                what: "id map",
                value: format!("{}+{}", self.host_base, self.size),
                reason,
            })
        };
        if self.host_base < 65_536 {
            return bad("host base must be at least 65536, above host system ids");
        }
        if self.size < 65_536 {
            return bad("size must be at least 65536 (nobody is 65534)");
        }
        if self.host_base.checked_add(self.size).is_none() {
            return bad("range overflows u32");
        }
        Ok(())
    }

    fn mapping(&self) -> Result<Vec<LinuxIdMapping>> {
        Ok(vec![LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(self.host_base)
            .size(self.size)
            .build()?])
    }
}

/// Resource limits of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU time per period, in microseconds (`quota / period` = vCPUs).
    pub cpu_quota_us: i64,
    /// CPU accounting period in microseconds.
    pub cpu_period_us: u64,
    /// Memory limit in bytes (no swap beyond it).
    pub memory_bytes: i64,
    /// Maximum number of processes and threads.
    pub pids: i64,
    /// Size of the root disk: everything written outside the home (`/tmp`,
    /// `/var`, packages under `/usr`) shares it; a hard limit, see
    /// [`crate::rootdisk`].
    pub root_bytes: u64,
}

impl Default for Limits {
    /// 1 vCPU, 2 GiB of memory, 1024 processes, a 2 GiB root disk.
    fn default() -> Self {
        Limits {
            cpu_quota_us: 100_000,
            cpu_period_us: 100_000,
            memory_bytes: 2 << 30,
            pids: 1024,
            root_bytes: crate::rootdisk::DEFAULT_ROOT_BYTES,
        }
    }
}

/// Capabilities of root inside an environment (and of `sudo`).
///
/// Docker's default set minus `CAP_NET_RAW` (raw sockets allow spoofing on a
/// shared bridge; `ping` uses ICMP datagram sockets instead, enabled by the
/// `ping_group_range` sysctl) and minus `CAP_MKNOD` (device nodes cannot be
/// used in a user namespace anyway). All of these act only on objects owned
/// by the environment's user namespace. `CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`,
/// `CAP_SYS_MODULE`, `CAP_NET_ADMIN` and the rest are never granted.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::Setfcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::AuditWrite,
];

/// Paths replaced by an empty file or directory: they expose host kernel
/// state (memory, keys, timers, firmware) that a tenant has no business
/// reading. Same list as runc's and Docker's defaults.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only: host-wide kernel knobs.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything needed to write one environment's `config.json`.
#[derive(Debug, Clone)]
pub(crate) struct SpecInput<'a> {
    pub hostname: &'a str,
    pub id_map: IdMap,
    pub limits: Limits,
    /// Cgroup path relative to the hierarchy roots, e.g. `/seashell/env-1`.
    pub cgroups_path: PathBuf,
    /// Command of the environment's init process.
    pub args: &'a [String],
    /// Host directory bind-mounted at [`USER_HOME`], if any.
    pub home_source: Option<&'a Path>,
    /// Extra read-only bind mounts (host path, container path).
    pub extra_ro_binds: &'a [(PathBuf, PathBuf)],
}

/// Base environment of every process started in an environment.
pub(crate) fn base_env(user_is_root: bool) -> Vec<String> {
    let home = if user_is_root { "/root" } else { USER_HOME };
    let user = if user_is_root { "root" } else { USER_NAME };
    vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        format!("HOME={home}"),
        format!("USER={user}"),
        format!("LOGNAME={user}"),
        "TERM=xterm-256color".into(),
        "LANG=C.UTF-8".into(),
    ]
}

fn caps() -> oci_spec::runtime::Capabilities {
    CAPABILITIES.iter().copied().collect()
}

/// Process description for a command run as `uid` inside an environment.
///
/// Root gets [`CAPABILITIES`] in all sets; any other user gets them only in
/// the bounding set, so `cloudshell-user` starts with no capabilities and can
/// gain them only through `sudo` (a set-uid program).
pub(crate) fn process(
    args: &[String],
    uid: u32,
    cwd: &str,
    extra_env: &[String],
) -> Result<Process> {
    let is_root = uid == 0;
    let full = caps();
    let none = oci_spec::runtime::Capabilities::new();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(full.clone())
        .permitted(if is_root { full.clone() } else { none.clone() })
        .effective(if is_root { full.clone() } else { none.clone() })
        .inheritable(none.clone())
        .ambient(none)
        .build()?;
    // Open files: generous for editors and language servers, but never above
    // the runtime's own hard limit, which a process inside a user namespace
    // cannot raise.
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard.min(65_536))
        .unwrap_or(1024);
    let mut env = base_env(is_root);
    env.extend(extra_env.iter().cloned());
    Ok(ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(uid)
                .additional_gids(Vec::<u32>::new())
                .build()?,
        )
        .args(args.to_vec())
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        // Set-uid programs must work: `sudo` is how cloudshell-user becomes
        // root inside the environment, and the kernel ignores the set-uid bit
        // when no_new_privileges is set. The privileges gained are bounded by
        // the capability bounding set above and by the user namespace.
        .no_new_privileges(false)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(nofile)
            .soft(nofile)
            .build()?])
        .build()?)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .build()?)
}

/// Builds the complete runtime configuration.
pub(crate) fn build(input: &SpecInput<'_>) -> Result<Spec> {
    input.id_map.validate()?;

    // Every namespace type is new: the environment shares nothing with the
    // host or other environments. The user namespace is what makes root
    // inside unprivileged outside; the cgroup namespace hides the host's
    // cgroup paths; the network namespace starts with loopback only.
    let namespaces = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<std::result::Result<Vec<_>, _>>()?;

    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(input.limits.cpu_quota_us)
                .period(input.limits.cpu_period_us)
                .build()?,
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(input.limits.memory_bytes)
                .build()?,
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(input.limits.pids)
                .build()?,
        )
        .build()?;

    // ICMP "ping" sockets for every group, so `ping` works without
    // CAP_NET_RAW. The sysctl is per network namespace; the kernel accepts
    // only groups mapped in the environment's user namespace.
    let mut sysctl: HashMap<String, String> = [(
        "net.ipv4.ping_group_range".to_owned(),
        format!("0 {}", input.id_map.size - 1),
    )]
    .into_iter()
    .collect();
    if Path::new("/proc/sys/net/ipv6").exists() {
        // IPv6 is off inside: the host filters IPv4 only, and link-local
        // IPv6 would otherwise reach the host end of the veth.
        for key in ["all", "default"] {
            sysctl.insert(format!("net.ipv6.conf.{key}.disable_ipv6"), "1".to_owned());
        }
    }

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .uid_mappings(input.id_map.mapping()?)
        .gid_mappings(input.id_map.mapping()?)
        .resources(resources)
        .cgroups_path(input.cgroups_path.clone())
        .seccomp(seccomp::profile()?)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .sysctl(sysctl)
        // Mounts made inside never propagate back to the host.
        .rootfs_propagation("rprivate")
        .build()?;

    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        // A private /dev with only the standard nodes runc creates (null,
        // zero, full, random, urandom, tty, ptmx); no host devices.
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        // sysfs can be mounted because the environment owns its network
        // namespace; read-only, and /sys/firmware is masked.
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    if let Some(home) = input.home_source {
        // The flags repeat those of the host loop mount (see `home::mount`):
        // inside a user namespace the kernel locks nosuid/nodev/noatime of a
        // bind source, and runc's remount must not try to clear them.
        mounts.push(
            MountBuilder::default()
                .destination(USER_HOME)
                .typ("bind")
                .source(home)
                .options(
                    ["rbind", "nosuid", "nodev", "noatime", "rw"]
                        .map(str::to_owned)
                        .to_vec(),
                )
                .build()?,
        );
    }
    for (src, dst) in input.extra_ro_binds {
        mounts.push(
            MountBuilder::default()
                .destination(dst)
                .typ("bind")
                .source(src)
                .options(vec![
                    "rbind".to_owned(),
                    "nosuid".to_owned(),
                    "nodev".to_owned(),
                    "ro".to_owned(),
                ])
                .build()?,
        );
    }

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()?,
        )
        .hostname(input.hostname)
        .mounts(mounts)
        .process(process(input.args, 0, "/", &[])?)
        .linux(linux)
        .build()?)
}

/// Validates a hostname (RFC 1123 label, at most 63 characters).
pub(crate) fn validate_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 63
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: "hostname",
            value: h.to_owned(),
            reason: "must be 1-63 letters, digits or '-', not starting or ending with '-'",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_all_namespaces_and_limits() {
        let args = vec!["/bin/sh".to_owned()];
        let spec = build(&SpecInput {
            hostname: "env",
            id_map: IdMap::default(),
            limits: Limits::default(),
            cgroups_path: "/seashell/x".into(),
            args: &args,
            home_source: Some(Path::new("/data/home")),
            extra_ro_binds: &[],
        })
        .expect("spec builds");
        let linux = spec.linux().as_ref().expect("linux section");
        assert_eq!(linux.namespaces().as_ref().map(Vec::len), Some(7));
        let map = &linux.uid_mappings().as_ref().expect("uid map")[0];
        assert_eq!(
            (map.container_id(), map.host_id(), map.size()),
            (0, 100_000, 65_536)
        );
        let res = linux.resources().as_ref().expect("resources");
        assert_eq!(res.memory().as_ref().and_then(|m| m.limit()), Some(2 << 30));
        assert_eq!(res.pids().as_ref().map(|p| p.limit()), Some(1024));
        let proc_ = spec.process().as_ref().expect("process");
        assert_eq!(proc_.no_new_privileges(), Some(false));
        let json = serde_json::to_string(&spec).expect("serializes");
        assert!(json.contains("/proc/kcore"));
        assert!(json.contains("/home/cloudshell-user"));
    }

    #[test]
    fn id_map_rules() {
        assert!(IdMap {
            host_base: 1000,
            size: 65_536
        }
        .validate()
        .is_err());
        assert!(IdMap {
            host_base: u32::MAX - 10,
            size: 65_536
        }
        .validate()
        .is_err());
        assert_eq!(IdMap::default().to_host(1000), Some(101_000));
        assert_eq!(IdMap::default().to_host(70_000), None);
        assert!(validate_hostname("bad_host").is_err());
        assert!(validate_hostname("env-1").is_ok());
    }
}
