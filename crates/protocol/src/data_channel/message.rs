//! The binary `ClientMessage` frame.
//!
//! Layout (all integers big-endian), as in the plugin's
//! `src/message/clientmessage.go` and `messageparser.go`:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | HeaderLength (u32, always 116: the offset of PayloadLength) |
//! | 4 | 32 | MessageType (ASCII, space padded) |
//! | 36 | 4 | SchemaVersion (u32, 1) |
//! | 40 | 8 | CreatedDate (u64, epoch milliseconds) |
//! | 48 | 8 | SequenceNumber (i64) |
//! | 56 | 8 | Flags (u64) |
//! | 64 | 16 | MessageId (UUID, low 8 bytes first, then high 8 bytes) |
//! | 80 | 32 | PayloadDigest (SHA-256 of Payload) |
//! | 112 | 4 | PayloadType (u32) |
//! | 116 | 4 | PayloadLength (u32) |
//! | 120 | n | Payload |

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

use super::payload::{AcknowledgeContent, ChannelClosed, PayloadError};

/// Value of the HeaderLength field: the byte offset of PayloadLength.
pub const HEADER_LENGTH: u32 = 116;
/// Offset of the first payload byte: HeaderLength plus the 4-byte
/// PayloadLength field.
pub const PAYLOAD_OFFSET: usize = HEADER_LENGTH as usize + 4;
/// Width of the MessageType field in bytes.
pub const MESSAGE_TYPE_LENGTH: usize = 32;
/// The only schema version the plugin sends.
pub const SCHEMA_VERSION: u32 = 1;
/// Default ceiling on a decoded payload: far above what either end sends
/// (the plugin sends at most 1024 bytes of input per message) while keeping
/// a hostile length field from reserving memory.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 1024 * 1024;

const OFF_MESSAGE_TYPE: usize = 4;
const OFF_SCHEMA_VERSION: usize = 36;
const OFF_CREATED_DATE: usize = 40;
const OFF_SEQUENCE_NUMBER: usize = 48;
const OFF_FLAGS: usize = 56;
const OFF_MESSAGE_ID: usize = 64;
const OFF_PAYLOAD_DIGEST: usize = 80;
const OFF_PAYLOAD_TYPE: usize = 112;
const OFF_PAYLOAD_LENGTH: usize = 116;
const DIGEST_LENGTH: usize = 32;

/// Bits of the Flags field.
pub mod flags {
    /// SYN: the recipient should take this sequence number as the first of
    /// the stream.
    pub const SYN: u64 = 1;
    /// FIN: this is the last message of the stream.
    pub const FIN: u64 = 2;
    /// The value the plugin puts on every `acknowledge` message (SYN|FIN).
    pub const ACKNOWLEDGE: u64 = SYN | FIN;
}

/// The MessageType field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `input_stream_data`: keystrokes, resizes and handshake responses from
    /// the client.
    InputStreamData,
    /// `output_stream_data`: terminal output and handshake messages from the
    /// agent.
    OutputStreamData,
    /// `acknowledge`: receipt of one stream message.
    Acknowledge,
    /// `channel_closed`: the session is over; the client exits.
    ChannelClosed,
    /// `start_publication`: the client may send stream messages again.
    StartPublication,
    /// `pause_publication`: the client should hold stream messages because
    /// the remote end is not connected.
    PausePublication,
}

impl MessageType {
    /// Every message type, for iteration in tests and tools.
    pub const ALL: [MessageType; 6] = [
        MessageType::InputStreamData,
        MessageType::OutputStreamData,
        MessageType::Acknowledge,
        MessageType::ChannelClosed,
        MessageType::StartPublication,
        MessageType::PausePublication,
    ];

    /// The name as written on the wire (before padding).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::InputStreamData => "input_stream_data",
            MessageType::OutputStreamData => "output_stream_data",
            MessageType::Acknowledge => "acknowledge",
            MessageType::ChannelClosed => "channel_closed",
            MessageType::StartPublication => "start_publication",
            MessageType::PausePublication => "pause_publication",
        }
    }

    /// Parses a trimmed wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether messages of this type carry a sequence number that must be
    /// acknowledged.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            MessageType::InputStreamData | MessageType::OutputStreamData
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The PayloadType field: what the payload of a stream message means.
///
/// Values the plugin does not define are kept as [`PayloadType::Other`] so
/// that a frame survives a relay unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// 0: not set. `acknowledge` messages from the plugin carry this.
    Unspecified,
    /// 1: terminal bytes (keystrokes from the client, output from the agent).
    Output,
    /// 2: an error text.
    Error,
    /// 3: terminal size, JSON [`SizeData`](super::SizeData).
    Size,
    /// 4: session parameters.
    Parameter,
    /// 5: handshake request from the agent.
    HandshakeRequest,
    /// 6: handshake response from the client.
    HandshakeResponse,
    /// 7: handshake complete, from the agent.
    HandshakeComplete,
    /// 8: KMS encryption challenge from the agent (not used by Seashell).
    EncChallengeRequest,
    /// 9: KMS encryption challenge answer (not used by Seashell).
    EncChallengeResponse,
    /// 10: a control flag, see [`FlagPayload`](super::FlagPayload).
    Flag,
    /// 11: standard error bytes.
    StdErr,
    /// 12: the exit code of a command.
    ExitCode,
    /// Any other value.
    Other(u32),
}

impl PayloadType {
    /// The numeric wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            PayloadType::Unspecified => 0,
            PayloadType::Output => 1,
            PayloadType::Error => 2,
            PayloadType::Size => 3,
            PayloadType::Parameter => 4,
            PayloadType::HandshakeRequest => 5,
            PayloadType::HandshakeResponse => 6,
            PayloadType::HandshakeComplete => 7,
            PayloadType::EncChallengeRequest => 8,
            PayloadType::EncChallengeResponse => 9,
            PayloadType::Flag => 10,
            PayloadType::StdErr => 11,
            PayloadType::ExitCode => 12,
            PayloadType::Other(v) => v,
        }
    }

    /// The variant for a numeric wire value; unknown values become `Other`.
    pub fn from_u32(value: u32) -> Self {
        match value {
            0 => PayloadType::Unspecified,
            1 => PayloadType::Output,
            2 => PayloadType::Error,
            3 => PayloadType::Size,
            4 => PayloadType::Parameter,
            5 => PayloadType::HandshakeRequest,
            6 => PayloadType::HandshakeResponse,
            7 => PayloadType::HandshakeComplete,
            8 => PayloadType::EncChallengeRequest,
            9 => PayloadType::EncChallengeResponse,
            10 => PayloadType::Flag,
            11 => PayloadType::StdErr,
            12 => PayloadType::ExitCode,
            other => PayloadType::Other(other),
        }
    }
}

impl From<u32> for PayloadType {
    fn from(value: u32) -> Self {
        Self::from_u32(value)
    }
}

impl From<PayloadType> for u32 {
    fn from(value: PayloadType) -> Self {
        value.to_u32()
    }
}

/// Limits applied while decoding frames from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest payload accepted, in bytes.
    pub max_payload_len: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
        }
    }
}

/// Why bytes from the network are not a valid `ClientMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    #[error("frame is {len} bytes, shorter than the {PAYLOAD_OFFSET}-byte header")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// HeaderLength is not 116.
    #[error("header length is {0}, expected {HEADER_LENGTH}")]
    BadHeaderLength(u32),
    /// The MessageType field is not UTF-8.
    #[error("message type is not UTF-8")]
    NonUtf8MessageType,
    /// The MessageType field is blank.
    #[error("message type is missing")]
    MissingMessageType,
    /// The MessageType field names no known type.
    #[error("unknown message type {0:?}")]
    UnknownMessageType(String),
    /// CreatedDate is zero on a message that must carry one.
    #[error("created date is missing")]
    MissingCreatedDate,
    /// PayloadLength exceeds the configured maximum.
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge {
        /// Declared payload length.
        len: u32,
        /// Configured maximum.
        max: usize,
    },
    /// PayloadLength points past the end of the frame.
    #[error("payload length {declared} runs past the end of the frame ({available} bytes left)")]
    PayloadPastEnd {
        /// Declared payload length.
        declared: u32,
        /// Bytes after the header.
        available: usize,
    },
    /// Bytes remain after the declared payload.
    #[error("{available} bytes follow the header but payload length is {declared}")]
    TrailingBytes {
        /// Declared payload length.
        declared: u32,
        /// Bytes after the header.
        available: usize,
    },
    /// PayloadDigest is not the SHA-256 of the payload.
    #[error("payload digest does not match the payload")]
    DigestMismatch,
}

/// Why a `ClientMessage` cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The payload does not fit the 32-bit PayloadLength field.
    #[error("payload of {0} bytes does not fit a 32-bit length")]
    PayloadTooLarge(usize),
}

/// One data-channel frame.
///
/// HeaderLength, PayloadDigest and PayloadLength are not stored: encoding
/// derives them from the payload and decoding checks them.
///
/// `Debug` shows the payload's length, not its bytes: payloads are
/// keystrokes (passwords typed at a prompt among them) and terminal output,
/// which must not reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// What kind of message this is.
    pub message_type: MessageType,
    /// Schema version; [`SCHEMA_VERSION`] on everything sent.
    pub schema_version: u32,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_date: u64,
    /// Per-direction stream sequence number, from 0; 0 on acknowledgements.
    pub sequence_number: i64,
    /// Control flags, see [`flags`].
    pub flags: u64,
    /// A random identifier of this message.
    pub message_id: Uuid,
    /// Meaning of the payload.
    pub payload_type: PayloadType,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl ClientMessage {
    /// A stream message (`input_stream_data` or `output_stream_data`) with
    /// flags 0, as the plugin sends keystrokes.
    pub fn stream(
        message_type: MessageType,
        sequence_number: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
        message_id: Uuid,
        created_date: u64,
    ) -> Self {
        Self {
            message_type,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number,
            flags: 0,
            message_id,
            payload_type,
            payload,
        }
    }

    /// The `acknowledge` message for `received`, shaped as the plugin
    /// shapes its own: sequence number 0, flags 3, payload type 0, and the
    /// acknowledged message's type, id and sequence number as JSON.
    pub fn acknowledge(
        received: &ClientMessage,
        message_id: Uuid,
        created_date: u64,
    ) -> Result<Self, PayloadError> {
        let content = AcknowledgeContent::for_message(received);
        Ok(Self {
            message_type: MessageType::Acknowledge,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number: 0,
            flags: flags::ACKNOWLEDGE,
            message_id,
            payload_type: PayloadType::Unspecified,
            payload: content.to_json()?,
        })
    }

    /// A `channel_closed` message telling the client the session is over.
    /// It is not a stream message: it is neither numbered nor acknowledged.
    pub fn channel_closed(
        content: &ChannelClosed,
        message_id: Uuid,
        created_date: u64,
    ) -> Result<Self, PayloadError> {
        Ok(Self {
            message_type: MessageType::ChannelClosed,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number: 0,
            flags: 0,
            message_id,
            payload_type: PayloadType::Unspecified,
            payload: serde_json::to_vec(content)?,
        })
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let payload_len = u32::try_from(self.payload.len())
            .map_err(|_| EncodeError::PayloadTooLarge(self.payload.len()))?;
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        // The plugin fills the field with spaces, then writes the name over
        // the start; every name is far shorter than 32 bytes.
        let name = self.message_type.as_str().as_bytes();
        let mut field = [b' '; MESSAGE_TYPE_LENGTH];
        field[..name.len()].copy_from_slice(name);
        out.extend_from_slice(&field);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&uuid_to_wire(&self.message_id));
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_u32().to_be_bytes());
        out.extend_from_slice(&payload_len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(())
    }

    /// Decodes one frame with the default [`DecodeLimits`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, &DecodeLimits::default())
    }

    /// Decodes one frame (one whole WebSocket binary message).
    ///
    /// The checks are those of the plugin's parser and `Validate`, made
    /// strict where the plugin is lenient in ways that could hide
    /// corruption: the header length must be exactly 116 and the payload
    /// must end exactly at the end of the frame.
    pub fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Self, DecodeError> {
        let header: &[u8; PAYLOAD_OFFSET] = bytes
            .get(..PAYLOAD_OFFSET)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Truncated { len: bytes.len() })?;
        let header_length = be_u32(header, 0);
        if header_length != HEADER_LENGTH {
            return Err(DecodeError::BadHeaderLength(header_length));
        }
        let message_type = parse_message_type(&header[OFF_MESSAGE_TYPE..OFF_SCHEMA_VERSION])?;
        let created_date = be_u64(header, OFF_CREATED_DATE);
        let payload_len = be_u32(header, OFF_PAYLOAD_LENGTH);

        let declared = usize::try_from(payload_len).unwrap_or(usize::MAX);
        if declared > limits.max_payload_len {
            return Err(DecodeError::PayloadTooLarge {
                len: payload_len,
                max: limits.max_payload_len,
            });
        }
        let rest = &bytes[PAYLOAD_OFFSET..];
        if declared > rest.len() {
            return Err(DecodeError::PayloadPastEnd {
                declared: payload_len,
                available: rest.len(),
            });
        }
        if declared < rest.len() {
            return Err(DecodeError::TrailingBytes {
                declared: payload_len,
                available: rest.len(),
            });
        }

        // The plugin's Validate exempts the publication notices from every
        // check, and checks the digest only when there is a payload.
        let exempt = matches!(
            message_type,
            MessageType::StartPublication | MessageType::PausePublication
        );
        if !exempt {
            if created_date == 0 {
                return Err(DecodeError::MissingCreatedDate);
            }
            if !rest.is_empty()
                && Sha256::digest(rest).as_slice()
                    != &header[OFF_PAYLOAD_DIGEST..OFF_PAYLOAD_DIGEST + DIGEST_LENGTH]
            {
                return Err(DecodeError::DigestMismatch);
            }
        }

        let mut id = [0u8; 16];
        id.copy_from_slice(&header[OFF_MESSAGE_ID..OFF_MESSAGE_ID + 16]);
        Ok(Self {
            message_type,
            schema_version: be_u32(header, OFF_SCHEMA_VERSION),
            created_date,
            sequence_number: be_u64(header, OFF_SEQUENCE_NUMBER) as i64,
            flags: be_u64(header, OFF_FLAGS),
            message_id: uuid_from_wire(id),
            payload_type: PayloadType::from_u32(be_u32(header, OFF_PAYLOAD_TYPE)),
            payload: rest.to_vec(),
        })
    }

    /// Parses the payload as JSON of type `T`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        serde_json::from_slice(&self.payload).map_err(PayloadError::from)
    }

    /// Parses the payload of an `acknowledge` message.
    pub fn acknowledge_content(&self) -> Result<AcknowledgeContent, PayloadError> {
        if self.message_type != MessageType::Acknowledge {
            return Err(PayloadError::WrongMessageType {
                expected: MessageType::Acknowledge,
                found: self.message_type,
            });
        }
        self.payload_json()
    }

    /// Parses the payload of a `channel_closed` message.
    pub fn channel_closed_content(&self) -> Result<ChannelClosed, PayloadError> {
        if self.message_type != MessageType::ChannelClosed {
            return Err(PayloadError::WrongMessageType {
                expected: MessageType::ChannelClosed,
                found: self.message_type,
            });
        }
        self.payload_json()
    }

    /// Checks that the payload type is `expected` before a typed parse.
    pub fn expect_payload_type(&self, expected: PayloadType) -> Result<(), PayloadError> {
        if self.payload_type == expected {
            Ok(())
        } else {
            Err(PayloadError::WrongPayloadType {
                expected,
                found: self.payload_type,
            })
        }
    }
}

impl fmt::Debug for ClientMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMessage")
            .field("message_type", &self.message_type)
            .field("schema_version", &self.schema_version)
            .field("created_date", &self.created_date)
            .field("sequence_number", &self.sequence_number)
            .field("flags", &self.flags)
            .field("message_id", &self.message_id)
            .field("payload_type", &self.payload_type)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Writes a UUID as the plugin does: its least significant 8 bytes first,
/// then its most significant 8 bytes, each half big-endian.
fn uuid_to_wire(id: &Uuid) -> [u8; 16] {
    let b = id.as_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&b[8..]);
    out[8..].copy_from_slice(&b[..8]);
    out
}

/// Inverse of [`uuid_to_wire`].
fn uuid_from_wire(wire: [u8; 16]) -> Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&wire[8..]);
    b[8..].copy_from_slice(&wire[..8]);
    Uuid::from_bytes(b)
}

fn parse_message_type(field: &[u8]) -> Result<MessageType, DecodeError> {
    // The plugin strips NUL bytes from both ends, then white space.
    let start = field.iter().position(|&b| b != 0).unwrap_or(field.len());
    let end = field.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    let text = std::str::from_utf8(&field[start..end])
        .map_err(|_| DecodeError::NonUtf8MessageType)?
        .trim();
    if text.is_empty() {
        return Err(DecodeError::MissingMessageType);
    }
    MessageType::from_name(text).ok_or_else(|| DecodeError::UnknownMessageType(text.to_owned()))
}

fn be_u32(header: &[u8; PAYLOAD_OFFSET], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&header[at..at + 4]);
    u32::from_be_bytes(b)
}

fn be_u64(header: &[u8; PAYLOAD_OFFSET], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&header[at..at + 8]);
    u64::from_be_bytes(b)
}
