//! The control channel between the Seashell server and the agent (DESIGN §4).
//!
//! Locally it runs over a Unix socket; the format does not depend on that,
//! so a TCP connection with mutual TLS can carry it unchanged.
//!
//! * [`frame`]: each message is a big-endian `u32` length followed by that
//!   many bytes of UTF-8 JSON, capped at a maximum frame size; from version
//!   4 on, data-channel frames may travel in a compact binary form.
//! * [`handshake`]: both ends send [`Hello`] first, then use the highest
//!   protocol version both support.
//! * [`messages`]: what the server asks of the agent ([`ServerMessage`])
//!   and what the agent answers or reports ([`AgentMessage`]).
//!
//! Every message is a JSON object whose `type` member names it, so a frame
//! dump is readable as it is. Binary data (data-channel frames, file
//! chunks) is base64 in JSON (except binary data-channel frames), and prints only its length in `Debug` output,
//! because terminal I/O and file contents must stay out of logs.

mod binary;
pub mod frame;
pub mod handshake;
pub mod messages;

pub use binary::Binary;
pub use frame::{
    encode_frame, encode_message, DataChannelMessage, FrameDecoder, FrameError,
    BINARY_FRAME_VERSION, DEFAULT_MAX_FRAME_LEN,
};
pub use handshake::{negotiate, HandshakeError, Hello, Role, PROTOCOL_NAME, PROTOCOL_VERSION};
pub use messages::{
    AgentMessage, AgentStatus, AttachMode, Credentials, ErrorCode, RequestId, ServerMessage,
    SessionEndReason, SessionId, SessionSummary, Shell, TransferId, FILE_READ_ACK_VERSION,
    FILE_READ_WINDOW, MAX_SEND_INPUT_LEN, SEND_INPUT_VERSION,
};
