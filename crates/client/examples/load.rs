//! The load benchmark of `bench/load/run.sh`: drives a running `seashell
//! serve` (a separate release process) through the CloudShell API and the
//! data channel of this crate, and samples the host while it does.
//!
//! - `load`: IAM users (each one environment with idle sessions), a ramp
//!   that measures keystroke echo and memory every `--ramp-step` sessions,
//!   then streaming sessions and a probe for `--duration-s`, sampling the
//!   server's and the agents' memory every `--sample-s`; at the end every
//!   WebSocket must still be open and every idle shell must answer.
//! - `max-envs`: one IAM user per environment, one idle shell each, until
//!   the server or the runtime refuses, or a cap, a time budget or a host
//!   memory floor is reached.
//! - `plot`: the PNG curves from the CSV files a `load` run wrote.
//!
//! Options are in [`Cli`] (`load --help`); results go to `--out`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use seashell_client::data_channel::{self, Event, Input, SessionTarget};
use seashell_client::CloudShell;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify, Semaphore};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const REGION: &str = "us-east-1";
const CLOUDSHELL_POLICY: &str = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess";

// ---------------------------------------------------------------- options

/// `load MODE --option value …`, as `bench/load/run.sh` calls it.
#[derive(clap::Parser)]
#[command(about = "The load benchmark of bench/load/run.sh")]
enum Cli {
    /// Idle and streaming sessions for a while, sampling memory and echo.
    Load(LoadOpts),
    /// Idle environments until something refuses or a limit is reached.
    MaxEnvs(MaxEnvsOpts),
    /// The PNG curves from the CSV files of a `load` run.
    Plot(PlotOpts),
}

/// The server under load and where results go.
#[derive(clap::Args)]
struct Target {
    /// The server's base URL.
    #[arg(long)]
    endpoint: String,
    /// An administrator's access key ID.
    #[arg(long)]
    admin_key: String,
    /// Its secret access key.
    #[arg(long)]
    admin_secret: String,
    /// The server's process ID, for its memory and descriptors.
    #[arg(long)]
    server_pid: i32,
    /// The cgroup parent the environments run under, for the agents.
    #[arg(long)]
    cgroup_parent: String,
    /// Where CSV and JSON results go.
    #[arg(long, default_value = "bench/load/results")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct LoadOpts {
    #[command(flatten)]
    target: Target,
    /// IAM users, each with one environment.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Idle sessions per user.
    #[arg(long, default_value_t = 10)]
    sessions_per_user: usize,
    /// Sessions streaming output.
    #[arg(long, default_value_t = 20)]
    active: usize,
    /// How long the steady phase lasts.
    #[arg(long, default_value_t = 600)]
    duration_s: u64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    sample_s: u64,
    /// Sessions between echo and memory measurements of the ramp.
    #[arg(long, default_value_t = 50)]
    ramp_step: usize,
    /// Echo samples at each ramp step.
    #[arg(long, default_value_t = 100)]
    ramp_samples: usize,
    /// Echo probes per second in the steady phase.
    #[arg(long, default_value_t = 4)]
    probe_hz: u64,
    /// Lines each streaming shell prints per tick.
    #[arg(long, default_value_t = 10)]
    lines_per_tick: u64,
    /// Sessions opened at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Prefix of the run's user names.
    #[arg(long, default_value = "run")]
    run_id: String,
}

#[derive(clap::Args)]
struct MaxEnvsOpts {
    #[command(flatten)]
    target: Target,
    /// Stop at this many environments.
    #[arg(long, default_value_t = 1000)]
    max_envs: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 600)]
    budget_s: u64,
    /// Stop when the host's MemAvailable falls below this.
    #[arg(long, default_value_t = 3072)]
    min_available_mib: u64,
    /// Environments started at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Prefix of the run's user names.
    #[arg(long, default_value = "max")]
    run_id: String,
}

#[derive(clap::Args)]
struct PlotOpts {
    /// A TrueType font for the labels.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
    /// Where the CSV files of the run are.
    #[arg(long, default_value = "bench/load/results")]
    out: PathBuf,
    /// Where the PNG files go.
    #[arg(long, default_value = "docs/images")]
    images: PathBuf,
}

// ---------------------------------------------------------------- host samples

/// `/proc/<pid>/status` fields in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn meminfo_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut f = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        f.next().unwrap_or(0.0),
        f.next().unwrap_or(0.0),
        f.next().unwrap_or(0.0),
    ]
}

fn open_fds(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// The environments' processes on the host: agents (the containers' init,
/// whose parent is outside the environments' cgroup) and the shells they
/// run, found by the cgroup parent the server was configured with.
#[derive(Default, Debug, Clone, Copy)]
struct Procs {
    agents: u64,
    agents_rss_kib: u64,
    agents_anon_kib: u64,
    agent_anon_max_kib: u64,
    shells: u64,
    shells_rss_kib: u64,
    shells_anon_kib: u64,
}

fn scan_procs(cgroup_parent: &str) -> Procs {
    let needle = format!("/{cgroup_parent}/");
    let mut ours: HashMap<i32, i32> = HashMap::new(); // pid -> ppid
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            if !cgroup.contains(&needle) {
                continue;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            ours.insert(pid, ppid);
        }
    }
    let mut p = Procs::default();
    for (&pid, &ppid) in &ours {
        let (rss, anon) = (status_kib(pid, "VmRSS"), status_kib(pid, "RssAnon"));
        if !ours.contains_key(&ppid) {
            p.agents += 1;
            p.agents_rss_kib += rss;
            p.agents_anon_kib += anon;
            p.agent_anon_max_kib = p.agent_anon_max_kib.max(anon);
        } else if !ours.contains_key(&ours[&ppid]) {
            // A child of an agent: a session's shell.
            p.shells += 1;
            p.shells_rss_kib += rss;
            p.shells_anon_kib += anon;
        }
    }
    p
}

#[derive(Debug, Clone)]
struct Sample {
    t_s: f64,
    phase: String,
    sessions_open: u64,
    server_rss_kib: u64,
    server_anon_kib: u64,
    server_fds: u64,
    procs: Procs,
    mem_available_kib: u64,
    load: [f64; 3],
}

const SAMPLE_HEADER: &str = "t_s,phase,sessions_open,shells_on_host,agents,server_rss_kib,server_anon_kib,server_fds,agents_rss_kib,agents_anon_kib,agent_anon_max_kib,shells_rss_kib,shells_anon_kib,mem_available_kib,load1,load5,load15";

impl Sample {
    fn take(start: Instant, phase: &str, sessions_open: u64, server: i32, cgroup: &str) -> Sample {
        Sample {
            t_s: start.elapsed().as_secs_f64(),
            phase: phase.into(),
            sessions_open,
            server_rss_kib: status_kib(server, "VmRSS"),
            server_anon_kib: status_kib(server, "RssAnon"),
            server_fds: open_fds(server),
            procs: scan_procs(cgroup),
            mem_available_kib: meminfo_kib("MemAvailable"),
            load: loadavg(),
        }
    }
    fn csv(&self) -> String {
        let p = &self.procs;
        format!(
            "{:.1},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.2},{:.2},{:.2}",
            self.t_s,
            self.phase,
            self.sessions_open,
            p.shells,
            p.agents,
            self.server_rss_kib,
            self.server_anon_kib,
            self.server_fds,
            p.agents_rss_kib,
            p.agents_anon_kib,
            p.agent_anon_max_kib,
            p.shells_rss_kib,
            p.shells_anon_kib,
            self.mem_available_kib,
            self.load[0],
            self.load[1],
            self.load[2]
        )
    }
}

// ---------------------------------------------------------------- IAM

/// Signed IAM Query calls (`POST /iam/`, form body), as the AWS CLI makes
/// them.
struct Iam {
    url: String,
    http: reqwest::Client,
    creds: Credentials,
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

impl Iam {
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String> {
        let mut body = format!("Action={action}&Version=2010-05-08");
        for (k, v) in params {
            let _ = write!(body, "&{k}={}", form_encode(v));
        }
        let identity = self.creds.clone().into();
        let signing = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("iam")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let ct = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = [("content-type", ct)];
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )?;
        let (instructions, _) = sign(signable, &signing)?.into_parts();
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", ct)
            .body(body);
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let reply = req.send().await?;
        let status = reply.status();
        let text = reply.text().await?;
        if !status.is_success() {
            return Err(format!("IAM {action}: HTTP {status}: {text}").into());
        }
        Ok(text)
    }

    /// A user allowed to use CloudShell, and a client signed with its key.
    async fn cloudshell_user(
        &self,
        name: &str,
        base: &str,
        http: &reqwest::Client,
    ) -> Result<CloudShell> {
        self.call("CreateUser", &[("UserName", name)]).await?;
        self.call(
            "AttachUserPolicy",
            &[("UserName", name), ("PolicyArn", CLOUDSHELL_POLICY)],
        )
        .await?;
        let xml = self.call("CreateAccessKey", &[("UserName", name)]).await?;
        let id = xml_field(&xml, "AccessKeyId").ok_or("CreateAccessKey: no AccessKeyId")?;
        let secret = xml_field(&xml, "SecretAccessKey").ok_or("CreateAccessKey: no secret")?;
        Ok(client(base, &id, &secret, http))
    }
}

fn client(base: &str, id: &str, secret: &str, http: &reqwest::Client) -> CloudShell {
    let creds = Credentials::from_keys(id, secret, None);
    CloudShell::new(
        &format!("{base}/cloudshell"),
        REGION,
        SharedCredentialsProvider::new(creds),
        http.clone(),
    )
}

// ---------------------------------------------------------------- environments and sessions

/// The caller's environment, created if needed, once RUNNING; its id and
/// how long that took.
async fn running_environment(api: &CloudShell) -> Result<(String, Duration)> {
    let begun = Instant::now();
    let created = api.call("createEnvironment", &json!({})).await?;
    let id = created["EnvironmentId"]
        .as_str()
        .ok_or("createEnvironment: no EnvironmentId")?
        .to_string();
    let deadline = begun + Duration::from_secs(180);
    loop {
        let v = api
            .call("getEnvironmentStatus", &json!({"EnvironmentId": id}))
            .await?;
        match v["Status"].as_str().unwrap_or_default() {
            "RUNNING" => return Ok((id, begun.elapsed())),
            "SUSPENDED" => {
                api.call("startEnvironment", &json!({"EnvironmentId": id}))
                    .await?;
            }
            "CREATING" | "RESUMING" | "PENDING" => {}
            other => return Err(format!("environment {id} is {other}: {v}").into()),
        }
        if Instant::now() > deadline {
            return Err(format!("environment {id} not RUNNING after 180 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a session's watcher saw.
#[derive(Default)]
struct Watch {
    /// Reconnects, failures and ends: every one is a dropped session.
    drops: AtomicU64,
    why: Mutex<Vec<String>>,
    /// The last few KiB of output.
    tail: Mutex<Vec<u8>>,
    bytes: AtomicU64,
    changed: Notify,
    ready: AtomicBool,
}

/// A session whose events a task of its own reads.
struct Shell {
    env: String,
    input: mpsc::Sender<Input>,
    watch: Arc<Watch>,
}

const TAIL: usize = 8192;

/// What a streaming session does with each piece of output.
type OnOutput = Box<dyn FnMut(&[u8]) + Send>;

/// An environment of the maximum run: its owner's client, its id, its
/// shell and how long environment and shell took to be ready (ms).
type Started = (CloudShell, String, Shell, f64);

/// Opens a session in `env` and waits for its handshake. `on_output` sees
/// every byte as it arrives (for the streaming sessions).
async fn open_shell(
    api: &CloudShell,
    env: &str,
    tab: &str,
    mut on_output: Option<OnOutput>,
) -> Result<Shell> {
    let reply = api
        .call(
            "createSession",
            &json!({"EnvironmentId": env, "TabId": tab}),
        )
        .await?;
    let field = |n: &str| -> Result<String> {
        Ok(reply[n]
            .as_str()
            .ok_or_else(|| format!("createSession: no {n}"))?
            .to_string())
    };
    let target = SessionTarget {
        api: api.clone(),
        environment_id: env.to_string(),
        session_id: field("SessionId")?,
    };
    let session = data_channel::spawn(target, field("StreamUrl")?, field("TokenValue")?);
    let watch = Arc::new(Watch::default());
    let w = watch.clone();
    let mut events = session.events;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                Event::Ready => w.ready.store(true, Ordering::SeqCst),
                Event::Output(bytes) => {
                    w.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if let Some(f) = on_output.as_mut() {
                        f(&bytes);
                    }
                    let mut tail = w.tail.lock().unwrap();
                    tail.extend_from_slice(&bytes);
                    if tail.len() > TAIL {
                        let cut = tail.len() - TAIL;
                        tail.drain(..cut);
                    }
                }
                Event::Reconnected => {}
                Event::Reconnecting(why) | Event::Ended(why) | Event::Failed(why) => {
                    w.drops.fetch_add(1, Ordering::SeqCst);
                    w.why.lock().unwrap().push(why);
                }
            }
            w.changed.notify_waiters();
        }
        w.drops.fetch_add(1, Ordering::SeqCst);
        w.why.lock().unwrap().push("event stream closed".into());
        w.changed.notify_waiters();
    });
    let shell = Shell {
        env: env.to_string(),
        input: session.input,
        watch,
    };
    shell
        .wait_until(Duration::from_secs(60), |w| w.ready.load(Ordering::SeqCst))
        .await
        .map_err(|_| format!("session {tab}: no handshake in 60 s"))?;
    Ok(shell)
}

impl Shell {
    async fn wait_until(&self, timeout: Duration, done: impl Fn(&Watch) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.watch.changed.notified();
            if done(&self.watch) {
                return Ok(());
            }
            if self.watch.drops.load(Ordering::SeqCst) > 0 {
                return Err(format!("dropped: {:?}", self.watch.why.lock().unwrap()).into());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err("timed out".into());
            }
        }
    }

    async fn wait_for(&self, needle: &[u8], timeout: Duration) -> Result<()> {
        self.wait_until(timeout, |w| {
            let tail = w.tail.lock().unwrap();
            tail.windows(needle.len()).any(|x| x == needle)
        })
        .await
    }

    async fn type_keys(&self, keys: &[u8]) -> Result<()> {
        self.input
            .send(Input::Keys(keys.to_vec()))
            .await
            .map_err(|_| "the session's task is gone".into())
    }

    /// Types a command that prints a fresh marker and waits for it.
    async fn answers(&self, n: usize) -> Result<()> {
        // The quotes keep the marker out of the typed line's echo.
        let cmd = format!("echo AL''IVE-{n}-OK\r");
        self.type_keys(cmd.as_bytes()).await?;
        self.wait_for(format!("ALIVE-{n}-OK").as_bytes(), Duration::from_secs(60))
            .await
    }
}

/// The probe: a raw `cat` that returns each typed byte.
struct Probe {
    input: mpsc::Sender<Input>,
    events: mpsc::Receiver<Event>,
}

impl Probe {
    async fn open(api: &CloudShell, env: &str) -> Result<Probe> {
        let reply = api
            .call(
                "createSession",
                &json!({"EnvironmentId": env, "TabId": "probe"}),
            )
            .await?;
        let f = |n: &str| reply[n].as_str().unwrap_or_default().to_string();
        let target = SessionTarget {
            api: api.clone(),
            environment_id: env.to_string(),
            session_id: f("SessionId"),
        };
        let s = data_channel::spawn(target, f("StreamUrl"), f("TokenValue"));
        let mut p = Probe {
            input: s.input,
            events: s.events,
        };
        p.until(|e| *e == Event::Ready).await?;
        p.input
            .send(Input::Keys(
                b"stty raw -echo; echo PRO''BE-RAW; exec cat\r".to_vec(),
            ))
            .await?;
        let mut seen = Vec::new();
        p.until(|e| {
            if let Event::Output(b) = e {
                seen.extend_from_slice(b);
            }
            seen.windows(9).any(|w| w == b"PROBE-RAW")
        })
        .await?;
        // Whatever followed the marker (a newline) is drained.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while p.events.try_recv().is_ok() {}
        Ok(p)
    }

    async fn until(&mut self, mut done: impl FnMut(&Event) -> bool) -> Result<()> {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(60), self.events.recv())
                .await
                .map_err(|_| "probe: timed out")?
                .ok_or("probe: session task gone")?;
            match &e {
                Event::Reconnecting(w) | Event::Ended(w) | Event::Failed(w) => {
                    return Err(format!("probe dropped: {w}").into())
                }
                _ => {}
            }
            if done(&e) {
                return Ok(());
            }
        }
    }

    /// One keystroke's round trip.
    async fn echo(&mut self) -> Result<Duration> {
        let begun = Instant::now();
        self.input.send(Input::Keys(b"x".to_vec())).await?;
        self.until(|e| matches!(e, Event::Output(b) if b.contains(&b'x')))
            .await?;
        Ok(begun.elapsed())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn p50_p99(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (percentile(&v, 50.0), percentile(&v, 99.0))
}

// ---------------------------------------------------------------- streaming sessions

/// What a streaming session checks: its numbered lines arrive in order,
/// none missing.
#[derive(Default)]
struct Stream {
    partial: Vec<u8>,
    last: u64,
    lines: u64,
    gaps: u64,
}

impl Stream {
    fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line);
            let Some(rest) = text.trim().strip_prefix("SEQ ") else {
                continue;
            };
            let Some(n) = rest.split(' ').next().and_then(|v| v.parse::<u64>().ok()) else {
                continue;
            };
            if n != self.last + 1 {
                self.gaps += 1;
            }
            self.last = n;
            self.lines += 1;
        }
    }
}

// ---------------------------------------------------------------- the load run

struct Ctx {
    base: String,
    http: reqwest::Client,
    iam: Iam,
    server_pid: i32,
    cgroup: String,
    out: PathBuf,
    start: Instant,
}

impl Ctx {
    fn new(t: &Target) -> Result<Ctx> {
        let base = t.endpoint.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(180))
            .pool_max_idle_per_host(64)
            .build()?;
        let iam = Iam {
            url: format!("{base}/iam/"),
            http: http.clone(),
            creds: Credentials::from_keys(&t.admin_key, &t.admin_secret, None),
        };
        std::fs::create_dir_all(&t.out).map_err(|e| format!("{}: {e}", t.out.display()))?;
        Ok(Ctx {
            base,
            http,
            iam,
            server_pid: t.server_pid,
            cgroup: t.cgroup_parent.clone(),
            out: t.out.clone(),
            start: Instant::now(),
        })
    }
    fn sample(&self, phase: &str, open: u64) -> Sample {
        Sample::take(self.start, phase, open, self.server_pid, &self.cgroup)
    }
}

fn log(ctx: &Ctx, msg: impl std::fmt::Display) {
    eprintln!("[{:7.1} s] {msg}", ctx.start.elapsed().as_secs_f64());
}

async fn load(o: &LoadOpts) -> Result<bool> {
    let ctx = Arc::new(Ctx::new(&o.target)?);
    let (users, per_user, active) = (o.users, o.sessions_per_user, o.active);
    let duration = Duration::from_secs(o.duration_s);
    let sample_every = Duration::from_secs(o.sample_s);
    let (ramp_step, ramp_samples) = (o.ramp_step, o.ramp_samples);
    let (probe_hz, lines_per_tick) = (o.probe_hz, o.lines_per_tick);
    let open_parallel = o.parallel;
    let run_id = o.run_id.clone();

    let mut samples: Vec<Sample> = vec![ctx.sample("start", 0)];

    // The probe has its own user and environment.
    log(&ctx, "creating the probe user and environment");
    let probe_api = ctx
        .iam
        .cloudshell_user(&format!("{run_id}-probe"), &ctx.base, &ctx.http)
        .await?;
    let (probe_env, t) = running_environment(&probe_api).await?;
    log(&ctx, format!("probe environment running after {t:?}"));
    let mut probe = Probe::open(&probe_api, &probe_env).await?;

    // Users and their environments.
    log(
        &ctx,
        format!("creating {users} users and their environments"),
    );
    let sem = Arc::new(Semaphore::new(open_parallel.min(4)));
    let mut tasks = Vec::new();
    for u in 0..users {
        let (ctx, sem) = (ctx.clone(), sem.clone());
        let name = format!("{run_id}-u{u:03}");
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let api = ctx.iam.cloudshell_user(&name, &ctx.base, &ctx.http).await?;
            let (env, took) = running_environment(&api).await?;
            Ok::<_, Error>((api, env, took))
        }));
    }
    let mut apis = Vec::new();
    let mut env_start = Vec::new();
    for t in tasks {
        let (api, env, took) = t.await??;
        env_start.push(took.as_secs_f64() * 1e3);
        apis.push((api, env));
    }
    let (p50, p99) = p50_p99(&env_start);
    log(
        &ctx,
        format!("{users} environments running (createEnvironment to RUNNING: p50 {p50:.0} ms, p99 {p99:.0} ms)"),
    );
    samples.push(ctx.sample("environments", 0));

    // The ramp: sessions are opened user by user; at every step the probe
    // types `ramp_samples` keys and the host is sampled.
    let total = users * per_user;
    let mut idle: Vec<Shell> = Vec::with_capacity(total);
    let mut ramp_csv = String::from(
        "sessions,environments,echo_samples,echo_p50_us,echo_p99_us,echo_max_us,server_rss_kib,server_anon_kib,agents,agents_rss_kib,agents_anon_kib,shells_rss_kib,shells_anon_kib,mem_available_kib,load1\n",
    );
    let mut session_open_ms = Vec::new();
    let mut next_step = 0usize;
    loop {
        // Every step, and the last count if it is not one.
        if idle.len() >= next_step || idle.len() == total {
            let mut lat = Vec::with_capacity(ramp_samples);
            for _ in 0..ramp_samples {
                lat.push(probe.echo().await?.as_secs_f64() * 1e6);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (p50, p99) = p50_p99(&lat);
            let max = lat.iter().cloned().fold(0.0, f64::max);
            let s = ctx.sample("ramp", idle.len() as u64);
            let envs = idle.len().div_ceil(per_user);
            let _ = writeln!(
                ramp_csv,
                "{},{},{},{:.0},{:.0},{:.0},{},{},{},{},{},{},{},{},{:.2}",
                idle.len(),
                envs,
                lat.len(),
                p50,
                p99,
                max,
                s.server_rss_kib,
                s.server_anon_kib,
                s.procs.agents,
                s.procs.agents_rss_kib,
                s.procs.agents_anon_kib,
                s.procs.shells_rss_kib,
                s.procs.shells_anon_kib,
                s.mem_available_kib,
                s.load[0]
            );
            log(
                &ctx,
                format!(
                    "ramp: {} sessions: echo p50 {:.0} µs, p99 {:.0} µs; server RSS {} MiB, agents RSS {} MiB ({} agents)",
                    idle.len(),
                    p50,
                    p99,
                    s.server_rss_kib / 1024,
                    s.procs.agents_rss_kib / 1024,
                    s.procs.agents
                ),
            );
            samples.push(s);
            next_step += ramp_step;
        }
        if idle.len() >= total {
            break;
        }
        // Open up to the next step, `open_parallel` at a time.
        let upto = next_step.min(total);
        let mut batch = Vec::new();
        for i in idle.len()..upto {
            let (api, env) = apis[i / per_user].clone();
            let tab = format!("idle-{:02}", i % per_user);
            batch.push(tokio::spawn(async move {
                let begun = Instant::now();
                let shell = open_shell(&api, &env, &tab, None).await?;
                Ok::<_, Error>((shell, begun.elapsed()))
            }));
            if batch.len() == open_parallel {
                for t in batch.drain(..) {
                    let (shell, took) = t.await??;
                    session_open_ms.push(took.as_secs_f64() * 1e3);
                    idle.push(shell);
                }
            }
        }
        for t in batch.drain(..) {
            let (shell, took) = t.await??;
            session_open_ms.push(took.as_secs_f64() * 1e3);
            idle.push(shell);
        }
    }
    std::fs::write(ctx.out.join("ramp.csv"), &ramp_csv)?;

    // The streaming sessions, in environments of their own: the agent runs
    // at most 10 sessions per environment, which the idle ones fill.
    log(&ctx, format!("opening {active} streaming sessions"));
    let mut stream_envs = Vec::new();
    for k in 0..active.div_ceil(per_user.max(1)) {
        let api = ctx
            .iam
            .cloudshell_user(&format!("{run_id}-s{k:02}"), &ctx.base, &ctx.http)
            .await?;
        let (env, _) = running_environment(&api).await?;
        stream_envs.push((api, env));
    }
    let mut streams = Vec::new();
    for a in 0..active {
        let (api, env) = stream_envs[a / per_user.max(1)].clone();
        let tab = format!("stream-{a:02}");
        let stream = Arc::new(Mutex::new(Stream::default()));
        let s = stream.clone();
        let shell = open_shell(
            &api,
            &env,
            &tab,
            Some(Box::new(move |b: &[u8]| s.lock().unwrap().feed(b))),
        )
        .await?;
        let script = format!(
            "stty -echo; n=0; while :; do j=0; while [ $j -lt {lines_per_tick} ]; do n=$((n+1)); echo \"SEQ $n 0123456789abcdefghijklmnopqrstuvwxyz0123456789\"; j=$((j+1)); done; sleep 0.1; done\r"
        );
        shell.type_keys(script.as_bytes()).await?;
        streams.push((shell, stream));
    }
    let open_now = (idle.len() + streams.len() + 1) as u64;

    // The steady phase: the probe types `probe_hz` keys a second, the host
    // is sampled every `sample_every`.
    log(
        &ctx,
        format!("steady phase: {} sessions for {duration:?}", open_now),
    );
    let steady_start = ctx.start.elapsed().as_secs_f64();
    let stop = Arc::new(AtomicBool::new(false));
    let probe_task = {
        let stop = stop.clone();
        let start = ctx.start;
        tokio::spawn(async move {
            let mut echoes: Vec<(f64, f64)> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / probe_hz.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let t = start.elapsed().as_secs_f64();
                let d = probe.echo().await?;
                echoes.push((t, d.as_secs_f64() * 1e6));
            }
            Ok::<_, Error>((echoes, probe))
        })
    };
    let steady_end = tokio::time::Instant::now() + duration;
    let mut tick = tokio::time::interval(sample_every);
    loop {
        tick.tick().await;
        let s = ctx.sample("steady", open_now);
        let lines: u64 = streams.iter().map(|(_, s)| s.lock().unwrap().lines).sum();
        log(
            &ctx,
            format!(
                "server RSS {} MiB, {} fds; agents {} RSS {} MiB, private {} MiB; shells {}; MemAvailable {} MiB; load {:.2}; streamed lines {lines}",
                s.server_rss_kib / 1024,
                s.server_fds,
                s.procs.agents,
                s.procs.agents_rss_kib / 1024,
                s.procs.agents_anon_kib / 1024,
                s.procs.shells,
                s.mem_available_kib / 1024,
                s.load[0]
            ),
        );
        samples.push(s);
        if tokio::time::Instant::now() >= steady_end {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (echoes, _probe) = probe_task.await??;

    // The end: streams still flowing, in order; every session still open;
    // every idle shell answers.
    let mut stream_report = Vec::new();
    for (shell, stream) in &streams {
        let before = stream.lock().unwrap().lines;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s = stream.lock().unwrap();
        stream_report.push(json!({
            "lines": s.lines,
            "gaps": s.gaps,
            "still_flowing": s.lines > before,
            "bytes": shell.watch.bytes.load(Ordering::Relaxed),
            "drops": shell.watch.drops.load(Ordering::SeqCst),
        }));
    }
    log(&ctx, "checking that every idle shell answers");
    let idle = Arc::new(idle);
    let sem = Arc::new(Semaphore::new(32));
    let mut checks = Vec::new();
    for i in 0..idle.len() {
        let (idle, sem) = (idle.clone(), sem.clone());
        checks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let r = idle[i].answers(i).await;
            (i, r.err().map(|e| e.to_string()))
        }));
    }
    let mut unanswered = Vec::new();
    for c in checks {
        let (i, e) = c.await?;
        if let Some(e) = e {
            unanswered.push(json!({"session": i, "env": idle[i].env, "error": e}));
        }
    }
    let dropped_idle: u64 = idle
        .iter()
        .filter(|s| s.watch.drops.load(Ordering::SeqCst) > 0)
        .count() as u64;
    let dropped_streams = streams
        .iter()
        .filter(|(s, _)| s.watch.drops.load(Ordering::SeqCst) > 0)
        .count() as u64;
    let gaps: u64 = streams.iter().map(|(_, s)| s.lock().unwrap().gaps).sum();
    let stalled = stream_report
        .iter()
        .filter(|r| r["still_flowing"] == false)
        .count();
    samples.push(ctx.sample("end", open_now));

    // Results.
    let mut csv = String::from(SAMPLE_HEADER);
    csv.push('\n');
    for s in &samples {
        csv.push_str(&s.csv());
        csv.push('\n');
    }
    std::fs::write(ctx.out.join("samples.csv"), csv)?;
    let mut ecsv = String::from("t_s,latency_us\n");
    for (t, us) in &echoes {
        let _ = writeln!(ecsv, "{t:.3},{us:.0}");
    }
    std::fs::write(ctx.out.join("echo.csv"), ecsv)?;

    let lat: Vec<f64> = echoes.iter().map(|e| e.1).collect();
    let (p50, p99) = p50_p99(&lat);
    let mut per_minute = Vec::new();
    let mut minute = 0;
    loop {
        let from = steady_start + 60.0 * minute as f64;
        let chunk: Vec<f64> = echoes
            .iter()
            .filter(|(t, _)| *t >= from && *t < from + 60.0)
            .map(|e| e.1)
            .collect();
        if chunk.is_empty() {
            break;
        }
        let (a, b) = p50_p99(&chunk);
        per_minute.push(json!({"minute": minute + 1, "samples": chunk.len(), "p50_us": a.round(), "p99_us": b.round()}));
        minute += 1;
    }
    let steady: Vec<&Sample> = samples.iter().filter(|s| s.phase == "steady").collect();
    let stat = |f: &dyn Fn(&Sample) -> u64| -> Value {
        let v: Vec<u64> = steady.iter().map(|s| f(s)).collect();
        json!({
            "start_kib": v.first(), "end_kib": v.last(), "max_kib": v.iter().max(),
        })
    };
    let loads: Vec<f64> = steady.iter().map(|s| s.load[0]).collect();
    let (s50, s99) = p50_p99(&session_open_ms);
    let summary = json!({
        "run_id": run_id,
        "date": std::process::Command::new("date").arg("-u").arg("+%Y-%m-%dT%H:%M:%SZ").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default(),
        "users": users,
        "idle_sessions": idle.len(),
        "streaming_sessions": streams.len(),
        "probe_sessions": 1,
        "environments": users + 1 + active.div_ceil(per_user.max(1)),
        "duration_s": duration.as_secs(),
        "lines_per_tick": lines_per_tick,
        "environment_start_ms": {"p50": p50_p99(&env_start).0.round(), "p99": p50_p99(&env_start).1.round()},
        "session_open_ms": {"p50": s50.round(), "p99": s99.round()},
        "server_rss": stat(&|s| s.server_rss_kib),
        "server_fds_max": steady.iter().map(|s| s.server_fds).max(),
        "agents_rss_sum": stat(&|s| s.procs.agents_rss_kib),
        "agents_private_sum": stat(&|s| s.procs.agents_anon_kib),
        "agent_private_max_kib": steady.iter().map(|s| s.procs.agent_anon_max_kib).max(),
        "shells_rss_sum": stat(&|s| s.procs.shells_rss_kib),
        "mem_available": stat(&|s| s.mem_available_kib),
        "shells_on_host": {"min": steady.iter().map(|s| s.procs.shells).min(), "max": steady.iter().map(|s| s.procs.shells).max()},
        "echo": {"samples": lat.len(), "p50_us": p50.round(), "p99_us": p99.round(), "max_us": lat.iter().cloned().fold(0.0, f64::max).round(), "per_minute": per_minute},
        "load1": {"min": loads.iter().cloned().fold(f64::INFINITY, f64::min), "max": loads.iter().cloned().fold(0.0, f64::max), "mean": loads.iter().sum::<f64>() / loads.len().max(1) as f64},
        "streams": stream_report,
        "stream_lines_total": streams.iter().map(|(_, s)| s.lock().unwrap().lines).sum::<u64>(),
        "stream_gaps": gaps,
        "streams_stalled": stalled,
        "sessions_dropped": dropped_idle + dropped_streams,
        "idle_unanswered": unanswered.len(),
        "unanswered": unanswered,
    });
    std::fs::write(
        ctx.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    let ok =
        dropped_idle + dropped_streams == 0 && unanswered.is_empty() && gaps == 0 && stalled == 0;

    // Delete the environments (homes too), four at a time.
    log(&ctx, "deleting the environments");
    let mut all: Vec<(CloudShell, String)> = apis;
    all.extend(stream_envs);
    all.push((probe_api, probe_env));
    delete_all(&ctx, all).await;
    drop(idle);
    Ok(ok)
}

async fn delete_all(ctx: &Ctx, envs: Vec<(CloudShell, String)>) {
    let sem = Arc::new(Semaphore::new(4));
    let mut tasks = Vec::new();
    for (api, env) in envs {
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            api.call("deleteEnvironment", &json!({"EnvironmentId": env}))
                .await
                .map_err(|e| format!("{env}: {e}"))
        }));
    }
    let n = tasks.len();
    let mut failed = 0;
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            failed += 1;
            log(ctx, format!("deleteEnvironment failed: {e}"));
        }
    }
    log(
        ctx,
        format!("deleteEnvironment sent for {n} environments ({failed} failed)"),
    );
}

// ---------------------------------------------------------------- max environments

async fn max_envs(o: &MaxEnvsOpts) -> Result<bool> {
    let ctx = Arc::new(Ctx::new(&o.target)?);
    let cap = o.max_envs;
    let budget = Duration::from_secs(o.budget_s);
    let floor_kib = o.min_available_mib * 1024;
    let parallel = o.parallel;
    let run_id = o.run_id.clone();
    let next = Arc::new(AtomicU64::new(0));
    let stop: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let started: Arc<Mutex<Vec<Started>>> = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + budget;
    let mut csv = String::from("environments,t_s,env_ready_ms,server_rss_kib,server_fds,agents,agents_rss_kib,agents_anon_kib,mem_available_kib,load1\n");
    let mut workers = Vec::new();
    for _ in 0..parallel {
        let (ctx, next, stop, started) = (ctx.clone(), next.clone(), stop.clone(), started.clone());
        let run_id = run_id.clone();
        workers.push(tokio::spawn(async move {
            loop {
                if stop.lock().unwrap().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cap {
                    return;
                }
                if Instant::now() > deadline {
                    stop.lock()
                        .unwrap()
                        .get_or_insert(format!("the time budget of {budget:?}"));
                    return;
                }
                if meminfo_kib("MemAvailable") < floor_kib {
                    stop.lock().unwrap().get_or_insert(format!(
                        "the host memory floor: MemAvailable under {} MiB",
                        floor_kib / 1024
                    ));
                    return;
                }
                let attempt = async {
                    let api = ctx
                        .iam
                        .cloudshell_user(&format!("{run_id}-e{i:04}"), &ctx.base, &ctx.http)
                        .await?;
                    let begun = Instant::now();
                    let (env, _) = running_environment(&api).await?;
                    let shell = open_shell(&api, &env, "idle", None).await?;
                    Ok::<_, Error>((api, env, shell, begun.elapsed().as_secs_f64() * 1e3))
                };
                match attempt.await {
                    Ok(e) => started.lock().unwrap().push(e),
                    Err(e) => {
                        stop.lock()
                            .unwrap()
                            .get_or_insert(format!("environment {i} refused: {e}"));
                        return;
                    }
                }
            }
        }));
    }
    // Sample every 50 environments while the workers run.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = started.lock().unwrap().len();
        let done = workers.iter().all(|w| w.is_finished());
        if n >= last + 50 || done {
            let s = ctx.sample("max", n as u64);
            let ready_ms = started.lock().unwrap().last().map(|e| e.3).unwrap_or(0.0);
            let _ = writeln!(
                csv,
                "{n},{:.1},{ready_ms:.0},{},{},{},{},{},{},{:.2}",
                s.t_s,
                s.server_rss_kib,
                s.server_fds,
                s.procs.agents,
                s.procs.agents_rss_kib,
                s.procs.agents_anon_kib,
                s.mem_available_kib,
                s.load[0]
            );
            log(&ctx, format!("{n} environments with an idle shell; server RSS {} MiB, {} fds; MemAvailable {} MiB; load {:.2}", s.server_rss_kib / 1024, s.server_fds, s.mem_available_kib / 1024, s.load[0]));
            last = n;
        }
        if done {
            break;
        }
    }
    let reason = stop
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("the cap of {cap} environments"));
    let envs = std::mem::take(&mut *started.lock().unwrap());
    let elapsed = ctx.start.elapsed().as_secs_f64();
    log(
        &ctx,
        format!("stopped at {} environments: {reason}", envs.len()),
    );
    // Every shell still answers.
    let mut unanswered = 0;
    for (i, (_, _, shell, _)) in envs.iter().enumerate() {
        if shell.answers(i).await.is_err() {
            unanswered += 1;
        }
    }
    let ready: Vec<f64> = envs.iter().map(|e| e.3).collect();
    let (r50, r99) = p50_p99(&ready);
    let s = ctx.sample("max-end", envs.len() as u64);
    let summary = json!({
        "environments": envs.len(),
        "limited_by": reason,
        "seconds": elapsed,
        "env_and_shell_ready_ms": {"p50": r50.round(), "p99": r99.round()},
        "unanswered": unanswered,
        "server_rss_kib": s.server_rss_kib,
        "server_fds": s.server_fds,
        "agents": s.procs.agents,
        "agents_rss_kib": s.procs.agents_rss_kib,
        "agents_private_kib": s.procs.agents_anon_kib,
        "mem_available_kib": s.mem_available_kib,
        "load": s.load,
    });
    std::fs::write(ctx.out.join("max-envs.csv"), csv)?;
    std::fs::write(
        ctx.out.join("max-envs.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    let all = envs
        .into_iter()
        .map(|(api, env, _, _)| (api, env))
        .collect();
    delete_all(&ctx, all).await;
    Ok(unanswered == 0)
}

// ---------------------------------------------------------------- plots

fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    Ok((header, rows))
}

fn column(h: &[String], rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let i = h
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows.iter()
        .map(|r| r[i].parse().unwrap_or(f64::NAN))
        .collect()
}

type Series<'a> = (&'a str, plotters::style::RGBColor, Vec<(f64, f64)>);

fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let pts = series
        .iter()
        .flat_map(|s| s.2.iter())
        .filter(|p| p.1.is_finite());
    let (mut x_max, mut y_max) = (0f64, 0f64);
    for p in pts {
        x_max = x_max.max(p.0);
        y_max = y_max.max(p.1);
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..(x_max * 1.02).max(1.0), 0f64..(y_max * 1.1).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .draw()?;
    for (name, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().cloned(),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

fn plot(o: &PlotOpts) -> Result<bool> {
    use plotters::style::{FontStyle, RGBColor};
    let font = o.font.display();
    let bytes: &'static [u8] = Box::leak(
        std::fs::read(&o.font)
            .map_err(|e| format!("{font}: {e} (Debian: apt-get install fonts-dejavu-core)"))?
            .into_boxed_slice(),
    );
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{font}: not a font"))?;
    let (results, images) = (o.out.clone(), o.images.clone());
    std::fs::create_dir_all(&images)?;
    let mib = |v: Vec<f64>| v.into_iter().map(|k| k / 1024.0).collect::<Vec<_>>();
    let zip = |x: &[f64], y: &[f64]| x.iter().cloned().zip(y.iter().cloned()).collect::<Vec<_>>();
    let (red, blue, green, grey) = (
        RGBColor(200, 40, 40),
        RGBColor(30, 90, 200),
        RGBColor(20, 140, 60),
        RGBColor(120, 120, 120),
    );

    let (h, rows) = read_csv(&results.join("samples.csv"))?;
    let t: Vec<f64> = column(&h, &rows, "t_s")
        .into_iter()
        .map(|s| s / 60.0)
        .collect();
    line_chart(
        &images.join("load-rss-over-time.png"),
        "Memory during the load run (ramp to 500 idle shells, then 20 streaming)",
        "minutes since start",
        "MiB",
        &[
            (
                "server RSS",
                red,
                zip(&t, &mib(column(&h, &rows, "server_rss_kib"))),
            ),
            (
                "agents' RSS, sum",
                blue,
                zip(&t, &mib(column(&h, &rows, "agents_rss_kib"))),
            ),
            (
                "agents' private (RssAnon), sum",
                green,
                zip(&t, &mib(column(&h, &rows, "agents_anon_kib"))),
            ),
            (
                "shells' RSS, sum",
                grey,
                zip(&t, &mib(column(&h, &rows, "shells_rss_kib"))),
            ),
        ],
    )?;

    let (h, rows) = read_csv(&results.join("ramp.csv"))?;
    let n = column(&h, &rows, "sessions");
    let ms = |v: Vec<f64>| v.into_iter().map(|u| u / 1000.0).collect::<Vec<_>>();
    line_chart(
        &images.join("load-echo-vs-sessions.png"),
        "Keystroke echo through the gateway under concurrent idle sessions",
        "concurrent idle sessions (10 per environment)",
        "echo latency, ms",
        &[
            ("p50", blue, zip(&n, &ms(column(&h, &rows, "echo_p50_us")))),
            ("p99", red, zip(&n, &ms(column(&h, &rows, "echo_p99_us")))),
        ],
    )?;
    line_chart(
        &images.join("load-memory-vs-sessions.png"),
        "Memory versus concurrent idle sessions (10 per environment)",
        "concurrent idle sessions",
        "MiB",
        &[
            (
                "server RSS",
                red,
                zip(&n, &mib(column(&h, &rows, "server_rss_kib"))),
            ),
            (
                "agents' RSS, sum",
                blue,
                zip(&n, &mib(column(&h, &rows, "agents_rss_kib"))),
            ),
            (
                "agents' private, sum",
                green,
                zip(&n, &mib(column(&h, &rows, "agents_anon_kib"))),
            ),
            (
                "shells' RSS, sum",
                grey,
                zip(&n, &mib(column(&h, &rows, "shells_rss_kib"))),
            ),
        ],
    )?;
    eprintln!("plots written to {}", images.display());
    Ok(true)
}

fn main() {
    use clap::Parser as _;
    let cli = Cli::parse();
    let result = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Err(e) => Err(format!("the async runtime: {e}").into()),
        Ok(rt) => match &cli {
            Cli::Load(o) => rt.block_on(load(o)),
            Cli::MaxEnvs(o) => rt.block_on(max_envs(o)),
            Cli::Plot(o) => plot(o),
        },
    };
    match result {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("load: the run's checks failed (see the summary)");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    }
}
