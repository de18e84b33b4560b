//! The full default image: built by `image::ensure` (what `seashell image
//! build` and the server's start run), imported, run with the real static
//! agent as init, and used through `AgentClient` the way the console uses
//! it: bash as cloudshell-user, the promised tools, and full-screen programs
//! (vim, less, top) repainted faithfully for a client that reattaches with
//! an empty terminal.
//!
//! The image is built once into `target/tmp/seashell-default-image` and
//! reused by later runs (a complete image is reused at once). The first
//! build downloads about 170 MB from Debian and PyPI and needs
//! `debootstrap` (scripts/install-runtime-deps.sh). The agent binary comes
//! from `SEASHELL_AGENT_BIN`, else `scripts/build-agent.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Fixture, TIMEOUT};
use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_client::AgentClient;
use seashell_runtime::image::{self, BuildOptions, ImageInfo, ImageKind, Progress};
use seashell_runtime::{IdMap, Limits, PreparedImage, Runtime, RuntimeConfig};

const COLS: u16 = 100;
const ROWS: u16 = 30;

/// Build steps on standard error, so a first (long) build shows progress.
struct Steps;

impl Progress for Steps {
    fn step(&mut self, index: usize, total: usize, title: &str) {
        eprintln!("default image: [{index}/{total}] {title}");
    }
    fn output(&mut self, _: &str) {}
    fn step_done(&mut self, elapsed: Duration) {
        eprintln!("default image:     done in {:.1} s", elapsed.as_secs_f64());
    }
}

/// Types `line` and waits for `expect`, which the shell computes, so the
/// echo of the typed line never matches by itself.
async fn run(agent: &mut AgentClient, s: &SessionId, line: &str, expect: &str) -> String {
    agent
        .send_input(s, format!("{line}\n").as_bytes())
        .await
        .expect("typing");
    agent
        .wait_output(s, expect)
        .await
        .unwrap_or_else(|e| panic!("waiting for {expect:?} after {line:?}: {e}"))
}

/// Feeds output into `parser` until `done` accepts its screen; fails with
/// the screen after the client's timeout.
async fn screen_until(
    agent: &mut AgentClient,
    s: &SessionId,
    parser: &mut vt100::Parser,
    what: &str,
    done: impl Fn(&vt100::Screen) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(parser.screen()) {
        assert!(
            Instant::now() < deadline,
            "{what}: screen never matched (alternate screen: {}):\n{}",
            parser.screen().alternate_screen(),
            parser.screen().contents()
        );
        match agent.next_output(s).await {
            Ok(bytes) => parser.process(&bytes),
            Err(e) => panic!(
                "{what}: {e}; screen so far:\n{}",
                parser.screen().contents()
            ),
        }
    }
}

/// Starts `program`, waits until it shows `shown`, detaches, reattaches as
/// a new terminal would (`Fresh`) and checks that the repaint alone, fed
/// into an empty emulator, shows `shown` on the alternate screen (if
/// `alternate`: the program switches to it) or else on the primary one.
/// Then quits it with `quit` and checks a prompt answers again.
async fn faithful_after_reattach(
    agent: &mut AgentClient,
    s: &SessionId,
    program: &str,
    alternate: bool,
    shown: &[&str],
    quit: &[u8],
    n: u32,
) {
    agent
        .send_input(s, format!("{program}\n").as_bytes())
        .await
        .expect("typing");
    let mut live = vt100::Parser::new(ROWS, COLS, 0);
    screen_until(agent, s, &mut live, program, |sc| {
        sc.alternate_screen() == alternate && shown.iter().all(|t| sc.contents().contains(t))
    })
    .await;

    agent.detach(s).await.expect("detach");
    agent.attach(s, AttachMode::Fresh).await.expect("reattach");
    let mut fresh = vt100::Parser::new(ROWS, COLS, 0);
    screen_until(
        agent,
        s,
        &mut fresh,
        &format!("{program} after a fresh reattach"),
        |sc| sc.alternate_screen() == alternate && shown.iter().all(|t| sc.contents().contains(t)),
    )
    .await;

    agent.send_input(s, quit).await.expect("quit");
    // The prompt comes back (on the primary screen) before anything else
    // is typed, which the program would otherwise swallow.
    screen_until(agent, s, &mut fresh, &format!("quitting {program}"), |sc| {
        !sc.alternate_screen()
            && sc
                .contents()
                .trim_end()
                .ends_with("[cloudshell-user@seashell-env ~]$")
    })
    .await;
    run(
        agent,
        s,
        &format!(
            "echo back-from-{}-$(({n}*11))",
            program.split(' ').next().unwrap_or("")
        ),
        &format!("-{}", n * 11),
    )
    .await;
}

/// The default image imported (copied and id-shifted, about 800 MB) into a
/// runtime store next to the build cache, so that later runs reuse it; it
/// is imported again when the image was rebuilt. The test's own runtime
/// uses it as the overlay's lower layer, read-only.
fn imported(cache: &Path, built: &ImageInfo, id_map: IdMap) -> PreparedImage {
    let root = cache.with_file_name("runtime");
    let store = Runtime::new(RuntimeConfig {
        data_dir: root.join("data"),
        state_dir: root.join("runc"),
        cgroup_parent: "seashell-test-default-image".into(),
        network: None,
        ..RuntimeConfig::default()
    })
    .unwrap_or_else(|e| panic!("image store: {e}"));
    // Copies a killed run left behind (they carry its pid).
    let images = root.join("data/images");
    for e in std::fs::read_dir(&images).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(".default.partial-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    if let Ok(old) = store.image("default") {
        let same = ImageInfo::read(&old.rootfs).ok().flatten().as_ref() == Some(built);
        if !same || old.id_map != id_map {
            let dir = old.rootfs.parent().expect("image dir").to_owned();
            eprintln!(
                "default image: discarding the stale import {}",
                dir.display()
            );
            std::fs::remove_dir_all(&dir).expect("remove stale import");
        }
    }
    let begun = Instant::now();
    let image = store
        .import_image("default", cache, id_map)
        .unwrap_or_else(|e| panic!("import the default image: {e}"));
    eprintln!(
        "default image: import ready in {:.1} s",
        begun.elapsed().as_secs_f64()
    );
    image
}

#[test]
fn the_default_image_runs_the_cloudshell_tools_and_repaints_them() {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("seashell-default-image")
        .join("default");
    std::fs::create_dir_all(cache.parent().expect("parent")).expect("cache dir");
    let report = image::ensure(
        &BuildOptions {
            kind: ImageKind::Default,
            output: cache.clone(),
            force: false,
            mirror: None,
        },
        &mut Steps,
    )
    .unwrap_or_else(|e| panic!("building the default image: {e}"));
    eprintln!(
        "default image: {:?} {} ({})",
        report.outcome, report.info.name, report.info.build_date
    );
    assert_eq!(report.info.name, "seashell-default");

    let f = Fixture::new("default-image");
    let default = imported(&cache, &report.info, f.id_map);
    let id = f.id("env");
    let mut spec = f.spec(&id, Some(f.home_key("default")), Limits::default());
    spec.image = default;
    AgentOptions::new(common::agent_binary())
        .apply(&mut spec)
        .expect("agent spec");
    f.rt.create(&spec).expect("create");
    f.rt.start(&id).expect("start");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let socket = f.rt.agent_socket(&id).expect("socket");
        let mut agent = AgentClient::connect_when_ready(&socket, Some(id.as_str()), TIMEOUT)
            .await
            .expect("connect to the agent");
        agent.set_timeout(TIMEOUT);
        let s = SessionId("tools".into());
        agent
            .open_session(&s, Shell::Bash, COLS, ROWS, Default::default())
            .await
            .expect("open session");
        agent.attach(&s, AttachMode::Fresh).await.expect("attach");

        // bash, as cloudshell-user, with the promised tools.
        run(
            &mut agent,
            &s,
            "echo shell=$(id -un):$(id -u):${BASH_VERSION%%.*}:$((40+2))",
            "shell=cloudshell-user:1000:5:42",
        )
        .await;
        let out = run(&mut agent, &s, "aws --version 2>&1 | head -c 8; echo", "aws-cli/").await;
        assert!(out.contains("aws-cli/"), "{out}");
        run(
            &mut agent,
            &s,
            "python3 -c 'import boto3; print(\"boto3\", 6*7)'",
            "boto3 42",
        )
        .await;
        run(
            &mut agent,
            &s,
            "for p in vim less top; do command -v $p >/dev/null && printf '%s-ok ' $p; done; echo n=$((3))",
            "vim-ok less-ok top-ok n=3",
        )
        .await;

        // Files with known text, made by the shell.
        run(
            &mut agent,
            &s,
            "printf 'notes of the seashell test\\nthe answer is %s\\n' $((6*7)) > ~/notes.txt; \
             seq -f 'page line %g' 1 200 > ~/pages.txt; echo files-$((2*5))",
            "files-10",
        )
        .await;

        faithful_after_reattach(
            &mut agent,
            &s,
            "vim ~/notes.txt",
            true,
            &["notes of the seashell test", "the answer is 42", "notes.txt"],
            b":q!\r",
            1,
        )
        .await;
        faithful_after_reattach(
            &mut agent,
            &s,
            "less ~/pages.txt",
            true,
            &["page line 1\n", "page line 29"],
            b"q",
            2,
        )
        .await;
        faithful_after_reattach(
            &mut agent,
            &s,
            // procps-ng's top draws on the primary screen.
            "top",
            false,
            &["top - ", "load average", "Tasks:", "MiB Mem"],
            b"q",
            3,
        )
        .await;
    });

    f.rt.stop(&id).expect("stop");
}
