//! One shared, multiplexed control connection to an environment's agent.
//!
//! The agent serves one server connection at a time (a new one replaces the
//! old), so the server keeps exactly one per environment and every user of
//! that environment goes through it: the CloudShell API (sessions,
//! credentials, status, file transfer) and the data-channel gateway (one
//! [`Attachment`] per connected client). [`AgentHub`] is that connection;
//! it is cheap to clone and every clone is the same connection.
//!
//! ```no_run
//! # async fn demo(socket: &std::path::Path) -> Result<(), seashell_runtime::agent_hub::HubError> {
//! use seashell_runtime::agent_hub::AgentHub;
//! use seashell_protocol::agent_channel::{AttachMode, SessionId, Shell};
//! use std::time::Duration;
//!
//! let hub = AgentHub::connect(socket, "env-1", Duration::from_secs(30)).await?;
//! let session = SessionId("s-1".into());
//! hub.open_session(&session, Shell::Bash, 80, 24, Default::default()).await?;
//! let mut attachment = hub.attach(&session, AttachMode::Fresh).await?;
//! // Relay: frames from the agent to the client ...
//! while let Some(frame) = attachment.next_frame().await {
//!     # let _ = frame;
//!     // ... and the client's frames back with attachment.send_frame(frame).
//! }
//! # Ok(()) }
//! ```
//!
//! How it is built:
//!
//! * One **reader task** decodes everything the agent sends and routes it:
//!   answers to the waiting request (matched by request id, each with a
//!   timeout), data-channel frames to the session's attachment,
//!   `session_ended` to [`AgentHub::session_events`], file chunks to the
//!   reading [`FileStream`]. It never waits for a consumer, so a slow
//!   client cannot hold up other sessions or control answers. Downloads
//!   are paced instead by the stream's acknowledgements (`file_read_ack`):
//!   the agent keeps at most a window of a download unacknowledged.
//! * Each attachment has a bounded queue ([`ATTACHMENT_QUEUE_BYTES`]). A
//!   client that does not drain it holds up nobody else: when the queue is
//!   full, the attachment **overflows** — it stops receiving, its holder
//!   drains what was queued and then sees the end
//!   ([`Attachment::overflowed`]), and the client should reconnect with
//!   `resume`, on which the agent resends every unacknowledged frame in
//!   order. Dropping frames instead would leave the client with gaps that
//!   the agent refills only one per retransmission timeout. The agent's
//!   flow-control window (unacknowledged output) bounds what can be in
//!   flight, so with ordinary frame sizes the queue never fills.
//! * One **writer task** writes, in this order of priority, control
//!   requests and client frames (keystrokes, acknowledgements; one FIFO, so
//!   a detach or attach never overtakes a client's earlier frames) and then
//!   file-upload chunks. Output travels the other way, so input is never
//!   stuck behind it; an upload cannot delay keystrokes either.
//! * Data-channel frames are relayed unchanged in both directions:
//!   reliability (sequence numbers, acknowledgements, reordering) lives at
//!   the client and the agent.
//!
//! When the connection ends (the agent stopped, or another server
//! connection replaced this one) every waiting request fails with
//! [`HubError::Closed`], every attachment's frame receiver ends, and
//! [`AgentHub::closed`] resolves. A hub is not reconnected: the caller makes
//! a new one, and clients resume their sessions through it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use seashell_protocol::agent_channel::{
    encode_message, AgentMessage, AgentStatus, AttachMode, Credentials, ErrorCode, FrameDecoder,
    FrameError, RequestId, ServerMessage, SessionEndReason, SessionId, Shell, TransferId,
    DEFAULT_MAX_FRAME_LEN, FILE_READ_ACK_VERSION, FILE_READ_WINDOW, SEND_INPUT_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::agent_client::{self, AgentClientError};

/// How long a request waits for the agent's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames queued for one attachment before it overflows (see the module
/// documentation). The agent's flow-control window bounds the *bytes* in
/// flight, not the frames: a fast agent reading a flooding PTY sends many
/// small frames, so the queue is measured in bytes
/// ([`ATTACHMENT_QUEUE_BYTES`]) and this count only caps bookkeeping.
pub const ATTACHMENT_QUEUE_FRAMES: usize = 1 << 18;
/// Bytes of frames queued for one attachment before it overflows: several
/// times the agent's default window (256 KiB), so only a client that stops
/// reading (or acknowledges without reading) overflows.
pub const ATTACHMENT_QUEUE_BYTES: usize = 8 << 20;
/// Control requests and client frames queued for the writer; senders wait
/// beyond that.
pub const CONTROL_QUEUE: usize = 1024;
/// Bytes of a download held for a [`FileStream`] that is not being read
/// before the download is abandoned with [`HubError::SlowConsumer`]. The
/// reader task must not wait for the stream's consumer, so the agent paces
/// a download by the stream's `file_read_ack`s and keeps no more than
/// [`FILE_READ_WINDOW`] unacknowledged; this limit is the safety net for an
/// agent that does not (protocol version 1) or misbehaves.
pub const MAX_READ_BUFFER: usize = 64 << 20;
/// A [`FileStream`] acknowledges (`file_read_ack`) each time its consumer
/// has taken this many more bytes: often enough that the agent's window
/// never runs dry while the consumer keeps up, rarely enough to cost
/// nothing.
pub const READ_ACK_EVERY: u64 = 1 << 20;
// A stream whose consumer has taken everything sent acknowledges it, so a
// download never stalls: the agent stops only with more than a window
// less a chunk unacknowledged.
const _: () = assert!(READ_ACK_EVERY + FILE_CHUNK as u64 <= FILE_READ_WINDOW);
/// Size of the chunks an upload is cut into (that of the agent's
/// downloads).
pub const FILE_CHUNK: usize = 512 * 1024;
/// Upload chunks queued for the writer.
const BULK_QUEUE: usize = 4;
/// `session_ended` reports kept for slow subscribers.
const EVENTS_CAPACITY: usize = 256;

/// What can go wrong talking to an agent through the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The agent refused the request, with its code.
    #[error("the agent refused the request ({code:?}): {message}")]
    Agent {
        /// The agent's error code.
        code: ErrorCode,
        /// The agent's explanation.
        message: String,
    },
    /// The connection to the agent is gone.
    #[error("the connection to the agent is closed")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// How long the hub waited.
        after: Duration,
        /// What it waited for.
        what: &'static str,
    },
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
    /// The agent broke the protocol (a bad hello, a malformed frame, an
    /// answer that does not fit the request).
    #[error("agent protocol: {0}")]
    Protocol(String),
    /// The body of an upload failed; the partial upload was abandoned.
    #[error("reading the upload: {0}")]
    Body(#[source] std::io::Error),
    /// A download was not read quickly enough and was abandoned.
    #[error(
        "the download was abandoned: more than {MAX_READ_BUFFER} bytes were waiting to be read"
    )]
    SlowConsumer,
    /// The attachment was replaced by a newer one, or ended; its client's
    /// frames are no longer relayed.
    #[error("the session's attachment was replaced or has ended")]
    NotAttached,
    /// The agent's agreed protocol version lacks the request; it was not
    /// sent (an older agent would not understand it).
    #[error("the agent speaks protocol version {agreed}; {what} needs version {needs}")]
    Unsupported {
        /// The request.
        what: &'static str,
        /// The first version that has it.
        needs: u32,
        /// The version agreed with this agent.
        agreed: u32,
    },
}

impl From<AgentClientError> for HubError {
    fn from(e: AgentClientError) -> Self {
        match e {
            AgentClientError::Connect { path, source } => HubError::Connect { path, source },
            AgentClientError::Io(e) => HubError::Io(e),
            AgentClientError::Agent { code, message } => HubError::Agent { code, message },
            AgentClientError::Timeout { after, what } => HubError::Timeout { after, what },
            AgentClientError::Closed => HubError::Closed,
            other => HubError::Protocol(other.to_string()),
        }
    }
}

impl From<FrameError> for HubError {
    fn from(e: FrameError) -> Self {
        HubError::Protocol(e.to_string())
    }
}

/// A session ended on the agent's side (`session_ended`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnded {
    /// The session.
    pub session_id: SessionId,
    /// Why it ended.
    pub reason: SessionEndReason,
    /// The shell's exit status, when it exited.
    pub exit_code: Option<i32>,
}

/// Where the reader sends one attachment's frames.
#[derive(Debug)]
struct Route {
    generation: u64,
    /// `None` once the attachment overflowed: it stays registered (so
    /// detaching it still tells the agent) but receives nothing more.
    tx: Option<mpsc::Sender<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
    /// Bytes queued and not yet taken by the attachment.
    queued: Arc<AtomicUsize>,
}

/// Where the reader sends one download's chunks.
#[derive(Debug)]
struct ReadRoute {
    tx: mpsc::UnboundedSender<Result<Bytes, HubError>>,
    next_offset: u64,
    buffered: Arc<AtomicUsize>,
}

/// A failure the agent reported for an upload outside any request.
type WriteFailure = Arc<Mutex<Option<(ErrorCode, String)>>>;

#[derive(Debug, Default)]
struct State {
    closed: bool,
    pending: HashMap<RequestId, oneshot::Sender<AgentMessage>>,
    attachments: HashMap<SessionId, Route>,
    reads: HashMap<TransferId, ReadRoute>,
    writes: HashMap<TransferId, WriteFailure>,
}

/// What the reader task, the writer task and the handles share.
#[derive(Debug)]
struct Shared {
    environment_id: String,
    state: Mutex<State>,
    next_id: AtomicU64,
    events: broadcast::Sender<SessionEnded>,
    closed_tx: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind, still
        // consistent enough to route and to clean up.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Marks the connection gone and releases everyone waiting on it.
    fn close(&self, why: &str) {
        let state = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            let taken = std::mem::take(&mut *state);
            state.closed = true;
            taken
        };
        tracing::info!(environment = %self.environment_id, why, "agent connection closed");
        // Marked closed before anyone is released, so whoever gets `Closed`
        // also sees `is_closed()`.
        self.closed_tx.send_replace(true);
        for read in state.reads.into_values() {
            let _ = read.tx.send(Err(HubError::Closed));
        }
        // Dropping the senders ends requests (Closed) and attachments.
        drop(state.pending);
        drop(state.attachments);
    }
}

/// Aborts a task when the last handle goes.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    version: u32,
    control: mpsc::Sender<ServerMessage>,
    bulk: mpsc::Sender<ServerMessage>,
    _reader: AbortOnDrop,
    _writer: AbortOnDrop,
}

/// A shared, multiplexed control connection to one environment's agent.
///
/// Clones are the same connection; it closes when the agent closes it or
/// when the last clone (and the last [`Attachment`] and [`FileStream`]) is
/// dropped.
#[derive(Clone, Debug)]
pub struct AgentHub {
    inner: Arc<Inner>,
}

impl AgentHub {
    /// Connects to the agent's socket (waiting up to `timeout` for it to
    /// appear, as the agent creates it a moment after the environment
    /// starts) and exchanges hellos; the agent must serve `environment_id`.
    #[tracing::instrument(name = "agent_hub.connect", level = "debug", skip_all, fields(environment = environment_id, socket = %socket.display()))]
    pub async fn connect(
        socket: &Path,
        environment_id: &str,
        timeout: Duration,
    ) -> Result<AgentHub, HubError> {
        let mut stream = agent_client::connect_socket_when_ready(socket, timeout).await?;
        let mut decoder = FrameDecoder::default();
        let version =
            agent_client::exchange_hellos(&mut stream, &mut decoder, Some(environment_id), timeout)
                .await?;
        let (read, write) = stream.into_split();
        let (events, _) = broadcast::channel(EVENTS_CAPACITY);
        let (closed_tx, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            environment_id: environment_id.to_owned(),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(0),
            events,
            closed_tx,
        });
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let (bulk, bulk_rx) = mpsc::channel(BULK_QUEUE);
        let span = tracing::info_span!("agent_hub", environment = environment_id);
        let reader =
            tokio::spawn(read_loop(read, decoder, shared.clone()).instrument(span.clone()));
        let writer = tokio::spawn(
            write_loop(write, control_rx, bulk_rx, shared.clone(), version).instrument(span),
        );
        tracing::info!(version, "agent hub connected");
        Ok(AgentHub {
            inner: Arc::new(Inner {
                shared,
                version,
                control,
                bulk,
                _reader: AbortOnDrop(reader),
                _writer: AbortOnDrop(writer),
            }),
        })
    }

    /// The environment the agent serves.
    pub fn environment_id(&self) -> &str {
        &self.inner.shared.environment_id
    }

    /// The protocol version agreed in the hello exchange.
    pub fn version(&self) -> u32 {
        self.inner.version
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        *self.inner.shared.closed_tx.borrow()
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        let mut rx = self.inner.shared.closed_tx.subscribe();
        // The sender lives in `shared`, which this handle keeps alive.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Starts a shell in a new session (not attached yet).
    #[tracing::instrument(name = "agent_hub.open_session", level = "debug", skip_all, fields(session = %id))]
    pub async fn open_session(
        &self,
        id: &SessionId,
        shell: Shell,
        cols: u16,
        rows: u16,
        env: BTreeMap<String, String>,
    ) -> Result<(), HubError> {
        let session_id = id.clone();
        match self
            .request(Queue::Control, "session_opened", |request_id| {
                ServerMessage::OpenSession {
                    request_id,
                    session_id,
                    shell,
                    cols,
                    rows,
                    env,
                }
            })
            .await?
        {
            AgentMessage::SessionOpened { .. } => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Ends a session: the shell gets SIGHUP, the agent reports
    /// `session_ended` with `reason` (`closed` when `None`).
    #[tracing::instrument(name = "agent_hub.close_session", level = "debug", skip_all, fields(session = %id))]
    pub async fn close_session(
        &self,
        id: &SessionId,
        reason: Option<SessionEndReason>,
    ) -> Result<(), HubError> {
        let session_id = id.clone();
        let answer = self
            .request(Queue::Control, "ok", |request_id| {
                ServerMessage::CloseSession {
                    request_id,
                    session_id,
                    reason,
                }
            })
            .await?;
        expect_ok(answer)
    }

    /// Types `data` into a session's shell as if its user had typed it.
    /// Refused without sending when the agent's protocol version predates
    /// `send_input`.
    #[tracing::instrument(name = "agent_hub.send_input", level = "debug", skip_all, fields(session = %id, bytes = data.len()))]
    pub async fn send_input(&self, id: &SessionId, data: &[u8]) -> Result<(), HubError> {
        let agreed = self.inner.version;
        if agreed < SEND_INPUT_VERSION {
            return Err(HubError::Unsupported {
                what: "send_input",
                needs: SEND_INPUT_VERSION,
                agreed,
            });
        }
        let session_id = id.clone();
        let data = data.to_vec().into();
        let answer = self
            .request(Queue::Control, "ok", |request_id| {
                ServerMessage::SendInput {
                    request_id,
                    session_id,
                    data,
                }
            })
            .await?;
        expect_ok(answer)
    }

    /// The agent's status: version, uptime, sessions (with idle time and
    /// age), credentials expiration, home usage.
    pub async fn status(&self) -> Result<AgentStatus, HubError> {
        match self
            .request(Queue::Control, "status", |request_id| {
                ServerMessage::Status { request_id }
            })
            .await?
        {
            AgentMessage::Status { status, .. } => Ok(status),
            other => Err(unexpected(&other)),
        }
    }

    /// Credentials for the environment's credentials endpoint, replacing
    /// any others.
    pub async fn put_credentials(&self, credentials: Credentials) -> Result<(), HubError> {
        let answer = self
            .request(Queue::Control, "ok", |request_id| {
                ServerMessage::PutCredentials {
                    request_id,
                    credentials,
                }
            })
            .await?;
        expect_ok(answer)
    }

    /// Stops serving credentials.
    pub async fn withdraw_credentials(&self) -> Result<(), HubError> {
        let answer = self
            .request(Queue::Control, "ok", |request_id| {
                ServerMessage::WithdrawCredentials { request_id }
            })
            .await?;
        expect_ok(answer)
    }

    /// Attaches a client to a session: sends `attach_session` with `mode`
    /// and returns the [`Attachment`] carrying the session's frames. A newer
    /// attach of the same session replaces this one (the older's frame
    /// receiver ends, and dropping it does not detach the newer).
    #[tracing::instrument(name = "agent_hub.attach", level = "debug", skip_all, fields(session = %id, ?mode))]
    pub async fn attach(&self, id: &SessionId, mode: AttachMode) -> Result<Attachment, HubError> {
        let shared = &self.inner.shared;
        let generation = shared.next_id();
        let (tx, rx) = mpsc::channel(ATTACHMENT_QUEUE_FRAMES);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        {
            let mut state = shared.lock();
            if state.closed {
                return Err(HubError::Closed);
            }
            // Registered before the request, so the handshake the agent
            // sends right after its answer has somewhere to go.
            state.attachments.insert(
                id.clone(),
                Route {
                    generation,
                    tx: Some(tx),
                    dropped: dropped.clone(),
                    queued: queued.clone(),
                },
            );
        }
        let attachment = Attachment {
            hub: self.clone(),
            session: id.clone(),
            generation,
            frames: rx,
            dropped,
            queued,
            detached: false,
        };
        let session_id = id.clone();
        let answer = self
            .request(Queue::Control, "ok", |request_id| {
                ServerMessage::AttachSession {
                    request_id,
                    session_id,
                    mode,
                }
            })
            .await;
        match answer.and_then(expect_ok) {
            Ok(()) => Ok(attachment),
            Err(e) => {
                // The agent did not attach: nothing to detach.
                let mut attachment = attachment;
                attachment.unregister();
                Err(e)
            }
        }
    }

    /// A receiver of every `session_ended` report from now on.
    pub fn session_events(&self) -> broadcast::Receiver<SessionEnded> {
        self.inner.shared.events.subscribe()
    }

    /// Streams `body` into the file at `path` (relative to the home
    /// directory) and returns the bytes written. With `size`, the agent
    /// reserves the space first, so a file that cannot fit fails before any
    /// data is sent. If the body fails, or this future is dropped, the
    /// upload is abandoned and nothing partial is left.
    #[tracing::instrument(name = "agent_hub.write_file", level = "debug", skip_all, fields(?size))]
    pub async fn write_file<S>(
        &self,
        path: &str,
        size: Option<u64>,
        mut body: S,
    ) -> Result<u64, HubError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let shared = &self.inner.shared;
        let transfer_id = TransferId(shared.next_id());
        let failure = WriteFailure::default();
        shared.lock().writes.insert(transfer_id, failure.clone());
        let mut guard = UploadGuard {
            hub: self,
            transfer_id,
            finished: false,
        };
        let path = path.to_owned();
        let answer = self
            .request(Queue::Control, "ok", |request_id| {
                ServerMessage::FileWriteBegin {
                    request_id,
                    transfer_id,
                    path,
                    size,
                }
            })
            .await;
        if let Err(e) = answer.and_then(expect_ok) {
            // Refused: the agent holds nothing to abort.
            guard.finished = true;
            return Err(e);
        }
        let mut offset = 0u64;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(HubError::Body)?;
            for chunk in piece.chunks(FILE_CHUNK) {
                if let Some((code, message)) = take_failure(&failure) {
                    // The agent removed the partial file already.
                    guard.finished = true;
                    return Err(HubError::Agent { code, message });
                }
                self.inner
                    .bulk
                    .send(ServerMessage::FileWriteChunk {
                        transfer_id,
                        offset,
                        data: chunk.into(),
                    })
                    .await
                    .map_err(|_| HubError::Closed)?;
                offset += chunk.len() as u64;
            }
        }
        // Through the upload queue, behind the last chunk.
        let answer = self
            .request(Queue::Bulk, "ok", |request_id| {
                ServerMessage::FileWriteEnd {
                    request_id,
                    transfer_id,
                }
            })
            .await;
        guard.finished = true;
        expect_ok(answer?)?;
        Ok(offset)
    }

    /// Reads the file at `path` (relative to the home directory): its size
    /// and a stream of its bytes.
    #[tracing::instrument(name = "agent_hub.read_file", level = "debug", skip_all)]
    pub async fn read_file(&self, path: &str) -> Result<(u64, FileStream), HubError> {
        let shared = &self.inner.shared;
        let transfer_id = TransferId(shared.next_id());
        let (tx, rx) = mpsc::unbounded_channel();
        let buffered = Arc::new(AtomicUsize::new(0));
        {
            let mut state = shared.lock();
            if state.closed {
                return Err(HubError::Closed);
            }
            state.reads.insert(
                transfer_id,
                ReadRoute {
                    tx,
                    next_offset: 0,
                    buffered: buffered.clone(),
                },
            );
        }
        let stream = FileStream {
            hub: self.clone(),
            transfer_id,
            rx,
            buffered,
            size: 0,
            received: 0,
            acked: 0,
            active: false,
            done: false,
        };
        let path = path.to_owned();
        let answer = self
            .request(Queue::Control, "file_read_begin", |request_id| {
                ServerMessage::FileRead {
                    request_id,
                    transfer_id,
                    path,
                }
            })
            .await?;
        match answer {
            AgentMessage::FileReadBegin { size, .. } => {
                let mut stream = stream;
                stream.size = size;
                stream.active = true;
                Ok((size, stream))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Sends `make(request_id)` through `queue` and waits for the answer
    /// with that id; an `error` answer becomes [`HubError::Agent`].
    async fn request(
        &self,
        queue: Queue,
        what: &'static str,
        make: impl FnOnce(RequestId) -> ServerMessage,
    ) -> Result<AgentMessage, HubError> {
        let shared = &self.inner.shared;
        let id = RequestId(shared.next_id());
        let (tx, rx) = oneshot::channel();
        {
            let mut state = shared.lock();
            if state.closed {
                return Err(HubError::Closed);
            }
            state.pending.insert(id, tx);
        }
        let queue = match queue {
            Queue::Control => &self.inner.control,
            Queue::Bulk => &self.inner.bulk,
        };
        // The timeout covers the wait for room in the queue too: a writer
        // stuck on an agent that stopped reading must not hang callers.
        let exchange = async {
            queue.send(make(id)).await.map_err(|_| HubError::Closed)?;
            rx.await.map_err(|_| HubError::Closed)
        };
        let answer = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                shared.lock().pending.remove(&id);
                return Err(e);
            }
            Err(_) => {
                shared.lock().pending.remove(&id);
                return Err(HubError::Timeout {
                    after: REQUEST_TIMEOUT,
                    what,
                });
            }
        };
        match answer {
            AgentMessage::Error { code, message, .. } => Err(HubError::Agent { code, message }),
            other => Ok(other),
        }
    }

    /// Sends a message that needs no answer, in order with the requests
    /// and client frames.
    async fn send(&self, message: ServerMessage) -> Result<(), HubError> {
        self.inner
            .control
            .send(message)
            .await
            .map_err(|_| HubError::Closed)
    }

    /// Queues a message that needs no answer from code that cannot wait
    /// (a stream's poll, a drop): at once if the control queue has room,
    /// otherwise from a task that waits for it.
    fn send_soon(&self, message: ServerMessage) {
        if let Err(mpsc::error::TrySendError::Full(message)) = self.inner.control.try_send(message)
        {
            let control = self.inner.control.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = control.send(message).await;
                });
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Queue {
    Control,
    Bulk,
}

fn unexpected(m: &AgentMessage) -> HubError {
    HubError::Protocol(format!("unexpected answer {m:?}"))
}

fn expect_ok(m: AgentMessage) -> Result<(), HubError> {
    match m {
        AgentMessage::Ok { .. } => Ok(()),
        other => Err(unexpected(&other)),
    }
}

fn take_failure(failure: &WriteFailure) -> Option<(ErrorCode, String)> {
    failure.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Abandons an upload that did not finish, however its future ended.
struct UploadGuard<'a> {
    hub: &'a AgentHub,
    transfer_id: TransferId,
    finished: bool,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        self.hub
            .inner
            .shared
            .lock()
            .writes
            .remove(&self.transfer_id);
        if !self.finished {
            let abort = ServerMessage::FileWriteAbort {
                transfer_id: self.transfer_id,
            };
            // Behind the chunks already queued; if the queue is full, a
            // task waits for room (the agent also drops the upload when the
            // connection ends).
            if let Err(mpsc::error::TrySendError::Full(abort)) = self.hub.inner.bulk.try_send(abort)
            {
                let bulk = self.hub.inner.bulk.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = bulk.send(abort).await;
                    });
                }
            }
        }
    }
}

/// One client's attachment to a session: the frames the agent sends for
/// the session, and the way to send the client's frames to it.
///
/// Dropping it detaches the session (the shell keeps running) unless a
/// newer attachment replaced it; [`detach`](Self::detach) does the same
/// and waits until the message is queued.
#[derive(Debug)]
pub struct Attachment {
    hub: AgentHub,
    session: SessionId,
    generation: u64,
    frames: mpsc::Receiver<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    queued: Arc<AtomicUsize>,
    detached: bool,
}

impl Attachment {
    /// The session.
    pub fn session_id(&self) -> &SessionId {
        &self.session
    }

    /// The next data-channel frame from the agent, unchanged. `None` once
    /// the attachment has ended: replaced by a newer one, the session
    /// ended (after its last frames, `channel_closed` among them), it
    /// [overflowed](Self::overflowed), or the connection to the agent is
    /// gone (then [`AgentHub::is_closed`]).
    pub async fn next_frame(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.recv().await?;
        self.queued.fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }

    /// The frame receiver itself, for `select!` loops.
    pub fn frames(&mut self) -> &mut mpsc::Receiver<Vec<u8>> {
        &mut self.frames
    }

    /// Sends one data-channel frame from the client to the agent,
    /// unchanged.
    pub async fn send_frame(&self, frame: Vec<u8>) -> Result<(), HubError> {
        self.sender().send_frame(frame).await
    }

    /// A handle for sending the client's frames from another task.
    pub fn sender(&self) -> FrameSender {
        FrameSender {
            hub: self.hub.clone(),
            session: self.session.clone(),
            generation: self.generation,
        }
    }

    /// Whether the attachment overflowed: its client did not keep up, the
    /// frames after the queued ones were not delivered, and the client
    /// should reconnect with `resume` (see the module documentation).
    pub fn overflowed(&self) -> bool {
        self.dropped.load(Ordering::Relaxed) > 0
    }

    /// Frames the agent sent for this attachment after it overflowed.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether this is still the session's current attachment.
    pub fn is_current(&self) -> bool {
        self.hub
            .inner
            .shared
            .lock()
            .attachments
            .get(&self.session)
            .is_some_and(|r| r.generation == self.generation)
    }

    /// Detaches the session (`detach_session`; the shell keeps running),
    /// unless a newer attachment replaced this one.
    pub async fn detach(mut self) -> Result<(), HubError> {
        self.detached = true;
        if self.unregister() {
            self.hub
                .send(ServerMessage::DetachSession {
                    session_id: self.session.clone(),
                })
                .await?;
        }
        Ok(())
    }

    /// Removes this attachment's route; whether it was still current.
    fn unregister(&mut self) -> bool {
        self.detached = true;
        let mut state = self.hub.inner.shared.lock();
        let current = state
            .attachments
            .get(&self.session)
            .is_some_and(|r| r.generation == self.generation);
        if current {
            state.attachments.remove(&self.session);
        }
        current
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.detached || !self.unregister() {
            return;
        }
        let detach = ServerMessage::DetachSession {
            session_id: self.session.clone(),
        };
        if let Err(mpsc::error::TrySendError::Full(detach)) =
            self.hub.inner.control.try_send(detach)
        {
            let control = self.hub.inner.control.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = control.send(detach).await;
                });
            }
        }
    }
}

/// Sends a client's frames to its session; see [`Attachment::sender`].
#[derive(Debug, Clone)]
pub struct FrameSender {
    hub: AgentHub,
    session: SessionId,
    generation: u64,
}

impl FrameSender {
    /// Sends one data-channel frame from the client to the agent,
    /// unchanged; waits while the writer's queue is full. Refused with
    /// [`HubError::NotAttached`] once a newer attachment replaced this one
    /// or it was detached: a late frame of an old client must not reach the
    /// new client's channel (after a fresh attach the sequence numbers
    /// start again from 0, and a stale frame would take a new one's place).
    pub async fn send_frame(&self, frame: Vec<u8>) -> Result<(), HubError> {
        let permit = self
            .hub
            .inner
            .control
            .reserve()
            .await
            .map_err(|_| HubError::Closed)?;
        // Checked and queued under the lock that `attach` registers under
        // before it queues `attach_session`: either this frame is queued
        // first, or it sees the newer attachment and is refused.
        let state = self.hub.inner.shared.lock();
        let current = state
            .attachments
            .get(&self.session)
            .is_some_and(|r| r.generation == self.generation);
        if !current {
            return Err(if state.closed {
                HubError::Closed
            } else {
                HubError::NotAttached
            });
        }
        permit.send(ServerMessage::DataChannel {
            session_id: self.session.clone(),
            frame: frame.into(),
        });
        Ok(())
    }
}

/// The bytes of a file being read, in order; see [`AgentHub::read_file`].
///
/// Ends after the last byte, or with an error (the agent's, the
/// connection's, or [`HubError::SlowConsumer`]).
///
/// The agent sends only as far as the stream lets it: the stream
/// acknowledges (`file_read_ack`) what its consumer has taken, every
/// [`READ_ACK_EVERY`] bytes, so a slow consumer slows its own download and
/// nothing else. Dropping the stream before the end tells the agent to
/// stop (`file_read_abort`).
#[derive(Debug)]
pub struct FileStream {
    hub: AgentHub,
    transfer_id: TransferId,
    rx: mpsc::UnboundedReceiver<Result<Bytes, HubError>>,
    buffered: Arc<AtomicUsize>,
    size: u64,
    received: u64,
    /// The offset last acknowledged to the agent.
    acked: u64,
    /// Whether the agent may still be sending (the download started and
    /// has not ended cleanly), so dropping the stream must abort it.
    active: bool,
    done: bool,
}

impl FileStream {
    /// The file's size, as the agent announced it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes received from the agent and not yet taken from the stream.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    /// Whether the agent paces this download by acknowledgements.
    fn flow_controlled(&self) -> bool {
        self.hub.inner.version >= FILE_READ_ACK_VERSION
    }

    /// Tells the agent the consumer has taken everything received so far,
    /// once another [`READ_ACK_EVERY`] bytes have gone.
    fn acknowledge(&mut self) {
        if !self.flow_controlled() || self.received - self.acked < READ_ACK_EVERY {
            return;
        }
        self.acked = self.received;
        self.hub.send_soon(ServerMessage::FileReadAck {
            transfer_id: self.transfer_id,
            offset: self.received,
        });
    }
}

impl Stream for FileStream {
    type Item = Result<Bytes, HubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                self.buffered.fetch_sub(bytes.len(), Ordering::Relaxed);
                self.received += bytes.len() as u64;
                self.acknowledge();
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.received == self.size {
                    self.active = false;
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(HubError::Protocol(format!(
                        "the file ended after {} of {} bytes",
                        self.received, self.size
                    )))))
                }
            }
        }
    }
}

impl Drop for FileStream {
    fn drop(&mut self) {
        // Later chunks are discarded by the reader.
        let closed = {
            let mut state = self.hub.inner.shared.lock();
            state.reads.remove(&self.transfer_id);
            state.closed
        };
        // Abandoned (by its consumer, or by the hub after an error): the
        // agent stops and closes the file. One that ended at the agent
        // already is ignored there.
        if self.active && !closed && self.flow_controlled() {
            self.hub.send_soon(ServerMessage::FileReadAbort {
                transfer_id: self.transfer_id,
            });
        }
    }
}

/// Reads and routes everything the agent sends until the connection ends.
async fn read_loop(mut read: OwnedReadHalf, mut decoder: FrameDecoder, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 64 * 1024];
    let why = loop {
        loop {
            match decoder.next_message::<AgentMessage>() {
                Ok(Some(message)) => route(&shared, message),
                Ok(None) => break,
                // The frame was consumed; the stream is still in step.
                Err(e @ (FrameError::Json(_) | FrameError::Binary(_))) => {
                    tracing::warn!(error = %e, "malformed message from the agent");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "agent stream out of step");
                    shared.close("protocol error");
                    return;
                }
            }
        }
        match read.read(&mut buf).await {
            Ok(0) => break "the agent closed the connection",
            Ok(n) => decoder.push(&buf[..n]),
            Err(e) => {
                tracing::warn!(error = %e, "reading from the agent failed");
                break "read error";
            }
        }
    };
    shared.close(why);
}

/// Sends one message from the agent where it belongs, without waiting.
fn route(shared: &Shared, message: AgentMessage) {
    match message {
        AgentMessage::DataChannel { session_id, frame } => {
            route_frame(shared, session_id, frame.into_inner())
        }
        AgentMessage::SessionEnded {
            session_id,
            reason,
            exit_code,
        } => {
            tracing::debug!(session = %session_id, ?reason, ?exit_code, "session ended");
            // Reported before the attachment ends, so its holder can tell
            // why it ended. Its frames came first (the agent writes the
            // report after them), so it ends after its `channel_closed`.
            let _ = shared.events.send(SessionEnded {
                session_id: session_id.clone(),
                reason,
                exit_code,
            });
            shared.lock().attachments.remove(&session_id);
        }
        AgentMessage::FileReadChunk {
            transfer_id,
            offset,
            data,
        } => {
            let mut state = shared.lock();
            let Some(read) = state.reads.get_mut(&transfer_id) else {
                return;
            };
            let len = data.len();
            let failure = if offset != read.next_offset {
                Some(HubError::Protocol(format!(
                    "download chunk at offset {offset}, expected {}",
                    read.next_offset
                )))
            } else if read.buffered.load(Ordering::Relaxed) + len > MAX_READ_BUFFER {
                Some(HubError::SlowConsumer)
            } else {
                None
            };
            if let Some(e) = failure {
                tracing::warn!(transfer_id = transfer_id.0, error = %e, "download abandoned");
                if let Some(read) = state.reads.remove(&transfer_id) {
                    let _ = read.tx.send(Err(e));
                }
                return;
            }
            read.next_offset += len as u64;
            read.buffered.fetch_add(len, Ordering::Relaxed);
            if read.tx.send(Ok(Bytes::from(data.into_inner()))).is_err() {
                state.reads.remove(&transfer_id);
            }
        }
        AgentMessage::FileReadEnd { transfer_id } => {
            // Dropping the sender ends the stream after the queued chunks.
            shared.lock().reads.remove(&transfer_id);
        }
        AgentMessage::Error {
            request_id: None,
            code,
            message,
        } => route_unsolicited_error(shared, code, message),
        AgentMessage::Hello(_) => {
            tracing::warn!("the agent sent a second hello");
        }
        answer => {
            let Some(id) = answer.request_id() else {
                return;
            };
            let waiter = shared.lock().pending.remove(&id);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(answer);
                }
                // It timed out and gave up.
                None => tracing::debug!(request_id = id.0, "late answer from the agent"),
            }
        }
    }
}

fn route_frame(shared: &Shared, session_id: SessionId, frame: Vec<u8>) {
    let mut state = shared.lock();
    let Some(route) = state.attachments.get_mut(&session_id) else {
        // Nobody attached: the agent keeps its unacknowledged output and
        // resends it on the next attach.
        return;
    };
    let Some(tx) = &route.tx else {
        // Overflowed: the client resumes and gets it all again.
        route.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let len = frame.len();
    let over = route.queued.load(Ordering::Relaxed) + len > ATTACHMENT_QUEUE_BYTES;
    let sent = if over {
        Err(mpsc::error::TrySendError::Full(frame))
    } else {
        route.queued.fetch_add(len, Ordering::Relaxed);
        tx.try_send(frame).inspect_err(|_| {
            route.queued.fetch_sub(len, Ordering::Relaxed);
        })
    };
    match sent {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                session = %session_id,
                queued_bytes = route.queued.load(Ordering::Relaxed),
                "the client does not keep up; its attachment overflows"
            );
            route.dropped.fetch_add(1, Ordering::Relaxed);
            // Its receiver ends after the frames already queued.
            route.tx = None;
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            // The attachment is being dropped; its Drop cleans up.
        }
    }
}

/// An `error` without a request id: the agent names the transfer it
/// concerns in its message (`transfer <id>: …`).
fn route_unsolicited_error(shared: &Shared, code: ErrorCode, message: String) {
    let transfer = message
        .strip_prefix("transfer ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<u64>().ok())
        .map(TransferId);
    let mut state = shared.lock();
    if let Some(id) = transfer {
        if let Some(read) = state.reads.remove(&id) {
            let _ = read.tx.send(Err(HubError::Agent { code, message }));
            return;
        }
        if let Some(failure) = state.writes.get(&id) {
            *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, message));
            return;
        }
    }
    tracing::warn!(?code, %message, "the agent reported an error");
}

/// Writes requests and client frames first, then upload chunks.
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut control: mpsc::Receiver<ServerMessage>,
    mut bulk: mpsc::Receiver<ServerMessage>,
    shared: Arc<Shared>,
    version: u32,
) {
    let mut closed = shared.closed_tx.subscribe();
    loop {
        let message = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => return,
            Some(m) = control.recv() => m,
            Some(m) = bulk.recv() => m,
            else => return,
        };
        let frame = match encode_message(&message, version, DEFAULT_MAX_FRAME_LEN) {
            Ok(frame) => frame,
            Err(e) => {
                // Only a client frame far above any data-channel limit can
                // do this; it is not sent.
                tracing::warn!(error = %e, "message to the agent not encodable");
                continue;
            }
        };
        if let Err(e) = write.write_all(&frame).await {
            tracing::warn!(error = %e, "writing to the agent failed");
            shared.close("write error");
            return;
        }
    }
}
