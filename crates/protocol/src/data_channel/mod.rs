//! The Session Manager data channel (DESIGN §5).
//!
//! A client opens the WebSocket at `StreamUrl`, sends one text frame
//! ([`OpenDataChannelInput`]) carrying the one-time token, and from then on
//! every frame in either direction is one binary [`ClientMessage`].
//! Stream messages (`input_stream_data` from the client, `output_stream_data`
//! from the agent) are numbered per direction from 0 and acknowledged one by
//! one with `acknowledge` messages; the [`reliability`] module holds the
//! bookkeeping both ends need for that.
//!
//! The layout and the JSON member names follow the AWS
//! `session-manager-plugin` so that the real plugin is a valid client.
//!
//! ```
//! use seashell_protocol::data_channel::{
//!     ClientMessage, MessageType, OutgoingBuffer, PayloadType, Receive, ReorderBuffer, Uuid,
//! };
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let mut agent = OutgoingBuffer::default();
//! let mut client = ReorderBuffer::default();
//!
//! // The agent numbers and sends a line of output.
//! let output = ClientMessage::stream(
//!     MessageType::OutputStreamData, 0, PayloadType::Output,
//!     b"$ ".to_vec(), Uuid::from_u128(1), 1_700_000_000_000,
//! );
//! let frame = agent.send(output, now)?;
//!
//! // The client decodes it, delivers it in order and acknowledges it.
//! let received = ClientMessage::decode(&frame)?;
//! let outcome = client.receive(received.sequence_number, received.payload.clone());
//! assert_eq!(outcome, Receive::Deliver(vec![b"$ ".to_vec()]));
//! let ack = ClientMessage::acknowledge(&received, Uuid::from_u128(2), 1_700_000_000_001)?;
//!
//! // The agent releases the message once the acknowledgement arrives.
//! let ack = ClientMessage::decode(&ack.encode()?)?;
//! agent.acknowledge(ack.acknowledge_content()?.sequence_number, now);
//! assert!(agent.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod message;
pub mod payload;
pub mod reliability;

/// The UUID type of [`ClientMessage::message_id`], re-exported so callers
/// need not depend on the same `uuid` version.
pub use uuid::Uuid;

pub use message::{
    flags, ClientMessage, DecodeError, DecodeLimits, EncodeError, MessageType, PayloadType,
    DEFAULT_MAX_PAYLOAD_LEN, HEADER_LENGTH, MESSAGE_TYPE_LENGTH, PAYLOAD_OFFSET, SCHEMA_VERSION,
};
pub use payload::{
    session_type, AcknowledgeContent, ActionStatus, ActionType, ChannelClosed, FlagPayload,
    HandshakeCompletePayload, HandshakeRequestPayload, HandshakeResponsePayload,
    OpenDataChannelInput, PayloadError, ProcessedClientAction, RequestedClientAction,
    SessionTypeRequest, SizeData, MESSAGE_SCHEMA_VERSION,
};
pub use reliability::{
    AckOutcome, OutgoingBuffer, OutgoingConfig, OutgoingError, Receive, ReorderBuffer, RttEstimator,
};
