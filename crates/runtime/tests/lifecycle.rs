//! Lifecycle: persistence of home across stop/start, the ephemeral rest,
//! idempotent stop, invalid transitions, delete, crash reconciliation, and
//! host checks.

mod common;

use std::path::Path;
use std::process::Command;

use common::{loops_under, mounts_under, Fixture, Options};
use seashell_runtime::home::DEFAULT_HOME_BYTES;
use seashell_runtime::{EnvironmentStatus, Error, ExecUser, IdMap, Limits, Runtime};

/// Home survives stop/start; /tmp and files installed under /usr do not.
/// Stop is idempotent and impossible transitions give clear errors.
#[test]
fn home_persists_and_everything_else_is_ephemeral() {
    let f = Fixture::new("persist");
    let id = f.id("env");
    let key = f.home_key("persist");
    f.up(&id, Some(key.clone()), Limits::default());
    assert_eq!(
        f.rt.status(&id).expect("status"),
        EnvironmentStatus::Running
    );

    f.ok(&id, ExecUser::CloudshellUser, "echo kept > ~/notes.txt");
    f.ok(
        &id,
        ExecUser::Root,
        "echo gone > /tmp/scratch && printf '#!/bin/sh\\necho hi\\n' > /usr/local/bin/tool && chmod +x /usr/local/bin/tool && tool",
    );

    // Starting a running environment is fine; creating it again is not.
    f.rt.start(&id).expect("start while running is a no-op");
    match f
        .rt
        .create(&f.spec(&id, Some(key.clone()), Limits::default()))
    {
        Err(Error::InvalidTransition {
            operation, state, ..
        }) => {
            assert_eq!((operation, state.as_str()), ("create", "running"));
        }
        other => panic!("create while running: {other:?}"),
    }

    f.rt.stop(&id).expect("stop");
    assert_eq!(
        f.rt.status(&id).expect("status"),
        EnvironmentStatus::Stopped
    );
    assert!(!f.env_dir(&id).exists(), "upper layer not discarded");
    assert!(mounts_under(&f.root).is_empty(), "mounts left after stop");
    assert!(
        loops_under(&f.root).is_empty(),
        "loop device left after stop"
    );
    assert!(f.rt.home_path(&key).exists(), "home volume removed by stop");
    assert!(
        !f.rt.cgroup_dir(&id, "memory").exists(),
        "cgroup left after stop"
    );

    f.rt.stop(&id)
        .expect("stopping a stopped environment is fine");
    assert!(matches!(f.rt.start(&id), Err(Error::NotFound { .. })));
    assert!(matches!(
        f.rt.exec(&id, ExecUser::Root, &["true"], common::TIMEOUT),
        Err(Error::InvalidTransition { .. })
    ));

    f.up(&id, Some(key.clone()), Limits::default());
    assert_eq!(
        f.ok(&id, ExecUser::CloudshellUser, "cat ~/notes.txt"),
        "kept"
    );
    assert_eq!(f.ok(&id, ExecUser::Root, "ls -A /tmp | wc -l"), "0");
    assert!(!f
        .sh(&id, ExecUser::Root, "test -e /usr/local/bin/tool")
        .success());
    f.rt.stop(&id).expect("stop");
}

/// Delete removes the environment and its home image; a home in use cannot
/// be deleted.
#[test]
fn delete_removes_home_image() {
    let f = Fixture::new("delete");
    let id = f.id("env");
    let key = f.home_key("delete");
    f.up(&id, Some(key.clone()), Limits::default());
    let image = f.rt.home_path(&key);
    assert!(image.exists());

    assert!(matches!(
        f.rt.delete_home(&key),
        Err(Error::HomeInUse { .. })
    ));
    assert!(image.exists());

    f.rt.delete(&id, Some(&key)).expect("delete");
    assert!(!image.exists(), "home image still exists after delete");
    assert_eq!(
        f.rt.status(&id).expect("status"),
        EnvironmentStatus::Stopped
    );
    f.rt.delete(&id, Some(&key))
        .expect("deleting twice is fine");
    assert!(!f.rt.delete_home(&key).expect("delete_home"));
}

/// A restarted runtime finds containers, mounts, loop devices, layers and
/// cgroups of environments it no longer wants and removes them, leaving the
/// wanted ones alone.
#[test]
fn reconcile_cleans_leftovers_after_crash() {
    let f = Fixture::new("reconcile");
    let unwanted = f.id("unwanted");
    let wanted = f.id("wanted");
    f.up(&unwanted, Some(f.home_key("reconcile")), Limits::default());
    f.up(&wanted, None, Limits::default());

    // Debris of a crash in the middle of a create: a directory with a mount
    // and a loop device over a home volume that nothing has mounted.
    let data = f.rt.config().data_dir.clone();
    let stale = data.join("envs/stale-env");
    std::fs::create_dir_all(stale.join("bundle/rootfs")).expect("mkdir");
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(stale.join("bundle/rootfs"))
        .status()
        .expect("mount");
    assert!(st.success());
    let orphan = data.join("homes/home-orphan.ext4");
    std::fs::write(&orphan, vec![0u8; 1 << 20]).expect("orphan file");
    let st = Command::new("losetup")
        .arg("-f")
        .arg(&orphan)
        .status()
        .expect("losetup");
    assert!(st.success());

    // "Restart": a fresh runtime over the same directories.
    let rt2 = Runtime::new(f.rt.config().clone()).expect("runtime");
    let wanted_id = wanted.clone();
    let report = rt2.reconcile(&|id| *id == wanted_id).expect("reconcile");
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert_eq!(report.containers_removed, vec![unwanted.to_string()]);
    assert_eq!(report.kept, vec![wanted.to_string()]);
    assert!(report
        .directories_removed
        .iter()
        .any(|d| d.ends_with("stale-env")));
    assert_eq!(report.loops_detached.len(), 1, "{report:?}");

    assert_eq!(
        rt2.status(&unwanted).expect("status"),
        EnvironmentStatus::Stopped
    );
    assert!(!stale.exists());
    assert!(!f.env_dir(&unwanted).exists());
    assert!(!rt2.cgroup_dir(&unwanted, "pids").exists());
    assert!(loops_under(&data.join("homes")).is_empty());
    let m = mounts_under(&data);
    assert!(
        m.iter()
            .all(|t| Path::new(t).starts_with(f.env_dir(&wanted))),
        "{m:?}"
    );

    // The wanted environment was not touched.
    assert_eq!(f.ok(&wanted, ExecUser::Root, "echo alive"), "alive");
    f.rt.stop(&wanted).expect("stop");
}

/// crun on a host that is not cgroup v2-only is refused with an explanation;
/// a missing runtime names its package.
#[test]
fn crun_on_hybrid_host_is_explained() {
    common::require_host_tools();
    let layout = seashell_runtime::host::cgroup_layout().expect("layout");
    match seashell_runtime::host::check("crun") {
        Err(Error::MissingProgram { package, .. }) => assert_eq!(package, "crun"),
        Err(e @ Error::Host { .. }) => {
            assert_ne!(layout, seashell_runtime::CgroupLayout::V2);
            let msg = e.to_string();
            assert!(
                msg.contains("crun") && msg.contains("cgroup v2") && msg.contains("runc"),
                "{msg}"
            );
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(report) => assert_eq!(layout, seashell_runtime::CgroupLayout::V2, "{report:?}"),
    }
    match seashell_runtime::host::check("/nonexistent/runc") {
        Err(Error::MissingProgram { package, .. }) => assert_eq!(package, "runc"),
        other => panic!("missing runtime: {other:?}"),
    }
    let report = seashell_runtime::host::check("runc").expect("runc host check");
    assert_eq!(report.runtime_kind, seashell_runtime::OciRuntimeKind::Runc);
    assert_eq!(report.cgroup_layout, layout);
}

/// A new home volume is a sparse 1 GiB ext4 filesystem by default.
#[test]
fn default_home_volume_is_one_gib_and_sparse() {
    let f = Fixture::with(
        "homesize",
        Options {
            home_bytes: DEFAULT_HOME_BYTES,
            ..Options::default()
        },
    );
    let id = f.id("env");
    let key = f.home_key("homesize");
    f.up(&id, Some(key.clone()), Limits::default());
    let total_kib: u64 = f
        .ok(
            &id,
            ExecUser::CloudshellUser,
            "df -k ~ | awk 'NR == 2 { print $2 }'",
        )
        .parse()
        .expect("df total");
    // ext4 metadata and the journal take a few percent of the device.
    assert!(
        (900 << 10..=1 << 20).contains(&total_kib),
        "home is {total_kib} KiB"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(f.rt.home_path(&key)).expect("home image");
    assert_eq!(meta.len(), 1 << 30);
    assert!(
        meta.blocks() * 512 < 200 << 20,
        "image is not sparse: {} bytes used",
        meta.blocks() * 512
    );
    f.rt.stop(&id).expect("stop");
}

/// Extra bind mounts (the agent binary later) are read-only inside, and an
/// image prepared for one id range cannot be used with another.
#[test]
fn read_only_binds_and_image_mapping_checks() {
    let f = Fixture::new("binds");
    let agent = f.root.join("agent.txt");
    std::fs::write(&agent, "agent\n").expect("agent file");
    let id = f.id("env");
    let mut spec = f.spec(&id, None, Limits::default());
    spec.ro_binds = vec![(agent.clone(), "/opt/seashell/agent.txt".into())];
    f.rt.create(&spec).expect("create");
    f.rt.start(&id).expect("start");
    assert_eq!(
        f.ok(&id, ExecUser::Root, "cat /opt/seashell/agent.txt"),
        "agent"
    );
    let out = f.sh(
        &id,
        ExecUser::Root,
        "echo changed > /opt/seashell/agent.txt",
    );
    assert!(!out.success(), "read-only bind writable: {out:?}");
    assert_eq!(std::fs::read_to_string(&agent).expect("agent"), "agent\n");
    f.rt.stop(&id).expect("stop");

    // A failing `runc create` reports runc's own message and leaves nothing.
    let mut spec = f.spec(&id, Some(f.home_key("binds")), Limits::default());
    spec.ro_binds = vec![(f.root.join("no-such-file"), "/opt/missing".into())];
    match f.rt.create(&spec) {
        Err(Error::Command {
            command, stderr, ..
        }) => {
            assert!(command.contains("create"), "{command}");
            assert!(
                stderr.contains("no-such-file"),
                "runc error not reported: {stderr}"
            );
        }
        other => panic!("create with a missing bind source: {other:?}"),
    }
    assert_eq!(
        f.rt.status(&id).expect("status"),
        EnvironmentStatus::Stopped
    );
    assert!(!f.env_dir(&id).exists(), "layers left after failed create");
    assert!(
        mounts_under(&f.root).is_empty(),
        "mounts left after failed create"
    );
    assert!(
        loops_under(&f.root).is_empty(),
        "loop device left after failed create"
    );

    let other = IdMap {
        host_base: 300_000,
        size: 65_536,
    };
    let mut spec = f.spec(&id, None, Limits::default());
    spec.id_map = other;
    assert!(matches!(
        f.rt.create(&spec),
        Err(Error::ImageMapping { .. })
    ));
    let src = f.root.join("image-src");
    assert!(matches!(
        f.rt.import_image("minimal", &src, other),
        Err(Error::ImageMapping { .. })
    ));
    assert_eq!(
        f.rt.status(&id).expect("status"),
        EnvironmentStatus::Stopped
    );
}
