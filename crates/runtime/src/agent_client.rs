//! An async client of the agent's control channel, with the client end of
//! each session's data channel.
//!
//! The server uses it to drive the agent of an environment, and the
//! benchmarks and tests use the same code. One [`AgentClient`] is one
//! control connection (a Unix socket, see [`crate::Runtime::agent_socket`]):
//!
//! ```no_run
//! # async fn demo(socket: &std::path::Path) -> Result<(), seashell_runtime::agent_client::AgentClientError> {
//! use seashell_runtime::agent_client::AgentClient;
//! use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
//!
//! let mut agent = AgentClient::connect(socket, Some("env-1")).await?;
//! let session = SessionId("s-1".into());
//! agent.open_session(&session, Shell::Bash, 80, 24, Default::default()).await?;
//! agent.attach(&session, AttachMode::Fresh).await?;
//! agent.send_input(&session, b"echo hi\n").await?;
//! let seen = agent.wait_output(&session, "hi").await?;
//! # Ok(()) }
//! ```
//!
//! What the client does for every session on its own: it answers the
//! agent's `HandshakeRequest`, acknowledges every `output_stream_data`
//! message (so the agent's flow-control window keeps moving), reorders and
//! deduplicates output, and numbers keystrokes and resizes from 0. It does
//! not retransmit input: the Unix socket is reliable and the agent never
//! drops a message it received, so the agent's acknowledgements need no
//! answer. A relay that carries the frames over a WebSocket instead passes
//! them through and leaves reliability to the two ends.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use seashell_protocol::agent_channel::{
    encode_frame, encode_message, negotiate, AgentMessage, AttachMode, ErrorCode, FrameDecoder,
    FrameError, HandshakeError, Hello, RequestId, Role, ServerMessage, SessionEndReason, SessionId,
    Shell, DEFAULT_MAX_FRAME_LEN,
};
use seashell_protocol::data_channel::{
    ActionStatus, ActionType, ChannelClosed, ClientMessage, HandshakeResponsePayload, MessageType,
    PayloadType, ProcessedClientAction, Receive, ReorderBuffer, SizeData, Uuid,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// What can go wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentClientError {
    /// The socket could not be connected to.
    #[error("connecting to the agent at {path}: {source}")]
    Connect {
        /// The socket path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("agent connection: {0}")]
    Io(#[from] std::io::Error),
    /// A control-channel frame was malformed or too large.
    #[error("agent channel framing: {0}")]
    Frame(#[from] FrameError),
    /// The hello exchange failed (wrong protocol, version or environment).
    #[error("agent hello: {0}")]
    Handshake(#[from] HandshakeError),
    /// A data-channel frame could not be decoded or built.
    #[error("data channel of session {session}: {detail}")]
    DataChannel {
        /// The session.
        session: String,
        /// What was wrong.
        detail: String,
    },
    /// The agent refused a request.
    #[error("the agent refused the request ({code:?}): {message}")]
    Agent {
        /// Its error code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The agent answered something the request does not allow.
    #[error("unexpected answer from the agent: {0}")]
    Unexpected(String),
    /// Nothing suitable arrived in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// How long the client waited.
        after: Duration,
        /// What it waited for.
        what: &'static str,
    },
    /// The agent closed the connection.
    #[error("the agent closed the connection")]
    Closed,
}

/// Result alias of this module.
pub type Result<T, E = AgentClientError> = std::result::Result<T, E>;

/// Something the agent sent, after the client handled the data-channel
/// bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Terminal output of a session, in order and without duplicates.
    Output {
        /// The session.
        session_id: SessionId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A session's data-channel handshake completed; output follows.
    HandshakeComplete {
        /// The session.
        session_id: SessionId,
    },
    /// The agent closed a session's data channel (`channel_closed`).
    ChannelClosed {
        /// The session.
        session_id: SessionId,
        /// The text the client should print, if any.
        message: String,
    },
    /// Any other control-channel message (answers, `session_ended`, …).
    Agent(AgentMessage),
}

/// The client end of one session's data channel.
#[derive(Debug, Default)]
struct DataSession {
    next_input: i64,
    incoming: ReorderBuffer<ClientMessage>,
}

/// One control connection to an agent.
#[derive(Debug)]
pub struct AgentClient {
    stream: UnixStream,
    decoder: FrameDecoder,
    next_request: u64,
    /// Events read while waiting for something else, in arrival order.
    queued: VecDeque<Event>,
    sessions: HashMap<SessionId, DataSession>,
    version: u32,
    timeout: Duration,
}

/// The version string this client reports in its hello.
pub(crate) const SOFTWARE_VERSION: &str = concat!("seashell-runtime/", env!("CARGO_PKG_VERSION"));

/// Milliseconds since the Unix epoch, for `CreatedDate`.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Connects to the agent's socket once.
pub(crate) async fn connect_socket(path: &Path) -> Result<UnixStream> {
    let failed = |source| AgentClientError::Connect {
        path: path.to_owned(),
        source,
    };
    // A path into an environment (`/proc/<pid>/root/...`, what
    // `Runtime::agent_socket` gives) is resolved inside its root and must
    // be a socket: root inside could otherwise plant a symbolic link that
    // points the server at any Unix socket of the host
    // (`crate::agent_socket`).
    let Some((root, inside)) = crate::agent_socket::split_environment_root(path) else {
        return UnixStream::connect(path).await.map_err(failed);
    };
    let fd = crate::agent_socket::open_socket_in_root(&root, &inside).map_err(failed)?;
    // Connecting through the descriptor's magic link reaches the very inode
    // that was checked; `fd` stays open until the connect is done.
    let stream = UnixStream::connect(crate::agent_socket::fd_path(&fd))
        .await
        .map_err(failed);
    drop(fd);
    stream
}

/// Connects to the agent's socket, waiting up to `within` for it to
/// appear and accept: the agent creates it a moment after the environment
/// starts.
pub(crate) async fn connect_socket_when_ready(path: &Path, within: Duration) -> Result<UnixStream> {
    let deadline = Instant::now() + within;
    loop {
        match connect_socket(path).await {
            Err(AgentClientError::Connect { source, .. })
                if Instant::now() < deadline
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(AgentClientError::Connect { .. }) if Instant::now() >= deadline => {
                return Err(AgentClientError::Timeout {
                    after: within,
                    what: "the agent's socket",
                })
            }
            other => return other,
        }
    }
}

/// Sends the server's hello, reads the agent's and negotiates the version.
/// With `environment_id`, the agent must serve that environment.
pub(crate) async fn exchange_hellos<S>(
    stream: &mut S,
    decoder: &mut FrameDecoder,
    environment_id: Option<&str>,
    timeout: Duration,
) -> Result<u32>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ours = Hello::new(Role::Server, SOFTWARE_VERSION);
    if let Some(id) = environment_id {
        ours = ours.with_environment(id);
    }
    let frame = encode_frame(&ServerMessage::Hello(ours.clone()), DEFAULT_MAX_FRAME_LEN)?;
    stream.write_all(&frame).await?;
    let deadline = Instant::now() + timeout;
    let theirs = match read_message(stream, decoder, deadline, timeout, "the agent's hello").await?
    {
        AgentMessage::Hello(h) => h,
        AgentMessage::Error { code, message, .. } => {
            return Err(AgentClientError::Agent { code, message })
        }
        other => return Err(AgentClientError::Unexpected(format!("{other:?}"))),
    };
    let version = negotiate(&ours, &theirs)?;
    tracing::debug!(version, agent = %theirs.software_version, "connected");
    Ok(version)
}

/// Reads the next whole message, or [`AgentClientError::Timeout`] at
/// `deadline` (`after` is what the error reports).
pub(crate) async fn read_message<S>(
    stream: &mut S,
    decoder: &mut FrameDecoder,
    deadline: Instant,
    after: Duration,
    what: &'static str,
) -> Result<AgentMessage>
where
    S: AsyncRead + Unpin,
{
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(m) = decoder.next_message::<AgentMessage>()? {
            return Ok(m);
        }
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Err(AgentClientError::Timeout { after, what }),
        };
        if n == 0 {
            return Err(AgentClientError::Closed);
        }
        decoder.push(&buf[..n]);
    }
}

impl AgentClient {
    /// Connects to the socket at `path` and exchanges hellos. With
    /// `environment_id`, the agent must serve that environment.
    #[tracing::instrument(name = "agent.connect", level = "debug", skip_all, fields(socket = %path.display()))]
    pub async fn connect(path: &Path, environment_id: Option<&str>) -> Result<Self> {
        let stream = connect_socket(path).await?;
        Self::handshake(stream, environment_id).await
    }

    /// Like [`AgentClient::connect`], but waits up to `within` for the
    /// socket to appear and accept: the agent creates it a moment after
    /// the environment starts.
    pub async fn connect_when_ready(
        path: &Path,
        environment_id: Option<&str>,
        within: Duration,
    ) -> Result<Self> {
        let stream = connect_socket_when_ready(path, within).await?;
        Self::handshake(stream, environment_id).await
    }

    async fn handshake(mut stream: UnixStream, environment_id: Option<&str>) -> Result<Self> {
        let timeout = Duration::from_secs(30);
        let mut decoder = FrameDecoder::default();
        let version = exchange_hellos(&mut stream, &mut decoder, environment_id, timeout).await?;
        Ok(AgentClient {
            stream,
            decoder,
            next_request: 0,
            queued: VecDeque::new(),
            sessions: HashMap::new(),
            version,
            timeout,
        })
    }

    /// The protocol version agreed in the hello exchange.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// How long each waiting call waits before [`AgentClientError::Timeout`]
    /// (30 s unless changed).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends one control-channel message as it is.
    pub async fn send(&mut self, message: &ServerMessage) -> Result<()> {
        let frame = encode_message(message, self.version, DEFAULT_MAX_FRAME_LEN)?;
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// A fresh request id.
    pub fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Sends the request `make` builds and returns the agent's answer. An
    /// `error` answer becomes [`AgentClientError::Agent`].
    pub async fn request(
        &mut self,
        make: impl FnOnce(RequestId) -> ServerMessage,
    ) -> Result<AgentMessage> {
        let id = self.request_id();
        self.send(&make(id)).await?;
        let event = self
            .wait_for(
                "the agent's answer",
                |e| matches!(e, Event::Agent(m) if m.request_id() == Some(id)),
            )
            .await?;
        match event {
            Event::Agent(AgentMessage::Error { code, message, .. }) => {
                Err(AgentClientError::Agent { code, message })
            }
            Event::Agent(m) => Ok(m),
            other => Err(AgentClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Starts a shell in a new session (not attached yet).
    #[tracing::instrument(name = "agent.open_session", level = "debug", skip_all, fields(session = %session_id.0))]
    pub async fn open_session(
        &mut self,
        session_id: &SessionId,
        shell: Shell,
        cols: u16,
        rows: u16,
        env: BTreeMap<String, String>,
    ) -> Result<()> {
        let sid = session_id.clone();
        match self
            .request(|request_id| ServerMessage::OpenSession {
                request_id,
                session_id: sid,
                shell,
                cols,
                rows,
                env,
            })
            .await?
        {
            AgentMessage::SessionOpened { .. } => Ok(()),
            other => Err(AgentClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Attaches this client to a session and waits for the data-channel
    /// handshake to complete. `Fresh` starts the client's state from
    /// sequence number 0 (a new terminal, which gets a repaint); `Resume`
    /// keeps it.
    #[tracing::instrument(name = "agent.attach", level = "debug", skip_all, fields(session = %session_id.0, ?mode))]
    pub async fn attach(&mut self, session_id: &SessionId, mode: AttachMode) -> Result<()> {
        match mode {
            AttachMode::Fresh => {
                self.sessions
                    .insert(session_id.clone(), DataSession::default());
            }
            AttachMode::Resume => {
                self.sessions.entry(session_id.clone()).or_default();
            }
        }
        let sid = session_id.clone();
        match self
            .request(|request_id| ServerMessage::AttachSession {
                request_id,
                session_id: sid,
                mode,
            })
            .await?
        {
            AgentMessage::Ok { .. } => {}
            other => return Err(AgentClientError::Unexpected(format!("{other:?}"))),
        }
        self.wait_for(
            "the data-channel handshake",
            |e| matches!(e, Event::HandshakeComplete { session_id: s } if s == session_id),
        )
        .await?;
        Ok(())
    }

    /// Tells the agent this client is gone; the shell keeps running.
    pub async fn detach(&mut self, session_id: &SessionId) -> Result<()> {
        self.sessions.remove(session_id);
        self.send(&ServerMessage::DetachSession {
            session_id: session_id.clone(),
        })
        .await
    }

    /// Ends a session (the shell gets SIGHUP).
    pub async fn close_session(
        &mut self,
        session_id: &SessionId,
        reason: Option<SessionEndReason>,
    ) -> Result<()> {
        let sid = session_id.clone();
        self.request(|request_id| ServerMessage::CloseSession {
            request_id,
            session_id: sid,
            reason,
        })
        .await?;
        Ok(())
    }

    /// Sends keystrokes (`input_stream_data`, payload type Output).
    pub async fn send_input(&mut self, session_id: &SessionId, keys: &[u8]) -> Result<()> {
        self.input(session_id, PayloadType::Output, keys.to_vec())
            .await
    }

    /// Resizes the session's terminal (payload type Size).
    pub async fn resize(&mut self, session_id: &SessionId, cols: u32, rows: u32) -> Result<()> {
        let payload =
            serde_json::to_vec(&SizeData { cols, rows }).map_err(|e| data_error(session_id, e))?;
        self.input(session_id, PayloadType::Size, payload).await
    }

    async fn input(
        &mut self,
        session_id: &SessionId,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<()> {
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Err(AgentClientError::DataChannel {
                session: session_id.0.clone(),
                detail: "not attached".into(),
            });
        };
        let sequence = session.next_input;
        session.next_input += 1;
        let frame = ClientMessage::stream(
            MessageType::InputStreamData,
            sequence,
            payload_type,
            payload,
            Uuid::new_v4(),
            now_ms(),
        )
        .encode()
        .map_err(|e| data_error(session_id, e))?;
        self.send(&ServerMessage::DataChannel {
            session_id: session_id.clone(),
            frame: frame.into(),
        })
        .await
    }

    /// The next event, queued or from the connection.
    pub async fn next_event(&mut self) -> Result<Event> {
        let deadline = Instant::now() + self.timeout;
        self.next_event_until(deadline).await
    }

    /// The next event, or [`AgentClientError::Timeout`] at `deadline`.
    pub async fn next_event_until(&mut self, deadline: Instant) -> Result<Event> {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return Ok(e);
            }
            let m = self.read_message(deadline, "a message").await?;
            self.handle(m).await?;
        }
    }

    /// Waits for the first event `pick` accepts; every other event stays
    /// queued, in order, for [`AgentClient::next_event`].
    pub async fn wait_for(
        &mut self,
        what: &'static str,
        mut pick: impl FnMut(&Event) -> bool,
    ) -> Result<Event> {
        if let Some(i) = self.queued.iter().position(&mut pick) {
            if let Some(e) = self.queued.remove(i) {
                return Ok(e);
            }
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let before = self.queued.len();
            let m = self.read_message(deadline, what).await?;
            self.handle(m).await?;
            if let Some(i) = (before..self.queued.len()).find(|&i| pick(&self.queued[i])) {
                if let Some(e) = self.queued.remove(i) {
                    return Ok(e);
                }
            }
        }
    }

    /// The next chunk of output of `session_id`.
    pub async fn next_output(&mut self, session_id: &SessionId) -> Result<Vec<u8>> {
        match self
            .wait_for(
                "output",
                |e| matches!(e, Event::Output { session_id: s, .. } if s == session_id),
            )
            .await?
        {
            Event::Output { data, .. } => Ok(data),
            other => Err(AgentClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Reads the output of `session_id` until it contains `needle`; returns
    /// all of it, as text.
    pub async fn wait_output(&mut self, session_id: &SessionId, needle: &str) -> Result<String> {
        let mut seen = Vec::new();
        loop {
            seen.extend(self.next_output(session_id).await?);
            let text = String::from_utf8_lossy(&seen);
            if text.contains(needle) {
                return Ok(text.into_owned());
            }
        }
    }

    async fn read_message(
        &mut self,
        deadline: Instant,
        what: &'static str,
    ) -> Result<AgentMessage> {
        read_message(
            &mut self.stream,
            &mut self.decoder,
            deadline,
            self.timeout,
            what,
        )
        .await
    }

    /// Turns a message into events, answering data-channel frames on the way.
    async fn handle(&mut self, message: AgentMessage) -> Result<()> {
        let (session_id, frame) = match message {
            AgentMessage::DataChannel { session_id, frame } => (session_id, frame),
            other => {
                self.queued.push_back(Event::Agent(other));
                return Ok(());
            }
        };
        let m = ClientMessage::decode(frame.as_slice()).map_err(|e| data_error(&session_id, e))?;
        match m.message_type {
            MessageType::OutputStreamData => {
                let Some(session) = self.sessions.get_mut(&session_id) else {
                    // Not attached through this client (any more): not ours
                    // to acknowledge.
                    return Ok(());
                };
                let ack = ClientMessage::acknowledge(&m, Uuid::new_v4(), now_ms())
                    .map_err(|e| data_error(&session_id, e))?
                    .encode()
                    .map_err(|e| data_error(&session_id, e))?;
                let delivered = match session.incoming.receive(m.sequence_number, m) {
                    Receive::Deliver(messages) => messages,
                    Receive::Duplicate | Receive::Buffered | Receive::Overflow => vec![],
                };
                // Acknowledge first, duplicates too: the agent resends until
                // it has an acknowledgement.
                self.send(&ServerMessage::DataChannel {
                    session_id: session_id.clone(),
                    frame: ack.into(),
                })
                .await?;
                for m in delivered {
                    self.deliver(&session_id, m).await?;
                }
            }
            MessageType::ChannelClosed => {
                let content: ChannelClosed =
                    m.payload_json().map_err(|e| data_error(&session_id, e))?;
                self.queued.push_back(Event::ChannelClosed {
                    session_id,
                    message: content.output,
                });
            }
            // Acknowledgements of our input need no action (see the module
            // documentation); the rest is not sent to clients.
            _ => {}
        }
        Ok(())
    }

    async fn deliver(&mut self, session_id: &SessionId, m: ClientMessage) -> Result<()> {
        match m.payload_type {
            PayloadType::HandshakeRequest => {
                let response = HandshakeResponsePayload {
                    client_version: SOFTWARE_VERSION.into(),
                    processed_client_actions: vec![ProcessedClientAction {
                        action_type: ActionType::SessionType,
                        action_status: ActionStatus::Success,
                        action_result: serde_json::Value::Null,
                        error: String::new(),
                    }],
                    errors: vec![],
                };
                let payload =
                    serde_json::to_vec(&response).map_err(|e| data_error(session_id, e))?;
                self.input(session_id, PayloadType::HandshakeResponse, payload)
                    .await?;
            }
            PayloadType::HandshakeComplete => self.queued.push_back(Event::HandshakeComplete {
                session_id: session_id.clone(),
            }),
            PayloadType::Output => self.queued.push_back(Event::Output {
                session_id: session_id.clone(),
                data: m.payload,
            }),
            _ => {}
        }
        Ok(())
    }
}

fn data_error(session_id: &SessionId, e: impl std::fmt::Display) -> AgentClientError {
    AgentClientError::DataChannel {
        session: session_id.0.clone(),
        detail: e.to_string(),
    }
}
