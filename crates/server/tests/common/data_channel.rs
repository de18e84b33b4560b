//! A data-channel client for tests and benchmarks: the client end of the
//! Session Manager protocol over a WebSocket (tokio-tungstenite), with the
//! reliability types of `seashell-protocol`.
//!
//! It sends the opening frame, answers the handshake, sends keystrokes
//! (`input_stream_data`, PayloadType 1) and resizes (PayloadType 3),
//! acknowledges every output frame, delivers output in order without
//! duplicates (`ReorderBuffer`), retransmits its unacknowledged input
//! (`OutgoingBuffer`), and resumes on a new socket keeping its sequence
//! numbers. Frames are processed while a caller waits (`wait_for`,
//! `pump_for`), on the caller's task.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seashell_protocol::data_channel::{
    ActionStatus, ActionType, ClientMessage, HandshakeResponsePayload, MessageType,
    OpenDataChannelInput, OutgoingBuffer, PayloadType, ProcessedClientAction, Receive,
    ReorderBuffer, SizeData, Uuid, MESSAGE_SCHEMA_VERSION,
};
use seashell_protocol::Secret;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What went wrong, as text for test failures.
#[derive(Debug)]
pub struct ClientError(pub String);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClientError {}

fn err(what: impl std::fmt::Display) -> ClientError {
    ClientError(what.to_string())
}

/// How the server closed the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code (1006 when the socket ended without a close frame).
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

/// One client of one session, across reconnections.
pub struct DataChannelClient {
    socket: Option<Socket>,
    outgoing: OutgoingBuffer,
    incoming: ReorderBuffer<ClientMessage>,
    output: Vec<u8>,
    /// Sequence numbers of the output messages delivered, in order.
    delivered: Vec<i64>,
    /// Output messages received again (dropped by the reorder buffer).
    duplicates: usize,
    handshake_complete: bool,
    channel_closed: Option<String>,
    closed: Option<Closed>,
    /// Where the last `wait_for` stopped searching.
    searched: usize,
}

impl DataChannelClient {
    /// Opens `url` with `token` (the opening frame) and waits for the
    /// handshake to complete.
    pub async fn connect(url: &str, token: &str) -> Result<Self, ClientError> {
        let mut client = Self::open_only(url, token).await?;
        client
            .pump_until(Duration::from_secs(30), |c| c.handshake_complete)
            .await?;
        Ok(client)
    }

    /// Opens `url` and sends the opening frame, without waiting for
    /// anything.
    pub async fn open_only(url: &str, token: &str) -> Result<Self, ClientError> {
        let mut client = DataChannelClient {
            socket: None,
            outgoing: OutgoingBuffer::default(),
            incoming: ReorderBuffer::default(),
            output: Vec::new(),
            delivered: Vec::new(),
            duplicates: 0,
            handshake_complete: false,
            channel_closed: None,
            closed: None,
            searched: 0,
        };
        client.open(url, token).await?;
        Ok(client)
    }

    /// Opens the socket and sends the opening frame, without waiting.
    pub async fn open(&mut self, url: &str, token: &str) -> Result<(), ClientError> {
        let request = url.into_client_request().map_err(err)?;
        // TCP_NODELAY, as interactive clients must (see the server's).
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(|e| err(format!("connecting to {url}: {e}")))?;
        let opening = OpenDataChannelInput {
            message_schema_version: MESSAGE_SCHEMA_VERSION.into(),
            request_id: Uuid::new_v4().to_string(),
            token_value: Secret::new(token),
            client_id: Uuid::new_v4().to_string(),
            client_version: "seashell-test-client".into(),
        };
        let text = serde_json::to_string(&opening).map_err(err)?;
        socket.send(Message::text(text)).await.map_err(err)?;
        self.socket = Some(socket);
        self.closed = None;
        Ok(())
    }

    /// Reconnects with a new token, keeping sequence numbers, and resends
    /// every unacknowledged input message.
    pub async fn resume(&mut self, url: &str, token: &str) -> Result<(), ClientError> {
        self.drop_socket();
        self.open(url, token).await?;
        for frame in self.outgoing.resend_all(std::time::Instant::now()) {
            self.send_frame(frame).await?;
        }
        Ok(())
    }

    /// Drops the socket without a close frame, as a network failure would.
    pub fn drop_socket(&mut self) {
        self.socket = None;
    }

    /// Sends keystrokes.
    pub async fn send_keys(&mut self, keys: &[u8]) -> Result<(), ClientError> {
        self.send_input(PayloadType::Output, keys.to_vec()).await
    }

    /// Types a line.
    pub async fn type_line(&mut self, line: &str) -> Result<(), ClientError> {
        self.send_keys(format!("{line}\n").as_bytes()).await
    }

    /// Resizes the terminal.
    pub async fn resize(&mut self, cols: u32, rows: u32) -> Result<(), ClientError> {
        let payload = serde_json::to_vec(&SizeData { cols, rows }).map_err(err)?;
        self.send_input(PayloadType::Size, payload).await
    }

    /// Sends one numbered `input_stream_data` message.
    pub async fn send_input(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<(), ClientError> {
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
            .map_err(err)?;
        self.send_frame(frame).await
    }

    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), ClientError> {
        let socket = self.socket.as_mut().ok_or_else(|| err("not connected"))?;
        socket.send(Message::binary(frame)).await.map_err(err)
    }

    /// The output delivered so far.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// The output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Sequence numbers of the output messages delivered, in order.
    pub fn delivered(&self) -> &[i64] {
        &self.delivered
    }

    /// Output messages received more than once (and delivered once).
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Input messages the agent has not acknowledged.
    pub fn unacknowledged_input(&self) -> usize {
        self.outgoing.len()
    }

    /// Whether the handshake completed.
    pub fn handshake_complete(&self) -> bool {
        self.handshake_complete
    }

    /// The `Output` of the agent's `channel_closed`, once received.
    pub fn channel_closed(&self) -> Option<&str> {
        self.channel_closed.as_deref()
    }

    /// How the server closed the socket, once it did.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    /// Processes frames until `needle` appears in the output after what
    /// earlier waits consumed; returns the output up to and including it.
    pub async fn wait_for(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        let start = self.searched;
        self.wait_for_bytes(needle.as_bytes(), timeout).await?;
        Ok(String::from_utf8_lossy(&self.output[start..self.searched]).into_owned())
    }

    /// Like [`wait_for`](Self::wait_for), without copying the output.
    pub async fn wait_for_bytes(
        &mut self,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let start = self.searched;
        let finder = memchr::memmem::Finder::new(needle).into_owned();
        let found = |c: &mut DataChannelClient| {
            let from = c.searched.saturating_sub(needle.len()).max(start);
            match finder.find(&c.output[from..]) {
                Some(i) => {
                    c.searched = from + i + needle.len();
                    true
                }
                None => {
                    c.searched = c.output.len();
                    false
                }
            }
        };
        self.pump_until(timeout, found).await.map_err(|e| {
            let tail_from = self.output.len().saturating_sub(400);
            err(format!(
                "waiting for {:?}: {e}; output ends with {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.output[tail_from..])
            ))
        })
    }

    /// Processes frames for `duration`.
    pub async fn pump_for(&mut self, duration: Duration) -> Result<(), ClientError> {
        match self.pump_until(duration, |_| false).await {
            Err(e) if e.0.starts_with("timed out") => Ok(()),
            other => other,
        }
    }

    /// Processes frames until the server closes the socket.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Closed, ClientError> {
        self.pump_until(timeout, |c| c.closed.is_some()).await?;
        self.closed.clone().ok_or_else(|| err("not closed"))
    }

    /// Processes frames (and retransmits input) until `done` holds.
    pub async fn pump_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return Ok(());
            }
            if self.closed.is_some() {
                return Err(err(format!("the socket closed: {:?}", self.closed)));
            }
            let retransmit_at = self
                .outgoing
                .next_deadline()
                .map(Instant::from_std)
                .unwrap_or(deadline)
                .min(deadline);
            let socket = self.socket.as_mut().ok_or_else(|| err("not connected"))?;
            let next = tokio::time::timeout_at(retransmit_at, socket.next()).await;
            match next {
                Err(_) if Instant::now() >= deadline => {
                    return Err(err(format!("timed out after {timeout:?}")))
                }
                Err(_) => {
                    if let Some(frame) = self
                        .outgoing
                        .poll_retransmit(std::time::Instant::now())
                        .map_err(err)?
                    {
                        self.send_frame(frame).await?;
                    }
                }
                Ok(None) => {
                    self.closed = Some(Closed {
                        code: 1006,
                        reason: String::new(),
                    })
                }
                Ok(Some(Err(e))) => {
                    self.closed = Some(Closed {
                        code: 1006,
                        reason: e.to_string(),
                    })
                }
                Ok(Some(Ok(message))) => self.handle(message).await?,
            }
        }
    }

    async fn handle(&mut self, message: Message) -> Result<(), ClientError> {
        let frame = match message {
            Message::Binary(frame) => frame,
            Message::Close(close) => {
                self.closed = Some(match close {
                    Some(c) => Closed {
                        code: u16::from(c.code),
                        reason: c.reason.to_string(),
                    },
                    None => Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                });
                return Ok(());
            }
            _ => return Ok(()),
        };
        let m = ClientMessage::decode(&frame).map_err(err)?;
        match m.message_type {
            MessageType::OutputStreamData => {
                let ack = ClientMessage::acknowledge(&m, Uuid::new_v4(), now_ms())
                    .map_err(err)?
                    .encode()
                    .map_err(err)?;
                // Acknowledged first, duplicates too: the agent resends
                // until it has an acknowledgement. A socket that fails
                // here is reported by the next read (with the close frame,
                // if the server sent one).
                let _ = self.send_frame(ack).await;
                match self.incoming.receive(m.sequence_number, m) {
                    Receive::Deliver(messages) => {
                        for m in messages {
                            self.deliver(m).await?;
                        }
                    }
                    Receive::Duplicate => self.duplicates += 1,
                    Receive::Buffered | Receive::Overflow => {}
                }
            }
            MessageType::Acknowledge => {
                let content = m.acknowledge_content().map_err(err)?;
                self.outgoing
                    .acknowledge(content.sequence_number, std::time::Instant::now());
            }
            MessageType::ChannelClosed => {
                let content = m.channel_closed_content().map_err(err)?;
                self.channel_closed = Some(content.output);
            }
            _ => {}
        }
        Ok(())
    }

    async fn deliver(&mut self, m: ClientMessage) -> Result<(), ClientError> {
        self.delivered.push(m.sequence_number);
        match m.payload_type {
            PayloadType::HandshakeRequest => {
                let response = HandshakeResponsePayload {
                    client_version: "seashell-test-client".into(),
                    processed_client_actions: vec![ProcessedClientAction {
                        action_type: ActionType::SessionType,
                        action_status: ActionStatus::Success,
                        action_result: serde_json::Value::Null,
                        error: String::new(),
                    }],
                    errors: vec![],
                };
                let payload = serde_json::to_vec(&response).map_err(err)?;
                self.send_input(PayloadType::HandshakeResponse, payload)
                    .await?;
            }
            PayloadType::HandshakeComplete => self.handshake_complete = true,
            PayloadType::Output => self.output.extend_from_slice(&m.payload),
            _ => {}
        }
        Ok(())
    }
}

/// The HTTP status of a WebSocket upgrade of `url` sent with `origin`
/// (101 when the upgrade succeeds; the socket is then closed).
pub async fn upgrade_status(url: &str, origin: Option<&str>) -> Result<u16, ClientError> {
    let mut request = url.into_client_request().map_err(err)?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().map_err(err)?);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, response)) => {
            let _ = socket.close(None).await;
            Ok(response.status().as_u16())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Ok(response.status().as_u16())
        }
        Err(e) => Err(err(e)),
    }
}
