//! Shell sessions: a shell on a PTY, its data channel and its screen.
//!
//! Each session is one task that owns everything about it, so no lock is
//! held while bytes move. The control connection talks to it through a
//! [`SessionHandle`]. The task's loop gives priority, in order, to
//! commands from the server (which carry the client's keystrokes), to
//! writing pending input into the PTY, to the shell's exit, to
//! retransmissions, and only then to reading output, so Ctrl-C gets
//! through while a program floods the terminal.

pub mod channel;
pub mod pty;
pub mod screen;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use seashell_protocol::agent_channel::{
    AgentMessage, AttachMode, Binary, SessionEndReason, SessionId, SessionSummary, Shell,
};
use seashell_protocol::data_channel::OutgoingConfig;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;
use tracing::Instrument;

use crate::agent::Agent;
use channel::{Channel, ChannelEvent};
use pty::{Pty, PtyError, SpawnRequest};
use screen::Screen;

/// Bytes read from the PTY at once; also the largest output payload.
/// Large enough that a flood costs few messages, small enough that the
/// flow-control window holds several in flight.
const READ_CHUNK: usize = 64 * 1024;
/// Largest payload of a repaint message, so a big screen is sent in
/// several frames like ordinary output.
const REPAINT_CHUNK: usize = 32 * 1024;
/// After the shell exits, how long to keep collecting output still in the
/// PTY (a background job may hold it open forever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// Input waiting for the shell to read it beyond which further keystrokes
/// are dropped: a shell that reads nothing must not make the agent buffer
/// an endless paste.
const MAX_PENDING_INPUT: usize = 1024 * 1024;
/// After `SIGHUP`, how long the shell has to exit before `SIGKILL`.
const HANGUP_GRACE: Duration = Duration::from_secs(3);

/// Settings shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Unacknowledged output beyond which the PTY is no longer read.
    pub window_bytes: usize,
    /// Scrollback lines kept by the screen mirror for repaints.
    pub scrollback_lines: usize,
    /// The agent's version, sent in the handshake.
    pub agent_version: String,
    /// Names the environment in `channel_closed` messages.
    pub environment_id: String,
}

/// Facts about a session that the status report reads without asking the
/// session's task.
#[derive(Debug)]
pub struct SessionInfo {
    id: SessionId,
    shell: Shell,
    started: Instant,
    attached: AtomicBool,
    last_input: Mutex<Instant>,
}

impl SessionInfo {
    /// The status summary of the session.
    pub fn summary(&self, now: Instant) -> SessionSummary {
        let last_input = *self
            .last_input
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        SessionSummary {
            session_id: self.id.clone(),
            shell: self.shell,
            attached: self.attached.load(Ordering::Relaxed),
            idle_ms: Some(millis(now.saturating_duration_since(last_input))),
            age_ms: Some(millis(now.saturating_duration_since(self.started))),
        }
    }

    fn touch_input(&self, now: Instant) {
        *self
            .last_input
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
    }
}

#[derive(Debug)]
enum Command {
    Attach {
        mode: AttachMode,
        done: oneshot::Sender<()>,
    },
    Detach,
    Frame(Vec<u8>),
    /// Input from the server, answered with whether it was taken.
    Input {
        data: Vec<u8>,
        done: oneshot::Sender<bool>,
    },
    Close {
        reason: SessionEndReason,
        done: oneshot::Sender<()>,
    },
}

/// How the control connection reaches a session's task.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    info: Arc<SessionInfo>,
}

impl SessionHandle {
    /// Facts for the status report.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// A client attached; returns once the first frames for it are
    /// queued, or `false` if the session ended first.
    pub async fn attach(&self, mode: AttachMode) -> bool {
        let (done, wait) = oneshot::channel();
        self.commands.send(Command::Attach { mode, done }).is_ok() && wait.await.is_ok()
    }

    /// The client's connection is gone; the shell keeps running.
    pub fn detach(&self) {
        let _ = self.commands.send(Command::Detach);
    }

    /// A data-channel frame from the client.
    pub fn frame(&self, frame: Vec<u8>) {
        let _ = self.commands.send(Command::Frame(frame));
    }

    /// Bytes to type into the shell as if the client had typed them.
    /// `None` if the session has ended; `Some(false)` if its pending input
    /// is full and the bytes were dropped, as keystrokes would be.
    pub async fn input(&self, data: Vec<u8>) -> Option<bool> {
        let (done, wait) = oneshot::channel();
        self.commands.send(Command::Input { data, done }).ok()?;
        wait.await.ok()
    }

    /// Ends the session; returns once the shell is gone and the end has
    /// been reported.
    pub async fn close(&self, reason: SessionEndReason) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Close { reason, done }).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Everything needed to start a session.
#[derive(Debug)]
pub struct OpenRequest {
    /// The new session's id.
    pub id: SessionId,
    /// Which shell.
    pub shell: Shell,
    /// Initial size.
    pub cols: u16,
    /// Initial size.
    pub rows: u16,
    /// Environment from the server.
    pub env: BTreeMap<String, String>,
}

/// Starts the shell and the session's task.
pub fn start(agent: Arc<Agent>, request: OpenRequest) -> Result<SessionHandle, PtyError> {
    let config = agent.config();
    let (pty, exit) = Pty::spawn(
        &SpawnRequest {
            shell: request.shell,
            cols: request.cols,
            rows: request.rows,
            env: &request.env,
            defaults: &config.shell_env,
            user: &config.user,
        },
        agent.reaper(),
    )?;
    let settings = &config.session;
    let now = Instant::now();
    let info = Arc::new(SessionInfo {
        id: request.id.clone(),
        shell: request.shell,
        started: now,
        attached: AtomicBool::new(false),
        last_input: Mutex::new(now),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let span = tracing::info_span!("session", session_id = %request.id, pid = pty.pid());
    let task = Task {
        channel: Channel::new(
            OutgoingConfig {
                window_bytes: settings.window_bytes,
                ..OutgoingConfig::default()
            },
            settings.agent_version.clone(),
        ),
        screen: Screen::new(request.cols, request.rows, settings.scrollback_lines),
        agent: agent.clone(),
        info: info.clone(),
        pty,
        exit,
        exit_code: None,
        pty_open: true,
        connected: false,
        repaint_pending: false,
        input: Vec::new(),
        commands: rx,
    };
    tracing::info!(parent: &span, shell = ?request.shell, "session started");
    tokio::spawn(task.run().instrument(span));
    Ok(SessionHandle { commands: tx, info })
}

/// Why the session's loop stopped.
enum Ending {
    Exited,
    Closed {
        reason: SessionEndReason,
        done: Option<oneshot::Sender<()>>,
    },
}

struct Task {
    agent: Arc<Agent>,
    info: Arc<SessionInfo>,
    pty: Pty,
    exit: oneshot::Receiver<i32>,
    exit_code: Option<i32>,
    pty_open: bool,
    channel: Channel,
    screen: Screen,
    connected: bool,
    repaint_pending: bool,
    input: Vec<u8>,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Task {
    async fn run(mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        let ending = loop {
            let deadline = self
                .connected
                .then(|| self.channel.next_deadline())
                .flatten();
            let can_read = self.pty_open && self.channel.can_send_output();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if let Some(ending) = self.handle(command).await {
                            break ending;
                        }
                    }
                    // Every handle is gone: the agent is going away.
                    None => break Ending::Closed { reason: SessionEndReason::Closed, done: None },
                },
                written = self.pty.write(&self.input), if !self.input.is_empty() => match written {
                    Ok(n) => {
                        self.input.drain(..n.min(self.input.len()));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "writing to the terminal failed; input dropped");
                        self.input.clear();
                    }
                },
                code = &mut self.exit, if self.exit_code.is_none() => {
                    self.exit_code = Some(code.unwrap_or(-1));
                    break Ending::Exited;
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                    self.retransmit().await;
                }
                read = self.pty.read(&mut buf), if can_read => {
                    self.on_read(read, &buf, true).await;
                }
            }
        };
        self.finish(ending, &mut buf).await;
    }

    async fn handle(&mut self, command: Command) -> Option<Ending> {
        match command {
            Command::Attach { mode, done } => {
                self.attach(mode).await;
                let _ = done.send(());
            }
            Command::Detach => {
                tracing::info!("client detached");
                self.set_connected(false);
            }
            Command::Frame(frame) => return self.on_frame(&frame).await,
            Command::Input { data, done } => {
                let taken = self.take_input(&data, Instant::now());
                let _ = done.send(taken);
            }
            Command::Close { reason, done } => {
                return Some(Ending::Closed {
                    reason,
                    done: Some(done),
                })
            }
        }
        None
    }

    /// Queues keyboard input (the client's or the server's) for the
    /// shell; returns `false` if it was dropped because the shell is not
    /// reading what is already pending.
    fn take_input(&mut self, bytes: &[u8], now: Instant) -> bool {
        self.info.touch_input(now);
        if self.input.len() + bytes.len() > MAX_PENDING_INPUT {
            tracing::warn!(
                pending = self.input.len(),
                dropped = bytes.len(),
                "the shell is not reading its input; keystrokes dropped"
            );
            false
        } else {
            self.input.extend_from_slice(bytes);
            true
        }
    }

    fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
        self.info.attached.store(connected, Ordering::Relaxed);
    }

    async fn attach(&mut self, mode: AttachMode) {
        let now = Instant::now();
        self.set_connected(true);
        let frames = if mode == AttachMode::Fresh || !self.channel.has_started() {
            tracing::info!(?mode, "client attached; starting the handshake");
            self.repaint_pending = true;
            self.channel.start(now).map(|f| vec![f])
        } else {
            tracing::info!(
                unacknowledged_bytes = self.channel.unacknowledged_bytes(),
                "client resumed; resending what is unacknowledged"
            );
            self.channel.resume(now)
        };
        match frames {
            Ok(frames) => {
                for frame in frames {
                    self.transmit(frame).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "could not start the data channel"),
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Option<Ending> {
        let now = Instant::now();
        let handled = match self.channel.receive(frame, now) {
            Ok(handled) => handled,
            Err(e) => {
                tracing::debug!(error = %e, "dropped a frame from the client");
                return None;
            }
        };
        for frame in handled.frames {
            self.transmit(frame).await;
        }
        for event in handled.events {
            match event {
                ChannelEvent::Input(bytes) => {
                    self.take_input(&bytes, now);
                }
                ChannelEvent::Resize { cols, rows } => {
                    if let Err(e) = self.pty.resize(cols, rows) {
                        tracing::warn!(error = %e, "resizing the terminal failed");
                    }
                    self.screen.resize(cols, rows);
                }
                ChannelEvent::Opened => {
                    tracing::info!("data channel open");
                    if std::mem::take(&mut self.repaint_pending) && self.screen.has_output() {
                        let repaint = self.screen.repaint();
                        for chunk in repaint.chunks(REPAINT_CHUNK) {
                            self.queue_output(chunk.to_vec(), now).await;
                        }
                    }
                }
                ChannelEvent::Terminate => {
                    tracing::info!("client asked to end the session");
                    return Some(Ending::Closed {
                        reason: SessionEndReason::Closed,
                        done: None,
                    });
                }
            }
        }
        None
    }

    async fn retransmit(&mut self) {
        match self.channel.poll_retransmit(Instant::now()) {
            Ok(Some(frame)) => self.transmit(frame).await,
            Ok(None) => {}
            Err(e) => {
                // The client stopped acknowledging. Stop sending into the
                // void; the next attach resends everything.
                tracing::warn!(error = %e, "client unresponsive; treating it as detached");
                self.set_connected(false);
            }
        }
    }

    /// Handles the result of a PTY read; `paced` is false while winding
    /// down, when output is taken regardless of the window.
    async fn on_read(&mut self, read: std::io::Result<usize>, buf: &[u8], paced: bool) {
        match read {
            Ok(0) => self.pty_open = false,
            Ok(n) => {
                let bytes = &buf[..n.min(buf.len())];
                self.screen.process(bytes);
                if paced || self.channel.is_open() {
                    self.queue_output(bytes.to_vec(), Instant::now()).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the terminal failed");
                self.pty_open = false;
            }
        }
    }

    async fn queue_output(&mut self, bytes: Vec<u8>, now: Instant) {
        match self.channel.send_output(bytes, now) {
            Ok(frame) => self.transmit(frame).await,
            Err(e) => tracing::warn!(error = %e, "output dropped"),
        }
    }

    /// Sends a frame to the client if one is attached; otherwise it waits
    /// in the outgoing buffer (stream messages) or is not needed.
    async fn transmit(&self, frame: Vec<u8>) {
        if self.connected {
            self.agent
                .send(AgentMessage::DataChannel {
                    session_id: self.info.id.clone(),
                    frame: Binary(frame),
                })
                .await;
        }
    }

    /// Keeps reading output until the shell has exited and the terminal
    /// hung up, or until `deadline`.
    async fn wind_down(&mut self, buf: &mut [u8], deadline: Instant) {
        while self.exit_code.is_none() || self.pty_open {
            tokio::select! {
                code = &mut self.exit, if self.exit_code.is_none() => {
                    self.exit_code = Some(code.unwrap_or(-1));
                }
                read = self.pty.read(buf), if self.pty_open => {
                    self.on_read(read, buf, false).await;
                }
                () = sleep_until(deadline.into()) => return,
            }
        }
    }

    async fn finish(mut self, ending: Ending, buf: &mut [u8]) {
        let (reason, done) = match ending {
            Ending::Exited => {
                self.wind_down(buf, Instant::now() + DRAIN_AFTER_EXIT).await;
                (SessionEndReason::Exited, None)
            }
            Ending::Closed { reason, done } => {
                tracing::info!(?reason, "closing the session");
                self.pty.signal_group(Signal::SIGHUP);
                // A stopped job would sleep through the hangup.
                self.pty.signal_group(Signal::SIGCONT);
                self.wind_down(buf, Instant::now() + HANGUP_GRACE).await;
                if self.exit_code.is_none() {
                    self.pty.signal_group(Signal::SIGKILL);
                    self.wind_down(buf, Instant::now() + HANGUP_GRACE).await;
                }
                (reason, done)
            }
        };
        let exit_code = self.exit_code;
        tracing::info!(?reason, ?exit_code, "session ended");
        if self.connected {
            let text = match reason {
                SessionEndReason::Exited => "",
                SessionEndReason::IdleTimeout => "Session ended: no input for too long.",
                SessionEndReason::MaxDuration => "Session ended: maximum duration reached.",
                SessionEndReason::Closed => "Session closed.",
                SessionEndReason::EnvironmentStopping => {
                    "Session ended: the environment is stopping."
                }
            };
            let settings = &self.agent.config().session;
            match self
                .channel
                .closed_frame(&settings.environment_id, &self.info.id.0, text)
            {
                Ok(frame) => self.transmit(frame).await,
                Err(e) => tracing::warn!(error = %e, "could not build channel_closed"),
            }
        }
        self.agent.remove_session(&self.info.id);
        self.agent.report(AgentMessage::SessionEnded {
            session_id: self.info.id.clone(),
            reason,
            exit_code: if reason == SessionEndReason::Exited {
                exit_code
            } else {
                None
            },
        });
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}
