//! Environment networking: NAT egress, link-local and metadata addresses
//! blocked, no traffic between environments, nothing connects in; name
//! resolution through the configured resolvers and nothing else.
//!
//! The tests share host address ranges (203.0.113.0/30, 169.254.77.0/24,
//! the pool), so they run one at a time.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::{Fixture, Options};
use seashell_runtime::{ApiForward, ExecUser, Limits, NetworkConfig};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pool no host address or route uses, with the given resolvers.
fn test_network(dns: Vec<IpAddr>) -> NetworkConfig {
    let tag = std::process::id();
    let pool = NetworkConfig {
        pool: Ipv4Addr::new(10, 100 + (tag % 100) as u8, 0, 0),
        prefix_len: 16,
        dns,
        api: None,
        ..NetworkConfig::default()
    };
    assert_unused_on_host(&format!(
        "{}.{}.",
        pool.pool.octets()[0],
        pool.pool.octets()[1]
    ));
    pool
}

/// Starts dnsmasq (Debian `dnsmasq-base`) in the foreground, answering only
/// from `records` (`name,address` pairs) on `listen`, optionally inside a
/// network namespace. Its pid file lies under `root`, so a dead run's
/// cleanup finds it by its command line.
fn dnsmasq(root: &Path, netns: Option<&str>, listen: &str, records: &[&str]) -> Child {
    assert!(
        Path::new("/usr/sbin/dnsmasq").exists(),
        "dnsmasq is missing: install the Debian package `dnsmasq-base` \
         (scripts/install-runtime-deps.sh)"
    );
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "/usr/sbin/dnsmasq"]);
            c
        }
        None => Command::new("/usr/sbin/dnsmasq"),
    };
    c.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--user=root",
        "--group=root",
        "--local=/test/",
    ])
    .arg(format!("--listen-address={listen}"))
    .arg(format!(
        "--pid-file={}",
        root.join(format!("dnsmasq-{listen}.pid")).display()
    ))
    .arg(format!(
        "--log-facility={}",
        root.join(format!("dnsmasq-{listen}.log")).display()
    ));
    for r in records {
        c.arg(format!("--host-record={r}"));
    }
    let child = c.spawn().expect("start dnsmasq");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Kills a child process on drop.
struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every iptables rule (filter and nat) tagged for the fixture's runtime.
fn tagged_rules(f: &Fixture) -> String {
    let prefix = format!("seashell:{}:", f.rt.config().cgroup_parent);
    ["filter", "nat"]
        .iter()
        .flat_map(|t| {
            let out = Command::new("iptables")
                .args(["-w", "-t", t, "-S"])
                .output()
                .expect("iptables");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(&prefix))
                .map(|l| format!("{t}: {l}\n"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn must(args: &[&str]) {
    assert!(run(args), "host command failed: {args:?}");
}

/// A stand-in for "the outside world": a network namespace behind a veth on
/// the host, holding a routable test address (203.0.113.2) and a link-local
/// "metadata" address (169.254.77.2), with a web server on port 80 of both.
/// Removed on drop, and `ip_forward` restored to its value before the test.
struct Outside {
    netns: String,
    host_if: String,
    forward_before: String,
    servers: Vec<Child>,
    www: PathBuf,
}

impl Outside {
    fn new(tag: u32, www: PathBuf) -> Outside {
        assert_unused_on_host("203.0.113.");
        assert_unused_on_host("169.254.");
        assert_unused_on_host("192.168.213.");
        let forward_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .expect("ip_forward")
            .trim()
            .to_owned();
        std::fs::create_dir_all(&www).expect("www dir");
        std::fs::write(www.join("index.html"), "outside\n").expect("index");
        let mut o = Outside {
            netns: format!("seashell-out-{tag}"),
            host_if: format!("ssout{}", tag % 100_000),
            forward_before,
            servers: Vec::new(),
            www,
        };
        must(&["ip", "netns", "add", &o.netns]);
        must(&[
            "ip", "link", "add", &o.host_if, "type", "veth", "peer", "name", "eth0", "netns",
            &o.netns,
        ]);
        must(&["ip", "addr", "add", "203.0.113.1/30", "dev", &o.host_if]);
        must(&["ip", "link", "set", &o.host_if, "up"]);
        let ns = |a: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", o.netns.as_str()];
            v.extend_from_slice(a);
            must(&v);
        };
        ns(&["ip", "addr", "add", "203.0.113.2/30", "dev", "eth0"]);
        ns(&["ip", "addr", "add", "169.254.77.2/32", "dev", "eth0"]);
        // A private address beyond the host, like the operator's LAN.
        ns(&["ip", "addr", "add", "192.168.213.2/32", "dev", "eth0"]);
        ns(&["ip", "link", "set", "eth0", "up"]);
        ns(&["ip", "link", "set", "lo", "up"]);
        must(&[
            "ip",
            "route",
            "add",
            "169.254.77.2/32",
            "via",
            "203.0.113.2",
            "dev",
            &o.host_if,
        ]);
        must(&[
            "ip",
            "route",
            "add",
            "192.168.213.2/32",
            "via",
            "203.0.113.2",
            "dev",
            &o.host_if,
        ]);
        let www = o.www.to_string_lossy().into_owned();
        o.serve(&[
            "ip",
            "netns",
            "exec",
            &o.netns.clone(),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            &www,
        ]);
        o
    }

    /// Starts a foreground web server that is killed on drop.
    fn serve(&mut self, args: &[&str]) {
        let child = Command::new(args[0])
            .args(&args[1..])
            .spawn()
            .expect("start httpd");
        self.servers.push(child);
        std::thread::sleep(Duration::from_millis(300));
    }

    fn fetch_from_outside(&self, host: &str, port: u16, path: &str) -> String {
        fetch_on_host(Some(&self.netns), host, port, path)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespace destroys the veth pair and its routes.
        let _ = run(&["ip", "netns", "del", &self.netns]);
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", &self.forward_before);
    }
}

fn env_ip(f: &Fixture, id: &seashell_runtime::EnvironmentId) -> Ipv4Addr {
    let out = f.ok(id, ExecUser::Root, "ip -4 -o addr show dev eth0");
    let cidr = out.split_whitespace().nth(3).unwrap_or_default();
    cidr.split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("no address: {out}"))
}

/// Refuses to run on a host whose own addresses or routes use `prefix`:
/// the test must never shadow the machine's real network.
fn assert_unused_on_host(prefix: &str) {
    let out = Command::new("sh")
        .args(["-c", "ip -4 addr; ip -4 route"])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(prefix),
        "the host already uses {prefix}x; this test needs that range free:\n{text}"
    );
}

/// An HTTP/1.0 GET with busybox `nc` (static busybox's `wget` needs NSS
/// libraries the minimal image does not have). Prints the response.
fn fetch(host: &str, port: u16, path: &str) -> String {
    format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}")
}

fn fetch_on_host(netns: Option<&str>, host: &str, port: u16, path: &str) -> String {
    let mut c = Command::new("sh");
    let script = format!(
        "busybox {}",
        fetch(host, port, path).replace("| nc", "| busybox nc")
    );
    match netns {
        Some(ns) => c.args([
            "-c",
            &format!(
                "ip netns exec {ns} sh -c \"{}\"",
                script.replace('"', "\\\"")
            ),
        ]),
        None => c.args(["-c", &script]),
    };
    c.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn egress_nat_and_blocked_destinations() {
    let _serial = serial();
    let tag = std::process::id();
    let pool = test_network(vec![]);
    let f = Fixture::with(
        "net",
        Options {
            network: Some(pool.clone()),
            ..Options::default()
        },
    );
    let mut outside = Outside::new(tag, f.root.join("www"));
    let a = f.id("a");
    let b = f.id("b");
    f.up(&a, None, Limits::default());
    f.up(&b, None, Limits::default());

    let a_ip = env_ip(&f, &a);
    let b_ip = env_ip(&f, &b);
    assert_ne!(a_ip, b_ip);
    let gw = f.ok(
        &a,
        ExecUser::Root,
        "ip route | awk '/default/ { print $3 }'",
    );
    assert!(!gw.is_empty(), "no default route");

    // Egress works, masqueraded: the outside has no route back to the pool.
    let got = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch("203.0.113.2", 80, "/index.html"),
    );
    assert!(got.stdout.contains("outside"), "egress failed: {got:?}");
    // Link-local (metadata) addresses are blocked on the same path.
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch("169.254.77.2", 80, "/index.html"),
    );
    assert!(
        !out.stdout.contains("outside"),
        "link-local reachable: {out:?}"
    );
    assert!(
        fetch_on_host(None, "169.254.77.2", 80, "/index.html").contains("outside"),
        "control: the host reaches the link-local server"
    );
    // So are private networks beside the host (the default blocked ranges).
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch("192.168.213.2", 80, "/index.html"),
    );
    assert!(
        !out.stdout.contains("outside"),
        "a private network is reachable: {out:?}"
    );
    assert!(
        fetch_on_host(None, "192.168.213.2", 80, "/index.html").contains("outside"),
        "control: the host reaches the private address"
    );

    // Environments cannot reach each other.
    f.ok(&b, ExecUser::Root, "httpd -p 8080 -h /etc");
    let own = f.sh(&b, ExecUser::Root, &fetch("127.0.0.1", 8080, "/hostname"));
    assert!(
        own.stdout.contains("localhost"),
        "server in b not up: {own:?}"
    );
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch(&b_ip.to_string(), 8080, "/hostname"),
    );
    assert!(
        !out.stdout.contains("localhost"),
        "other environment reachable: {out:?}"
    );

    // Nor the host, even on its end of the environment's own link.
    let www = outside.www.to_string_lossy().into_owned();
    outside.serve(&[
        "busybox",
        "httpd",
        "-f",
        "-p",
        &format!("{gw}:8081"),
        "-h",
        &www,
    ]);
    assert!(
        fetch_on_host(None, &gw, 8081, "/index.html").contains("outside"),
        "control: host server up"
    );
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch(&gw, 8081, "/index.html"),
    );
    assert!(!out.stdout.contains("outside"), "host reachable: {out:?}");

    // Nothing connects in, even with a route to the pool.
    must(&[
        "ip",
        "netns",
        "exec",
        &outside.netns,
        "ip",
        "route",
        "add",
        &pool.cidr(),
        "via",
        "203.0.113.1",
    ]);
    let got = outside.fetch_from_outside(&b_ip.to_string(), 8080, "/hostname");
    assert!(
        !got.contains("localhost"),
        "outside reached the environment: {got}"
    );

    // Root inside cannot reconfigure the network (no CAP_NET_ADMIN).
    let out = f.sh(&a, ExecUser::Root, "ip addr add 10.9.9.9/32 dev eth0");
    assert!(!out.success(), "root changed addresses: {out:?}");
    assert_eq!(
        f.ok(
            &a,
            ExecUser::Root,
            "cat /proc/sys/net/ipv6/conf/all/disable_ipv6"
        ),
        "1"
    );

    f.rt.stop(&a).expect("stop");
    f.rt.stop(&b).expect("stop");
    let left = tagged_rules(&f);
    assert!(left.is_empty(), "firewall rules left after stop:\n{left}");
}

fn resolves(out: &seashell_runtime::ExecOutput, address: &str) -> bool {
    out.success()
        && out
            .stdout
            .lines()
            .any(|l| l.starts_with("Address:") && l.trim_end().ends_with(&format!(" {address}")))
}

#[test]
fn names_resolve_through_the_configured_resolver_only() {
    let _serial = serial();
    let tag = std::process::id();
    // The resolver sits at a link-local address, in the blocked range, as a
    // cloud's DNS server does (169.254.169.253 on EC2): only its port 53
    // may be reachable.
    let resolver = "169.254.77.2";
    let f = Fixture::with(
        "dns",
        Options {
            network: Some(test_network(vec![resolver.parse().expect("ip")])),
            ..Options::default()
        },
    );
    let outside = Outside::new(tag, f.root.join("www"));
    // A second resolver, not configured, behind the same link.
    must(&[
        "ip",
        "netns",
        "exec",
        &outside.netns,
        "ip",
        "addr",
        "add",
        "169.254.77.3/32",
        "dev",
        "eth0",
    ]);
    must(&[
        "ip",
        "route",
        "add",
        "169.254.77.3/32",
        "via",
        "203.0.113.2",
        "dev",
        &outside.host_if,
    ]);
    let records = [
        "www.outside.test,203.0.113.2",
        "metadata.outside.test,169.254.77.2",
    ];
    let _dns = Killed(vec![
        dnsmasq(&f.root, Some(&outside.netns), resolver, &records),
        dnsmasq(&f.root, Some(&outside.netns), "169.254.77.3", &records),
    ]);
    let a = f.id("a");
    f.up(&a, None, Limits::default());
    let env_ip = env_ip(&f, &a);

    // The environment's name files: the configured resolver, its hostname
    // at its own address; read-only even for root inside.
    let resolv = f.ok(&a, ExecUser::Root, "grep -v '^#' /etc/resolv.conf");
    assert_eq!(resolv, format!("nameserver {resolver}"));
    let hosts = f.ok(&a, ExecUser::Root, "cat /etc/hosts");
    assert!(
        hosts.contains(&format!("{env_ip}\tseashell-env")),
        "{hosts}"
    );
    let out = f.sh(
        &a,
        ExecUser::Root,
        "echo nameserver 192.0.2.99 > /etc/resolv.conf",
    );
    assert!(!out.success(), "resolv.conf is writable: {out:?}");

    // Names resolve through /etc/resolv.conf, as the user, over UDP; the
    // resolver's TCP port 53 is open too (large answers).
    let out = f.sh(&a, ExecUser::CloudshellUser, "nslookup www.outside.test");
    assert!(resolves(&out, "203.0.113.2"), "no answer: {out:?}");
    let got = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch("203.0.113.2", 80, "/index.html"),
    );
    assert!(got.stdout.contains("outside"), "egress failed: {got:?}");
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &format!("nc -w 3 {resolver} 53 </dev/null && echo tcp-open"),
    );
    assert!(out.stdout.contains("tcp-open"), "TCP 53 closed: {out:?}");

    // Only name resolution: the resolver's web server on the same address
    // stays blocked, and so does a name that resolves into the blocked
    // range.
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch(resolver, 80, "/index.html"),
    );
    assert!(
        !out.stdout.contains("outside"),
        "resolver's other ports reachable: {out:?}"
    );
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        "nslookup metadata.outside.test",
    );
    assert!(resolves(&out, "169.254.77.2"), "no answer: {out:?}");
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch("169.254.77.2", 80, "/index.html"),
    );
    assert!(
        !out.stdout.contains("outside"),
        "resolved link-local address reachable: {out:?}"
    );
    // A resolver that is not configured is not reachable, though the host
    // reaches it.
    let host = Command::new("busybox")
        .args(["nslookup", "www.outside.test", "169.254.77.3"])
        .output()
        .expect("nslookup on the host");
    assert!(
        String::from_utf8_lossy(&host.stdout).contains("203.0.113.2"),
        "control: the host queries the second resolver: {host:?}"
    );
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        "nslookup www.outside.test 169.254.77.3",
    );
    assert!(
        !resolves(&out, "203.0.113.2"),
        "unconfigured resolver reachable: {out:?}"
    );

    f.rt.stop(&a).expect("stop");
    let left = tagged_rules(&f);
    assert!(left.is_empty(), "firewall rules left after stop:\n{left}");
    drop(outside);
}

#[test]
fn a_loopback_resolver_of_the_host_is_reached_through_the_gateway() {
    let _serial = serial();
    // A stub resolver on the host's loopback, as systemd-resolved's
    // 127.0.0.53; inside, loopback is the environment's own.
    let resolver = "127.53.0.1";
    let f = Fixture::with(
        "dnslo",
        Options {
            network: Some(test_network(vec![resolver.parse().expect("ip")])),
            ..Options::default()
        },
    );
    let mut servers = Killed(vec![dnsmasq(
        &f.root,
        None,
        resolver,
        &["www.loop.test,203.0.113.2"],
    )]);
    let a = f.id("a");
    f.up(&a, None, Limits::default());
    let gw = f.ok(
        &a,
        ExecUser::Root,
        "ip route | awk '/default/ { print $3 }'",
    );
    let resolv = f.ok(&a, ExecUser::Root, "grep -v '^#' /etc/resolv.conf");
    assert_eq!(resolv, format!("nameserver {gw}"));

    let out = f.sh(&a, ExecUser::CloudshellUser, "nslookup www.loop.test");
    assert!(resolves(&out, "203.0.113.2"), "no answer: {out:?}");
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &format!("nc -w 3 {gw} 53 </dev/null && echo tcp-open"),
    );
    assert!(out.stdout.contains("tcp-open"), "TCP 53 closed: {out:?}");

    // Port 53 is all: another port of the host end stays closed.
    let www = f.root.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "host-page\n").expect("index");
    let httpd = Command::new("busybox")
        .args(["httpd", "-f", "-p", &format!("{gw}:8081"), "-h"])
        .arg(&www)
        .spawn()
        .expect("httpd");
    servers.0.push(httpd);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        fetch_on_host(None, &gw, 8081, "/index.html").contains("host-page"),
        "control: host server up"
    );
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch(&gw, 8081, "/index.html"),
    );
    assert!(!out.stdout.contains("host-page"), "host reachable: {out:?}");

    f.rt.stop(&a).expect("stop");
    let left = tagged_rules(&f);
    assert!(left.is_empty(), "firewall rules left after stop:\n{left}");
}

/// A real HTTP/1.0 server on the host: answers every request with `body`.
/// Stops on drop.
struct HostHttp {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostHttp {
    fn start(bind: &str, body: &'static str) -> HostHttp {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind(bind).expect("bind host server");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Non-blocking accepts, polled, so that drop can stop the loop even
        // after the address it listens on is gone.
        listener.set_nonblocking(true).expect("non-blocking");
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let mut conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HostHttp {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn the_api_is_reachable_at_its_fixed_address_and_nothing_else_of_the_host() {
    let _serial = serial();
    // The server listening on the host's loopback only, as `seashell serve`
    // does by default.
    let api = HostHttp::start("127.0.0.1:0", "api-ok\n");
    let forward = ApiForward::new(api.addr, false);
    let mut network = test_network(vec![]);
    network.api = Some(forward.clone());
    assert_eq!(network.api_url().as_deref(), Some("http://198.18.0.1"));
    let f = Fixture::with(
        "api",
        Options {
            network: Some(network),
            ..Options::default()
        },
    );
    let a = f.id("a");
    let b = f.id("b");
    f.up(&a, None, Limits::default());
    f.up(&b, None, Limits::default());
    let gw = f.ok(
        &a,
        ExecUser::Root,
        "ip route | awk '/default/ { print $3 }'",
    );
    let b_ip = env_ip(&f, &b);

    // The API, from every environment, as the user.
    for env in [&a, &b] {
        let got = f.sh(env, ExecUser::CloudshellUser, &fetch("198.18.0.1", 80, "/"));
        assert!(got.stdout.contains("api-ok"), "API unreachable: {got:?}");
    }

    // Another host port stays closed, on the gateway, on loopback and on
    // the forwarded target's port addressed directly.
    let other = HostHttp::start(&format!("{gw}:0"), "other-port\n");
    let port = other.addr.port();
    assert!(
        fetch_on_host(None, &gw, port, "/").contains("other-port"),
        "control: the host server is up"
    );
    let out = f.sh(&a, ExecUser::CloudshellUser, &fetch(&gw, port, "/"));
    assert!(
        !out.stdout.contains("other-port"),
        "another host port reachable: {out:?}"
    );
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch(&gw, api.addr.port(), "/"),
    );
    assert!(
        !out.stdout.contains("api-ok"),
        "the target reachable without the fixed address: {out:?}"
    );
    // Another server on the host's loopback, the address the API is
    // forwarded to: root inside reaches it neither through the gateway nor
    // through the fixed address, which answers on port 80 only (not on the
    // API's own port, nor on any other).
    let beside = HostHttp::start("127.0.0.1:0", "beside-the-api\n");
    assert!(
        fetch_on_host(None, "127.0.0.1", beside.addr.port(), "/").contains("beside-the-api"),
        "control: the second loopback server is up"
    );
    for (host, port) in [
        (gw.as_str(), beside.addr.port()),
        ("198.18.0.1", beside.addr.port()),
        ("198.18.0.1", api.addr.port()),
        ("198.18.0.1", port),
        ("198.18.0.1", 443),
        ("198.18.0.1", 8080),
    ] {
        let out = f.sh(&a, ExecUser::Root, &fetch(host, port, "/"));
        assert!(
            !out.stdout.contains("beside-the-api")
                && !out.stdout.contains("api-ok")
                && !out.stdout.contains("other-port"),
            "{host}:{port} reachable from inside: {out:?}"
        );
    }
    // ... while port 80 of the fixed address still is, as root too.
    let got = f.sh(&a, ExecUser::Root, &fetch("198.18.0.1", 80, "/"));
    assert!(got.stdout.contains("api-ok"), "API unreachable: {got:?}");
    // Another environment stays unreachable.
    f.ok(&b, ExecUser::Root, "httpd -p 8080 -h /etc");
    let out = f.sh(
        &a,
        ExecUser::CloudshellUser,
        &fetch(&b_ip.to_string(), 8080, "/hostname"),
    );
    assert!(
        !out.stdout.contains("localhost"),
        "other environment reachable: {out:?}"
    );

    // Stop removes the forward's rules.
    f.rt.stop(&a).expect("stop");
    let left = tagged_rules(&f);
    assert!(
        !left.contains(a.as_str()),
        "rules of a left after stop:\n{left}"
    );
    assert!(left.contains("DNAT"), "b lost its forward:\n{left}");

    // Reconcile removes them too when the lease is lost (a crash), by tag.
    std::fs::remove_file(f.env_dir(&b).join("network.json")).expect("lease");
    let report = f.rt.reconcile(&|_| false).expect("reconcile");
    assert!(
        report.rules_removed.iter().any(|t| t.ends_with(b.as_str())),
        "{report:?}"
    );
    let left = tagged_rules(&f);
    assert!(
        left.is_empty(),
        "firewall rules left after reconcile:\n{left}"
    );
}
