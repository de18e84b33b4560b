//! Isolation of an environment from the host: user namespace mapping,
//! capabilities and seccomp, masked /proc paths, pid namespace.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{Fixture, Options};
use seashell_runtime::{ExecUser, IdMap, Limits};

/// Container ids map to the configured unprivileged host range, and files
/// created inside are owned by the mapped ids outside, while the image
/// looks root-owned inside.
#[test]
fn uid_mapping_and_file_ownership() {
    let id_map = IdMap {
        host_base: 200_000,
        size: 65_536,
    };
    let f = Fixture::with(
        "uidmap",
        Options {
            id_map,
            ..Options::default()
        },
    );
    let id = f.id("env");
    f.up(&id, Some(f.home_key("uidmap")), Limits::default());

    let uid_map = f.ok(&id, ExecUser::Root, "cat /proc/self/uid_map");
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields, ["0", "200000", "65536"], "uid_map: {uid_map}");
    let gid_map = f.ok(&id, ExecUser::Root, "cat /proc/self/gid_map");
    assert_eq!(
        gid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );

    // The image is owned by root inside although it is 200000 on the host.
    assert_eq!(
        f.ok(
            &id,
            ExecUser::Root,
            "stat -c %u:%g /bin/busybox /etc/passwd"
        ),
        "0:0\n0:0"
    );
    let host_busybox = std::fs::metadata(f.image.rootfs.join("bin/busybox")).expect("image file");
    assert_eq!((host_busybox.uid(), host_busybox.gid()), (200_000, 200_000));

    // Root inside creates a file: the host sees uid 200000 in the upper layer.
    f.ok(&id, ExecUser::Root, "touch /tmp/made-by-root");
    let m = std::fs::metadata(f.env_dir(&id).join("root/upper/tmp/made-by-root"))
        .expect("file in upper layer");
    assert_eq!((m.uid(), m.gid()), (200_000, 200_000));

    // cloudshell-user is uid 1000 inside and 201000 on the host (home volume).
    assert_eq!(
        f.ok(
            &id,
            ExecUser::CloudshellUser,
            "id -u; id -g; touch ~/made-by-user; stat -c %u ~"
        ),
        "1000\n1000\n1000"
    );
    let m = std::fs::metadata(f.env_dir(&id).join("home/made-by-user")).expect("file in home");
    assert_eq!((m.uid(), m.gid()), (201_000, 201_000));
    // lost+found belongs to the user too, not to an unmapped id.
    assert_eq!(
        f.ok(&id, ExecUser::CloudshellUser, "stat -c %u ~/lost+found"),
        "1000"
    );

    f.rt.stop(&id).expect("stop");
}

fn cap_bits(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing in {status}"));
    let hex = line.split_whitespace().nth(1).expect("cap value");
    u64::from_str_radix(hex, 16).expect("hex caps")
}

/// Root inside is confined: no CAP_SYS_ADMIN/SYS_MODULE/…, seccomp active,
/// mounting, loading modules and creating namespaces all fail. The user has
/// no capabilities at all, and set-uid still works (no_new_privileges off).
#[test]
fn root_inside_cannot_mount_or_load_modules() {
    let f = Fixture::new("caps");
    let id = f.id("env");
    f.up(&id, None, Limits::default());

    let status = f.ok(&id, ExecUser::Root, "cat /proc/self/status");
    let eff = cap_bits(&status, "CapEff:");
    let bnd = cap_bits(&status, "CapBnd:");
    for (bit, name) in [
        (21, "CAP_SYS_ADMIN"),
        (16, "CAP_SYS_MODULE"),
        (19, "CAP_SYS_PTRACE"),
        (12, "CAP_NET_ADMIN"),
        (13, "CAP_NET_RAW"),
        (17, "CAP_SYS_RAWIO"),
        (22, "CAP_SYS_BOOT"),
        (27, "CAP_MKNOD"),
    ] {
        assert_eq!(bnd & (1 << bit), 0, "{name} is in the bounding set");
    }
    assert_ne!(eff & (1 << 7), 0, "root keeps CAP_SETUID (sudo needs it)");
    assert!(
        status.contains("Seccomp:\t2"),
        "seccomp filter not active: {status}"
    );
    assert!(
        status.contains("NoNewPrivs:\t0"),
        "no_new_privileges must be off for sudo"
    );

    let user_status = f.ok(&id, ExecUser::CloudshellUser, "cat /proc/self/status");
    assert_eq!(
        cap_bits(&user_status, "CapEff:"),
        0,
        "cloudshell-user has capabilities"
    );
    assert_eq!(cap_bits(&user_status, "CapPrm:"), 0);

    let out = f.sh(&id, ExecUser::Root, "mount -t tmpfs none /mnt");
    assert!(!out.success(), "mount succeeded: {out:?}");
    let out = f.sh(&id, ExecUser::Root, "mount --bind /bin /mnt");
    assert!(!out.success(), "bind mount succeeded: {out:?}");

    let out = f.sh(
        &id,
        ExecUser::Root,
        "echo junk > /tmp/x.ko && insmod /tmp/x.ko",
    );
    assert!(
        !out.success() && out.stderr.contains("not permitted"),
        "insmod: {out:?}"
    );

    // A nested user namespace would give back CAP_SYS_ADMIN; seccomp refuses.
    let out = f.sh(&id, ExecUser::CloudshellUser, "unshare -U -r true");
    assert!(
        !out.success() && out.stderr.contains("not permitted"),
        "unshare: {out:?}"
    );

    // The environment has its own hostname and cannot change the host's.
    assert_eq!(f.ok(&id, ExecUser::Root, "hostname"), "seashell-env");

    f.rt.stop(&id).expect("stop");
}

/// Builds `tests/helpers/sockets.c` statically into `dir` (the minimal
/// image has no tool that opens raw, packet or ICMP ping sockets on
/// demand).
fn socket_helper(dir: &std::path::Path) -> std::path::PathBuf {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sockets.c");
    let bin = dir.join("sockets");
    let out = std::process::Command::new("cc")
        .args(["-static", "-O", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running cc (install gcc and libc6-dev): {e}"));
    assert!(
        out.status.success(),
        "building {} (needs gcc and libc6-dev): {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Without CAP_NET_RAW, root inside can open no raw or packet socket
/// (EPERM), so it can neither forge packets nor sniff the veth; ICMP
/// "ping" sockets still work for root and cloudshell-user alike, through
/// the environment's `net.ipv4.ping_group_range`.
#[test]
fn root_inside_cannot_open_raw_or_packet_sockets_but_can_ping() {
    let f = Fixture::new("rawsock");
    let helper = socket_helper(&f.root);
    let id = f.id("env");
    let mut spec = f.spec(&id, None, Limits::default());
    spec.ro_binds
        .push((helper, "/usr/local/bin/seashell-sockets".into()));
    f.rt.create(&spec)
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    f.rt.start(&id)
        .unwrap_or_else(|e| panic!("start {id}: {e}"));

    let expected = "inet-raw-icmp EPERM\n\
                    inet-raw-raw EPERM\n\
                    inet-raw-tcp EPERM\n\
                    packet-raw EPERM\n\
                    packet-dgram EPERM\n\
                    inet-packet EPERM\n\
                    ping ok";
    for user in [ExecUser::Root, ExecUser::CloudshellUser] {
        assert_eq!(
            f.ok(&id, user, "/usr/local/bin/seashell-sockets"),
            expected,
            "as {user:?}"
        );
    }
    // The image's own raw-socket tools as root: busybox's ping (raw only),
    // arping (packet) and traceroute (raw) are refused.
    for (tool, refusal) in [
        ("ping -c 1 -W 1 127.0.0.1", "permission denied"),
        ("arping -c 1 -w 1 -I lo 127.0.0.1", "not permitted"),
        ("traceroute -m 1 127.0.0.1", "not permitted"),
    ] {
        let out = f.sh(&id, ExecUser::Root, tool);
        assert!(
            !out.success() && out.stderr.contains(refusal),
            "{tool}: {out:?}"
        );
    }

    f.rt.stop(&id).expect("stop");
}

/// Host kernel information is masked and kernel knobs are read-only.
#[test]
fn proc_paths_are_masked() {
    let f = Fixture::new("masked");
    let id = f.id("env");
    f.up(&id, None, Limits::default());

    for path in ["/proc/keys", "/proc/timer_list"] {
        let host_len = std::fs::read(path).map(|b| b.len()).unwrap_or(0);
        let inside = f.ok(
            &id,
            ExecUser::Root,
            &format!("cat {path} 2>/dev/null | wc -c"),
        );
        assert_eq!(
            inside, "0",
            "{path} readable inside (host has {host_len} bytes)"
        );
    }
    assert_eq!(
        f.ok(&id, ExecUser::Root, "ls -A /sys/firmware | wc -l"),
        "0"
    );
    let out = f.sh(&id, ExecUser::Root, "echo 3 > /proc/sys/vm/drop_caches");
    assert!(!out.success(), "/proc/sys writable: {out:?}");
    let out = f.sh(&id, ExecUser::Root, "echo b > /proc/sysrq-trigger");
    assert!(!out.success(), "/proc/sysrq-trigger writable: {out:?}");

    f.rt.stop(&id).expect("stop");
}

/// The pid namespace shows only the environment's processes, with its init
/// as pid 1.
#[test]
fn pid_namespace_shows_only_own_processes() {
    let f = Fixture::new("pidns");
    let id = f.id("env");
    f.up(&id, None, Limits::default());

    let pids = f.ok(&id, ExecUser::Root, "ls /proc | grep -E '^[0-9]+$'");
    let pids: Vec<u32> = pids.lines().filter_map(|l| l.parse().ok()).collect();
    // init (sh), its sleep, the exec'd sh, ls, grep.
    assert!(pids.len() <= 6, "too many processes visible: {pids:?}");
    assert!(pids.contains(&1));
    let cmdline = f.ok(&id, ExecUser::Root, "tr '\\0' ' ' < /proc/1/cmdline");
    assert!(
        cmdline.contains("trap"),
        "pid 1 is not the environment init: {cmdline}"
    );
    let ps = f.ok(&id, ExecUser::Root, "ps -o pid,comm");
    assert!(
        !ps.contains("cargo") && !ps.contains("systemd"),
        "host processes visible: {ps}"
    );
    // The test process's own pid is not visible as such.
    let me = std::process::id();
    let ps_args = f.ok(&id, ExecUser::Root, "ps -o args");
    assert!(
        !ps_args.contains("isolation-"),
        "test binary visible: {ps_args} (host pid {me})"
    );

    f.rt.stop(&id).expect("stop");
}

/// An environment sees neither another environment's files and processes
/// nor the runtime's data directory on the host (where homes, images and
/// the server's state live), even as root inside.
#[test]
fn environments_cannot_see_each_other_or_the_host_data() {
    let f = Fixture::new("apart");
    let a = f.id("a");
    let b = f.id("b");
    f.up(&a, Some(f.home_key("alice")), Limits::default());
    f.up(&b, Some(f.home_key("bob")), Limits::default());

    let secret = format!("seashell-marker-{}", std::process::id());
    // A file in A's home, a process in A, and a file in the host data dir.
    f.ok(
        &a,
        ExecUser::CloudshellUser,
        &format!("echo private > ~/{secret}-home"),
    );
    f.ok(
        &a,
        ExecUser::Root,
        "sh -c 'sleep 4321 </dev/null >/dev/null 2>&1 &'",
    );
    std::fs::write(f.root.join(format!("{secret}-host")), "host data").expect("host marker");

    let found = f.sh(
        &b,
        ExecUser::Root,
        &format!("find / -xdev -name '{secret}*' 2>/dev/null; find /home /tmp /run /mnt /opt -name '{secret}*' 2>/dev/null; true"),
    );
    assert!(
        !found.stdout.contains(&secret),
        "B found another environment's or the host's files: {}",
        found.stdout
    );
    let ps = f.ok(&b, ExecUser::Root, "ps -o args");
    assert!(!ps.contains("sleep 4321"), "B sees A's processes: {ps}");
    // A's own view confirms the markers exist there.
    assert!(f
        .ok(&a, ExecUser::Root, "ps -o args")
        .contains("sleep 4321"));
    assert!(f
        .ok(
            &a,
            ExecUser::CloudshellUser,
            &format!("cat ~/{secret}-home")
        )
        .contains("private"));

    f.rt.stop(&a).expect("stop a");
    f.rt.stop(&b).expect("stop b");
}
