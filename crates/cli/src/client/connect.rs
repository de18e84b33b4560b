//! `seashell connect`: a shell of the environment in the local terminal.
//! The terminal is put in raw mode (restored on every way out, panics
//! included), window size changes (SIGWINCH) are sent on, and a dropped
//! connection resumes without losing output. `--command` runs one command
//! and exits with its exit status instead.

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};

use super::context::Context;
use super::environment;
use super::exit::CliError;
use super::settings::GlobalArgs;
use seashell_client::data_channel::{self, Event, Input, SessionTarget};

/// `seashell connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The tab: the same tab id gets the same shell (as the console's tab
    /// with that id); a new one by default.
    #[arg(long)]
    pub tab: Option<String>,
    /// The shell to start (bash, zsh or pwsh, when installed).
    #[arg(long)]
    pub shell: Option<String>,
    /// Run this command instead of an interactive shell, print its output
    /// and exit with its exit status.
    #[arg(long)]
    pub command: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode, CliError> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| CliError::other(format!("cannot put the terminal in raw mode: {e}")))?;
        // A panic must not leave the terminal raw either.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::terminal::disable_raw_mode();
            previous(info);
        }));
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

fn field(reply: &Value, name: &str) -> Result<String, CliError> {
    reply
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CliError::other(format!("createSession answered without {name}")))
}

/// Runs `seashell connect`.
pub async fn run(args: ConnectArgs) -> Result<u8, CliError> {
    let ctx = Context::new(&args.global)?;
    let api = ctx.api().await?;
    let env = environment::running(&api).await?;
    if let Some(command) = &args.command {
        let mut stdout = std::io::stdout();
        let code = seashell_client::command::run(&api, &env, command, |bytes| {
            let _ = stdout.write_all(bytes);
            let _ = stdout.flush();
        })
        .await?;
        return Ok(code.clamp(0, 255) as u8);
    }
    let tab = args
        .tab
        .clone()
        .unwrap_or_else(|| format!("seashell-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut request = json!({"EnvironmentId": env, "TabId": tab});
    if let Some(shell) = &args.shell {
        request["Shell"] = json!(shell);
    }
    let reply = api.call("createSession", &request).await?;
    let target = SessionTarget {
        api: api.clone(),
        environment_id: env.clone(),
        session_id: field(&reply, "SessionId")?,
    };
    let mut session = data_channel::spawn(
        target,
        field(&reply, "StreamUrl")?,
        field(&reply, "TokenValue")?,
    );
    let raw = if std::io::stdin().is_terminal() {
        Some(RawMode::enable()?)
    } else {
        None
    };
    // Keystrokes come from a thread: stdin reads block.
    let keys = session.input.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys.blocking_send(Input::Keys(buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut winch = signal(SignalKind::window_change())
        .map_err(|e| CliError::other(format!("SIGWINCH: {e}")))?;
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| CliError::other(format!("SIGHUP: {e}")))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| CliError::other(format!("SIGTERM: {e}")))?;
    // A terminal that never had its size set says 0x0; the remote one
    // keeps its default then.
    let resize = || {
        crossterm::terminal::size()
            .ok()
            .filter(|(cols, rows)| *cols > 0 && *rows > 0)
            .map(|(cols, rows)| Input::Resize {
                cols: cols.into(),
                rows: rows.into(),
            })
    };
    let mut stdout = std::io::stdout();
    let result = loop {
        tokio::select! {
            event = session.events.recv() => match event {
                Some(Event::Ready) => {
                    if let Some(size) = resize() {
                        let _ = session.input.send(size).await;
                    }
                }
                Some(Event::Output(bytes)) => {
                    let _ = stdout.write_all(&bytes);
                    let _ = stdout.flush();
                }
                Some(Event::Reconnecting(why)) => {
                    tracing::debug!(%why, "connection lost");
                    let _ = write!(stdout, "\r\n[seashell: connection lost; resuming…]\r\n");
                    let _ = stdout.flush();
                }
                Some(Event::Reconnected) => {
                    let _ = write!(stdout, "\r\n[seashell: resumed]\r\n");
                    let _ = stdout.flush();
                }
                Some(Event::Ended(text)) => {
                    if !text.is_empty() {
                        let _ = write!(stdout, "\r\n{text}\r\n");
                    }
                    break Ok(0);
                }
                Some(Event::Failed(why)) => break Err(CliError::other(format!("The session failed: {why}"))),
                None => break Ok(0),
            },
            _ = winch.recv() => {
                if let Some(size) = resize() {
                    let _ = session.input.send(size).await;
                }
            }
            _ = hangup.recv() => break Ok(129),
            _ = terminate.recv() => break Ok(143),
        }
    };
    drop(raw);
    let _ = stdout.flush();
    result
}
