//! Environments run by the agent: start latency (without and with
//! networking), attach latency, memory, and how many fit on this machine.
//!
//! `cargo bench -p seashell-runtime --bench environment` measures (as
//! root, with real containers); under `cargo test` (no `--bench` argument)
//! the same code makes a tiny smoke run. The agent binary is found as in
//! `tests/agent_environment.rs` (`SEASHELL_AGENT_BIN`, or
//! `scripts/build-agent.sh`). Results are recorded in `docs/benchmarks.md`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Fixture, Options, TIMEOUT};
use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
use seashell_runtime::agent::AgentOptions;
use seashell_runtime::agent_client::AgentClient;
use seashell_runtime::home::DEFAULT_HOME_BYTES;
use seashell_runtime::{ApiForward, EnvironmentId, HomeKey, Limits, NetworkConfig};

struct Sizes {
    cold_runs: usize,
    warm_runs: usize,
    extra_sessions: usize,
    capacity: usize,
}

const FULL: Sizes = Sizes {
    cold_runs: 20,
    warm_runs: 20,
    extra_sessions: 5,
    capacity: 200,
};

const SMOKE: Sizes = Sizes {
    cold_runs: 2,
    warm_runs: 2,
    extra_sessions: 1,
    capacity: 2,
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

struct Bench {
    f: Fixture,
    agent: AgentOptions,
}

impl Bench {
    fn create_and_start(&self, id: &EnvironmentId, home: &HomeKey) -> seashell_runtime::Result<()> {
        let mut spec = self.f.spec(id, Some(home.clone()), Limits::default());
        self.agent.apply(&mut spec)?;
        self.f.rt.create(&spec)?;
        self.f.rt.start(id)
    }

    async fn connect(&self, id: &EnvironmentId) -> AgentClient {
        let socket = self.f.rt.agent_socket(id).unwrap();
        AgentClient::connect_when_ready(&socket, Some(id.as_str()), TIMEOUT)
            .await
            .unwrap()
    }

    /// Opens and attaches a session; returns when its first output byte
    /// (the prompt) has arrived.
    async fn session(agent: &mut AgentClient, name: &str) -> SessionId {
        let s = SessionId(name.into());
        agent
            .open_session(&s, Shell::Bash, 80, 24, Default::default())
            .await
            .unwrap();
        agent.attach(&s, AttachMode::Fresh).await.unwrap();
        agent.next_output(&s).await.unwrap();
        s
    }
}

/// Cold starts from nothing: a new home volume, create, start, connect,
/// open a session, first byte of its prompt; each environment deleted
/// (home included) after its run.
fn cold_starts(bench: &Bench, rt: &tokio::runtime::Runtime, runs: usize) -> Vec<Duration> {
    let mut cold = Vec::new();
    for i in 0..runs {
        let id = bench.f.id(&format!("cold-{i}"));
        let home = bench.f.home_key(&format!("cold-{i}"));
        assert!(!bench.f.rt.home_path(&home).exists());
        let begun = Instant::now();
        bench.create_and_start(&id, &home).unwrap();
        rt.block_on(async {
            let mut agent = bench.connect(&id).await;
            Bench::session(&mut agent, "s").await;
        });
        cold.push(begun.elapsed());
        bench.f.rt.delete(&id, Some(&home)).unwrap();
    }
    cold
}

/// A pool of its own (the network tests use 10.100-199.x), the host's
/// resolvers and an API forward, as the server configures them.
fn bench_network() -> NetworkConfig {
    let routes = Command::new("ip")
        .args(["-4", "route"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        !routes.contains("10.98."),
        "the host uses 10.98.0.0/16, which the benchmark needs:\n{routes}"
    );
    NetworkConfig {
        pool: Ipv4Addr::new(10, 98, 0, 0),
        prefix_len: 16,
        api: Some(ApiForward::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            false,
        )),
        ..NetworkConfig::default()
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    // Nearest rank.
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn summary(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    (
        percentile(samples, 50),
        percentile(samples, 95),
        samples[samples.len() - 1],
    )
}

/// The agent's resident memory: all of it (VmRSS, which counts the pages of
/// the binary shared by every environment) and its private part (RssAnon).
fn rss_kib(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn kib((rss, anon): (u64, u64)) -> String {
    format!("{rss} KiB (private {anon} KiB)")
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let bench = Bench {
        // Full-size (1 GiB) home volumes, as environments get by default.
        f: Fixture::with(
            "bench",
            Options {
                home_bytes: DEFAULT_HOME_BYTES,
                ..Options::default()
            },
        ),
        agent: AgentOptions::new(agent_binary()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // Cold start: a new home volume, create, start, connect, open a
    // session, first byte of its prompt.
    let mut cold = cold_starts(&bench, &rt, sizes.cold_runs);
    let (p50, p95, max) = summary(&mut cold);
    rows.push((
        format!("cold start to first prompt byte ({} runs)", cold.len()),
        format!("p50 {} / p95 {} / max {}", ms(p50), ms(p95), ms(max)),
        "< 500 ms".into(),
    ));

    // The same with networking: veth pair, addresses and routes, the
    // firewall and NAT rules, name resolution and the API forward.
    {
        let net = Bench {
            f: Fixture::with(
                "bench-net",
                Options {
                    home_bytes: DEFAULT_HOME_BYTES,
                    network: Some(bench_network()),
                    ..Options::default()
                },
            ),
            agent: bench.agent.clone(),
        };
        let mut cold = cold_starts(&net, &rt, sizes.cold_runs);
        let (p50, p95, max) = summary(&mut cold);
        rows.push((
            format!(
                "cold start to first prompt byte, with network ({} runs)",
                cold.len()
            ),
            format!("p50 {} / p95 {} / max {}", ms(p50), ms(p95), ms(max)),
            "< 500 ms".into(),
        ));
    }

    // Warm attach, RSS: one running environment.
    let id = bench.f.id("warm");
    let home = bench.f.home_key("warm");
    bench.create_and_start(&id, &home).unwrap();
    rt.block_on(async {
        let mut agent = bench.connect(&id).await;
        let pid = bench.f.rt.init_pid(&id).unwrap().unwrap();
        // Let the agent settle after start before reading its memory.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_idle = rss_kib(pid);
        let s = Bench::session(&mut agent, "w").await;
        agent.send_input(&s, b"ls -la /\n").await.unwrap();
        agent.wait_output(&s, "proc").await.unwrap();
        let mut warm = Vec::new();
        for _ in 0..sizes.warm_runs {
            agent.detach(&s).await.unwrap();
            let begun = Instant::now();
            agent.attach(&s, AttachMode::Fresh).await.unwrap();
            agent.next_output(&s).await.unwrap();
            warm.push(begun.elapsed());
        }
        let (p50, p95, max) = summary(&mut warm);
        rows.push((
            format!("warm attach to first repaint byte ({} runs)", warm.len()),
            format!("p50 {} / p95 {} / max {}", ms(p50), ms(p95), ms(max)),
            "< 30 ms".into(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_one = rss_kib(pid);
        for n in 0..sizes.extra_sessions {
            Bench::session(&mut agent, &format!("x{n}")).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_more = rss_kib(pid);
        rows.push((
            "agent RSS, idle environment, no session".into(),
            kib(rss_idle),
            String::new(),
        ));
        rows.push((
            "agent RSS, one idle session".into(),
            kib(rss_one),
            String::new(),
        ));
        rows.push((
            format!(
                "agent RSS per extra idle session ({} more)",
                sizes.extra_sessions
            ),
            kib((
                rss_more.0.saturating_sub(rss_one.0) / sizes.extra_sessions as u64,
                rss_more.1.saturating_sub(rss_one.1) / sizes.extra_sessions as u64,
            )),
            String::new(),
        ));
    });
    bench.f.rt.delete(&id, Some(&home)).unwrap();

    // Capacity: idle environments with one shell each, until one fails.
    let available_before = mem_available_kib();
    let begun = Instant::now();
    let mut started = 0;
    let mut failure = None;
    for i in 0..sizes.capacity {
        let id = bench.f.id(&format!("cap-{i}"));
        let home = bench.f.home_key(&format!("cap-{i}"));
        if let Err(e) = bench.create_and_start(&id, &home) {
            failure = Some(format!("environment {i}: {e}"));
            break;
        }
        let r: Result<Vec<u8>, String> = rt.block_on(async {
            let socket = bench.f.rt.agent_socket(&id).map_err(|e| e.to_string())?;
            let s = SessionId("idle".into());
            let opened = async {
                let mut agent = AgentClient::connect_when_ready(&socket, None, TIMEOUT).await?;
                agent
                    .open_session(&s, Shell::Bash, 80, 24, Default::default())
                    .await?;
                agent.attach(&s, AttachMode::Fresh).await?;
                agent.next_output(&s).await
            };
            opened.await.map_err(|e| e.to_string())
        });
        if let Err(e) = r {
            failure = Some(format!("environment {i}: {e}"));
            break;
        }
        started += 1;
        if full && started % 25 == 0 {
            eprintln!("{started} environments running");
        }
    }
    let elapsed = begun.elapsed();
    let used = available_before.saturating_sub(mem_available_kib());
    rows.push((
        format!(
            "idle environments with one shell (tried {})",
            sizes.capacity
        ),
        format!(
            "{started} started in {:.1} s{}",
            elapsed.as_secs_f64(),
            failure
                .as_deref()
                .map(|f| format!("; stopped at {f}"))
                .unwrap_or_default()
        ),
        String::new(),
    ));
    if started > 0 {
        rows.push((
            "host memory per idle environment (MemAvailable drop)".into(),
            format!("{} KiB", used / started as u64),
            String::new(),
        ));
    }
    let begun = Instant::now();
    for i in 0..started {
        let id = bench.f.id(&format!("cap-{i}"));
        bench
            .f
            .rt
            .delete(&id, Some(&bench.f.home_key(&format!("cap-{i}"))))
            .unwrap();
    }
    if started > 0 {
        rows.push((
            format!("stop and delete, per environment ({started})"),
            ms(begun.elapsed() / started as u32),
            String::new(),
        ));
    }

    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let v = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    println!(
        "\nenvironments ({}; minimal image; no network unless the row says so)",
        if full { "full run" } else { "smoke run" }
    );
    println!("{:<w$}  {:<v$}  target", "measure", "result");
    println!("{}  {}  {}", "-".repeat(w), "-".repeat(v), "-".repeat(8));
    for (what, result, target) in &rows {
        println!("{what:<w$}  {result:<v$}  {target}");
    }
}
