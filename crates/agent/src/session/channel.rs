//! The agent's end of one session's data channel.
//!
//! This is pure state: frames come in as bytes, frames to send and events
//! for the shell come out, and the caller passes the time in. It performs
//! the handshake, numbers and keeps output until it is acknowledged,
//! acknowledges and reorders input, and says when output must pause for
//! flow control.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use seashell_protocol::data_channel::{
    session_type, ActionStatus, ActionType, ChannelClosed, ClientMessage, DecodeError, FlagPayload,
    HandshakeCompletePayload, HandshakeRequestPayload, HandshakeResponsePayload, MessageType,
    OutgoingBuffer, OutgoingConfig, OutgoingError, PayloadError, PayloadType, Receive,
    ReorderBuffer, SizeData, Uuid,
};

/// Why a frame could not be handled or produced.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A frame from the client is malformed.
    #[error("malformed frame from the client: {0}")]
    Decode(#[from] DecodeError),
    /// A payload is malformed.
    #[error("malformed payload: {0}")]
    Payload(#[from] PayloadError),
    /// Output could not be queued.
    #[error(transparent)]
    Outgoing(#[from] OutgoingError),
}

/// What the shell side must do after a frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Keystrokes for the shell.
    Input(Vec<u8>),
    /// The client's terminal changed size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// The handshake completed: output may flow.
    Opened,
    /// The client asked to end the session.
    Terminate,
}

/// The result of handling one frame.
#[derive(Debug, Default)]
pub struct Handled {
    /// Frames to send to the client, in order.
    pub frames: Vec<Vec<u8>>,
    /// What the shell side must do, in order.
    pub events: Vec<ChannelEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No client has attached since the session started.
    Idle,
    /// The HandshakeRequest is out; waiting for the client's response.
    AwaitingResponse { requested_at: Instant },
    /// The handshake is done; output flows.
    Open,
}

/// Headroom kept below the outgoing buffer's message capacity, so that
/// handshake messages always fit even when output filled it.
const CAPACITY_HEADROOM: usize = 16;

/// One session's data-channel state at the agent's end.
#[derive(Debug)]
pub struct Channel {
    config: OutgoingConfig,
    agent_version: String,
    outgoing: OutgoingBuffer,
    incoming: ReorderBuffer<ClientMessage>,
    state: State,
}

/// Milliseconds since the Unix epoch, for the CreatedDate field.
pub fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(1)
        .max(1)
}

impl Channel {
    /// A channel with no client yet.
    pub fn new(config: OutgoingConfig, agent_version: impl Into<String>) -> Self {
        Self {
            config,
            agent_version: agent_version.into(),
            outgoing: OutgoingBuffer::new(config),
            incoming: ReorderBuffer::default(),
            state: State::Idle,
        }
    }

    /// Starts over for a client with no state: both directions restart at
    /// sequence number 0 and the HandshakeRequest is returned for sending.
    pub fn start(&mut self, now: Instant) -> Result<Vec<u8>, ChannelError> {
        self.outgoing = OutgoingBuffer::new(self.config);
        self.incoming = ReorderBuffer::default();
        self.state = State::AwaitingResponse { requested_at: now };
        let request = HandshakeRequestPayload::standard_stream(self.agent_version.clone());
        let payload = serde_json::to_vec(&request).map_err(PayloadError::from)?;
        self.send(PayloadType::HandshakeRequest, payload, now)
    }

    /// Continues with a client that kept its state: every unacknowledged
    /// frame is returned for sending again, in order. A channel that never
    /// started starts now.
    pub fn resume(&mut self, now: Instant) -> Result<Vec<Vec<u8>>, ChannelError> {
        if self.state == State::Idle {
            return Ok(vec![self.start(now)?]);
        }
        Ok(self.outgoing.resend_all(now))
    }

    /// Whether a handshake was ever started, i.e. whether a client has
    /// attached since the session began.
    pub fn has_started(&self) -> bool {
        self.state != State::Idle
    }

    /// Whether the handshake has completed.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether shell output may be queued now: the channel is open, less
    /// than a window is unacknowledged, and the buffer has room.
    pub fn can_send_output(&self) -> bool {
        self.is_open()
            && !self.outgoing.is_window_full()
            && self.outgoing.len() + CAPACITY_HEADROOM < self.config.capacity
    }

    /// Numbers and keeps shell output; returns the frame to send.
    pub fn send_output(&mut self, bytes: Vec<u8>, now: Instant) -> Result<Vec<u8>, ChannelError> {
        self.send(PayloadType::Output, bytes, now)
    }

    /// Payload bytes sent and not yet acknowledged.
    pub fn unacknowledged_bytes(&self) -> usize {
        self.outgoing.unacknowledged_bytes()
    }

    /// When [`poll_retransmit`](Self::poll_retransmit) next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.outgoing.next_deadline()
    }

    /// The oldest unacknowledged frame, if its timeout expired.
    pub fn poll_retransmit(&mut self, now: Instant) -> Result<Option<Vec<u8>>, ChannelError> {
        Ok(self.outgoing.poll_retransmit(now)?)
    }

    /// The `channel_closed` frame that tells the client the session is
    /// over, with `output` for it to print.
    pub fn closed_frame(
        &self,
        environment_id: &str,
        session_id: &str,
        output: &str,
    ) -> Result<Vec<u8>, ChannelError> {
        let id = Uuid::new_v4();
        let now = epoch_millis();
        let content = ChannelClosed::new(&id, now, environment_id, session_id, output);
        let message = ClientMessage::channel_closed(&content, id, now)?;
        message
            .encode()
            .map_err(|e| ChannelError::Outgoing(OutgoingError::Encode(e)))
    }

    /// Handles one binary frame from the client.
    pub fn receive(&mut self, frame: &[u8], now: Instant) -> Result<Handled, ChannelError> {
        let message = ClientMessage::decode(frame)?;
        let mut handled = Handled::default();
        match message.message_type {
            MessageType::Acknowledge => {
                let content = message.acknowledge_content()?;
                self.outgoing.acknowledge(content.sequence_number, now);
            }
            MessageType::InputStreamData => {
                let ack = ClientMessage::acknowledge(&message, Uuid::new_v4(), epoch_millis())?;
                let outcome = self.incoming.receive(message.sequence_number, message);
                if outcome.should_acknowledge() {
                    handled.frames.push(
                        ack.encode()
                            .map_err(|e| ChannelError::Outgoing(OutgoingError::Encode(e)))?,
                    );
                }
                if let Receive::Deliver(messages) = outcome {
                    for m in messages {
                        self.deliver(m, now, &mut handled)?;
                    }
                }
            }
            // Output is ours; publication control is between the server
            // and the client; a client does not close the channel this way.
            MessageType::OutputStreamData
            | MessageType::ChannelClosed
            | MessageType::StartPublication
            | MessageType::PausePublication => {
                tracing::debug!(message_type = %message.message_type, "ignored a frame");
            }
        }
        Ok(handled)
    }

    fn deliver(
        &mut self,
        message: ClientMessage,
        now: Instant,
        handled: &mut Handled,
    ) -> Result<(), ChannelError> {
        match message.payload_type {
            PayloadType::HandshakeResponse => {
                let response: HandshakeResponsePayload = message.payload_json()?;
                let State::AwaitingResponse { requested_at } = self.state else {
                    tracing::debug!("handshake response outside a handshake; ignored");
                    return Ok(());
                };
                let status = response.action_status(&ActionType::SessionType);
                if status != Some(ActionStatus::Success) {
                    // The plugin reports what it could not do but carries
                    // on; so does the agent, and logs it for diagnosis.
                    tracing::warn!(
                        ?status,
                        errors = ?response.errors,
                        "client did not confirm the {} session type",
                        session_type::STANDARD_STREAM
                    );
                }
                let complete = HandshakeCompletePayload {
                    handshake_time_to_complete: now.saturating_duration_since(requested_at),
                    customer_message: String::new(),
                };
                let payload = serde_json::to_vec(&complete).map_err(PayloadError::from)?;
                handled
                    .frames
                    .push(self.send(PayloadType::HandshakeComplete, payload, now)?);
                self.state = State::Open;
                handled.events.push(ChannelEvent::Opened);
            }
            PayloadType::Output => handled.events.push(ChannelEvent::Input(message.payload)),
            PayloadType::Size => {
                let size: SizeData = message.payload_json()?;
                let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX).max(1);
                handled.events.push(ChannelEvent::Resize {
                    cols: clamp(size.cols),
                    rows: clamp(size.rows),
                });
            }
            PayloadType::Flag => {
                if FlagPayload::from_bytes(&message.payload)? == FlagPayload::TerminateSession {
                    handled.events.push(ChannelEvent::Terminate);
                }
            }
            other => tracing::debug!(payload_type = other.to_u32(), "ignored an input payload"),
        }
        Ok(())
    }

    fn send(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
        now: Instant,
    ) -> Result<Vec<u8>, ChannelError> {
        let message = ClientMessage::stream(
            MessageType::OutputStreamData,
            0,
            payload_type,
            payload,
            Uuid::new_v4(),
            epoch_millis(),
        );
        Ok(self.outgoing.send(message, now)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use seashell_protocol::data_channel::ProcessedClientAction;

    fn input(seq: i64, payload_type: PayloadType, payload: &[u8]) -> Vec<u8> {
        ClientMessage::stream(
            MessageType::InputStreamData,
            seq,
            payload_type,
            payload.to_vec(),
            Uuid::new_v4(),
            1,
        )
        .encode()
        .unwrap()
    }

    fn response() -> Vec<u8> {
        serde_json::to_vec(&HandshakeResponsePayload {
            client_version: "test".into(),
            processed_client_actions: vec![ProcessedClientAction {
                action_type: ActionType::SessionType,
                action_status: ActionStatus::Success,
                action_result: serde_json::Value::Null,
                error: String::new(),
            }],
            errors: vec![],
        })
        .unwrap()
    }

    fn open() -> Channel {
        let now = Instant::now();
        let mut c = Channel::new(OutgoingConfig::default(), "0.1.0");
        let request = ClientMessage::decode(&c.start(now).unwrap()).unwrap();
        assert_eq!(request.payload_type, PayloadType::HandshakeRequest);
        assert_eq!(request.sequence_number, 0);
        let h = c
            .receive(&input(0, PayloadType::HandshakeResponse, &response()), now)
            .unwrap();
        assert_eq!(h.events, vec![ChannelEvent::Opened]);
        assert_eq!(h.frames.len(), 2, "ack and HandshakeComplete");
        let complete = ClientMessage::decode(&h.frames[1]).unwrap();
        assert_eq!(complete.payload_type, PayloadType::HandshakeComplete);
        assert_eq!(complete.sequence_number, 1);
        c
    }

    #[test]
    fn handshake_then_input_in_order_with_acks() {
        let now = Instant::now();
        let mut c = open();
        assert!(c.can_send_output());
        let h = c
            .receive(&input(2, PayloadType::Output, b"b"), now)
            .unwrap();
        assert!(h.events.is_empty());
        assert_eq!(h.frames.len(), 1, "early message acknowledged");
        let h = c
            .receive(&input(1, PayloadType::Output, b"a"), now)
            .unwrap();
        assert_eq!(
            h.events,
            vec![
                ChannelEvent::Input(b"a".to_vec()),
                ChannelEvent::Input(b"b".to_vec())
            ]
        );
        let h = c
            .receive(&input(1, PayloadType::Output, b"a"), now)
            .unwrap();
        assert!(h.events.is_empty(), "duplicate dropped");
        assert_eq!(h.frames.len(), 1, "duplicate acknowledged again");
        let h = c
            .receive(
                &input(3, PayloadType::Size, br#"{"cols":100,"rows":30}"#),
                now,
            )
            .unwrap();
        assert_eq!(
            h.events,
            vec![ChannelEvent::Resize {
                cols: 100,
                rows: 30
            }]
        );
    }

    #[test]
    fn window_pauses_output_until_acknowledged() {
        let now = Instant::now();
        let config = OutgoingConfig {
            window_bytes: 10,
            ..OutgoingConfig::default()
        };
        let mut c = Channel::new(config, "0.1.0");
        c.start(now).unwrap();
        c.receive(&input(0, PayloadType::HandshakeResponse, &response()), now)
            .unwrap();
        // The handshake messages themselves count; acknowledge them.
        for seq in 0..2 {
            let ack = ack_for(seq);
            c.receive(&ack, now).unwrap();
        }
        let frame = c.send_output(vec![b'x'; 10], now).unwrap();
        assert!(!c.can_send_output());
        let seq = ClientMessage::decode(&frame).unwrap().sequence_number;
        c.receive(&ack_for(seq), now).unwrap();
        assert!(c.can_send_output());
    }

    fn ack_for(seq: i64) -> Vec<u8> {
        let acked = ClientMessage::stream(
            MessageType::OutputStreamData,
            seq,
            PayloadType::Output,
            vec![],
            Uuid::new_v4(),
            1,
        );
        ClientMessage::acknowledge(&acked, Uuid::new_v4(), 1)
            .unwrap()
            .encode()
            .unwrap()
    }

    #[test]
    fn resume_resends_unacknowledged_and_fresh_start_resets() {
        let now = Instant::now();
        let mut c = open();
        c.send_output(b"one".to_vec(), now).unwrap();
        c.send_output(b"two".to_vec(), now).unwrap();
        c.receive(&ack_for(0), now).unwrap();
        c.receive(&ack_for(1), now).unwrap();
        c.receive(&ack_for(2), now).unwrap();
        let resent = c.resume(now).unwrap();
        assert_eq!(resent.len(), 1);
        assert_eq!(ClientMessage::decode(&resent[0]).unwrap().payload, b"two");
        let restart = ClientMessage::decode(&c.start(now).unwrap()).unwrap();
        assert_eq!(restart.sequence_number, 0);
        assert!(!c.is_open());
    }

    #[test]
    fn terminate_flag() {
        let now = Instant::now();
        let mut c = open();
        let h = c
            .receive(
                &input(
                    1,
                    PayloadType::Flag,
                    &FlagPayload::TerminateSession.to_bytes(),
                ),
                now,
            )
            .unwrap();
        assert_eq!(h.events, vec![ChannelEvent::Terminate]);
    }
}
