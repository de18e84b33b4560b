//! The sending side: numbering, retransmission and the flow-control window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::rtt::RttEstimator;
use crate::data_channel::message::{ClientMessage, EncodeError, MessageType};

/// Tuning of an [`OutgoingBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingConfig {
    /// Most unacknowledged messages held; the plugin's
    /// `OutgoingMessageBufferCapacity` is 10 000.
    pub capacity: usize,
    /// Unacknowledged payload bytes beyond which the sender should stop
    /// producing (the agent stops reading the PTY).
    pub window_bytes: usize,
    /// How long the oldest message may go unacknowledged, counted from its
    /// first transmission on the current connection, before the peer is
    /// considered gone. The plugin gives up after 5 minutes of resending.
    pub give_up_after: Duration,
}

impl Default for OutgoingConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            window_bytes: 256 * 1024,
            give_up_after: Duration::from_secs(5 * 60),
        }
    }
}

/// Why an outgoing message was refused or the channel is stuck.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutgoingError {
    /// Only stream messages are numbered and buffered.
    #[error("{0} messages are not stream messages and are not buffered")]
    NotStream(MessageType),
    /// The buffer holds `capacity` unacknowledged messages already.
    #[error("{0} messages are unacknowledged; the buffer is full")]
    Full(usize),
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Sequence numbers are exhausted.
    #[error("sequence numbers are exhausted")]
    SequenceExhausted,
    /// The oldest message has gone unacknowledged for too long.
    #[error("message {sequence_number} unacknowledged for {elapsed:?}")]
    Stalled {
        /// The oldest unacknowledged sequence number.
        sequence_number: i64,
        /// Time since its first transmission on this connection.
        elapsed: Duration,
    },
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The message was pending and is now released.
    Acked {
        /// The round-trip sample taken, if the message had not been
        /// retransmitted (Karn's rule: the sample of a retransmitted message
        /// is ambiguous).
        rtt_sample: Option<Duration>,
    },
    /// No pending message has that number: a repeated or stale
    /// acknowledgement, safe to ignore.
    Unknown,
}

#[derive(Debug, Clone)]
struct Pending {
    frame: Vec<u8>,
    payload_len: usize,
    first_sent: Instant,
    last_sent: Instant,
    retransmitted: bool,
}

/// Unacknowledged outgoing stream messages, keyed by sequence number.
///
/// The plugin matches acknowledgements by sequence number alone, and so
/// does this buffer. As in the plugin, only the oldest pending message is
/// retransmitted when its timeout expires; the WebSocket below is reliable,
/// so losses happen only across reconnections, which
/// [`resend_all`](Self::resend_all) covers.
///
/// One deliberate difference: the plugin measures the round trip from the
/// first transmission even after a retransmission; this buffer skips such
/// samples (Karn's rule), so a reconnection does not inflate the timeout.
#[derive(Debug, Clone)]
pub struct OutgoingBuffer {
    config: OutgoingConfig,
    next_sequence_number: i64,
    pending: BTreeMap<i64, Pending>,
    unacknowledged_bytes: usize,
    rtt: RttEstimator,
}

impl OutgoingBuffer {
    /// An empty buffer whose first message gets sequence number 0.
    pub fn new(config: OutgoingConfig) -> Self {
        Self {
            config,
            next_sequence_number: 0,
            pending: BTreeMap::new(),
            unacknowledged_bytes: 0,
            rtt: RttEstimator::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutgoingConfig {
        &self.config
    }

    /// The sequence number the next [`send`](Self::send) will assign.
    pub fn next_sequence_number(&self) -> i64 {
        self.next_sequence_number
    }

    /// Numbers `message`, encodes it, keeps a copy until it is
    /// acknowledged, and returns the frame to transmit now.
    ///
    /// It is accepted even when the window is full, so that handshake
    /// messages and the like are never blocked; producers of bulk data check
    /// [`is_window_full`](Self::is_window_full) first.
    pub fn send(
        &mut self,
        mut message: ClientMessage,
        now: Instant,
    ) -> Result<Vec<u8>, OutgoingError> {
        if !message.message_type.is_stream() {
            return Err(OutgoingError::NotStream(message.message_type));
        }
        if self.pending.len() >= self.config.capacity {
            return Err(OutgoingError::Full(self.pending.len()));
        }
        let sequence_number = self.next_sequence_number;
        let next = sequence_number
            .checked_add(1)
            .ok_or(OutgoingError::SequenceExhausted)?;
        message.sequence_number = sequence_number;
        let frame = message.encode()?;
        let payload_len = message.payload.len();
        self.pending.insert(
            sequence_number,
            Pending {
                frame: frame.clone(),
                payload_len,
                first_sent: now,
                last_sent: now,
                retransmitted: false,
            },
        );
        self.unacknowledged_bytes += payload_len;
        self.next_sequence_number = next;
        Ok(frame)
    }

    /// Releases the message with `sequence_number` and, unless it was
    /// retransmitted, feeds its round trip to the estimator.
    pub fn acknowledge(&mut self, sequence_number: i64, now: Instant) -> AckOutcome {
        let Some(p) = self.pending.remove(&sequence_number) else {
            return AckOutcome::Unknown;
        };
        self.unacknowledged_bytes = self.unacknowledged_bytes.saturating_sub(p.payload_len);
        let rtt_sample = (!p.retransmitted).then(|| now.saturating_duration_since(p.last_sent));
        if let Some(sample) = rtt_sample {
            self.rtt.observe(sample);
        }
        AckOutcome::Acked { rtt_sample }
    }

    /// When [`poll_retransmit`](Self::poll_retransmit) next has work, if
    /// anything is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.oldest().map(|(_, p)| p.last_sent + self.rtt.rto())
    }

    /// Returns the oldest pending frame if its timeout has expired, and
    /// restarts its timer; an error once it has been pending longer than
    /// [`OutgoingConfig::give_up_after`].
    pub fn poll_retransmit(&mut self, now: Instant) -> Result<Option<Vec<u8>>, OutgoingError> {
        let rto = self.rtt.rto();
        let give_up = self.config.give_up_after;
        let Some((&sequence_number, p)) = self.pending.iter_mut().next() else {
            return Ok(None);
        };
        if now < p.last_sent + rto {
            return Ok(None);
        }
        let elapsed = now.saturating_duration_since(p.first_sent);
        if elapsed >= give_up {
            return Err(OutgoingError::Stalled {
                sequence_number,
                elapsed,
            });
        }
        p.last_sent = now;
        p.retransmitted = true;
        Ok(Some(p.frame.clone()))
    }

    /// Every pending frame in sequence order, marked as sent now: what to
    /// transmit when a client (re)connects. The give-up clock restarts.
    pub fn resend_all(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.pending
            .values_mut()
            .map(|p| {
                p.first_sent = now;
                p.last_sent = now;
                p.retransmitted = true;
                p.frame.clone()
            })
            .collect()
    }

    /// Payload bytes sent and not yet acknowledged.
    pub fn unacknowledged_bytes(&self) -> usize {
        self.unacknowledged_bytes
    }

    /// Whether at least a window of payload is unacknowledged, so bulk
    /// producers should pause.
    pub fn is_window_full(&self) -> bool {
        self.unacknowledged_bytes >= self.config.window_bytes
    }

    /// Payload bytes that may still be sent before the window is full.
    pub fn window_remaining(&self) -> usize {
        self.config
            .window_bytes
            .saturating_sub(self.unacknowledged_bytes)
    }

    /// Number of unacknowledged messages.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every message has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sequence number of the oldest unacknowledged message.
    pub fn oldest_unacknowledged(&self) -> Option<i64> {
        self.oldest().map(|(&s, _)| s)
    }

    /// The round-trip estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    fn oldest(&self) -> Option<(&i64, &Pending)> {
        self.pending.iter().next()
    }
}

impl Default for OutgoingBuffer {
    fn default() -> Self {
        Self::new(OutgoingConfig::default())
    }
}
