//! The data channel's output throughput and keystroke echo latency, measured
//! the way `bench/data-channel/run.sh` measures wetty:
//!
//! - (a) `cat` of a 100 MiB file of 64-byte text lines, timed from sending
//!   the command to the end marker printed after it, with every output
//!   frame acknowledged as it arrives (the window is the agent's 256 KiB);
//! - (b) one byte typed into `stty raw -echo; exec cat`, timed until it comes
//!   back, 2,000 samples after 200 of warm-up.
//!
//! Two paths to the same kind of real environment (a runc container with
//! the static agent as init, the busybox image of `images/minimal`, default
//! limits: 1 vCPU, which the agent, the PTY and `cat` share):
//!
//! - `gateway` — the whole product path: an in-process `seashell serve`
//!   (SQLite), `createEnvironment`/`startEnvironment`/`createSession` signed
//!   with SigV4, then `StreamUrl` with `TokenValue` over a loopback
//!   WebSocket, with the Rust data-channel client of
//!   `tests/common/data_channel.rs` (acknowledges every output message);
//! - `agent` — the agent's control socket directly, with
//!   `seashell_runtime::agent_client::AgentClient` (the hop the gateway
//!   relays to), which shows what the server and the WebSocket add.
//!
//! `SEASHELL_BENCH_PATH` = `gateway`, `agent` or `both` (default). As root;
//! the agent binary comes from `SEASHELL_AGENT_BIN` or
//! `scripts/build-agent.sh`. `SEASHELL_BENCH_CPUS` changes the vCPUs of the
//! environment (agent path only), `SEASHELL_BENCH_PERF=<file>` records the
//! agent with `perf` during the `cat`.
//!
//! `cargo bench -p seashell-server --bench data_channel` measures and prints
//! one line `BENCH_JSON {...}` per path for `bench/data-channel/run.sh`;
//! under `cargo test` the same code makes a smoke run (1 MiB, 20 samples).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../runtime/tests/common/mod.rs"]
mod rt_common;

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "../tests/common/data_channel.rs"]
mod data_channel;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rt_common::{Fixture, Options, TIMEOUT};
use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_client::AgentClient;
use seashell_runtime::Limits;

/// The line `cat` prints: 63 characters and a newline, as in `run.sh`.
const LINE: &str = "seashell-data-channel-benchmark-0123456789abcdefghijklmnopqrstu";

struct Sizes {
    file_bytes: u64,
    samples: usize,
    warmup: usize,
}

const FULL: Sizes = Sizes {
    file_bytes: 100 << 20,
    samples: 2000,
    warmup: 200,
};

const SMOKE: Sizes = Sizes {
    file_bytes: 1 << 20,
    samples: 20,
    warmup: 5,
};

fn agent_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEASHELL_AGENT_BIN") {
        return PathBuf::from(bin);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-agent.sh");
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/build-agent.sh failed (or set SEASHELL_AGENT_BIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A terminal at the far end of a data channel.
trait Terminal {
    async fn send(&mut self, keys: &[u8]);
    async fn recv(&mut self) -> Vec<u8>;

    /// Reads until `needle` has arrived; the number of bytes read.
    async fn wait_for(&mut self, needle: &[u8]) -> u64 {
        let mut tail: Vec<u8> = Vec::new();
        let mut total = 0u64;
        loop {
            let chunk = self.recv().await;
            total += chunk.len() as u64;
            tail.extend_from_slice(&chunk);
            if memchr::memmem::find(&tail, needle).is_some() {
                return total;
            }
            // Keep only what a marker split across chunks needs.
            let keep = needle.len().min(tail.len());
            tail.drain(..tail.len() - keep);
        }
    }
}

struct AgentTerminal {
    client: AgentClient,
    session: SessionId,
}

impl Terminal for AgentTerminal {
    async fn send(&mut self, keys: &[u8]) {
        self.client.send_input(&self.session, keys).await.unwrap();
    }
    async fn recv(&mut self) -> Vec<u8> {
        self.client.next_output(&self.session).await.unwrap()
    }
}

struct GatewayTerminal {
    client: data_channel::DataChannelClient,
}

impl Terminal for GatewayTerminal {
    async fn send(&mut self, keys: &[u8]) {
        self.client.send_keys(keys).await.unwrap();
    }
    async fn recv(&mut self) -> Vec<u8> {
        unreachable!("the gateway terminal waits with wait_for")
    }
    async fn wait_for(&mut self, needle: &[u8]) -> u64 {
        let before = self.client.output().len();
        self.client
            .wait_for_bytes(needle, Duration::from_secs(300))
            .await
            .unwrap();
        (self.client.output().len() - before) as u64
    }
}

struct Figures {
    cpu: CpuUse,
    file_bytes: u64,
    received: u64,
    seconds: f64,
    echo: Vec<Duration>,
    interrupt: Vec<Duration>,
}

/// Rounds of Ctrl-C during a flood.
const INTERRUPT_ROUNDS: usize = 5;
/// Output that flows before each Ctrl-C, so the flood is in full swing.
const FLOOD_BEFORE_INTERRUPT: u64 = 4 << 20;

/// Runs both measurements on a terminal showing a fresh shell prompt. The
/// markers are typed with a quote inside, so only the output contains them.
async fn measure<T: Terminal>(term: &mut T, sizes: &Sizes, agent_pid: i32) -> Figures {
    term.send(b"stty -echo; PS1='$ '; echo BENCH_RE''ADY\r")
        .await;
    term.wait_for(b"BENCH_READY").await;
    let make = format!(
        "yes '{LINE}' | head -c {} > $HOME/bench.txt; echo BENCH_FI''LE\r",
        sizes.file_bytes
    );
    term.send(make.as_bytes()).await;
    term.wait_for(b"BENCH_FILE").await;

    // SEASHELL_BENCH_PERF=<file>: `perf record` the agent during the cat.
    let perf = std::env::var_os("SEASHELL_BENCH_PERF").map(|out| {
        let child = Command::new("perf")
            .args([
                "record",
                "-F",
                "2000",
                "-g",
                "-p",
                &agent_pid.to_string(),
                "-o",
            ])
            .arg(out)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        child
    });
    let before = cpu_now(agent_pid);
    let started = Instant::now();
    term.send(b"cat $HOME/bench.txt; echo BENCH_CAT_DO''NE\r")
        .await;
    let received = term.wait_for(b"BENCH_CAT_DONE").await;
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu_now(agent_pid);
    if let Some(mut child) = perf {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    let cpu = CpuUse {
        agent: after.agent - before.agent,
        cat: after.cat - before.cat,
        client: after.client - before.client,
    };

    // Ctrl-C while `yes` floods: from the keystroke until a command typed
    // right after it has run, which needs `yes` dead, the output in flight
    // delivered and the shell back at its prompt.
    let mut interrupt = Vec::with_capacity(INTERRUPT_ROUNDS);
    for _ in 0..INTERRUPT_ROUNDS {
        term.send(b"yes BENCH_FLO''OD\r").await;
        let mut flowed = 0;
        while flowed < FLOOD_BEFORE_INTERRUPT {
            flowed += term.wait_for(b"BENCH_FLOOD\r\nBENCH_FLOOD").await;
        }
        let begun = Instant::now();
        term.send(b"\x03").await;
        term.send(b"echo BENCH_INT''R\r").await;
        term.wait_for(b"BENCH_INTR").await;
        interrupt.push(begun.elapsed());
    }

    term.send(b"rm $HOME/bench.txt; stty raw -echo; echo BENCH_R''AW; exec cat\r")
        .await;
    term.wait_for(b"BENCH_RAW").await;
    let mut echo = Vec::with_capacity(sizes.samples);
    for i in 0..sizes.warmup + sizes.samples {
        let begun = Instant::now();
        term.send(b"x").await;
        term.wait_for(b"x").await;
        if i >= sizes.warmup {
            echo.push(begun.elapsed());
        }
    }
    Figures {
        cpu,
        file_bytes: sizes.file_bytes,
        received,
        seconds,
        echo,
        interrupt,
    }
}

/// CPU seconds a process used: its own (utime + stime) and its waited-for
/// children's (cutime + cstime), from `/proc/<pid>/stat`.
fn cpu_seconds(pid: i32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    if f.len() < 15 {
        return (0.0, 0.0);
    }
    ((f[11] + f[12]) / tick, (f[13] + f[14]) / tick)
}

/// The agent's child processes (the shells).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// Where the CPU went during the `cat`: the agent (its own process), the
/// shell's children (`cat`), and this process (the client).
#[derive(Default, Clone, Copy)]
struct CpuUse {
    agent: f64,
    cat: f64,
    client: f64,
}

fn cpu_now(agent_pid: i32) -> CpuUse {
    let shell_children: f64 = children(agent_pid).iter().map(|&p| cpu_seconds(p).1).sum();
    CpuUse {
        agent: cpu_seconds(agent_pid).0,
        cat: shell_children,
        client: cpu_seconds(std::process::id() as i32).0,
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    // Nearest rank.
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn report(path: &str, mut f: Figures) {
    f.echo.sort();
    f.interrupt.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (int_p50, int_max) = (
        percentile(&f.interrupt, 50),
        f.interrupt[f.interrupt.len() - 1],
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mb_s = f.file_bytes as f64 / f.seconds / 1e6;
    let (p50, p99, max) = (
        percentile(&f.echo, 50),
        percentile(&f.echo, 99),
        f.echo[f.echo.len() - 1],
    );
    println!(
        "CPU during the cat: agent {:.2} s, cat {:.2} s, client {:.2} s",
        f.cpu.agent, f.cpu.cat, f.cpu.client
    );
    println!(
        "seashell ({path}): cat of {} bytes in {:.3} s = {mb_s:.1} MB/s ({} bytes on the wire); echo p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} samples)",
        f.file_bytes,
        f.seconds,
        f.received,
        us(p50),
        us(p99),
        us(max),
        f.echo.len()
    );
    println!(
        "seashell ({path}): Ctrl-C during a flood to the next command's output: median {:.1} ms, max {:.1} ms ({} rounds)",
        ms(int_p50),
        ms(int_max),
        f.interrupt.len()
    );
    let json = serde_json::json!({
        "system": "seashell",
        "path": path,
        "file_bytes": f.file_bytes,
        "received_bytes": f.received,
        "seconds": f.seconds,
        "throughput_mb_s": mb_s,
        "echo_samples": f.echo.len(),
        "echo_p50_us": us(p50),
        "echo_p99_us": us(p99),
        "echo_max_us": us(max),
        "interrupt_p50_ms": ms(int_p50),
        "interrupt_max_ms": ms(int_max),
        "cpu_s": {"server": f.cpu.agent, "cat": f.cpu.cat, "client": f.cpu.client},
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    println!("BENCH_JSON {json}");
}

fn agent_path(sizes: &Sizes) -> Figures {
    let f = Fixture::with(
        "dchan",
        Options {
            // Room for the file in the home volume.
            home_bytes: 512 << 20,
            ..Options::default()
        },
    );
    let agent = AgentOptions::new(agent_binary());
    let id = f.id("bench");
    let home = f.home_key("bench");
    let mut limits = Limits::default();
    if let Some(cpus) = std::env::var("SEASHELL_BENCH_CPUS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        limits.cpu_quota_us = (cpus * limits.cpu_period_us as f64) as i64;
    }
    let mut spec = f.spec(&id, Some(home.clone()), limits);
    agent.apply(&mut spec).unwrap();
    f.rt.create(&spec).unwrap();
    f.rt.start(&id).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let figures = rt.block_on(async {
        let socket = f.rt.agent_socket(&id).unwrap();
        let mut client = AgentClient::connect_when_ready(&socket, Some(id.as_str()), TIMEOUT)
            .await
            .unwrap();
        // A 100 MiB cat takes longer than the default wait.
        client.set_timeout(Duration::from_secs(300));
        let session = SessionId("bench".into());
        client
            .open_session(&session, Shell::Bash, 80, 24, Default::default())
            .await
            .unwrap();
        client.attach(&session, AttachMode::Fresh).await.unwrap();
        let agent_pid = f.rt.init_pid(&id).unwrap().unwrap();
        let mut term = AgentTerminal { client, session };
        measure(&mut term, sizes, agent_pid).await
    });
    f.rt.delete(&id, Some(&home)).unwrap();
    figures
}

fn gateway_path(sizes: &Sizes) -> Figures {
    use serde_json::json;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = seashell_server::Config::load(
        None,
        seashell_server::Overrides {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(data_dir.path().to_path_buf()),
            database_url: Some(format!(
                "sqlite://{}?mode=rwc",
                data_dir.path().join("seashell.db").display()
            )),
            ..seashell_server::Overrides::default()
        },
    )
    .unwrap();
    let s = &mut config.cloudshell;
    s.image = "minimal".into();
    s.agent_binary = Some(agent_binary());
    s.network = false;
    s.home_mib = 512;
    s.cgroup_parent = format!("seashell-bench-{}", std::process::id());
    // Removes the environments' containers, mounts and cgroups, also when
    // the run fails.
    let _cleanup = common::cloudshell::Cleanup(config.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let running = seashell_server::start(config.clone()).await.unwrap();
        let key = running
            .state()
            .store
            .create_access_key(&running.first_account.admin.user_id)
            .await
            .unwrap();
        let api = common::cloudshell::Api::new(
            &format!("http://{}", running.local_addr),
            (&key.0, &key.1),
        );
        let id = api.running_environment().await;
        let created = api
            .call(
                "createSession",
                json!({"EnvironmentId": id, "TabId": "bench"}),
            )
            .await
            .ok();
        let url = created["StreamUrl"].as_str().unwrap().to_string();
        let token = created["TokenValue"].as_str().unwrap().to_string();
        let client = data_channel::DataChannelClient::connect(&url, &token)
            .await
            .unwrap();
        // The agent's pid, from a runtime handle on the server's own state
        // (the environment id is the container's name).
        let s = &config.cloudshell;
        let runtime = seashell_runtime::Runtime::new(seashell_runtime::RuntimeConfig {
            data_dir: s.runtime_dir(&config.data_dir),
            state_dir: s.state_dir.clone().unwrap_or_else(|| {
                seashell_server::envs::backend::default_state_dir(&config.data_dir)
            }),
            cgroup_parent: s.cgroup_parent.clone(),
            network: None,
            ..seashell_runtime::RuntimeConfig::default()
        })
        .unwrap();
        let agent_pid = runtime
            .init_pid(&seashell_runtime::EnvironmentId::new(id.clone()).unwrap())
            .unwrap()
            .unwrap();
        let mut term = GatewayTerminal { client };
        let figures = measure(&mut term, sizes, agent_pid).await;
        api.call("deleteEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        running.run_until(async {}).await.unwrap();
        figures
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let which = std::env::var("SEASHELL_BENCH_PATH").unwrap_or_else(|_| "both".into());
    if which == "agent" || which == "both" {
        report("agent", agent_path(&sizes));
    }
    if which == "gateway" || which == "both" {
        report("gateway", gateway_path(&sizes));
    }
}
