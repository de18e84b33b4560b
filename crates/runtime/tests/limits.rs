//! Resource limits: the home volume's size, memory, CPU and pids.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::Fixture;
use seashell_runtime::{ExecUser, Limits};

fn read_trim(p: &std::path::Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_owned()
}

/// Filling the home volume gives ENOSPC inside; the environment keeps
/// working and the host file stays at its size.
#[test]
fn full_home_gives_enospc() {
    let f = Fixture::new("enospc");
    let id = f.id("env");
    let key = f.home_key("enospc");
    f.up(&id, Some(key.clone()), Limits::default());

    let out = f.sh(
        &id,
        ExecUser::CloudshellUser,
        "dd if=/dev/zero of=$HOME/fill bs=1M count=200",
    );
    assert!(
        !out.success(),
        "dd filled 200 MiB into a 64 MiB home: {out:?}"
    );
    assert!(out.stderr.contains("No space left on device"), "{out:?}");

    assert_eq!(
        f.ok(&id, ExecUser::CloudshellUser, "echo still-alive"),
        "still-alive"
    );
    // Top up the last partial blocks: the filesystem is then completely full.
    let out = f.sh(
        &id,
        ExecUser::CloudshellUser,
        "dd if=/dev/zero of=$HOME/fill2 bs=4k",
    );
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
    assert_eq!(
        f.ok(
            &id,
            ExecUser::CloudshellUser,
            "df -k ~ | awk 'NR == 2 { print $4 }'"
        ),
        "0"
    );
    assert_eq!(
        f.ok(
            &id,
            ExecUser::CloudshellUser,
            "rm ~/fill ~/fill2 2>/dev/null; echo ok > ~/small && cat ~/small"
        ),
        "ok"
    );

    let meta = std::fs::metadata(f.rt.home_path(&key)).expect("home image");
    assert_eq!(meta.len(), 64 << 20, "home image size");
    assert!(
        meta.blocks() * 512 <= (64 << 20) + (1 << 20),
        "image grew beyond its size"
    );
    f.rt.stop(&id).expect("stop");
}

/// Memory and CPU limits are applied to the environment's cgroup, visible
/// inside, and a process exceeding memory is killed while the environment
/// survives.
#[test]
fn memory_and_cpu_limits_are_enforced() {
    let f = Fixture::new("memory");
    let id = f.id("env");
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    f.up(&id, None, limits);

    let mem = f.rt.cgroup_dir(&id, "memory");
    assert_eq!(
        read_trim(&mem.join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    let cpu = f.rt.cgroup_dir(&id, "cpu");
    assert_eq!(read_trim(&cpu.join("cpu.cfs_quota_us")), "100000");
    assert_eq!(read_trim(&cpu.join("cpu.cfs_period_us")), "100000");
    // The cgroup namespace shows the environment's own cgroup as the root.
    assert_eq!(
        f.ok(
            &id,
            ExecUser::Root,
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        ),
        (64u64 << 20).to_string()
    );

    let hog = f.sh(
        &id,
        ExecUser::CloudshellUser,
        "awk 'BEGIN { s = \"xxxxxxxxxxxxxxxx\"; while (1) s = s s }'",
    );
    assert!(!hog.success(), "memory hog survived: {hog:?}");
    let failcnt: u64 = read_trim(&mem.join("memory.failcnt"))
        .parse()
        .expect("failcnt");
    assert!(failcnt > 0, "memory limit never hit");
    assert_eq!(f.ok(&id, ExecUser::Root, "echo alive"), "alive");
    f.rt.stop(&id).expect("stop");
}

/// A fork bomb in one environment is bounded by its pids limit while
/// another environment keeps answering.
#[test]
fn fork_bomb_is_bounded_by_pids_limit() {
    let f = Fixture::new("forkbomb");
    let bomb = f.id("bomb");
    let quiet = f.id("quiet");
    f.up(
        &bomb,
        None,
        Limits {
            pids: 64,
            ..Limits::default()
        },
    );
    f.up(&quiet, None, Limits::default());

    let pids = f.rt.cgroup_dir(&bomb, "pids");
    assert_eq!(read_trim(&pids.join("pids.max")), "64");

    let out = f.sh(
        &bomb,
        ExecUser::CloudshellUser,
        "(f() { f | f & }; f) >/dev/null 2>&1 </dev/null & echo started",
    );
    assert_eq!(out.stdout.trim(), "started", "{out:?}");

    // Let it hit the limit, then check the neighbour still answers quickly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = read_trim(&pids.join("pids.events"));
        let hits: u64 = events
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if hits > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fork bomb never reached the pids limit: {events}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..5 {
        let current: u64 = read_trim(&pids.join("pids.current"))
            .parse()
            .expect("pids.current");
        assert!(current <= 64, "pids.current {current} above the limit");
        let t = Instant::now();
        assert_eq!(f.ok(&quiet, ExecUser::CloudshellUser, "echo pong"), "pong");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "neighbour slow: {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Stopping kills the whole bomb.
    f.rt.stop(&bomb).expect("stop bomb");
    assert!(!pids.exists(), "bomb cgroup left behind");
    assert_eq!(
        f.ok(&quiet, ExecUser::Root, "echo still-here"),
        "still-here"
    );
    f.rt.stop(&quiet).expect("stop");
}
