//! The client end of the Session Manager data channel (DESIGN §5), run as a
//! task: it sends the opening frame, answers the handshake, numbers and
//! retransmits input until acknowledged, acknowledges and reorders output,
//! and after a dropped socket gets a new token with ResumeSession and
//! continues from its sequence numbers, so nothing is lost or repeated.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seashell_protocol::data_channel::{
    ActionStatus, ActionType, ClientMessage, HandshakeResponsePayload, MessageType,
    OpenDataChannelInput, OutgoingBuffer, PayloadType, ProcessedClientAction, Receive,
    ReorderBuffer, SizeData, MESSAGE_SCHEMA_VERSION,
};
use seashell_protocol::Secret;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::api::{ApiError, CloudShell};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a dropped session keeps trying to resume before giving up.
pub const RESUME_PATIENCE: Duration = Duration::from_secs(300);

/// What the user's side sends.
#[derive(Debug, Clone)]
pub enum Input {
    /// Keystrokes.
    Keys(Vec<u8>),
    /// A new window size.
    Resize {
        /// Columns.
        cols: u32,
        /// Rows.
        rows: u32,
    },
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed: the shell is ready.
    Ready,
    /// Terminal output, in order, each byte once.
    Output(Vec<u8>),
    /// The socket dropped; resuming.
    Reconnecting(String),
    /// Resumed on a new socket.
    Reconnected,
    /// The session ended (the agent's `channel_closed` text, or the close
    /// reason).
    Ended(String),
    /// The session could not go on.
    Failed(String),
}

/// Where a session lives: what ResumeSession needs.
#[derive(Debug, Clone)]
pub struct SessionTarget {
    /// The API client.
    pub api: CloudShell,
    /// The environment.
    pub environment_id: String,
    /// The session.
    pub session_id: String,
}

/// A running session: send input, receive events. Dropping it closes the
/// socket (the shell lives on for its tab).
#[derive(Debug)]
pub struct Session {
    /// Input to the shell.
    pub input: mpsc::Sender<Input>,
    /// Events from the shell.
    pub events: mpsc::Receiver<Event>,
}

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The WebSocket failed.
    #[error("data channel {url}: {reason}")]
    Socket {
        /// The stream URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A frame could not be built or read.
    #[error("data channel frame: {0}")]
    Frame(String),
    /// ResumeSession failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

fn frame_err(e: impl std::fmt::Display) -> ChannelError {
    ChannelError::Frame(e.to_string())
}

/// Opens `stream_url` with the one-time `token` and runs the session in a
/// task.
pub fn spawn(target: SessionTarget, stream_url: String, token: String) -> Session {
    let (input_tx, input_rx) = mpsc::channel(256);
    let (event_tx, event_rx) = mpsc::channel(1024);
    let channel = Channel {
        target,
        socket: None,
        outgoing: OutgoingBuffer::default(),
        incoming: ReorderBuffer::default(),
        events: event_tx,
        handshake_complete: false,
    };
    tokio::spawn(channel.run(stream_url, token, input_rx));
    Session {
        input: input_tx,
        events: event_rx,
    }
}

struct Channel {
    target: SessionTarget,
    socket: Option<Socket>,
    outgoing: OutgoingBuffer,
    incoming: ReorderBuffer<ClientMessage>,
    events: mpsc::Sender<Event>,
    handshake_complete: bool,
}

/// What ended one socket's life.
enum SocketEnd {
    /// The session is over.
    Ended(String),
    /// The socket dropped; resume.
    Dropped(String),
    /// The user's side went away.
    Abandoned,
}

impl Channel {
    #[tracing::instrument(level = "debug", skip_all, fields(session = %self.target.session_id))]
    async fn run(mut self, stream_url: String, token: String, mut input: mpsc::Receiver<Input>) {
        if let Err(e) = self.open(&stream_url, &token).await {
            let _ = self.events.send(Event::Failed(e.to_string())).await;
            return;
        }
        loop {
            match self.pump(&mut input).await {
                Ok(SocketEnd::Abandoned) => {
                    if let Some(mut socket) = self.socket.take() {
                        let _ = socket.close(None).await;
                    }
                    return;
                }
                Ok(SocketEnd::Ended(text)) => {
                    let _ = self.events.send(Event::Ended(text)).await;
                    return;
                }
                Ok(SocketEnd::Dropped(why)) => {
                    tracing::debug!(%why, "socket dropped");
                    let _ = self.events.send(Event::Reconnecting(why)).await;
                    match self.resume().await {
                        Ok(()) => {
                            let _ = self.events.send(Event::Reconnected).await;
                        }
                        Err(e) => {
                            let _ = self.events.send(Event::Failed(e.to_string())).await;
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = self.events.send(Event::Failed(e.to_string())).await;
                    return;
                }
            }
        }
    }

    async fn open(&mut self, url: &str, token: &str) -> Result<(), ChannelError> {
        let socket_err = |e: &dyn std::fmt::Display| ChannelError::Socket {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let request = url.into_client_request().map_err(|e| socket_err(&e))?;
        // TCP_NODELAY: keystrokes must not wait for Nagle.
        let connector = self
            .target
            .api
            .tls()
            .map(|tls| tokio_tungstenite::Connector::Rustls(tls.clone()));
        let (mut socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector)
                .await
                .map_err(|e| socket_err(&e))?;
        let opening = OpenDataChannelInput {
            message_schema_version: MESSAGE_SCHEMA_VERSION.into(),
            request_id: Uuid::new_v4().to_string(),
            token_value: Secret::new(token),
            client_id: Uuid::new_v4().to_string(),
            client_version: concat!("seashell-cli/", env!("CARGO_PKG_VERSION")).into(),
        };
        let text = serde_json::to_string(&opening).map_err(frame_err)?;
        socket
            .send(Message::text(text))
            .await
            .map_err(|e| socket_err(&e))?;
        self.socket = Some(socket);
        Ok(())
    }

    /// ResumeSession and a new socket, retried with backoff for
    /// [`RESUME_PATIENCE`]; then every unacknowledged input is resent.
    async fn resume(&mut self) -> Result<(), ChannelError> {
        self.socket = None;
        let deadline = Instant::now() + RESUME_PATIENCE;
        let mut pause = Duration::from_millis(200);
        loop {
            let attempt = self.resume_once().await;
            match attempt {
                Ok(()) => break,
                // The session is gone for good: no retry helps.
                Err(ChannelError::Api(ApiError::Service { ref code, .. }))
                    if code == "ResourceNotFoundException"
                        || code == "AccessDeniedException"
                        || code == "ValidationException" =>
                {
                    return attempt
                }
                Err(e) if Instant::now() + pause > deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "resume failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(3));
                }
            }
        }
        for frame in self.outgoing.resend_all(std::time::Instant::now()) {
            self.send_frame(frame).await?;
        }
        Ok(())
    }

    async fn resume_once(&mut self) -> Result<(), ChannelError> {
        let reply = self
            .target
            .api
            .call(
                "resumeSession",
                &json!({
                    "EnvironmentId": self.target.environment_id,
                    "SessionId": self.target.session_id,
                }),
            )
            .await?;
        let field = |name: &str| {
            reply
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| frame_err(format!("resumeSession answered without {name}")))
        };
        let (url, token) = (field("StreamUrl")?, field("TokenValue")?);
        self.open(&url, &token).await
    }

    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), ChannelError> {
        match self.socket.as_mut() {
            Some(socket) => {
                socket
                    .send(Message::binary(frame))
                    .await
                    .map_err(|e| ChannelError::Socket {
                        url: String::new(),
                        reason: e.to_string(),
                    })
            }
            // Kept in the outgoing buffer; resent after the resume.
            None => Ok(()),
        }
    }

    async fn send_input(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<(), ChannelError> {
        let message = ClientMessage::stream(
            MessageType::InputStreamData,
            0,
            payload_type,
            payload,
            Uuid::new_v4(),
            now_ms(),
        );
        let frame = self
            .outgoing
            .send(message, std::time::Instant::now())
            .map_err(frame_err)?;
        self.send_frame(frame).await
    }

    /// Runs one socket until it ends.
    async fn pump(&mut self, input: &mut mpsc::Receiver<Input>) -> Result<SocketEnd, ChannelError> {
        loop {
            let retransmit_at = self
                .outgoing
                .next_deadline()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let Some(socket) = self.socket.as_mut() else {
                return Ok(SocketEnd::Dropped("not connected".into()));
            };
            // Input only after the handshake: the agent reads keystrokes of
            // a ready shell.
            let ready = self.handshake_complete;
            tokio::select! {
                frame = socket.next() => match frame {
                    None => return Ok(SocketEnd::Dropped("the connection closed".into())),
                    Some(Err(e)) => return Ok(SocketEnd::Dropped(e.to_string())),
                    Some(Ok(Message::Close(close))) => {
                        let (code, reason) = close
                            .map(|c| (u16::from(c.code), c.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        // 1000: the session ended, or another client took
                        // the tab over; either way not ours to resume.
                        if code == 1000 {
                            return Ok(SocketEnd::Ended(reason));
                        }
                        return Ok(SocketEnd::Dropped(format!("closed with {code} {reason}")));
                    }
                    Some(Ok(Message::Binary(frame))) => {
                        if let Some(end) = self.handle(&frame).await? {
                            return Ok(end);
                        }
                    }
                    Some(Ok(_)) => {}
                },
                keys = input.recv(), if ready => match keys {
                    None => return Ok(SocketEnd::Abandoned),
                    Some(Input::Keys(keys)) => self.send_input(PayloadType::Output, keys).await?,
                    Some(Input::Resize { cols, rows }) => {
                        let payload = serde_json::to_vec(&SizeData { cols, rows }).map_err(frame_err)?;
                        self.send_input(PayloadType::Size, payload).await?;
                    }
                },
                _ = tokio::time::sleep_until(retransmit_at) => {
                    if let Some(frame) = self
                        .outgoing
                        .poll_retransmit(std::time::Instant::now())
                        .map_err(frame_err)?
                    {
                        self.send_frame(frame).await?;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, frame: &[u8]) -> Result<Option<SocketEnd>, ChannelError> {
        let m = ClientMessage::decode(frame).map_err(frame_err)?;
        match m.message_type {
            MessageType::OutputStreamData => {
                // Acknowledged first, duplicates too: the agent resends
                // until acknowledged.
                let ack = ClientMessage::acknowledge(&m, Uuid::new_v4(), now_ms())
                    .map_err(frame_err)?
                    .encode()
                    .map_err(frame_err)?;
                if self.send_frame(ack).await.is_err() {
                    return Ok(Some(SocketEnd::Dropped("acknowledgement failed".into())));
                }
                if let Receive::Deliver(messages) = self.incoming.receive(m.sequence_number, m) {
                    for m in messages {
                        self.deliver(m).await?;
                    }
                }
            }
            MessageType::Acknowledge => {
                let content = m.acknowledge_content().map_err(frame_err)?;
                self.outgoing
                    .acknowledge(content.sequence_number, std::time::Instant::now());
            }
            MessageType::ChannelClosed => {
                let content = m.channel_closed_content().map_err(frame_err)?;
                return Ok(Some(SocketEnd::Ended(content.output)));
            }
            _ => {}
        }
        Ok(None)
    }

    async fn deliver(&mut self, m: ClientMessage) -> Result<(), ChannelError> {
        match m.payload_type {
            PayloadType::HandshakeRequest => {
                let response = HandshakeResponsePayload {
                    client_version: concat!("seashell-cli/", env!("CARGO_PKG_VERSION")).into(),
                    processed_client_actions: vec![ProcessedClientAction {
                        action_type: ActionType::SessionType,
                        action_status: ActionStatus::Success,
                        action_result: serde_json::Value::Null,
                        error: String::new(),
                    }],
                    errors: vec![],
                };
                let payload = serde_json::to_vec(&response).map_err(frame_err)?;
                self.send_input(PayloadType::HandshakeResponse, payload)
                    .await?;
            }
            PayloadType::HandshakeComplete => {
                self.handshake_complete = true;
                let _ = self.events.send(Event::Ready).await;
            }
            PayloadType::Output | PayloadType::StdErr => {
                let _ = self.events.send(Event::Output(m.payload)).await;
            }
            _ => {}
        }
        Ok(())
    }
}
