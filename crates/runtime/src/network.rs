//! Per-environment networking: a veth pair, NAT, and filtering.
//!
//! Each environment's network namespace (created by the OCI runtime, owned by
//! the environment's user namespace) gets one end of a veth pair as `eth0`
//! with a private /30 out of a configured pool; the other end stays on the
//! host. A point-to-point link per environment, rather than a shared bridge,
//! means environments never share a layer-2 segment: no ARP or neighbour
//! spoofing between tenants.
//!
//! Host filtering (iptables, every rule tagged with a comment naming the
//! runtime and environment so that cleanup finds exactly its own rules):
//!
//! - egress is forwarded and masqueraded to the host's addresses;
//! - link-local destinations (169.254.0.0/16: cloud metadata services, the
//!   host's link-local addresses) are dropped;
//! - other environments (the whole pool) are dropped;
//! - nothing may connect in: forwarded traffic towards the environment is
//!   accepted only for connections it opened;
//! - the environment cannot reach the host itself (INPUT from its veth is
//!   dropped).
//!
//! IPv6 is disabled inside the namespace and on the host end so none of this
//! can be bypassed over link-local IPv6. Root inside has no `CAP_NET_ADMIN`,
//! so it cannot change addresses or routes.
//!
//! Enabling the first network turns on `net.ipv4.ip_forward` on the host.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::error::{Error, Result};

/// Address pool of environment networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkConfig {
    /// First address of the pool.
    pub pool: Ipv4Addr,
    /// Prefix length of the pool (8–28); each environment takes a /30.
    pub prefix_len: u8,
}

impl Default for NetworkConfig {
    /// `10.213.0.0/16`: 16384 environments.
    fn default() -> Self {
        NetworkConfig {
            pool: Ipv4Addr::new(10, 213, 0, 0),
            prefix_len: 16,
        }
    }
}

impl NetworkConfig {
    fn validate(&self) -> Result<()> {
        let base = u32::from(self.pool);
        let ok = (8..=28).contains(&self.prefix_len) && base & (u32::MAX >> self.prefix_len) == 0;
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid {
                what: "network pool",
                value: self.cidr(),
                reason: "prefix must be 8-28 and the address aligned to it",
            })
        }
    }

    fn slots(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix_len) - 2)
    }

    /// The pool in CIDR notation.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.pool, self.prefix_len)
    }
}

/// One environment's share of the pool, stored in its directory so that
/// teardown and reconcile can undo exactly what was set up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Lease {
    pub slot: u32,
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub env_ip: Ipv4Addr,
    pub pool: String,
    pub tag: String,
}

/// Programs used for networking.
#[derive(Debug, Clone)]
pub(crate) struct NetTools {
    pub ip: PathBuf,
    pub iptables: PathBuf,
    pub nsenter: PathBuf,
}

impl NetTools {
    pub fn find() -> Result<Self> {
        Ok(NetTools {
            ip: cmd::require_program("ip", "iproute2")?,
            iptables: cmd::require_program("iptables", "iptables")?,
            nsenter: cmd::require_program("nsenter", "util-linux")?,
        })
    }
}

/// File name of a lease inside an environment directory.
pub(crate) const LEASE_FILE: &str = "network.json";

/// Comment tag of every rule of environment `id` of runtime `instance`.
pub(crate) fn tag(instance: &str, id: &str) -> String {
    format!("seashell:{instance}:{id}")
}

/// Picks the lowest free /30 in the pool, given the leases in use.
pub(crate) fn allocate(
    cfg: &NetworkConfig,
    used: &BTreeSet<u32>,
    instance: &str,
    id: &str,
) -> Result<Lease> {
    cfg.validate()?;
    let slot = (0..cfg.slots())
        .find(|s| !used.contains(s))
        .ok_or_else(|| Error::Invalid {
            what: "network pool",
            value: cfg.cidr(),
            reason: "no free /30 left",
        })?;
    let net = u32::from(cfg.pool) + slot * 4;
    // Interface names are limited to 15 bytes; a hash of the runtime and
    // environment keeps them unique on the host.
    let digest = Sha256::digest(format!("{instance}/{id}").as_bytes());
    let mut host_if = String::from("ssh");
    for b in digest.iter().take(6) {
        host_if.push_str(&format!("{b:02x}"));
    }
    Ok(Lease {
        slot,
        host_if,
        host_ip: Ipv4Addr::from(net + 1),
        env_ip: Ipv4Addr::from(net + 2),
        pool: cfg.cidr(),
        tag: tag(instance, id),
    })
}

/// Reads the lease of an environment directory, if it has one.
pub(crate) fn read_lease(env_dir: &Path) -> Result<Option<Lease>> {
    let p = env_dir.join(LEASE_FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Parse {
                what: "network lease",
                detail: format!("{}: {e}", p.display()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", &p, e)),
    }
}

/// Writes the lease into the environment directory.
pub(crate) fn write_lease(env_dir: &Path, lease: &Lease) -> Result<()> {
    let p = env_dir.join(LEASE_FILE);
    let b = serde_json::to_vec(lease).map_err(|e| Error::Parse {
        what: "network lease",
        detail: e.to_string(),
    })?;
    std::fs::write(&p, b).map_err(|e| Error::io("writing", &p, e))
}

/// `(table, chain, rule)` triples of an environment, in evaluation order.
fn rules(lease: &Lease) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let hif = lease.host_if.as_str();
    let comment = ["-m", "comment", "--comment", lease.tag.as_str()];
    let with = |mut v: Vec<String>, target: &[&str]| {
        v.extend(s(&comment));
        v.extend(s(target));
        v
    };
    let env_ip = format!("{}/32", lease.env_ip);
    vec![
        ("filter", "INPUT", with(s(&["-i", hif]), &["-j", "DROP"])),
        (
            "filter",
            "FORWARD",
            with(s(&["-i", hif, "-d", "169.254.0.0/16"]), &["-j", "DROP"]),
        ),
        (
            "filter",
            "FORWARD",
            with(s(&["-i", hif, "-d", lease.pool.as_str()]), &["-j", "DROP"]),
        ),
        (
            "filter",
            "FORWARD",
            with(s(&["-i", hif]), &["-j", "ACCEPT"]),
        ),
        (
            "filter",
            "FORWARD",
            with(
                s(&[
                    "-o",
                    hif,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                ]),
                &["-j", "ACCEPT"],
            ),
        ),
        ("filter", "FORWARD", with(s(&["-o", hif]), &["-j", "DROP"])),
        (
            "nat",
            "POSTROUTING",
            with(s(&["-s", env_ip.as_str()]), &["-j", "MASQUERADE"]),
        ),
    ]
}

fn iptables(
    tools: &NetTools,
    table: &str,
    op: &str,
    chain: &str,
    rule: &[String],
    pos: Option<u32>,
) -> Result<()> {
    let mut c = cmd::command(&tools.iptables, ["-w", "-t", table, op, chain]);
    if let Some(p) = pos {
        c.arg(p.to_string());
    }
    c.args(rule);
    cmd::run(&mut c).map(drop)
}

/// Connects the namespace of process `pid` and installs the filter rules.
pub(crate) fn setup(tools: &NetTools, lease: &Lease, pid: i64) -> Result<()> {
    enable_forwarding()?;
    let pid_s = pid.to_string();
    let host_cidr = format!("{}/30", lease.host_ip);
    let env_cidr = format!("{}/30", lease.env_ip);
    let host_ip = lease.host_ip.to_string();
    let netns = format!("--net=/proc/{pid}/ns/net");

    // Rules first: the link must never be up without its filter.
    for (table, chain, rule) in rules(lease).into_iter().rev() {
        iptables(tools, table, "-I", chain, &rule, Some(1))?;
    }
    cmd::run(&mut cmd::command(
        &tools.ip,
        [
            "link",
            "add",
            lease.host_if.as_str(),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            pid_s.as_str(),
        ],
    ))?;
    let v6 = PathBuf::from(format!(
        "/proc/sys/net/ipv6/conf/{}/disable_ipv6",
        lease.host_if
    ));
    if v6.exists() {
        std::fs::write(&v6, "1").map_err(|e| Error::io("writing", &v6, e))?;
    }
    cmd::run(&mut cmd::command(
        &tools.ip,
        [
            "addr",
            "add",
            host_cidr.as_str(),
            "dev",
            lease.host_if.as_str(),
        ],
    ))?;
    cmd::run(&mut cmd::command(
        &tools.ip,
        ["link", "set", lease.host_if.as_str(), "up"],
    ))?;
    let inside = |args: &[&str]| {
        let mut c = cmd::command(&tools.nsenter, [netns.as_str(), "--"]);
        c.arg(&tools.ip).args(args);
        cmd::run(&mut c).map(drop)
    };
    inside(&["addr", "add", env_cidr.as_str(), "dev", "eth0"])?;
    inside(&["link", "set", "eth0", "up"])?;
    inside(&["link", "set", "lo", "up"])?;
    inside(&["route", "add", "default", "via", host_ip.as_str()])?;
    Ok(())
}

/// Removes the host end and the rules. Missing pieces are fine.
pub(crate) fn teardown(tools: &NetTools, lease: &Lease) -> Result<()> {
    if Path::new("/sys/class/net").join(&lease.host_if).exists() {
        cmd::run(&mut cmd::command(
            &tools.ip,
            ["link", "del", lease.host_if.as_str()],
        ))?;
    }
    for (table, chain, rule) in rules(lease) {
        // Delete every copy (a crash during setup may have left duplicates).
        while iptables(tools, table, "-C", chain, &rule, None).is_ok() {
            iptables(tools, table, "-D", chain, &rule, None)?;
        }
    }
    Ok(())
}

/// Deletes rules tagged for runtime `instance` whose environment is not in
/// `alive`. Returns the tags removed.
pub(crate) fn sweep(
    tools: &NetTools,
    instance: &str,
    alive: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let prefix = format!("seashell:{instance}:");
    let mut removed = Vec::new();
    for table in ["filter", "nat"] {
        let out = cmd::run_stdout(&mut cmd::command(
            &tools.iptables,
            ["-w", "-t", table, "-S"],
        ))?;
        for line in out.lines() {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .collect();
            let Some(tag) = words.iter().find(|w| w.starts_with(&prefix)) else {
                continue;
            };
            let id = &tag[prefix.len()..];
            if alive.contains(id)
                || words.first().map(String::as_str) != Some("-A")
                || words.len() < 2
            {
                continue;
            }
            let mut c = cmd::command(&tools.iptables, ["-w", "-t", table, "-D"]);
            c.args(&words[1..]);
            cmd::run(&mut c)?;
            removed.push(tag.clone());
        }
    }
    Ok(removed)
}

fn enable_forwarding() -> Result<()> {
    let p = Path::new("/proc/sys/net/ipv4/ip_forward");
    let cur = std::fs::read_to_string(p).map_err(|e| Error::io("reading", p, e))?;
    if cur.trim() != "1" {
        tracing::info!("enabling net.ipv4.ip_forward for environment networks");
        std::fs::write(p, "1").map_err(|e| Error::io("writing", p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation() {
        let cfg = NetworkConfig::default();
        let mut used = BTreeSet::new();
        let a = allocate(&cfg, &used, "seashell", "env-a").expect("lease");
        assert_eq!(
            (a.host_ip, a.env_ip),
            (Ipv4Addr::new(10, 213, 0, 1), Ipv4Addr::new(10, 213, 0, 2))
        );
        assert!(a.host_if.len() <= 15);
        used.insert(a.slot);
        let b = allocate(&cfg, &used, "seashell", "env-b").expect("lease");
        assert_eq!(b.env_ip, Ipv4Addr::new(10, 213, 0, 6));
        assert_ne!(a.host_if, b.host_if);
        let bad = NetworkConfig {
            pool: Ipv4Addr::new(10, 213, 0, 1),
            prefix_len: 16,
        };
        assert!(allocate(&bad, &used, "s", "x").is_err());
        let tiny = NetworkConfig {
            pool: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 28,
        };
        let full: BTreeSet<u32> = (0..4).collect();
        assert!(allocate(&tiny, &full, "s", "x").is_err());
    }
}
