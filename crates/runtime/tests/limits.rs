//! Resource limits: the home volume's size, memory, CPU and pids.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{loops_under, mounts_under, Fixture};
use seashell_runtime::{Error, ExecUser, Limits, Runtime, RuntimeConfig};

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

/// Free space, in KiB, of the host file system holding `path`, after
/// flushing it (the environment's writes reach the host file system
/// through the root disk's loop device only on writeback).
fn host_avail_kib(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("sync -f \"$1\" && df -k --output=avail \"$1\" | tail -n 1")
        .arg("sh")
        .arg(path)
        .output()
        .expect("run df");
    assert!(out.status.success(), "df failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("df output {out:?}: {e}"))
}

/// Size in MiB of a file inside the environment.
fn size_mib(f: &Fixture, id: &seashell_runtime::EnvironmentId, path: &str) -> u64 {
    f.ok(id, ExecUser::Root, &format!("wc -c < {path}"))
        .parse::<u64>()
        .expect("wc -c")
        >> 20
}

/// Root filling `/tmp` and `/var` inside an environment hits ENOSPC at the
/// root disk's configured size; the host's data file system keeps its free
/// space, the home keeps its own, and after stop/start the upper layer is
/// fresh with no mount or loop device left over.
#[test]
fn full_root_disk_gives_enospc_and_spares_the_host() {
    const ROOT_MIB: u64 = 128;
    let f = Fixture::new("rootdisk");
    let id = f.id("env");
    let key = f.home_key("rootdisk");
    let limits = Limits {
        root_bytes: ROOT_MIB << 20,
        ..Limits::default()
    };
    f.up(&id, Some(key.clone()), limits);
    let data_dir = f.rt.config().data_dir.clone();
    let image = f.env_dir(&id).join("root.ext4");

    // `/` is a file system of the configured size (less ext4's metadata).
    let root_kib: u64 = f
        .ok(&id, ExecUser::Root, "df -k / | awk 'NR == 2 { print $2 }'")
        .parse()
        .expect("df /");
    assert!(
        ((ROOT_MIB - 16) << 10..=ROOT_MIB << 10).contains(&root_kib),
        "/ is {root_kib} KiB, not about {ROOT_MIB} MiB"
    );
    f.ok(&id, ExecUser::CloudshellUser, "echo kept > ~/notes.txt");
    let home_avail = || -> u64 {
        f.ok(
            &id,
            ExecUser::CloudshellUser,
            "df -k ~ | awk 'NR == 2 { print $4 }'",
        )
        .parse()
        .expect("df ~")
    };
    let home_before = home_avail();
    let host_before = host_avail_kib(&data_dir);

    // Each dd tries 1 GiB, eight times the limit: without the limit the
    // host would lose 2 GiB below.
    let out = f.sh(
        &id,
        ExecUser::Root,
        "dd if=/dev/zero of=/tmp/fill bs=1M count=1024",
    );
    assert!(!out.success(), "dd wrote 1 GiB into /tmp: {out:?}");
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
    let tmp_mib = size_mib(&f, &id, "/tmp/fill");
    assert!(
        (ROOT_MIB - 24..ROOT_MIB).contains(&tmp_mib),
        "/tmp took {tmp_mib} MiB of a {ROOT_MIB} MiB root disk"
    );
    // Top up the last partial blocks; /var shares the limit: full with
    // /tmp's files in place, and filled alone once they are gone.
    let out = f.sh(&id, ExecUser::Root, "dd if=/dev/zero of=/tmp/fill2 bs=4k");
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
    let out = f.sh(
        &id,
        ExecUser::Root,
        "dd if=/dev/zero of=/var/small bs=4k count=16",
    );
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
    f.ok(&id, ExecUser::Root, "rm /tmp/fill /tmp/fill2");
    let out = f.sh(
        &id,
        ExecUser::Root,
        "dd if=/dev/zero of=/var/fill bs=1M count=1024",
    );
    assert!(!out.success(), "dd wrote 1 GiB into /var: {out:?}");
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
    let var_mib = size_mib(&f, &id, "/var/fill");
    assert!(
        (ROOT_MIB - 24..ROOT_MIB).contains(&var_mib),
        "/var took {var_mib} MiB of a {ROOT_MIB} MiB root disk"
    );
    // Top up the last partial blocks: the root disk is then completely full.
    let out = f.sh(&id, ExecUser::Root, "dd if=/dev/zero of=/var/fill2 bs=4k");
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
    let left_kib: u64 = f
        .ok(&id, ExecUser::Root, "df -k / | awk 'NR == 2 { print $4 }'")
        .parse()
        .expect("df /");
    assert!(
        left_kib <= 16,
        "{left_kib} KiB still free on a full root disk"
    );

    // The host: the image never grew beyond its size, and the data
    // directory's file system lost no more than that (plus what other
    // processes on the machine wrote meanwhile; the bound is far below the
    // 2 GiB attempted).
    let host_after = host_avail_kib(&data_dir);
    let dropped_mib = host_before.saturating_sub(host_after) >> 10;
    assert!(
        dropped_mib < 512,
        "the host's data file system lost {dropped_mib} MiB"
    );
    let meta = std::fs::metadata(&image).expect("root disk image");
    assert_eq!(meta.len(), ROOT_MIB << 20, "root disk image size");
    assert!(
        meta.blocks() * 512 <= (ROOT_MIB + 1) << 20,
        "root disk image grew beyond its size: {} bytes",
        meta.blocks() * 512
    );

    // The home is untouched and still writable while / is full.
    assert_eq!(home_avail(), home_before, "the home lost space");
    assert_eq!(
        f.ok(
            &id,
            ExecUser::CloudshellUser,
            "dd if=/dev/zero of=$HOME/more bs=1M count=8 2>/dev/null && cat ~/notes.txt"
        ),
        "kept"
    );

    // Stop leaves nothing behind, not even a loop device attached to the
    // image without a mount (what a crash inside `mount -o loop` leaves);
    // start gives an empty upper layer on a new root disk, with the home
    // as it was.
    let stray = std::process::Command::new("losetup")
        .args(["-r", "-f", "--show"])
        .arg(&image)
        .output()
        .expect("losetup");
    assert!(stray.status.success(), "losetup: {stray:?}");
    assert_eq!(loops_under(&f.root).len(), 3, "{:?}", loops_under(&f.root));
    f.rt.stop(&id).expect("stop");
    assert!(!f.env_dir(&id).exists(), "root disk not discarded");
    assert!(mounts_under(&f.root).is_empty(), "mounts left after stop");
    assert!(
        loops_under(&f.root).is_empty(),
        "loop devices left after stop"
    );
    f.up(&id, Some(key.clone()), limits);
    assert_eq!(
        f.ok(
            &id,
            ExecUser::Root,
            "ls /tmp/fill /tmp/fill2 /var/fill /var/fill2 /var/small 2>/dev/null | wc -l"
        ),
        "0"
    );
    let used_kib: u64 = f
        .ok(&id, ExecUser::Root, "df -k / | awk 'NR == 2 { print $3 }'")
        .parse()
        .expect("df /");
    assert!(
        used_kib < 4 << 10,
        "a fresh root disk has {used_kib} KiB used"
    );
    let fresh = std::fs::metadata(&image).expect("new root disk image");
    assert!(
        fresh.blocks() * 512 < 4 << 20,
        "a fresh root disk takes {} bytes on the host",
        fresh.blocks() * 512
    );
    assert_eq!(
        f.ok(&id, ExecUser::CloudshellUser, "cat ~/notes.txt"),
        "kept"
    );
    // Running: exactly the root disk's and the home's loop devices.
    assert_eq!(loops_under(&f.root).len(), 2, "{:?}", loops_under(&f.root));
    f.rt.stop(&id).expect("stop");
    assert!(mounts_under(&f.root).is_empty(), "mounts left after stop");
    assert!(
        loops_under(&f.root).is_empty(),
        "loop devices left after stop"
    );
}

/// A start that would leave the data directory's file system below the
/// floor once its root disk filled is refused before anything is made.
#[test]
fn a_start_below_the_free_space_floor_is_refused() {
    let f = Fixture::new("floor");
    let id = f.id("env");
    let data_dir = f.rt.config().data_dir.clone();
    let free = host_avail_kib(&data_dir) << 10;
    // A floor just above what is free: the start is refused.
    let strict = Runtime::new(RuntimeConfig {
        min_free_bytes: free + (64 << 30),
        ..f.rt.config().clone()
    })
    .expect("runtime");
    match strict.create(&f.spec(&id, Some(f.home_key("floor")), Limits::default())) {
        Err(Error::LowDiskSpace {
            free_mib,
            needed_mib,
            ..
        }) => assert!(free_mib < needed_mib, "{free_mib} >= {needed_mib}"),
        other => panic!("create below the floor: {other:?}"),
    }
    assert!(
        !f.env_dir(&id).exists(),
        "a refused start left its directory"
    );
    assert!(
        !f.rt.home_path(&f.home_key("floor")).exists(),
        "a refused start made a home"
    );
    assert!(
        mounts_under(&f.root).is_empty(),
        "a refused start left mounts"
    );
    assert!(
        loops_under(&f.root).is_empty(),
        "a refused start left loop devices"
    );
    // The default floor (1 GiB) lets it start.
    f.up(&id, Some(f.home_key("floor")), Limits::default());
    assert_eq!(f.ok(&id, ExecUser::Root, "echo up"), "up");
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
