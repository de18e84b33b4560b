//! Environment networking: NAT egress, link-local and metadata addresses
//! blocked, no traffic between environments, nothing connects in.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use common::{Fixture, Options};
use seashell_runtime::{ExecUser, Limits, NetworkConfig};

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
    let tag = std::process::id();
    let pool = NetworkConfig {
        pool: Ipv4Addr::new(10, 100 + (tag % 100) as u8, 0, 0),
        prefix_len: 16,
    };
    assert_unused_on_host(&format!(
        "{}.{}.",
        pool.pool.octets()[0],
        pool.pool.octets()[1]
    ));
    let f = Fixture::with(
        "net",
        Options {
            network: Some(pool),
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
    let rules = Command::new("iptables")
        .args(["-w", "-S"])
        .output()
        .expect("iptables");
    let nat = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .expect("iptables");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&rules.stdout),
        String::from_utf8_lossy(&nat.stdout)
    );
    let prefix = format!("seashell:{}", f.rt.config().cgroup_parent);
    assert!(
        !all.contains(&prefix),
        "firewall rules left after stop:\n{all}"
    );
}
