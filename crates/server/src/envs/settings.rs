//! The `[cloudshell]` section of the configuration: how environments run
//! and the limits of the CloudShell service (DESIGN §4).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Settings of environments and of the CloudShell service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CloudShellSettings {
    /// Run environments. Needs root and the runtime's host tools
    /// (`scripts/install-runtime-deps.sh`); when false, or when the host
    /// cannot run them, the CloudShell API answers that environments are
    /// unavailable and says why.
    pub enabled: bool,
    /// OCI runtime: `runc` (default) or `crun`.
    pub oci_runtime: String,
    /// Name of the image environments run.
    pub image: String,
    /// Root filesystem to import as the image; default
    /// `<data_dir>/images/<image>`, built on first use when `image` is
    /// `default` or `minimal` and `build_image` is on.
    pub image_dir: Option<PathBuf>,
    /// Build the image on first use when it is missing.
    pub build_image: bool,
    /// The static `seashell-agent` binary; default `SEASHELL_AGENT_BIN`,
    /// else `seashell-agent` beside the running executable or in the
    /// static build's target directory.
    pub agent_binary: Option<PathBuf>,
    /// Give environments outbound network access through NAT.
    pub network: bool,
    /// The address pool environment links are taken from (each takes a
    /// /30), in CIDR notation.
    pub network_pool: String,
    /// IPv4 blocks environments cannot reach (CIDR notation), besides
    /// link-local and the pool, which are always dropped. Default: the
    /// private and special-purpose ranges
    /// (`seashell_runtime::network::DEFAULT_BLOCKED`); `[]` lets
    /// environments reach the operator's networks.
    pub blocked_destinations: Vec<String>,
    /// Where environments' files live (images, home volumes, root
    /// layers); default `<data_dir>-runtime` beside the data directory. It
    /// is traversable by the environments' mapped ids (mode 0711), which
    /// the data directory (0700) must not be.
    pub runtime_dir: Option<PathBuf>,
    /// The OCI runtime's state directory; default
    /// `/run/seashell/runc-<hash of the data directory>`.
    pub state_dir: Option<PathBuf>,
    /// Parent cgroup of every environment.
    pub cgroup_parent: String,
    /// Size of each home volume, in MiB (the hard limit).
    pub home_mib: u64,
    /// The free space, in MiB, kept in reserve: no environment is created
    /// or started while the data directory's file system (database, audit
    /// journal) or the runtime directory's (homes, root disks) has less;
    /// the runtime also needs this plus the new root disk free. 0 turns
    /// the server's check off.
    pub min_free_mib: u64,
    /// CPUs per environment.
    pub cpus: f64,
    /// Memory per environment, in MiB.
    pub memory_mib: u64,
    /// Processes per environment.
    pub pids: u64,
    /// Size of each environment's root disk, in MiB: the hard limit on
    /// everything it writes outside the home (`/tmp`, `/var`, packages);
    /// a sparse file, discarded when the environment stops.
    pub root_mib: u64,
    /// Minutes without keyboard input or console heartbeat after which a
    /// session ends (20–30).
    pub idle_timeout_minutes: u64,
    /// Overrides `idle_timeout_minutes` with seconds, outside the 20–30
    /// minute range; for tests and demonstrations.
    pub idle_timeout_seconds: Option<u64>,
    /// Hours after which a session ends whatever it does.
    pub max_session_hours: u64,
    /// Overrides `max_session_hours` with seconds; for tests.
    pub max_session_seconds: Option<u64>,
    /// Seconds an environment without sessions keeps running before it is
    /// suspended.
    pub suspend_after_seconds: u64,
    /// Days a home may go unused before the janitor deletes it.
    pub home_retention_days: u64,
    /// Concurrent shells per account per region.
    pub max_shells_per_region: u64,
    /// VPC environments per principal.
    pub max_vpc_environments: u64,
    /// Environments running or starting on this server at once, in all
    /// accounts: beyond it creates and starts answer that the host is full
    /// (503) until one stops. 0 turns the cap off.
    pub max_running_environments: u64,
    /// Environment running hours per account per region per month.
    pub monthly_hours: u64,
    /// How long a data-channel token may wait to be used, in seconds.
    pub stream_token_seconds: u64,
    /// How often the background duties run (timeouts, suspension,
    /// credentials, usage, retention), in seconds.
    pub duty_interval_seconds: u64,
}

impl Default for CloudShellSettings {
    fn default() -> Self {
        CloudShellSettings {
            enabled: true,
            oci_runtime: "runc".into(),
            image: "default".into(),
            image_dir: None,
            build_image: true,
            agent_binary: None,
            network: true,
            network_pool: "10.213.0.0/16".into(),
            blocked_destinations: seashell_runtime::network::DEFAULT_BLOCKED
                .iter()
                .map(|b| (*b).to_owned())
                .collect(),
            runtime_dir: None,
            state_dir: None,
            cgroup_parent: "seashell".into(),
            home_mib: 1024,
            cpus: 1.0,
            memory_mib: 2048,
            pids: 1024,
            root_mib: 2048,
            min_free_mib: 1024,
            idle_timeout_minutes: 20,
            idle_timeout_seconds: None,
            max_session_hours: 12,
            max_session_seconds: None,
            suspend_after_seconds: 300,
            home_retention_days: 120,
            max_shells_per_region: 10,
            max_vpc_environments: 2,
            // Measured: 1,000 idle environments ran on a 2-core, 24 GiB
            // host with 21 GB of memory still free (docs/benchmarks.md).
            max_running_environments: 1000,
            monthly_hours: 1000,
            stream_token_seconds: 60,
            duty_interval_seconds: 10,
        }
    }
}

impl CloudShellSettings {
    /// The runtime directory in force for the data directory `data_dir`.
    pub fn runtime_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.runtime_dir.clone().unwrap_or_else(|| {
            let mut name = data_dir
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            name.push("-runtime");
            data_dir.with_file_name(name)
        })
    }

    /// Checks the values; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(20..=30).contains(&self.idle_timeout_minutes) {
            return Err(format!(
                "cloudshell.idle_timeout_minutes must be between 20 and 30, not {}",
                self.idle_timeout_minutes
            ));
        }
        if self.image.is_empty()
            || !self
                .image
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "cloudshell.image {:?} must be lower-case letters, digits and hyphens",
                self.image
            ));
        }
        let positive = [
            ("home_mib", self.home_mib),
            ("memory_mib", self.memory_mib),
            ("pids", self.pids),
            ("max_session_hours", self.max_session_hours),
            ("stream_token_seconds", self.stream_token_seconds),
            ("duty_interval_seconds", self.duty_interval_seconds),
            ("home_retention_days", self.home_retention_days),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("cloudshell.{name} must be more than 0"));
            }
        }
        if !(self.cpus > 0.0 && self.cpus <= 64.0) {
            return Err(format!(
                "cloudshell.cpus must be more than 0 and at most 64, not {}",
                self.cpus
            ));
        }
        self.pool()?;
        if self.home_mib < 16 {
            return Err("cloudshell.home_mib must be at least 16".into());
        }
        if self.root_mib < 16 {
            return Err("cloudshell.root_mib must be at least 16".into());
        }
        Ok(())
    }

    /// The network pool as (first address, prefix length).
    pub fn pool(&self) -> Result<(std::net::Ipv4Addr, u8), String> {
        let bad = || {
            format!(
                "cloudshell.network_pool {:?} is not an IPv4 CIDR block like 10.213.0.0/16",
                self.network_pool
            )
        };
        let (addr, len) = self.network_pool.split_once('/').ok_or_else(bad)?;
        let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if !(8..=28).contains(&len) || u32::from(addr) & (u32::MAX >> len) != 0 {
            return Err(bad());
        }
        Ok((addr, len))
    }

    /// The network pool as a block, if it is valid: the environments'
    /// addresses, which no address list may trust.
    pub fn pool_block(&self) -> Option<ipnet::IpNet> {
        let (addr, len) = self.pool().ok()?;
        ipnet::Ipv4Net::new(addr, len).ok().map(ipnet::IpNet::V4)
    }

    /// The idle timeout in force.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(
            self.idle_timeout_seconds
                .unwrap_or(self.idle_timeout_minutes * 60),
        )
    }

    /// The maximum session duration in force.
    pub fn max_session(&self) -> Duration {
        Duration::from_secs(
            self.max_session_seconds
                .unwrap_or(self.max_session_hours * 3600),
        )
    }

    /// The home retention period.
    pub fn home_retention(&self) -> Duration {
        Duration::from_secs(self.home_retention_days * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_cloudshell_guide() {
        let s = CloudShellSettings::default();
        s.validate().expect("defaults are valid");
        assert_eq!(s.idle_timeout(), Duration::from_secs(20 * 60));
        assert_eq!(s.max_session(), Duration::from_secs(12 * 3600));
        assert_eq!(s.home_mib, 1024);
        assert_eq!(s.root_mib, 2048);
        assert_eq!(s.max_shells_per_region, 10);
        assert_eq!(s.max_vpc_environments, 2);
        assert_eq!(s.home_retention(), Duration::from_secs(120 * 86_400));
    }

    #[test]
    fn out_of_range_values_are_named() {
        let e = CloudShellSettings {
            idle_timeout_minutes: 45,
            ..CloudShellSettings::default()
        }
        .validate()
        .expect_err("45 minutes");
        assert!(e.contains("idle_timeout_minutes"), "{e}");
        let e = CloudShellSettings {
            image: "../etc".into(),
            ..CloudShellSettings::default()
        }
        .validate()
        .expect_err("bad image name");
        assert!(e.contains("cloudshell.image"), "{e}");
        let e = CloudShellSettings {
            pids: 0,
            ..CloudShellSettings::default()
        }
        .validate()
        .expect_err("no pids");
        assert!(e.contains("pids"), "{e}");
        let e = CloudShellSettings {
            root_mib: 8,
            ..CloudShellSettings::default()
        }
        .validate()
        .expect_err("tiny root disk");
        assert!(e.contains("cloudshell.root_mib"), "{e}");
    }
}
