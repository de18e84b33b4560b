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
//! Name resolution: each environment's `/etc/resolv.conf` (a file in its
//! directory, bind-mounted read-only) names the resolvers of
//! [`NetworkConfig::dns`]. Only UDP and TCP port 53 of exactly those
//! addresses is let through ahead of the drops above, so a resolver in a
//! blocked range (a cloud's link-local DNS, a resolver on the host itself)
//! answers queries and nothing else there is reachable. A loopback resolver
//! of the host (systemd-resolved's `127.0.0.53`, a local dnsmasq) cannot be
//! named inside, where loopback is the environment's own: the environment
//! is given its gateway (the host end of its link) instead, whose port 53 is
//! DNAT-ed to that resolver, with `route_localnet` on the host end so the
//! kernel routes the translated packets to the host's loopback.
//!
//! The Seashell API: with [`NetworkConfig::api`] set, TCP to one fixed
//! address and port inside ([`API_ADDRESS`], port 80 or 443) is DNAT-ed to
//! the server's listen address, also when that is the host's loopback (with
//! `route_localnet` as above). The INPUT and FORWARD accepts match only
//! connections that DNAT made, so no other host port, and the target
//! addressed directly, stays unreachable.
//!
//! IPv6 is disabled inside the namespace and on the host end so none of this
//! can be bypassed over link-local IPv6. Root inside has no `CAP_NET_ADMIN`,
//! so it cannot change addresses or routes.
//!
//! Enabling the first network turns on `net.ipv4.ip_forward` on the host.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::error::{Error, Result};

/// Address pool and services of environment networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// First address of the pool.
    pub pool: Ipv4Addr,
    /// Prefix length of the pool (8–28); each environment takes a /30.
    pub prefix_len: u8,
    /// Name servers written into every environment's `/etc/resolv.conf`,
    /// in order (at most [`MAX_NAMESERVERS`], the C library's limit).
    /// IPv4 only: environments have no IPv6. A loopback address is the
    /// host's own resolver, reached through the environment's gateway (see
    /// the module documentation); only the first loopback entry is used.
    /// Empty: no name resolution. Default: [`host_resolvers`].
    pub dns: Vec<IpAddr>,
    /// Where the Seashell API is reachable from inside; `None`: it is not.
    pub api: Option<ApiForward>,
    /// IPv4 blocks environments may not reach, besides 169.254.0.0/16 and
    /// the pool (always dropped), written `a.b.c.d/len`. Default:
    /// [`DEFAULT_BLOCKED`], the private and special-purpose ranges where the
    /// operator's own networks live. The configured name servers stay
    /// reachable on port 53 wherever they are.
    pub blocked: Vec<String>,
}

/// What environments cannot reach unless the operator allows it: private
/// networks (RFC 1918), carrier-grade NAT (RFC 6598), "this network",
/// benchmarking (RFC 2544; the API's fixed address is translated before
/// this applies), multicast and reserved space. A shell reaches the
/// internet, not the machines beside the host.
pub const DEFAULT_BLOCKED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// The fixed in-environment address of the Seashell API: `198.18.0.1`.
///
/// 198.18.0.0/15 is reserved for benchmarking network devices (RFC 2544,
/// IANA special-purpose registry: not globally reachable), so it names no
/// real destination an environment could want, unlike a private range
/// that may be the operator's own network. It lies outside the default
/// pool and outside 169.254.0.0/16, which is dropped (metadata services);
/// the address is only ever translated on the environment's own link.
pub const API_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The Seashell API as the environments see it: connections to `address`
/// are forwarded to `target` on the host side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiForward {
    /// Address and port inside the environments.
    pub address: SocketAddrV4,
    /// Where the host sends them: the server's listen address. An
    /// unspecified address (`0.0.0.0`, `[::]`: the server listens on all
    /// addresses) means the host end of each environment's link; a
    /// loopback address works too. Otherwise IPv4 only (environments have
    /// no IPv6, and the translation stays in one address family).
    pub target: SocketAddr,
    /// Whether the server speaks TLS there (`https` in [`ApiForward::url`]);
    /// its certificate must then name [`ApiForward::address`]'s IP.
    pub tls: bool,
}

impl ApiForward {
    /// The API at [`API_ADDRESS`], port 80 (`tls` false) or 443, forwarded
    /// to `target`.
    pub fn new(target: SocketAddr, tls: bool) -> Self {
        ApiForward {
            address: SocketAddrV4::new(API_ADDRESS, if tls { 443 } else { 80 }),
            target,
            tls,
        }
    }

    /// The endpoint URL for tools inside, e.g. `http://198.18.0.1`.
    pub fn url(&self) -> String {
        let (scheme, default_port) = if self.tls {
            ("https", 443)
        } else {
            ("http", 80)
        };
        if self.address.port() == default_port {
            format!("{scheme}://{}", self.address.ip())
        } else {
            format!("{scheme}://{}", self.address)
        }
    }
}

/// Most name servers a `resolv.conf` may usefully list (glibc's `MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;

impl Default for NetworkConfig {
    /// `10.213.0.0/16` (16384 environments), the host's resolvers.
    fn default() -> Self {
        NetworkConfig {
            pool: Ipv4Addr::new(10, 213, 0, 0),
            prefix_len: 16,
            dns: host_resolvers(),
            api: None,
            blocked: DEFAULT_BLOCKED.iter().map(|b| (*b).to_owned()).collect(),
        }
    }
}

/// `a.b.c.d/len` with no bits set past the prefix.
fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    (u32::from(addr) & host_bits == 0).then_some((addr, len))
}

impl NetworkConfig {
    fn validate(&self) -> Result<()> {
        let base = u32::from(self.pool);
        let ok = (8..=28).contains(&self.prefix_len) && base & (u32::MAX >> self.prefix_len) == 0;
        if !ok {
            return Err(Error::Invalid {
                what: "network pool",
                value: self.cidr(),
                reason: "prefix must be 8-28 and the address aligned to it",
            });
        }
        for block in &self.blocked {
            if parse_cidr(block).is_none() {
                return Err(Error::Invalid {
                    what: "blocked destination",
                    value: block.clone(),
                    reason: "not an IPv4 block like 10.0.0.0/8 (no bits set past the prefix)",
                });
            }
        }
        if self.dns.len() > MAX_NAMESERVERS {
            return Err(Error::Invalid {
                what: "name servers",
                value: format!("{:?}", self.dns),
                reason: "at most 3 (the C library uses no more)",
            });
        }
        for ns in &self.dns {
            let bad = |reason| {
                Err(Error::Invalid {
                    what: "name server",
                    value: ns.to_string(),
                    reason,
                })
            };
            match ns {
                IpAddr::V6(_) => return bad("environments have IPv4 only"),
                IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() => {
                    return bad("not a unicast address")
                }
                // Letting port 53 through to the pool would open a path
                // between environments.
                IpAddr::V4(v4) if self.contains(*v4) => {
                    return bad("inside the environments' address pool")
                }
                IpAddr::V4(_) => {}
            }
        }
        if let Some(api) = &self.api {
            let bad = |reason| {
                Err(Error::Invalid {
                    what: "API forward",
                    value: format!("{} -> {}", api.address, api.target),
                    reason,
                })
            };
            let a = *api.address.ip();
            if a.is_loopback() || a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                return bad("the inside address must be a unicast address outside loopback");
            }
            if a.is_link_local() || self.contains(a) {
                return bad("the inside address must lie outside 169.254.0.0/16 and the pool");
            }
            if api.address.port() == 0 || api.target.port() == 0 {
                return bad("ports must not be 0");
            }
            if let IpAddr::V6(v6) = api.target.ip() {
                if !v6.is_unspecified() {
                    return bad("the target must be an IPv4 address, or unspecified");
                }
            }
        }
        Ok(())
    }

    /// The URL of the Seashell API inside the environments, for the shells'
    /// environment (`AWS_ENDPOINT_URL` and the like); `None` without
    /// [`NetworkConfig::api`].
    pub fn api_url(&self) -> Option<String> {
        self.api.as_ref().map(ApiForward::url)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - u32::from(self.prefix_len));
        u32::from(ip) & mask == u32::from(self.pool)
    }

    fn slots(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix_len) - 2)
    }

    /// The pool in CIDR notation.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.pool, self.prefix_len)
    }
}

/// The resolvers environments use by default: the IPv4 name servers of the
/// host's `/etc/resolv.conf` that are not loopback addresses; if it has only
/// loopback ones (a local stub resolver), the upstream servers of
/// systemd-resolved (`/run/systemd/resolve/resolv.conf`), as Docker does;
/// failing that, the loopback resolvers themselves, which environments then
/// reach through their gateway. Empty when the host has no resolver.
pub fn host_resolvers() -> Vec<IpAddr> {
    let read = |p: &str| parse_resolv_conf(&std::fs::read_to_string(p).unwrap_or_default());
    let host = read("/etc/resolv.conf");
    let remote = |v: &[Ipv4Addr]| -> Vec<IpAddr> {
        v.iter()
            .filter(|a| !a.is_loopback())
            .map(|a| IpAddr::V4(*a))
            .collect()
    };
    let mut found = remote(&host);
    if found.is_empty() {
        found = remote(&read("/run/systemd/resolve/resolv.conf"));
    }
    if found.is_empty() {
        found = host.iter().map(|a| IpAddr::V4(*a)).collect();
    }
    found.truncate(MAX_NAMESERVERS);
    found
}

/// The IPv4 `nameserver` entries of a `resolv.conf`, in order.
fn parse_resolv_conf(text: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next()?.parse::<Ipv4Addr>().ok())
                .flatten()
        })
        .collect()
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
    /// Name servers as the environment's `resolv.conf` lists them.
    #[serde(default)]
    pub nameservers: Vec<Ipv4Addr>,
    /// A loopback resolver of the host that the environment reaches at
    /// `host_ip` port 53.
    #[serde(default)]
    pub dns_forward: Option<Ipv4Addr>,
    /// The API forward, with its target resolved for this link.
    #[serde(default)]
    pub api: Option<ApiLease>,
    /// Destination blocks dropped besides link-local and the pool.
    #[serde(default)]
    pub blocked: Vec<String>,
}

/// An environment's API forward: `address` inside, DNAT-ed to `target`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ApiLease {
    pub address: SocketAddrV4,
    pub target: SocketAddrV4,
}

impl Lease {
    /// The environment's `/etc/resolv.conf`.
    pub fn resolv_conf(&self) -> String {
        let mut s = String::from("# Written by Seashell for this environment.\n");
        for ns in &self.nameservers {
            s.push_str(&format!("nameserver {ns}\n"));
        }
        s
    }

    /// Resolvers other than the forwarded one: reached directly, port 53
    /// only.
    fn direct_nameservers(&self) -> impl Iterator<Item = &Ipv4Addr> {
        self.nameservers
            .iter()
            .filter(move |ns| self.dns_forward.is_none() || **ns != self.host_ip)
    }

    /// Whether packets translated to the host's loopback must be routed
    /// from the host end of the link.
    fn needs_route_localnet(&self) -> bool {
        self.dns_forward.is_some() || self.api.is_some_and(|a| a.target.ip().is_loopback())
    }
}

/// The environment's `/etc/hosts`: loopback, and its hostname at its own
/// address (`127.0.1.1`, the Debian convention, without a network).
pub(crate) fn hosts_file(hostname: &str, address: Option<Ipv4Addr>) -> String {
    let own = address.unwrap_or(Ipv4Addr::new(127, 0, 1, 1));
    format!(
        "# Written by Seashell for this environment.\n\
         127.0.0.1\tlocalhost\n\
         {own}\t{hostname}\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
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
    let host_ip = Ipv4Addr::from(net + 1);
    // Interface names are limited to 15 bytes; a hash of the runtime and
    // environment keeps them unique on the host.
    let digest = Sha256::digest(format!("{instance}/{id}").as_bytes());
    let mut host_if = String::from("ssh");
    for b in digest.iter().take(6) {
        host_if.push_str(&format!("{b:02x}"));
    }
    let mut nameservers = Vec::new();
    let mut dns_forward = None;
    for ns in &cfg.dns {
        let IpAddr::V4(ns) = *ns else { continue };
        if !ns.is_loopback() {
            nameservers.push(ns);
        } else if dns_forward.is_none() {
            // Loopback inside is the environment's own: name the gateway,
            // whose port 53 leads to the host's resolver.
            dns_forward = Some(ns);
            nameservers.push(host_ip);
        } else {
            tracing::warn!(nameserver = %ns, "only the first loopback resolver can be forwarded; ignoring");
        }
    }
    let api = cfg.api.as_ref().map(|a| {
        let ip = match a.target.ip() {
            IpAddr::V4(v4) if !v4.is_unspecified() => v4,
            // A server listening on every address listens on this link's
            // host end too (validated: no other IPv6 gets here).
            _ => host_ip,
        };
        ApiLease {
            address: a.address,
            target: SocketAddrV4::new(ip, a.target.port()),
        }
    });
    Ok(Lease {
        slot,
        host_if,
        host_ip,
        env_ip: Ipv4Addr::from(net + 2),
        pool: cfg.cidr(),
        tag: tag(instance, id),
        nameservers,
        dns_forward,
        api,
        blocked: cfg.blocked.clone(),
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
    let host_ip = format!("{}/32", lease.host_ip);
    let mut out = Vec::new();

    // Name resolution comes first, ahead of every drop: port 53 of the
    // configured resolvers, wherever they are (a resolver on a host
    // address is reached through INPUT, others through FORWARD).
    for ns in lease.direct_nameservers() {
        let ns = format!("{ns}/32");
        for proto in ["udp", "tcp"] {
            for chain in ["INPUT", "FORWARD"] {
                out.push((
                    "filter",
                    chain,
                    with(
                        s(&["-i", hif, "-d", &ns, "-p", proto, "--dport", "53"]),
                        &["-j", "ACCEPT"],
                    ),
                ));
            }
        }
    }
    if let Some(resolver) = lease.dns_forward {
        let to = format!("{resolver}:53");
        let resolver = format!("{resolver}/32");
        for proto in ["udp", "tcp"] {
            out.push((
                "nat",
                "PREROUTING",
                with(
                    s(&["-i", hif, "-d", &host_ip, "-p", proto, "--dport", "53"]),
                    &["-j", "DNAT", "--to-destination", &to],
                ),
            ));
            // Only what the DNAT above translated: the host's loopback
            // stays closed to packets addressed to it directly.
            out.push((
                "filter",
                "INPUT",
                with(
                    s(&[
                        "-i",
                        hif,
                        "-d",
                        &resolver,
                        "-p",
                        proto,
                        "--dport",
                        "53",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "DNAT",
                        "--ctorigdst",
                        &host_ip,
                        "--ctorigdstport",
                        "53",
                    ]),
                    &["-j", "ACCEPT"],
                ),
            ));
        }
    }

    if let Some(api) = lease.api {
        let inside = format!("{}/32", api.address.ip());
        let inside_port = api.address.port().to_string();
        let target = format!("{}/32", api.target.ip());
        let target_port = api.target.port().to_string();
        out.push((
            "nat",
            "PREROUTING",
            with(
                s(&[
                    "-i",
                    hif,
                    "-d",
                    &inside,
                    "-p",
                    "tcp",
                    "--dport",
                    &inside_port,
                ]),
                &["-j", "DNAT", "--to-destination", &api.target.to_string()],
            ),
        ));
        // The translated connections only, to a host address (INPUT) or
        // elsewhere (FORWARD, ahead of the drops).
        for chain in ["INPUT", "FORWARD"] {
            out.push((
                "filter",
                chain,
                with(
                    s(&[
                        "-i",
                        hif,
                        "-d",
                        &target,
                        "-p",
                        "tcp",
                        "--dport",
                        &target_port,
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "DNAT",
                        "--ctorigdst",
                        &inside,
                        "--ctorigdstport",
                        &inside_port,
                    ]),
                    &["-j", "ACCEPT"],
                ),
            ));
        }
    }

    out.extend([
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
    ]);
    for block in &lease.blocked {
        out.push((
            "filter",
            "FORWARD",
            with(s(&["-i", hif, "-d", block.as_str()]), &["-j", "DROP"]),
        ));
    }
    out.extend([
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
    ]);
    out
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
    if lease.needs_route_localnet() {
        // Without it the kernel drops packets arriving here for 127.0.0.0/8
        // as martians, DNAT-ed or not. Only this interface is affected, and
        // its INPUT rules admit nothing but the translated connections.
        let p = PathBuf::from(format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            lease.host_if
        ));
        std::fs::write(&p, "1").map_err(|e| Error::io("writing", &p, e))?;
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
    let link = Path::new("/sys/class/net").join(&lease.host_if);
    if link.exists() {
        // The kernel deletes the pair by itself once the environment's
        // namespace is gone, which may happen between the check and the
        // command: a link that is gone afterwards is what was wanted.
        if let Err(e) = cmd::run(&mut cmd::command(
            &tools.ip,
            ["link", "del", lease.host_if.as_str()],
        )) {
            if link.exists() {
                return Err(e);
            }
        }
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
            let words = rule_words(line);
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

/// The words of one `iptables -S` line, made fit to be passed back to
/// `iptables -D`. iptables-nft prints the conntrack match's addresses
/// without their `/32` but reads an address without a mask differently, so
/// the printed rule would not match itself; the mask is put back.
fn rule_words(line: &str) -> Vec<String> {
    let mut words: Vec<String> = line
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_owned())
        .collect();
    for i in 1..words.len() {
        let takes_address = matches!(
            words[i - 1].as_str(),
            "--ctorigsrc" | "--ctorigdst" | "--ctreplsrc" | "--ctrepldst"
        );
        if takes_address && !words[i].contains('/') {
            words[i].push_str("/32");
        }
    }
    words
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
        let cfg = NetworkConfig {
            dns: vec![],
            ..NetworkConfig::default()
        };
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
            ..cfg.clone()
        };
        assert!(allocate(&bad, &used, "s", "x").is_err());
        let tiny = NetworkConfig {
            pool: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 28,
            ..cfg.clone()
        };
        let full: BTreeSet<u32> = (0..4).collect();
        assert!(allocate(&tiny, &full, "s", "x").is_err());
    }

    #[test]
    fn resolv_conf_parsing() {
        let text = "# generated\nsearch example.internal\nnameserver 10.0.0.2\n\
                    nameserver  fe80::1\nnameserver 127.0.0.53 # stub\noptions edns0\n";
        assert_eq!(
            parse_resolv_conf(text),
            [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 53)]
        );
        assert!(parse_resolv_conf("").is_empty());
    }

    #[test]
    fn name_servers() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        let cfg = NetworkConfig {
            dns: vec![ip("192.0.2.53"), ip("127.0.0.53"), ip("127.0.0.1")],
            ..NetworkConfig::default()
        };
        let l = allocate(&cfg, &BTreeSet::new(), "s", "x").expect("lease");
        // The loopback resolver is replaced by the gateway; the second
        // loopback one cannot be forwarded as well.
        assert_eq!(l.nameservers, [Ipv4Addr::new(192, 0, 2, 53), l.host_ip]);
        assert_eq!(l.dns_forward, Some(Ipv4Addr::new(127, 0, 0, 53)));
        assert_eq!(
            l.resolv_conf(),
            format!(
                "# Written by Seashell for this environment.\n\
                 nameserver 192.0.2.53\nnameserver {}\n",
                l.host_ip
            )
        );
        let all = rules(&l)
            .iter()
            .map(|(t, c, r)| format!("{t} {c} {}", r.join(" ")))
            .collect::<Vec<_>>();
        // Port 53 of the direct resolver, ahead of the drops.
        let first_drop = all.iter().position(|r| r.ends_with("DROP"));
        let dns = all
            .iter()
            .position(|r| r.contains("-d 192.0.2.53/32 -p udp --dport 53"));
        assert!(dns < first_drop, "{all:#?}");
        assert!(
            all.iter().any(|r| r.starts_with("nat PREROUTING")
                && r.ends_with("--to-destination 127.0.0.53:53")),
            "{all:#?}"
        );
        assert!(l.needs_route_localnet());

        for bad in ["10.213.0.9", "::1", "0.0.0.0", "224.0.0.1"] {
            let cfg = NetworkConfig {
                dns: vec![ip(bad)],
                ..NetworkConfig::default()
            };
            assert!(allocate(&cfg, &BTreeSet::new(), "s", "x").is_err(), "{bad}");
        }
        let cfg = NetworkConfig {
            dns: vec![ip("192.0.2.1"); 4],
            ..NetworkConfig::default()
        };
        assert!(allocate(&cfg, &BTreeSet::new(), "s", "x").is_err());
    }

    #[test]
    fn api_forward() {
        let target: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let cfg = NetworkConfig {
            dns: vec![],
            api: Some(ApiForward::new(target, false)),
            ..NetworkConfig::default()
        };
        assert_eq!(cfg.api_url().as_deref(), Some("http://198.18.0.1"));
        let l = allocate(&cfg, &BTreeSet::new(), "s", "x").expect("lease");
        assert!(l.needs_route_localnet());
        let all = rules(&l)
            .iter()
            .map(|(t, c, r)| format!("{t} {c} {}", r.join(" ")))
            .collect::<Vec<_>>();
        assert!(
            all.iter().any(|r| r.starts_with("nat PREROUTING -i ")
                && r.contains("-d 198.18.0.1/32 -p tcp --dport 80")
                && r.ends_with("-j DNAT --to-destination 127.0.0.1:8080")),
            "{all:#?}"
        );
        let accept = all
            .iter()
            .position(|r| r.starts_with("filter INPUT") && r.contains("--ctorigdst 198.18.0.1/32"));
        let drop = all
            .iter()
            .position(|r| r.starts_with("filter INPUT") && r.ends_with("-j DROP"));
        assert!(accept.is_some() && accept < drop, "{all:#?}");

        // A server on every address is reached at the link's host end.
        let any = NetworkConfig {
            api: Some(ApiForward::new("[::]:8443".parse().expect("addr"), true)),
            ..cfg.clone()
        };
        assert_eq!(any.api_url().as_deref(), Some("https://198.18.0.1"));
        let l = allocate(&any, &BTreeSet::new(), "s", "x").expect("lease");
        let api = l.api.expect("api");
        assert_eq!(api.target, SocketAddrV4::new(l.host_ip, 8443));
        assert_eq!(api.address.port(), 443);
        assert!(!l.needs_route_localnet());

        let mut odd = ApiForward::new(target, false);
        odd.address.set_port(8080);
        assert_eq!(odd.url(), "http://198.18.0.1:8080");
        for bad in [
            ApiForward::new("[::1]:8080".parse().expect("addr"), false),
            ApiForward {
                address: "169.254.1.1:80".parse().expect("addr"),
                ..ApiForward::new(target, false)
            },
            ApiForward {
                address: "10.213.9.9:80".parse().expect("addr"),
                ..ApiForward::new(target, false)
            },
            ApiForward::new("127.0.0.1:0".parse().expect("addr"), false),
        ] {
            let c = NetworkConfig {
                api: Some(bad.clone()),
                ..cfg.clone()
            };
            assert!(allocate(&c, &BTreeSet::new(), "s", "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blocked_destinations_are_checked_and_dropped_after_the_resolvers() {
        for bad in ["10.0.0.1/8", "10.0.0.0", "10.0.0.0/33", "fd00::/8", "ten/8"] {
            let cfg = NetworkConfig {
                blocked: vec![bad.to_owned()],
                ..NetworkConfig::default()
            };
            assert!(cfg.validate().is_err(), "{bad} accepted");
        }
        let cfg = NetworkConfig {
            dns: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))],
            ..NetworkConfig::default()
        };
        cfg.validate().expect("the defaults are valid");
        let lease = Lease {
            slot: 0,
            host_if: "ss0".into(),
            host_ip: Ipv4Addr::new(10, 213, 0, 1),
            env_ip: Ipv4Addr::new(10, 213, 0, 2),
            pool: cfg.cidr(),
            tag: "t".into(),
            nameservers: vec![Ipv4Addr::new(10, 0, 0, 2)],
            dns_forward: None,
            api: None,
            blocked: cfg.blocked.clone(),
        };
        let rules = rules(&lease);
        let position = |needle: &str, target: &str| {
            rules
                .iter()
                .position(|(_, chain, r)| {
                    *chain == "FORWARD"
                        && r.iter().any(|w| w == needle)
                        && r.last().is_some_and(|t| t == target)
                })
                .unwrap_or_else(|| panic!("no {target} rule for {needle}"))
        };
        // The VPC-style resolver in 10/8 is reached on port 53; the rest
        // of 10/8 and every other default block is dropped.
        assert!(position("10.0.0.2/32", "ACCEPT") < position("10.0.0.0/8", "DROP"));
        for block in DEFAULT_BLOCKED {
            position(block, "DROP");
        }
    }

    #[test]
    fn printed_rules_are_read_back_with_their_masks() {
        let w = rule_words(
            "-A INPUT -d 127.0.0.1/32 -i sshx -p tcp -m conntrack --ctstate DNAT \
             --ctorigdst 198.18.0.1 --ctorigdstport 80 -m comment --comment \"seashell:a:b\" -j ACCEPT",
        );
        assert_eq!(w[w.len() - 3], "seashell:a:b");
        let i = w.iter().position(|x| x == "--ctorigdst").expect("option");
        assert_eq!(w[i + 1], "198.18.0.1/32");
        assert_eq!(w[3], "127.0.0.1/32", "other addresses are left as printed");
    }

    #[test]
    fn hosts_file_names_the_environment() {
        let h = hosts_file("env-1", Some(Ipv4Addr::new(10, 213, 0, 2)));
        assert!(h.contains("127.0.0.1\tlocalhost\n"), "{h}");
        assert!(h.contains("10.213.0.2\tenv-1\n"), "{h}");
        assert!(hosts_file("env-1", None).contains("127.0.1.1\tenv-1\n"));
    }
}
