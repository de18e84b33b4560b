//! `seashell-agent`: runs inside every environment as its init process.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use seashell_agent::credentials::{CredentialStore, CredentialsEndpoint, CREDENTIALS_PATH};
use seashell_agent::files::Home;
use seashell_agent::init::{self, Reaper};
use seashell_agent::session::pty::{ShellEnv, ShellUser};
use seashell_agent::session::SessionSettings;
use seashell_agent::{control, Agent, AgentConfig};
use seashell_protocol::Secret;

/// The Seashell agent: shells, credentials endpoint and file transfer
/// inside one environment.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Unix socket the Seashell server connects to.
    #[arg(
        long,
        env = "SEASHELL_AGENT_SOCKET",
        default_value = "/run/seashell/agent.sock"
    )]
    socket: PathBuf,

    /// The user's home directory; shells start there and file transfers
    /// are confined to it.
    #[arg(
        long,
        env = "SEASHELL_AGENT_HOME",
        default_value = "/home/cloudshell-user"
    )]
    home: PathBuf,

    /// Name of the shells' user.
    #[arg(long, env = "SEASHELL_AGENT_USER", default_value = "cloudshell-user")]
    user: String,

    /// User id the shells run as when the agent runs as root.
    #[arg(long, env = "SEASHELL_AGENT_UID", default_value_t = 1000)]
    uid: u32,

    /// Group id the shells run as when the agent runs as root.
    #[arg(long, env = "SEASHELL_AGENT_GID", default_value_t = 1000)]
    gid: u32,

    /// Address of the credentials endpoint.
    #[arg(
        long,
        env = "SEASHELL_AGENT_CREDENTIALS_ADDR",
        default_value = "127.0.0.1:1338"
    )]
    credentials_addr: SocketAddr,

    /// File holding the token the credentials endpoint requires (one line;
    /// a trailing newline is ignored). Without it and without
    /// SEASHELL_AGENT_CREDENTIALS_TOKEN a random token is made.
    #[arg(long, env = "SEASHELL_AGENT_CREDENTIALS_TOKEN_FILE")]
    credentials_token_file: Option<PathBuf>,

    /// The environment this agent serves, checked against the server's
    /// hello.
    #[arg(long, env = "SEASHELL_ENVIRONMENT_ID")]
    environment_id: Option<String>,

    /// Unacknowledged output per session beyond which the shell is paused.
    #[arg(long, env = "SEASHELL_AGENT_WINDOW_BYTES", default_value_t = 1024 * 1024)]
    window_bytes: usize,

    /// Scrollback lines kept per session for repaints.
    #[arg(long, env = "SEASHELL_AGENT_SCROLLBACK", default_value_t = 1000)]
    scrollback_lines: usize,

    /// Most concurrent sessions.
    #[arg(long, env = "SEASHELL_AGENT_MAX_SESSIONS", default_value_t = 10)]
    max_sessions: usize,
}

/// Smallest accepted flow-control window.
const MIN_WINDOW_BYTES: usize = 16 * 1024;
/// Largest accepted scrollback.
const MAX_SCROLLBACK_LINES: usize = 10_000;

/// The token comes from the environment rather than a flag, so it never
/// shows in the process list.
const TOKEN_VAR: &str = "SEASHELL_AGENT_CREDENTIALS_TOKEN";

fn credentials_token(args: &Args) -> anyhow::Result<Secret> {
    if let Some(path) = &args.credentials_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        let token = text.trim_end_matches(['\r', '\n']);
        if token.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        return Ok(Secret::new(token));
    }
    if let Ok(token) = std::env::var(TOKEN_VAR) {
        // Not inherited by the shells: their environment is built afresh.
        if !token.is_empty() {
            return Ok(Secret::new(token));
        }
    }
    Ok(Secret::new(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEASHELL_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // One worker: sessions, the control connection and the credentials
    // endpoint are all I/O bound, and on one thread a session hands its
    // output to the connection's writer without waking another thread (a
    // flood then costs a third less CPU). File work runs in
    // `block_in_place`, which needs the multi-threaded runtime even so.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    // First of all, so that no child's exit goes unnoticed.
    let sigchld = init::child_signal().context("installing the SIGCHLD handler")?;
    init::become_subreaper();
    let stop = init::stop_signals().context("installing the stop signal handlers")?;
    let reaper = Arc::new(Reaper::new());
    tokio::spawn(init::run_reaper(reaper.clone(), sigchld));

    // Below one PTY read the shell could never be read at all; beyond
    // what a screen of rows can add up to, the repaint could not show the
    // whole scrollback.
    if args.window_bytes < MIN_WINDOW_BYTES {
        bail!("--window-bytes must be at least {MIN_WINDOW_BYTES}");
    }
    if args.scrollback_lines > MAX_SCROLLBACK_LINES {
        bail!("--scrollback-lines must be at most {MAX_SCROLLBACK_LINES}");
    }
    let root = rustix::process::geteuid().is_root();
    let token = credentials_token(&args)?;
    let mut shell_env = BTreeMap::new();
    shell_env.insert(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
        format!("http://{}{}", args.credentials_addr, CREDENTIALS_PATH),
    );
    shell_env.insert(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_owned(),
        token.expose().to_owned(),
    );
    shell_env.insert("AWS_EXECUTION_ENV".to_owned(), "CloudShell".to_owned());

    let config = AgentConfig {
        environment_id: args.environment_id.clone(),
        home: args.home.clone(),
        user: ShellUser {
            uid: root.then_some(args.uid),
            gid: root.then_some(args.gid),
            name: args.user.clone(),
            home: args.home.clone(),
        },
        shell_env: ShellEnv(shell_env),
        session: SessionSettings {
            window_bytes: args.window_bytes,
            scrollback_lines: args.scrollback_lines,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            environment_id: args.environment_id.clone().unwrap_or_default(),
        },
        max_sessions: args.max_sessions,
    };
    let home = match Home::open(&args.home, root.then_some((args.uid, args.gid))) {
        Ok(home) => Some(home),
        Err(e) => {
            tracing::error!(home = %args.home.display(), error = %e, "home directory unavailable; file transfer disabled");
            None
        }
    };
    let credentials = Arc::new(CredentialStore::new());
    let agent = Agent::new(config, reaper, credentials.clone(), home);

    let endpoint = Arc::new(CredentialsEndpoint::new(credentials, token));
    let http = tokio::net::TcpListener::bind(args.credentials_addr)
        .await
        .with_context(|| format!("binding the credentials endpoint {}", args.credentials_addr))?;
    let address = http.local_addr().unwrap_or(args.credentials_addr);
    tracing::info!(%address, "credentials endpoint listening");
    tokio::spawn(async move {
        if let Err(e) = seashell_agent::credentials::serve(http, endpoint).await {
            tracing::error!(error = %e, "credentials endpoint stopped");
        }
    });

    let listener = control::bind_unix(&args.socket)
        .with_context(|| format!("binding the control socket {}", args.socket.display()))?;
    tracing::info!(socket = %args.socket.display(), root, "agent listening");
    let server = tokio::spawn(control::serve(listener, agent.clone()));

    let signal = stop.await;
    tracing::info!(signal, "stopping: ending every session");
    agent.shutdown().await;
    // Let the connection's writer deliver the session-end reports.
    agent.close_outbox();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.abort();
    let _ = std::fs::remove_file(&args.socket);
    tracing::info!("stopped");
    Ok(())
}
